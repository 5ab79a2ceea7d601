"""The one rule for time (DESIGN.md, "The clock").

* Each stimulus has its own time in seconds from its first sample.
* The analysis clock has a rate ``f`` (default 1 Hz; ``1/TR`` for fMRI). Bin
  ``i`` covers ``[i/f, (i+1)/f)``; a value on the clock is the mean of the
  frames whose *centres* fall in the bin, labelled by the bin centre.
* Only complete bins are kept: a stimulus of duration ``d`` has
  ``floor(d * f)`` bins.
* Clock-rate data of several stimuli are concatenated along ``time`` with the
  coordinates ``stimulus`` (name) and ``onset`` (bin centre, seconds).
* A sliding-window value is labelled by its window's centre; features are
  averaged over the same windows (:func:`window_mean`).

None of xarray's resample/coarsen helpers bins by frame centre within one
stimulus's own time axis, so this small kernel is written here by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import InputError

__all__ = [
    "frame_times", "n_bins", "bin_centres", "to_clock", "on_clock", "concat_stimuli",
    "split_stimuli", "stimulus_slices", "window_starts", "window_mean", "check_same_clock",
    "stimulus_table", "run_bounds",
]

_EPS = 1e-9


def frame_times(n_frames: int, *, hop: float, win: float = 0.0, offset: float = 0.0) -> np.ndarray:
    """Centres (seconds) of ``n_frames`` analysis frames.

    Parameters
    ----------
    n_frames : int
        Number of frames.
    hop : float
        Seconds between frame starts.
    win : float
        Frame (receptive field) length in seconds; the centre is ``start + win/2``.
    offset : float
        Start of the first frame in seconds.

    Returns
    -------
    ndarray of shape (n_frames,)
    """
    return offset + np.arange(n_frames) * hop + win / 2.0


def n_bins(duration: float, rate: float) -> int:
    """Number of complete clock bins in ``duration`` seconds at ``rate`` Hz."""
    if rate <= 0:
        raise InputError(f"rate: the clock rate must be positive, got {rate}")
    return int(np.floor(duration * rate + _EPS))


def bin_centres(n: int, rate: float) -> np.ndarray:
    """Centres (seconds) of the first ``n`` clock bins."""
    return (np.arange(n) + 0.5) / rate


def to_clock(values: np.ndarray, times: np.ndarray, *, rate: float = 1.0, duration: float | None = None,
             axis: int = 0, empty: str = "nan") -> np.ndarray:
    """Average frames into clock bins by their centre times.

    Parameters
    ----------
    values : array of shape (..., n_frames, ...)
        Frame-rate values, frames along ``axis``.
    times : array of shape (n_frames,)
        Frame centres in seconds from the stimulus start.
    rate : float
        Clock rate in Hz.
    duration : float, optional
        Stimulus duration in seconds (default: the last frame centre).
    axis : int
        Frame axis of ``values``.
    empty : {"nan", "interpolate"}
        What an empty bin gets: NaN, or linear interpolation of the frame
        values at the bin centre (for data sparser than the clock).

    Returns
    -------
    array with ``floor(duration * rate)`` bins along ``axis``
    """
    values = np.asarray(values)
    times = np.asarray(times, dtype=float)
    if values.shape[axis] != times.size:
        raise InputError(f"to_clock: {values.shape[axis]} frames but {times.size} frame times")
    if duration is None:
        duration = float(times.max()) if times.size else 0.0
    nb = n_bins(duration, rate)
    moved = np.moveaxis(values, axis, 0)
    flat = moved.reshape(moved.shape[0], -1).astype(np.float64)
    idx = np.floor(times * rate + _EPS).astype(np.int64)
    keep = (idx >= 0) & (idx < nb)
    out = np.zeros((nb, flat.shape[1]))
    counts = np.bincount(idx[keep], minlength=nb).astype(float)
    np.add.at(out, idx[keep], flat[keep])
    with np.errstate(invalid="ignore", divide="ignore"):
        out /= counts[:, None]
    if empty == "interpolate" and (counts == 0).any() and times.size:
        # linear interpolation between the two frames around each empty bin's
        # centre (constant beyond the first/last frame), for all columns at once
        miss = np.flatnonzero(counts == 0)
        centres = bin_centres(nb, rate)[miss]
        order = np.argsort(times)
        t_sorted = times[order]
        hi = np.clip(np.searchsorted(t_sorted, centres), 1, max(t_sorted.size - 1, 1))
        lo = hi - 1 if t_sorted.size > 1 else hi * 0
        hi = np.minimum(hi, t_sorted.size - 1)
        span = t_sorted[hi] - t_sorted[lo]
        with np.errstate(invalid="ignore", divide="ignore"):
            w = np.where(span > 0, (centres - t_sorted[lo]) / span, 0.0)
        w = np.clip(w, 0.0, 1.0)[:, None]
        out[miss] = (1 - w) * flat[order[lo]] + w * flat[order[hi]]
    elif empty != "nan" and empty != "interpolate":
        raise InputError(f"empty: must be 'nan' or 'interpolate', got {empty!r}")
    out = out.reshape((nb,) + moved.shape[1:]).astype(values.dtype if values.dtype.kind == "f" else np.float64)
    return np.moveaxis(out, 0, axis)


def on_clock(data: xr.DataArray, *, rate: float = 1.0, duration: float | None = None, dim: str = "frame",
             times: np.ndarray | None = None, stimulus: str | None = None, empty: str = "nan") -> xr.DataArray:
    """Put a frame-rate DataArray on the analysis clock.

    Parameters
    ----------
    data : xarray.DataArray
        Frame-rate values with dimension ``dim``.
    rate, duration, empty
        As in :func:`to_clock`.
    dim : str
        Frame dimension of ``data``; replaced by ``time``.
    times : array of shape (n_frames,), optional
        Frame centres in seconds (default: the ``dim`` coordinate).
    stimulus : str, optional
        Adds a ``stimulus`` coordinate along ``time``.

    Returns
    -------
    xarray.DataArray
        With dimension ``time`` and coordinate ``onset`` (bin centres).
    """
    if times is None:
        if dim not in data.coords:
            raise InputError(f"on_clock: give frame times or a {dim!r} coordinate in seconds")
        times = data[dim].values
    axis = data.get_axis_num(dim)
    values = to_clock(data.values, times, rate=rate, duration=duration, axis=axis, empty=empty)
    dims = [("time" if d == dim else d) for d in data.dims]
    coords = {k: v for k, v in data.coords.items() if dim not in v.dims}
    out = xr.DataArray(values, dims=dims, coords=coords, name=data.name, attrs=dict(data.attrs))
    nb = out.sizes["time"]
    out = out.assign_coords(onset=("time", bin_centres(nb, rate)))
    if stimulus is not None:
        out = out.assign_coords(stimulus=("time", np.full(nb, stimulus, dtype=object).astype(str)))
    out.attrs["clock_rate"] = float(rate)
    return out


def concat_stimuli(items: Mapping[str, xr.DataArray | xr.Dataset], *, dim: str = "time") -> Any:
    """Concatenate per-stimulus clock data along ``time``.

    Parameters
    ----------
    items : mapping of str to DataArray or Dataset
        Stimulus name to its clock-rate data (dimension ``time`` with an
        ``onset`` coordinate, as :func:`on_clock` makes).

    Returns
    -------
    DataArray or Dataset
        ``time`` runs 0..n-1; coordinates ``stimulus`` and ``onset`` say
        which stimulus and which second of it each step is.
    """
    parts = []
    for name, obj in items.items():
        if dim not in obj.dims:
            raise InputError(f"stimulus {name!r}: no {dim!r} dimension to concatenate")
        if "onset" not in obj.coords:
            raise InputError(f"stimulus {name!r}: no 'onset' coordinate (put it on the clock first)")
        obj = obj.drop_vars([dim], errors="ignore")
        obj = obj.assign_coords(stimulus=(dim, np.full(obj.sizes[dim], str(name))))
        parts.append(obj)
    if not parts:
        raise InputError("concat_stimuli: no stimuli given")
    out = xr.concat(parts, dim=dim, coords="different", compat="equals", join="outer")
    out = out.assign_coords({dim: np.arange(out.sizes[dim])})
    out["stimulus"] = out["stimulus"].astype(str)
    return out


def run_bounds(labels: np.ndarray) -> np.ndarray:
    """Start of every run of equal labels, plus the end: array of shape (n_runs + 1,).

    Run ``k`` of ``labels`` (e.g. the stimulus of each clock step) is
    ``labels[bounds[k]:bounds[k + 1]]``.
    """
    labels = np.asarray(labels)
    return np.flatnonzero(np.r_[True, labels[1:] != labels[:-1], True])


def stimulus_slices(obj: xr.DataArray | xr.Dataset, *, dim: str = "time") -> dict[str, slice]:
    """Positions along ``time`` that each stimulus occupies (in order)."""
    if "stimulus" not in obj.coords:
        raise InputError("no 'stimulus' coordinate along time")
    names = np.asarray(obj["stimulus"].values).astype(str)
    out: dict[str, slice] = {}
    bounds = run_bounds(names) if names.size else np.array([0])
    for a, b in zip(bounds[:-1], bounds[1:]):
        if names[a] in out:
            raise InputError(f"stimulus {names[a]!r} appears in two separate runs along time")
        out[names[a]] = slice(int(a), int(b))
    return out


def split_stimuli(obj: xr.DataArray | xr.Dataset, *, dim: str = "time") -> dict[str, Any]:
    """Split concatenated clock data back into one object per stimulus."""
    return {name: obj.isel({dim: sl}) for name, sl in stimulus_slices(obj, dim=dim).items()}


def window_starts(duration: float, *, window: float, step: float) -> np.ndarray:
    """Start times of the sliding windows that fit in ``duration`` seconds."""
    if window <= 0 or step <= 0:
        raise InputError(f"window and step must be positive (window={window}, step={step})")
    if window > duration + _EPS:
        raise InputError(f"window of {window} s is longer than the stimulus ({duration:.3f} s)")
    n = int(np.floor((duration - window) / step + _EPS)) + 1
    return np.arange(n) * step


def window_mean(obj: xr.DataArray | xr.Dataset, *, window: float, step: float,
                rate: float | None = None, dim: str = "time") -> Any:
    """Average clock data over sliding windows, within each stimulus.

    Window ``k`` of a stimulus covers ``[k*step, k*step + window)`` seconds and
    is labelled by its centre, as synchrony values are; windows never cross a
    stimulus boundary. ``window`` and ``step`` must be whole numbers of bins.

    Parameters
    ----------
    obj : DataArray or Dataset
        Concatenated clock data with ``stimulus`` and ``onset`` coordinates.
    window, step : float
        Window length and step in seconds.
    rate : float, optional
        Clock rate (default: the ``clock_rate`` attr, else from ``onset``).

    Returns
    -------
    DataArray or Dataset
        On a window clock with ``onset`` = window centres.
    """
    if rate is None:
        rate = obj.attrs.get("clock_rate")
        if rate is None:
            first = split_stimuli(obj, dim=dim)
            on = next(iter(first.values()))["onset"].values
            rate = 1.0 / float(on[1] - on[0]) if on.size > 1 else 1.0
    wb, sb = window * rate, step * rate
    if abs(wb - round(wb)) > 1e-6 or abs(sb - round(sb)) > 1e-6:
        raise InputError(f"window ({window} s) and step ({step} s) must be whole numbers of clock bins "
                         f"at {rate} Hz")
    wb, sb = int(round(wb)), int(round(sb))
    parts = {}
    for name, part in split_stimuli(obj, dim=dim).items():
        nbin = part.sizes[dim]
        starts = window_starts(nbin / rate, window=window, step=step)
        idx = (np.round(starts * rate).astype(int)[:, None] + np.arange(wb)[None, :])
        stacked = part.isel({dim: xr.DataArray(idx, dims=(dim, "_win"))})
        stacked = stacked.drop_vars([c for c in ("onset", "stimulus") if c in stacked.coords])
        mean = stacked.mean("_win")
        mean = mean.assign_coords(onset=(dim, starts + window / 2.0))
        parts[name] = mean
    out = concat_stimuli(parts, dim=dim)
    out.attrs.update(obj.attrs)
    out.attrs.update(window=float(window), step=float(step))
    return out


def check_same_clock(a: xr.Dataset | xr.DataArray, b: xr.Dataset | xr.DataArray, names=("features", "targets")) -> None:
    """Raise if two clock objects differ in stimuli or onsets (say which)."""
    sa, sb = stimulus_slices(a), stimulus_slices(b)
    if list(sa) != list(sb):
        missing = sorted(set(sa) ^ set(sb))
        raise InputError(f"{names[0]} and {names[1]} cover different stimuli (only in one: {missing})")
    for name in sa:
        oa = a["onset"].values[sa[name]]
        ob = b["onset"].values[sb[name]]
        if oa.shape != ob.shape or not np.allclose(oa, ob):
            raise InputError(f"stimulus {name!r}: {names[0]} and {names[1]} are on different clocks "
                             f"({oa.size} vs {ob.size} steps)")


def stimulus_table(obj: xr.Dataset | xr.DataArray) -> pd.DataFrame:
    """One row per stimulus: name, first and last position, steps."""
    rows = [{"stimulus": k, "start": s.start, "stop": s.stop, "steps": s.stop - s.start}
            for k, s in stimulus_slices(obj).items()]
    return pd.DataFrame(rows)
