"""Sliding-window inter-subject correlation with valid nulls (xarray layer).

Window ``k`` of a stimulus covers ``[k*step, k*step + window)`` seconds of
that stimulus and is labelled by its centre, exactly as
:func:`xaffect.store.clock.window_mean` averages features; windows never
cross a stimulus boundary.

Inference never treats leave-one-out values as independent observations:

* per window and region, a null distribution from surrogate data in which
  every subject is independently circularly shifted by a lag at least a
  tenth of the stimulus away from 0 (``null="shift"``, read in place by the
  kernels) or phase-randomised (``null="phase"``), both from
  :mod:`xaffect.surrogates`; one-sided p = (1 + #null >= obs) / (1 + #null),
  FDR (Benjamini-Hochberg) across regions per window;
* over the family of all windows of all stimuli x regions (per band), the
  same surrogates give a max-statistic ``p_max`` and temporal-cluster
  ``p_cluster`` (:mod:`._clusters`), family-wise error controlled;
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

import numpy as np
import xarray as xr

from ..errors import InputError
from ..surrogates import draw_shift, phase_randomise_each
from . import _kernels as K
from ._clusters import window_family_test
from ._inputs import METHODS, NULLS, ISCWarning, _check_args, _inputs, _real, _trim_lengths, _windows
from .bands import BANDS, _band_signal, _check_bands, band_envelopes

__all__ = ["sliding_isc", "isc_test", "band_envelopes", "fdr_bh", "fisher_mean", "BANDS", "ISCWarning",
           "METHODS", "NULLS"]

fdr_bh = K.fdr_bh
fisher_mean = K.fisher_mean


# ---------------------------------------------------------------- compute
def _isc_windows(x: np.ndarray, starts: np.ndarray, win: int, method: str, weights=None, pairs=None,
                 shifts=None) -> np.ndarray:
    """ISC (n_windows, n_regions) of one stimulus; the kernels stream over time in bounded memory.

    ``shifts`` (one per subject): the ISC of the circularly shifted data, read in place.
    """
    if method == "loo":
        return K.loo_isc(x, starts, win, weights=weights, shifts=shifts)
    if pairs is None and weights is None:
        return K.pairwise_isc(x, starts, win, shifts=shifts)
    r = K.pairwise_r(x, starts, win) if pairs is None else pairs
    return K.fisher_mean(r, axis=0, weights=None if weights is None else K.pair_weights(weights))


def _zsum(isc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum of Fisher z over windows and number of windows, per region."""
    z = np.arctanh(np.clip(isc, -K._R_MAX, K._R_MAX))
    return np.nansum(z, axis=0), (~np.isnan(z)).sum(axis=0)


#: Null and bootstrap draws are split into about this many tasks per stimulus and band.
_TASKS_PER_STIMULUS = 8



def _null_chunk(sig, obs, starts, win, method, null, n, seed_seq):
    """``n`` surrogate ISCs: exceedance counts, moments, Fisher-z sums and the maps of every draw."""
    rng = np.random.default_rng(seed_seq)
    maps = np.empty((n,) + obs.shape, dtype=np.float32)
    ge = np.zeros_like(obs)
    nv = np.zeros_like(obs)
    s1 = np.zeros_like(obs)
    s2 = np.zeros_like(obs)
    zs = np.zeros((n, obs.shape[1]))
    zc = np.zeros((n, obs.shape[1]))
    for i in range(n):
        if null == "shift":  # the draws of surrogates.circular_shift_each, applied while reading
            v = _isc_windows(sig, starts, win, method, shifts=[draw_shift(rng, sig.shape[1]) for _ in sig])
        else:
            v = _isc_windows(phase_randomise_each(sig, rng), starts, win, method)
        ok = ~np.isnan(v)
        ge += ok & (v >= obs)
        nv += ok
        s1 += np.where(ok, v, 0.0)
        s2 += np.where(ok, v * v, 0.0)
        zs[i], zc[i] = _zsum(v)
        maps[i] = v
    return ge, nv, s1, s2, zs, zc, maps


