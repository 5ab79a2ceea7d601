"""Layer profiles, best/centroid layer with intervals, selection-honest comparisons
(deep vs classical, voice vs soundtrack), pre-set middle-vs-final zones, their
plots, and the HTML report.

Modules: :mod:`.layers` (profiles, best/centroid layer, layer vs layer),
:mod:`.compare` (comparisons that select a layer on inner folds),
:mod:`.zones` (middle vs final on a band fixed in advance), :mod:`.effects`
(recovered effects vs ground truth), :mod:`.differential` (two targets' profiles,
best layers and region maps, paired), :mod:`.plots`, :mod:`.report`; the second
seed's analyses as stores: :mod:`.analyses_stage` (the ``analyses`` stage),
:mod:`.report_analyses` (their report sections).
"""

from ..encoding._compare import corrected_resampled_interval, corrected_resampled_ttest
from ..stats import fdr_bh
from ._scores import classical_feature_sets, deep_feature_sets, feature_sets
from .compare import deep_vs_classical, element_contrast, energy_ratio_db
from .effects import compare_with_ground_truth, recovered_effects
from .layers import best_layer, centroid_layer, layer_profile, layer_summary, layer_vs_layer
from .plots import (plot_centroid_layer, plot_deep_vs_classical, plot_element_contrast, plot_layer_profile,
                    plot_middle_vs_final, plot_regions, plot_regions_surface, split_region)
from .profiles import paired_ttest
from .zones import SEED_MIDDLE_FRACTION, middle_band, middle_vs_final
# second seed (issue 17): gradient alignment, lead-lag, renditions, clip-level labels, differential encoding
from .crossover import crossover_layer_test
from .differential import describe_differential, differential_encoding, plot_differential_encoding
from .clips import clip_label_profile, deep_vs_classical_clips, plot_clip_profile, pool_clips
from .gradients import (align_with_gradient, fit_moran, load_conte69_sphere, load_hcp_gradient, load_schaefer_parcels,
                        make_spins, parcel_weights, parcellate, spatial_correlation)
from .gradient_plot import plot_gradient_alignment, plot_gradient_surface
from .leadlag import describe_lead_lag, lagged_correlation, lead_lag, plot_lead_lag
from .renditions import align_renditions, plot_rendition_distance, rendition_distance, window_distance

__all__ = [
    "layer_profile", "best_layer", "centroid_layer", "layer_vs_layer", "layer_summary",
    "middle_vs_final", "middle_band", "SEED_MIDDLE_FRACTION",
    "element_contrast", "energy_ratio_db", "deep_vs_classical",
    "corrected_resampled_ttest", "corrected_resampled_interval",
    "recovered_effects", "compare_with_ground_truth", "fdr_bh", "paired_ttest",
    "feature_sets", "deep_feature_sets", "classical_feature_sets",
    "plot_layer_profile", "plot_centroid_layer", "plot_middle_vs_final", "plot_element_contrast",
    "plot_deep_vs_classical", "plot_regions", "plot_regions_surface", "split_region",
    "align_with_gradient", "make_spins", "fit_moran", "parcel_weights", "spatial_correlation",
    "load_hcp_gradient", "load_conte69_sphere", "load_schaefer_parcels", "parcellate",
    "plot_gradient_alignment", "plot_gradient_surface",
    "lead_lag", "lagged_correlation", "describe_lead_lag", "plot_lead_lag",
    "rendition_distance", "align_renditions", "window_distance", "plot_rendition_distance",
    "pool_clips", "clip_label_profile", "deep_vs_classical_clips", "plot_clip_profile",
    "differential_encoding", "describe_differential", "plot_differential_encoding",
    "crossover_layer_test",
]
