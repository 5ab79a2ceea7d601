"""Zarr stores, provenance, the analysis clock and the intake catalog."""

from .clock import (bin_centres, check_same_clock, concat_stimuli, frame_times, n_bins, on_clock,
                    split_stimuli, stimulus_slices, stimulus_table, to_clock, window_mean, window_starts)
from .compute import compute, current_scheduler, use_scheduler
from .workspace import Workspace, open_catalog

__all__ = [
    "Workspace", "open_catalog", "compute", "use_scheduler", "current_scheduler",
    "frame_times", "n_bins", "bin_centres", "to_clock", "on_clock", "concat_stimuli",
    "split_stimuli", "stimulus_slices", "stimulus_table", "window_mean", "window_starts",
    "check_same_clock",
]
