"""Brain signals: EEG readers and preprocessing, source localisation to atlas regions, fMRI regions.

The ``regions`` stage lives in :mod:`xaffect.neural.stage`.
"""

from .convert import to_label_stc, to_mne_raw
from .bids_fmri import BoldRun, bids_region_signals, bids_subject_signals, find_bold_runs, read_repetition_time
from .fmri import CONFOUND_STRATEGIES, atlas_names, check_atlas_space, fmri_region_signals, read_fmriprep_confounds
from .io import (SEED_CHANNELS, SEED_SFREQ, read_eeg, read_eeg_bids, read_seed_mat, segment_stimuli,
                 set_standard_montage)
from .preprocess import PREPROCESS_DEFAULTS, find_bad_channels, preprocess
from .simulate import simulate_raw
from .synthetic_subject import synthetic_subject
from .source import (LINEAR_MODES, METHODS, apply_region_filter, forward_model, make_inverse, region_filter,
                     region_labels, region_signals)

__all__ = [
    "read_eeg", "read_eeg_bids", "read_seed_mat", "set_standard_montage", "segment_stimuli",
    "SEED_CHANNELS", "SEED_SFREQ",
    "preprocess", "find_bad_channels", "PREPROCESS_DEFAULTS",
    "forward_model", "region_labels", "make_inverse", "region_filter", "apply_region_filter", "region_signals",
    "simulate_raw", "synthetic_subject", "to_mne_raw", "to_label_stc",
    "LINEAR_MODES", "METHODS",
    "fmri_region_signals", "atlas_names", "check_atlas_space", "read_fmriprep_confounds", "CONFOUND_STRATEGIES",
    "BoldRun", "find_bold_runs", "read_repetition_time", "bids_subject_signals", "bids_region_signals",
]