def _boot_chunk(sig, starts, win, method, counts):
    """Summary Fisher-z sums for subject-bootstrap draws ``counts`` (n_draws, n_subjects)."""
    zs = np.zeros((counts.shape[0], sig.shape[2]))
    zc = np.zeros_like(zs)
    if method == "loo":  # every draw in one pass over the data
        for i, v in enumerate(K.loo_isc(sig, starts, win, weights=counts)):
            zs[i], zc[i] = _zsum(v)
        return zs, zc
    pairs = K.pairwise_r(sig, starts, win)
    for i, c in enumerate(counts):
        zs[i], zc[i] = _zsum(_isc_windows(sig, starts, win, method, weights=c, pairs=pairs))
    return zs, zc


_FAMILY = "windows×regions"


def _family_inference(ds: xr.Dataset, isc: np.ndarray, null_maps: list, names: np.ndarray, bdims: tuple,
                      squeeze, cluster_alpha: float, null: str) -> None:
    """Add max-statistic and temporal-cluster p-values over windows x regions (per band) to ``ds``.

    ``isc`` has shape (n_windows, n_regions, n_bands); ``null_maps[b]`` holds
    one (n_null, n_windows, n_regions) array per stimulus, concatenated here
    along windows so that draw ``i`` of every stimulus is surrogate dataset ``i``.
    """
    out = {k: np.full(isc.shape, np.nan) for k in ("p_max", "p_cluster", "cluster_mass")}
    ids = np.zeros(isc.shape, dtype=np.int32)
    offset = 0
    for b, maps in enumerate(null_maps):
        res = window_family_test(isc[..., b], np.concatenate(maps, axis=1), names, cluster_alpha=cluster_alpha)
        for k in out:
            out[k][..., b] = res[k]
        ids[..., b] = np.where(res["cluster_id"] > 0, res["cluster_id"] + offset, 0)
        offset = int(ids.max())
        threshold = res["threshold"]
    family = _FAMILY + (" (per band)" if isc.shape[-1] > 1 or "band" in ds.dims else "")
    common = {"family": family, "null": null, "n_null": int(len(res["null_max"]))}
    ds["p_max"] = (bdims, squeeze(out["p_max"]))
    ds["p_max"].attrs.update(common, method="max-statistic: ISC standardised by its null per (window, region), "
                                            "compared with the largest standardised value of each surrogate")
    ds["p_cluster"] = (bdims, squeeze(out["p_cluster"]))
    ds["p_cluster"].attrs.update(common, cluster_alpha=float(cluster_alpha), threshold_z=float(threshold),
                                 method="temporal cluster mass (sum of standardised ISC over contiguous windows "
                                        "of one region and stimulus above threshold_z), compared with the largest "
                                        "cluster mass of each surrogate; NaN outside clusters")
    ds["cluster_id"] = (bdims, squeeze(ids))
    ds["cluster_id"].attrs.update(family=family, description="observed cluster of each window (0: none)")
    ds["cluster_mass"] = (bdims, squeeze(out["cluster_mass"]).astype(np.float32))
    ds["p"].attrs.update(family="none (one window and region)", null=null)
    ds["p_fdr"].attrs.update(family="regions, per window (Benjamini-Hochberg)", null=null)
    ds["summary_p"].attrs.update(family="none (one region, all windows)", null=null)
    ds["summary_p_fdr"].attrs.update(family="regions (Benjamini-Hochberg)", null=null)


