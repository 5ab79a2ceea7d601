"""Inputs of sliding-window ISC: DataArrays and subject mappings to per-stimulus arrays, windows."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from ..errors import InputError
from ..store.clock import run_bounds, window_starts

METHODS = ("loo", "pairwise")
NULLS = ("shift", "phase")


class ISCWarning(UserWarning):
    """Data were trimmed or subjects dropped before computing ISC."""


# ---------------------------------------------------------------- inputs
def _real(x) -> np.ndarray:
    """``x`` as a floating array in its own precision (the kernels read it chunk by chunk in float64)."""
    x = np.asarray(x)
    return x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float64)


def _check_args(window: float, step: float, method: str, null: str | None = None) -> None:
    if method not in METHODS:
        raise InputError(f"method: must be one of {', '.join(METHODS)}, got {method!r}")
    if null is not None and null not in NULLS:
        raise InputError(f"null: must be one of {', '.join(NULLS)}, got {null!r}")
    if not (window > 0 and step > 0):
        raise InputError(f"window and step must be positive seconds (window={window}, step={step})")


def _trim_lengths(x: np.ndarray, subjects: Sequence[str], stimulus: str, lengths: str) -> tuple[np.ndarray, list[str]]:
    """Drop all-missing subjects; make subjects equally long (trailing NaN = shorter)."""
    subjects = [str(s) for s in subjects]
    if x.shape[1] and not np.isnan(x[:, -1]).all(axis=1).any():
        return x, subjects  # every subject has data at the last sample: nothing to trim or drop
    present = ~np.isnan(x).all(axis=(1, 2))
    if not present.all():
        gone = [s for s, p in zip(subjects, present) if not p]
        warnings.warn(f"stimulus {stimulus!r}: no data for subject(s) {', '.join(gone)}; left out", ISCWarning,
                      stacklevel=3)
        x = x[present]
        subjects = [s for s, p in zip(subjects, present) if p]
    anyvalid = ~np.isnan(x).all(axis=2)  # (subject, sample)
    ends = np.array([np.flatnonzero(v)[-1] + 1 if v.any() else 0 for v in anyvalid])
    if ends.size and (ends != ends.max()).any():
        short = [f"{s} ({e} samples)" for s, e in zip(subjects, ends) if e < ends.max()]
        msg = (f"stimulus {stimulus!r}: subjects have different lengths; shorter than {ends.max()} samples: "
               f"{', '.join(short)}")
        if lengths == "error":
            raise InputError(msg)
        if lengths != "trim":
            raise InputError(f"lengths: must be 'trim' or 'error', got {lengths!r}")
        warnings.warn(msg + f"; every subject trimmed to {ends.min()} samples", ISCWarning, stacklevel=3)
        x = x[:, : ends.min()]
    return x, subjects


def _from_dataarray(data: xr.DataArray, sfreq: float | None) -> tuple[dict, list[str]]:
    """Split a (subject, time|sample, region) DataArray into per-stimulus arrays."""
    tdim = "time" if "time" in data.dims else "sample" if "sample" in data.dims else None
    if tdim is None or "subject" not in data.dims or "region" not in data.dims or data.ndim != 3:
        raise InputError(f"data: needs dims (subject, time, region), got {data.dims}")
    data = data.transpose("subject", tdim, "region")
    subjects = [str(s) for s in (data["subject"].values if "subject" in data.coords else range(data.sizes["subject"]))]
    regions = [str(r) for r in (data["region"].values if "region" in data.coords else range(data.sizes["region"]))]
    if "stimulus" in data.coords and data["stimulus"].dims == (tdim,):
        names = np.asarray(data["stimulus"].values).astype(str)
        edges = run_bounds(names)
        bounds = list(zip(edges[:-1], edges[1:]))
    else:
        names = np.array(["stimulus"] * data.sizes[tdim])
        bounds = [(0, data.sizes[tdim])]
    values = _real(data.values)
    out = {}
    for a, b in bounds:
        name = str(names[a])
        if name in out:
            raise InputError(f"stimulus {name!r} appears in two separate runs along {tdim}")
        fs = sfreq or data.attrs.get("sfreq")
        if fs is None:
            if tdim not in data.coords or b - a < 2:
                raise InputError(f"stimulus {name!r}: give sfreq or a '{tdim}' coordinate in seconds")
            t = np.asarray(data[tdim].values[a:b], dtype=float)
            fs = 1.0 / float(np.median(np.diff(t)))
        out[name] = (values[:, a:b], float(fs), subjects)
    return out, regions


def _windows(n_samples: int, sfreq: float, window: float, step: float, stimulus: str):
    try:
        starts = window_starts(n_samples / sfreq, window=window, step=step)
    except InputError as exc:
        raise InputError(f"stimulus {stimulus!r}: {exc}") from None
    win = int(round(window * sfreq))
    idx = np.round(starts * sfreq).astype(np.int64)
    idx = idx[idx + win <= n_samples]
    return idx, win, starts[: idx.size] + window / 2.0


def _inputs(data: Any, sfreq: float | None, lengths: str, min_subjects: int = 3):
    if isinstance(data, Mapping):  # subject -> (time, region), possibly of different lengths
        if not data:
            raise InputError("data: no subjects given")
        arrays = {}
        for name, arr in data.items():
            if not isinstance(arr, xr.DataArray) or arr.ndim != 2:
                raise InputError(f"subject {name!r}: needs a (time, region) DataArray")
            arrays[str(name)] = arr.transpose(*(d for d in arr.dims if d != "region"), "region")
        n = max(a.shape[0] for a in arrays.values())
        padded = np.full((len(arrays), n, next(iter(arrays.values())).shape[1]), np.nan)
        for i, a in enumerate(arrays.values()):
            if a.shape[1] != padded.shape[2]:
                raise InputError(f"subject {list(arrays)[i]!r}: {a.shape[1]} regions, others have {padded.shape[2]}")
            padded[i, : a.shape[0]] = a.values
        first = next(iter(arrays.values()))
        tdim = first.dims[0]
        da = xr.DataArray(padded, dims=("subject", "time", "region"),
                          coords={"subject": list(arrays), "region": first["region"].values if "region" in first.coords
                                  else np.arange(padded.shape[2])}, attrs=dict(first.attrs))
        if sfreq is None and "sfreq" not in first.attrs and tdim in first.coords:
            sfreq = 1.0 / float(np.median(np.diff(np.asarray(first[tdim].values, dtype=float))))
        data = da
    if not isinstance(data, xr.DataArray):
        raise InputError(f"data: expected a DataArray (subject, time, region), got {type(data).__name__}")
    return _from_dataarray(data, sfreq)
