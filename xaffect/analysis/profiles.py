"""Former home of the layer analyses, kept so existing imports keep working.

The analyses now live in:

* :mod:`.layers` -- :func:`layer_profile`, :func:`best_layer`,
  :func:`centroid_layer` (with intervals), :func:`layer_vs_layer`,
  :func:`layer_summary`;
* :mod:`.compare` -- :func:`deep_vs_classical`, :func:`element_contrast`
  (layer selection on inner folds, corrected resampled t);
* :mod:`.zones` -- :func:`middle_vs_final` on a pre-set band;
* :mod:`.effects` -- :func:`recovered_effects`, :func:`compare_with_ground_truth`;
* :mod:`._scores` -- reading and checking the scores store.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from ..stats import fdr_bh
from ._scores import classical_feature_sets, deep_feature_sets, feature_sets
from .compare import deep_vs_classical, element_contrast
from .effects import compare_with_ground_truth, recovered_effects
from .layers import best_layer, centroid_layer, layer_profile, layer_summary, layer_vs_layer
from .zones import middle_band, middle_vs_final

__all__ = [
    "layer_profile", "best_layer", "centroid_layer", "layer_vs_layer", "layer_summary", "middle_vs_final",
    "middle_band", "element_contrast", "deep_vs_classical", "recovered_effects", "compare_with_ground_truth",
    "fdr_bh", "paired_ttest", "feature_sets", "deep_feature_sets", "classical_feature_sets",
]


def paired_ttest(a: np.ndarray, b: np.ndarray, *, axis: int = -1, alternative: str = "two-sided"
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Plain paired t-test of ``a - b`` across ``axis`` (NaN pairs dropped); descriptive only.

    Folds that share training data are not independent, so this test is
    anti-conservative on cross-validated scores; the analyses use
    :func:`~xaffect.analysis.corrected_resampled_ttest`.

    Returns
    -------
    t, p : ndarrays of the shape of ``a`` without ``axis``
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        res = stats.ttest_rel(a, b, axis=axis, nan_policy="omit", alternative=alternative)
    return (np.ma.filled(np.ma.asarray(res.statistic, dtype=float), np.nan),
            np.ma.filled(np.ma.asarray(res.pvalue, dtype=float), np.nan))
