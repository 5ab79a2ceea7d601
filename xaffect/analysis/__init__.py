"""Layer profiles, best/centroid layer, middle-vs-final zone, element and
deep-vs-classical contrasts, their plots, and the HTML report."""

from .plots import (plot_centroid_layer, plot_deep_vs_classical, plot_element_contrast, plot_layer_profile,
                    plot_middle_vs_final, plot_regions, plot_regions_surface, split_region)
from .profiles import (best_layer, centroid_layer, classical_feature_sets, compare_with_ground_truth,
                       deep_feature_sets, deep_vs_classical, element_contrast, fdr_bh, feature_sets,
                       layer_profile, middle_vs_final, paired_ttest, recovered_effects)

__all__ = [
    "layer_profile", "best_layer", "centroid_layer", "middle_vs_final", "element_contrast",
    "deep_vs_classical", "recovered_effects", "compare_with_ground_truth", "fdr_bh", "paired_ttest",
    "feature_sets", "deep_feature_sets", "classical_feature_sets",
    "plot_layer_profile", "plot_centroid_layer", "plot_middle_vs_final", "plot_element_contrast",
    "plot_deep_vs_classical", "plot_regions", "plot_regions_surface", "split_region",
]