def _run(stimuli: dict, regions: list[str], *, window: float, step: float, method: str,
         bands, null: str, n_null: int, n_boot: int, seed: int | None, lengths: str, progress: bool,
         min_subjects: int = 3, cluster_alpha: float = 0.05) -> xr.Dataset:
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
        x, subs = _trim_lengths(_real(x), subjects, stim, lengths)
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
    null_maps = [[] for _ in band_names]  # per band: (n_null, n_windows, n_regions) of each stimulus
    nz = np.zeros((n_null, len(regions), len(band_names)))
    nn = np.zeros_like(nz)
    bz = np.zeros((n_boot, len(regions), len(band_names)))
    bn = np.zeros_like(bz)
    for per_band in results:
        obs = np.stack([o for o, _, _ in per_band], axis=-1)
        acc = np.zeros((4,) + obs.shape)
        for b, (_, nulls, boots) in enumerate(per_band):
            i0 = 0
            null_maps[b].append(np.concatenate([m for *_, m in nulls]) if nulls else None)
            for ge, nv, s1, s2, zs, zc, _ in nulls:
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
        _family_inference(ds, isc, null_maps, np.array(names, dtype=str), bdims, squeeze, cluster_alpha, null)
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
        ds["bootstrap_p"].attrs["family"] = "none (one region, all windows)"
    elif n_boot:
        warnings.warn("bootstrap skipped: leave-one-out bootstrap needs data without missing samples", ISCWarning,
                      stacklevel=3)
    ds.attrs.update(window=float(window), step=float(step), method=method, null=null, n_null=int(n_null),
                    n_boot=int(n_boot), seed=-1 if seed is None else int(seed))
    ds["isc"].attrs["long_name"] = f"{'leave-one-out' if method == 'loo' else 'pairwise'} inter-subject correlation"
    return ds



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
             seed: int | None = 0, sfreq: float | None = None, lengths: str = "trim", cluster_alpha: float = 0.05,
             progress: bool = True) -> xr.Dataset:
    """Sliding ISC with surrogate nulls, p-values over windows x regions, and a subject bootstrap.

    Parameters
    ----------
    data, window, step, method, bands, sfreq, lengths
        As in :func:`sliding_isc`.
    null : {"shift", "phase"}
        Surrogates (:mod:`xaffect.surrogates`): every subject circularly
        shifted by its own random lag, at least a tenth of the stimulus away
        from 0 (``MIN_SHIFT_FRACTION``), or its Fourier phases randomised (the
        same phases for all its regions).
    n_null : int
        Surrogate datasets. Their ISC maps are kept for the family-wise
        p-values: ``n_null * n_windows * n_regions`` float32 per band.
    n_boot : int
        Subject-level bootstrap resamples for the summary ISC (0 to skip).
    seed : int or None
        Random seed.
    cluster_alpha : float
        Cluster-forming threshold of the temporal cluster test, a one-sided
        normal tail of the null-standardised ISC (0.05: z > 1.645).

    Returns
    -------
    Dataset
        ``isc, p, p_fdr, null_mean, null_std (time, region[, band])``;
        ``p_max`` (max-statistic) and ``p_cluster``, ``cluster_id``,
        ``cluster_mass`` (temporal clusters), family-wise over all windows of
        all stimuli x regions, per band (see :mod:`._clusters`); every p-value
        names its family in its ``family`` attr;
        ``summary, summary_p, summary_p_fdr (region[, band])``,
        ``summary_null (null, region[, band])``, ``summary_ci (bound,
        region[, band])`` and ``bootstrap_p``.
    """
    _check_args(window, step, method, null)
    if n_null < 0 or n_boot < 0:
        raise InputError(f"n_null and n_boot must be >= 0 (got {n_null}, {n_boot})")
    stimuli, regions = _inputs(data, sfreq, lengths)
    if not 0.0 < cluster_alpha < 0.5:
        raise InputError(f"cluster_alpha: must be in (0, 0.5), got {cluster_alpha}")
    return _run(stimuli, regions, window=window, step=step, method=method, bands=bands, null=null,
                n_null=n_null, n_boot=n_boot, seed=seed, lengths=lengths, progress=progress,
                cluster_alpha=cluster_alpha)
