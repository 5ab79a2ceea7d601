"""Encoding: nested cross-validated ridge over feature sets, layers, elements and targets."""

from ._banded import BandedRidgeCV, band_unique_variance, band_weights_grid
from ._compare import compare, paired_stats
from ._cv import blocked_kfold, detrend_within, leave_one_stimulus_out, make_delays
from ._grid import as_feature_cube, fit_grid, resolve_null
from ._nulls import GRID_FAMILY, circular_shift, family_pvalues, fdr_bh, fwer_maxstat, permutation_p, phase_randomise
from ._ridge import DEFAULT_ALPHAS, RidgeCV

__all__ = ["RidgeCV", "DEFAULT_ALPHAS", "BandedRidgeCV", "band_unique_variance", "band_weights_grid", "fit_grid", "compare", "paired_stats", "as_feature_cube", "leave_one_stimulus_out",
           "blocked_kfold", "make_delays", "circular_shift", "phase_randomise", "permutation_p", "fdr_bh",
           "fwer_maxstat", "family_pvalues", "GRID_FAMILY", "detrend_within", "resolve_null"]
