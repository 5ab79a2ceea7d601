"""Brain signals: EEG readers and preprocessing, source localisation to atlas regions, fMRI regions.

The ``regions`` stage lives in :mod:`xaffect.neural.stage`.
"""

from .fmri import atlas_names, fmri_region_signals
from .io import (SEED_CHANNELS, SEED_SFREQ, read_eeg, read_eeg_bids, read_seed_mat, segment_stimuli,
                 set_standard_montage)
from .preprocess import PREPROCESS_DEFAULTS, find_bad_channels, preprocess
from .source import (LINEAR_MODES, METHODS, apply_region_filter, forward_model, make_inverse, region_filter, region_labels,
                     region_signals, simulate_raw)

__all__ = [
    "read_eeg", "read_eeg_bids", "read_seed_mat", "set_standard_montage", "segment_stimuli",
    "SEED_CHANNELS", "SEED_SFREQ",
    "preprocess", "find_bad_channels", "PREPROCESS_DEFAULTS",
    "forward_model", "region_labels", "make_inverse", "region_filter", "apply_region_filter", "region_signals",
    "simulate_raw",
    "LINEAR_MODES", "METHODS",
    "fmri_region_signals", "atlas_names",
]
