"""Zarr stores, provenance, the analysis clock and the intake catalog.

Names are imported on first use (PEP 562), so that ``xaffect.store.commands``
(imported by the command line) does not pull in xarray, zarr and dask.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .clock import (bin_centres, check_same_clock, concat_stimuli, frame_times, n_bins, on_clock,
                        split_stimuli, stimulus_slices, stimulus_table, to_clock, window_mean, window_starts)
    from .compute import compute, current_scheduler, use_scheduler
    from .credentials import SHAREABLE_OPTIONS, public_options
    from .workspace import Workspace, open_catalog

_LAZY = {
    "Workspace": "workspace", "open_catalog": "workspace",
    "compute": "compute", "use_scheduler": "compute", "current_scheduler": "compute",
    "SHAREABLE_OPTIONS": "credentials", "public_options": "credentials",
    **{name: "clock" for name in ("frame_times", "n_bins", "bin_centres", "to_clock", "on_clock",
                                  "concat_stimuli", "split_stimuli", "stimulus_slices", "stimulus_table",
                                  "window_mean", "window_starts", "check_same_clock")},
}

__all__ = [
    "Workspace", "open_catalog", "compute", "use_scheduler", "current_scheduler",
    "SHAREABLE_OPTIONS", "public_options",
    "frame_times", "n_bins", "bin_centres", "to_clock", "on_clock", "concat_stimuli",
    "split_stimuli", "stimulus_slices", "stimulus_table", "window_mean", "window_starts",
    "check_same_clock",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
