"""Sliding-window inter-subject correlation with valid nulls (xarray layer).

Window ``k`` of a stimulus covers ``[k*step, k*step + window)`` seconds of
that stimulus and is labelled by its centre, exactly as
:func:`xaffect.store.clock.window_mean` averages features; windows never
cross a stimulus boundary.

Inference never treats leave-one-out values as independent observations:

* per window and region, a null distribution from surrogate data in which
  every subject is independently circularly shifted (``null="shift"``) or
  phase-randomised (``null="phase"``); one-sided p = (1 + #null >= obs) /
  (1 + #null), FDR (Benjamini-Hochberg) across regions per window;
* for the summary ISC (Fisher mean over all windows of all stimuli), the same
  surrogates give a null of summaries, and a subject-level bootstrap
  (subjects resampled, the ISC recomputed, copies of one subject never
  compared with each other) gives a confidence interval, re-centred on the
  observed value because resampled groups hold fewer distinct subjects.

The work is one dask graph (per stimulus and band: the observed ISC, then the
surrogate and bootstrap draws in a few chunks, each with its own spawned
random stream), computed on the configured scheduler, so results do not
depend on the scheduler.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from ..errors import InputError
from ..store.clock import run_bounds, window_starts
from . import _kernels as K

__all__ = ["sliding_isc", "isc_test", "band_envelopes", "fdr_bh", "fisher_mean", "BANDS", "ISCWarning",
           "METHODS", "NULLS"]

#: Canonical EEG bands (Hz) for amplitude-envelope ISC.
BANDS: dict[str, tuple[float, float]] = {
    "delta": (1.0, 4.0), "theta": (4.0, 8.0), "alpha": (8.0, 13.0), "beta": (13.0, 30.0), "gamma": (30.0, 45.0),
}
METHODS = ("loo", "pairwise")
NULLS = ("shift", "phase")

fdr_bh = K.fdr_bh
fisher_mean = K.fisher_mean


class ISCWarning(UserWarning):
    """Data were trimmed or subjects dropped before computing ISC."""


# ---------------------------------------------------------------- inputs
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
    values = np.asarray(data.values, dtype=np.float64)
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


def band_envelopes(x: np.ndarray, sfreq: float, bands: Sequence[str] | Mapping[str, tuple[float, float]]) -> dict:
    """Hilbert amplitude envelope of each band.

    Parameters
    ----------
    x : array of shape (n_subjects, n_samples, n_regions)
    sfreq : float
        Sampling rate in Hz.
    bands : list of band names (see :data:`BANDS`) or mapping name -> (low, high) Hz

    Returns
    -------
    dict of str to array of shape (n_subjects, n_samples, n_regions)
        Missing samples stay missing.
    """
    import mne
    from scipy.signal import hilbert

    spec = {b: BANDS[b] if b in BANDS else None for b in bands} if not isinstance(bands, Mapping) else dict(bands)
    nan = np.isnan(x)
    filled = np.where(nan, 0.0, x - np.nanmean(x, axis=1, keepdims=True))
    moved = np.ascontiguousarray(np.moveaxis(filled, 1, -1))  # (subject, region, sample)
    out = {}
    for name, edges in spec.items():
        if edges is None:
            raise InputError(f"bands: unknown band {name!r} (known: {', '.join(BANDS)}; or give {{name: [low, high]}})")
        lo, hi = map(float, edges)
        if not 0 < lo < hi < sfreq / 2:
            raise InputError(f"bands: {name} ({lo}-{hi} Hz) must lie within 0-{sfreq / 2:g} Hz (Nyquist)")
        filt = mne.filter.filter_data(moved.reshape(-1, moved.shape[-1]), sfreq, lo, hi, verbose="error")
        env = np.abs(hilbert(filt, axis=-1)).reshape(moved.shape)
        env = np.moveaxis(env, -1, 1)
        env[nan] = np.nan
        out[name] = env
    return out


# ---------------------------------------------------------------- compute
#: Region blocks keep one subject's slab of the kernels' temporaries under this
#: size (bytes); each block is then a strided view, so blocks are only used
#: when a subject's whole (n_samples, n_regions) slab is larger.
_BLOCK_BYTES = 1 << 30


def _blocks(x: np.ndarray) -> list[slice]:
    """Region slices so that one subject's slab of a block stays under :data:`_BLOCK_BYTES`."""
    per_region = max(1, x.nbytes // max(1, x.shape[0] * x.shape[2]))
    size = max(1, _BLOCK_BYTES // per_region)
    return [slice(i, i + size) for i in range(0, x.shape[2], size)]


def _pairs(x: np.ndarray, starts: np.ndarray, win: int) -> np.ndarray:
    """Pairwise correlations (n_pairs, n_windows, n_regions), region block by block."""
    return np.concatenate([K.pairwise_r(x[:, :, b], starts, win) for b in _blocks(x)], axis=2)


def _isc_windows(x: np.ndarray, starts: np.ndarray, win: int, method: str, weights=None, pairs=None) -> np.ndarray:
    """ISC (n_windows, n_regions) of one stimulus, region block by block."""
    if method == "loo":
        return np.concatenate([K.loo_isc(x[:, :, b], starts, win, weights=weights) for b in _blocks(x)], axis=1)
    r = _pairs(x, starts, win) if pairs is None else pairs
    return K.fisher_mean(r, axis=0, weights=None if weights is None else K.pair_weights(weights))


def _zsum(isc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum of Fisher z over windows and number of windows, per region."""
    z = np.arctanh(np.clip(isc, -K._R_MAX, K._R_MAX))
    return np.nansum(z, axis=0), (~np.isnan(z)).sum(axis=0)


#: Null and bootstrap draws are split into about this many tasks per stimulus and band.
_TASKS_PER_STIMULUS = 8


def _check_bands(bands, sfreq: float) -> None:
    spec = dict(bands) if isinstance(bands, Mapping) else {b: BANDS.get(b) for b in bands}
    for name, edges in spec.items():
        if name == "raw":
            continue
        if edges is None:
            raise InputError(f"bands: unknown band {name!r} (known: raw, {', '.join(BANDS)}; "
                             "or give {name: [low, high]})")
        lo, hi = map(float, edges)
        if not 0 < lo < hi < sfreq / 2:
            raise InputError(f"bands: {name} ({lo}-{hi} Hz) must lie within 0-{sfreq / 2:g} Hz (Nyquist)")


def _band_signal(x: np.ndarray, sfreq: float, bands, band: str | None) -> np.ndarray:
    if band is None or band == "raw":
        return x
    spec = dict(bands) if isinstance(bands, Mapping) else {band: BANDS[band]}
    return band_envelopes(x, sfreq, {band: spec[band]})[band]


def _null_chunk(sig, obs, starts, win, method, null, n, seed_seq):
    """``n`` surrogate ISCs: exceedance counts, moments and Fisher-z sums per draw."""
    rng = np.random.default_rng(seed_seq)
    ge = np.zeros_like(obs)
    nv = np.zeros_like(obs)
    s1 = np.zeros_like(obs)
    s2 = np.zeros_like(obs)
    zs = np.zeros((n, obs.shape[1]))
    zc = np.zeros((n, obs.shape[1]))
    for i in range(n):
        surr = K.circular_shift(sig, rng) if null == "shift" else K.phase_randomize(sig, rng)
        v = _isc_windows(surr, starts, win, method)
        ok = ~np.isnan(v)
        ge += ok & (v >= obs)
        nv += ok
        s1 += np.where(ok, v, 0.0)
        s2 += np.where(ok, v * v, 0.0)
        zs[i], zc[i] = _zsum(v)
    return ge, nv, s1, s2, zs, zc


def _boot_chunk(sig, starts, win, method, counts):
    """Summary Fisher-z sums for subject-bootstrap draws ``counts`` (n_draws, n_subjects)."""
    pairs = _pairs(sig, starts, win) if method == "pairwise" else None
    zs = np.zeros((counts.shape[0], sig.shape[2]))
    zc = np.zeros_like(zs)
    for i, c in enumerate(counts):
        zs[i], zc[i] = _zsum(_isc_windows(sig, starts, win, method, weights=c, pairs=pairs))
    return zs, zc


def _run(stimuli: dict, regions: list[str], *, window: float, step: float, method: str,
         bands, null: str, n_null: int, n_boot: int, seed: int | None, lengths: str, progress: bool,
         min_subjects: int = 3) -> xr.Dataset:
    """ISC, nulls and bootstrap over per-stimulus arrays ``{name: (x, sfreq, subjects)}``.

    ``x`` has shape (n_subjects, n_samples, n_regions).
    """
    import dask

    from ..store.compute import compute

    band_names = list(bands) if bands else [None]
    seq = np.random.SeedSequence(seed)
    boot_seq, *task_seqs = seq.spawn(1 + len(stimuli) * len(band_names))
    # subjects are the resampling unit: one draw per bootstrap, shared by all stimuli
    union = list(dict.fromkeys(str(s) for _, _, subs in stimuli.values() for s in subs))
    brng = np.random.default_rng(boot_seq)
    draws = np.stack([np.bincount(brng.integers(0, len(union), len(union)), minlength=len(union))
                      for _ in range(n_boot)]) if n_boot else np.zeros((0, len(union)))
    chunk = max(1, -(-max(n_null, n_boot) // _TASKS_PER_STIMULUS))
    onsets, names, tasks = [], [], []
    boot_ok, n_subjects = True, 0
    for k, (stim, (x, fs, subjects)) in enumerate(stimuli.items()):
        x, subs = _trim_lengths(np.asarray(x, dtype=np.float64), subjects, stim, lengths)
        if x.shape[0] < min_subjects and method == "loo" or x.shape[0] < 2:
            raise InputError(f"stimulus {stim!r}: {x.shape[0]} subject(s) with data; "
                             f"{'leave-one-out ISC needs at least 3' if method == 'loo' else 'ISC needs at least 2'}")
        n_subjects = max(n_subjects, x.shape[0])
        starts, win, centres = _windows(x.shape[1], fs, window, step, stim)
        if bands:
            _check_bands(bands, fs)
        if n_boot and method == "loo" and np.isnan(x.sum()):
            boot_ok = False
        counts = draws[:, [union.index(u) for u in subs]].astype(float)
        xd = dask.delayed(x, name=f"isc-data-{k}-{uuid.uuid4().hex}")  # a name: no hashing of big arrays
        per_band = []
        for b, band in enumerate(band_names):
            sig = dask.delayed(_band_signal, pure=True)(xd, fs, bands, band)
            obs = dask.delayed(_isc_windows, pure=True)(sig, starts, win, method)
            rngs = task_seqs[k * len(band_names) + b].spawn(-(-n_null // chunk) if n_null else 0)
            nulls = [dask.delayed(_null_chunk, pure=True)(sig, obs, starts, win, method, null,
                                                          min(chunk, n_null - i * chunk), r)
                     for i, r in enumerate(rngs)]
            boots = [dask.delayed(_boot_chunk, pure=True)(sig, starts, win, method, counts[i:i + chunk])
                     for i in range(0, n_boot, chunk)] if boot_ok else []
            per_band.append((obs, nulls, boots))
        tasks.append(per_band)
        onsets.append(centres)
        names.extend([stim] * starts.size)
    (results,) = compute(tasks, desc="synchrony", progress=progress)
    parts, null_parts = [], []
    nz = np.zeros((n_null, len(regions), len(band_names)))
    nn = np.zeros_like(nz)
    bz = np.zeros((n_boot, len(regions), len(band_names)))
    bn = np.zeros_like(bz)
    for per_band in results:
        obs = np.stack([o for o, _, _ in per_band], axis=-1)
        acc = np.zeros((4,) + obs.shape)
        for b, (_, nulls, boots) in enumerate(per_band):
            i0 = 0
            for ge, nv, s1, s2, zs, zc in nulls:
                acc[:, ..., b] += np.stack([ge, nv, s1, s2])
                nz[i0:i0 + zs.shape[0], :, b] += zs
                nn[i0:i0 + zs.shape[0], :, b] += zc
                i0 += zs.shape[0]
            i0 = 0
            for zs, zc in boots:
                bz[i0:i0 + zs.shape[0], :, b] += zs
                bn[i0:i0 + zs.shape[0], :, b] += zc
                i0 += zs.shape[0]
        parts.append(obs)
        null_parts.append(tuple(acc))
    isc = np.concatenate(parts)
    dims = ("time", "region", "band")
    coords = {"time": np.arange(isc.shape[0]), "region": regions, "stimulus": ("time", np.array(names, dtype=str)),
              "onset": ("time", np.concatenate(onsets))}
    if bands:
        coords["band"] = [str(b) for b in band_names]
    squeeze = (lambda a: a) if bands else (lambda a: a[..., 0])
    bdims = dims if bands else dims[:2]
    ds = xr.Dataset({"isc": (bdims, squeeze(isc).astype(np.float32))}, coords=coords)
    zs_obs, zc_obs = _zsum(isc)
    with np.errstate(invalid="ignore", divide="ignore"):
        summary = np.tanh(zs_obs / zc_obs)
    ds["summary"] = (bdims[1:], squeeze(summary))
    ds["n_subjects"] = ((), n_subjects)
    if n_null:
        ge, nv, s1, s2 = (np.concatenate(a) for a in zip(*null_parts))
        with np.errstate(invalid="ignore", divide="ignore"):
            p = np.where(np.isnan(isc) | (nv == 0), np.nan, (1.0 + ge) / (1.0 + nv))
            mean = s1 / nv
            std = np.sqrt(np.maximum(s2 / nv - mean ** 2, 0.0))
            null_summary = np.tanh(nz / nn)
        ds["p"] = (bdims, squeeze(p))
        ds["p_fdr"] = (bdims, squeeze(K.fdr_bh(p, axis=1)))
        ds["null_mean"] = (bdims, squeeze(mean).astype(np.float32))
        ds["null_std"] = (bdims, squeeze(std).astype(np.float32))
        ds["summary_null"] = (("null",) + bdims[1:], squeeze(null_summary))
        ge_s = (null_summary >= summary[None]).sum(axis=0)
        ok_s = (~np.isnan(null_summary)).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            sp = np.where(np.isnan(summary), np.nan, (1.0 + ge_s) / (1.0 + ok_s))
        ds["summary_p"] = (bdims[1:], squeeze(sp))
        ds["summary_p_fdr"] = (bdims[1:], squeeze(K.fdr_bh(sp, axis=0)))
    if n_boot and boot_ok:
        # Fisher-z bootstrap distribution of the summary. Resampled groups have
        # fewer distinct subjects, which biases leave-one-out ISC down, so the
        # interval is the percentile interval of the distribution re-centred
        # on the observed summary (its width, not its location, comes from
        # the bootstrap).
        with np.errstate(invalid="ignore", divide="ignore"):
            zb = np.arctanh(np.clip(np.tanh(bz / bn), -K._R_MAX, K._R_MAX))
        zo = np.arctanh(np.clip(summary, -K._R_MAX, K._R_MAX))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            shifted = zb - np.nanmedian(zb, axis=0, keepdims=True)
            lo, hi = np.nanpercentile(shifted, [2.5, 97.5], axis=0)
        ds["summary_ci"] = (("bound",) + bdims[1:], squeeze(np.tanh(np.stack([zo + lo, zo + hi]))))
        ds = ds.assign_coords(bound=["low", "high"])
        # bootstrap test of summary > 0: the centred distribution as the null
        with np.errstate(invalid="ignore"):
            bp = (1.0 + (shifted >= zo[None]).sum(axis=0)) / (1.0 + (~np.isnan(shifted)).sum(axis=0))
        ds["bootstrap_p"] = (bdims[1:], squeeze(np.where(np.isnan(summary), np.nan, bp)))
    elif n_boot:
        warnings.warn("bootstrap skipped: leave-one-out bootstrap needs data without missing samples", ISCWarning,
                      stacklevel=3)
    ds.attrs.update(window=float(window), step=float(step), method=method, null=null, n_null=int(n_null),
                    n_boot=int(n_boot), seed=-1 if seed is None else int(seed))
    ds["isc"].attrs["long_name"] = f"{'leave-one-out' if method == 'loo' else 'pairwise'} inter-subject correlation"
    return ds


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


def sliding_isc(data: xr.DataArray | Mapping[str, xr.DataArray], *, window: float = 10.0, step: float = 1.0,
                method: str = "loo", bands: Sequence[str] | Mapping[str, tuple[float, float]] | None = None,
                sfreq: float | None = None, lengths: str = "trim", progress: bool = False) -> xr.DataArray:
    """Sliding-window inter-subject correlation per region.

    Parameters
    ----------
    data : DataArray of dims (subject, time, region), or mapping subject -> (time, region)
        ``time`` in seconds (or dim ``sample`` with attr ``sfreq``); an
        optional ``stimulus`` coordinate along time separates stimuli, which
        windows never cross. Missing samples (NaN) leave that subject out of
        the affected windows.
    window, step : float
        Window length and step in seconds.
    method : {"loo", "pairwise"}
        Leave-one-out (each subject against the mean of the others) or mean
        over subject pairs; both averaged through Fisher's z.
    bands : list of str or mapping, optional
        Compute on the Hilbert amplitude envelope of each band (names from
        :data:`BANDS`, or ``{name: (low, high)}``; ``"raw"`` is the signal
        itself) instead of the raw signal; adds a ``band`` dimension.
    sfreq : float, optional
        Sampling rate (default: attr ``sfreq`` or from the time coordinate).
    lengths : {"trim", "error"}
        Subjects of different lengths (trailing NaN): trim all to the
        shortest with a warning naming them, or raise.

    Returns
    -------
    DataArray of dims (time, region[, band])
        ``time`` 0..n-1 with coordinates ``stimulus`` and ``onset`` (window
        centre, seconds from the stimulus start). Constant windows give NaN.
    """
    _check_args(window, step, method)
    stimuli, regions = _inputs(data, sfreq, lengths)
    ds = _run(stimuli, regions, window=window, step=step, method=method, bands=bands, null="shift",
              n_null=0, n_boot=0, seed=0, lengths=lengths, progress=progress)
    out = ds["isc"]
    out.attrs.update(window=float(window), step=float(step), method=method)
    return out


def isc_test(data: xr.DataArray | Mapping[str, xr.DataArray], *, window: float = 10.0, step: float = 1.0,
             method: str = "loo", bands=None, null: str = "shift", n_null: int = 200, n_boot: int = 200,
             seed: int | None = 0, sfreq: float | None = None, lengths: str = "trim",
             progress: bool = True) -> xr.Dataset:
    """Sliding ISC with surrogate nulls, p-values, FDR and a subject bootstrap.

    Parameters
    ----------
    data, window, step, method, bands, sfreq, lengths
        As in :func:`sliding_isc`.
    null : {"shift", "phase"}
        Surrogates: every subject circularly shifted by its own random lag, or
        its Fourier phases randomised (same phases for all its regions).
    n_null : int
        Surrogate datasets.
    n_boot : int
        Subject-level bootstrap resamples for the summary ISC (0 to skip).
    seed : int or None
        Random seed.

    Returns
    -------
    Dataset
        ``isc, p, p_fdr, null_mean, null_std (time, region[, band])``;
        ``summary, summary_p, summary_p_fdr (region[, band])``,
        ``summary_null (null, region[, band])``, ``summary_ci (bound,
        region[, band])`` and ``bootstrap_p``.
    """
    _check_args(window, step, method, null)
    if n_null < 0 or n_boot < 0:
        raise InputError(f"n_null and n_boot must be >= 0 (got {n_null}, {n_boot})")
    stimuli, regions = _inputs(data, sfreq, lengths)
    return _run(stimuli, regions, window=window, step=step, method=method, bands=bands, null=null,
                n_null=n_null, n_boot=n_boot, seed=seed, lengths=lengths, progress=progress)
