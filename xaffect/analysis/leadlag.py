"""Lead-lag between a region's signal and a rating: "region X precedes rating Y by k s".

The seed study reports that vmPFC activity was followed by changes in the
enjoyment rating. Here that claim is a lagged cross-correlation on the
analysis clock:

* ``r[lag] = corr(x[t], y[t + lag])`` over the pairs that lie inside one
  stimulus (never across a boundary), each stimulus centred on its own, pairs
  pooled over stimuli; the same steps ``t`` are used at every lag (the
  support every lag can reach), so lags are compared on the same samples.
  A peak at a positive lag means the region leads the rating.
* The null keeps the region signal's autocorrelation: surrogates from
  :mod:`xaffect.surrogates` (circular shift or phase randomisation within each
  stimulus, or stimulus permutation), and the **maximum |r| over all lags**
  inside every surrogate, so the peak's p-value accounts for picking the
  best lag (family-wise over lags).
* The peak lag gets a bootstrap interval: moving blocks of steps within each
  stimulus (``bootstrap="block"``), or whole stimuli (``"stimulus"``),
  resampled with replacement and the peak lag recomputed.

Layering: :func:`lagged_correlation` (kernel on arrays) and :func:`lead_lag`
(clock-rate DataArrays in, :class:`xarray.Dataset` out); :func:`describe_lead_lag`
writes the sentence, :func:`plot_lead_lag` draws the cross-correlogram.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import xarray as xr

from ..errors import ConfigError, InputError
from ..store.clock import check_same_clock, run_bounds, stimulus_slices
from ..surrogates import SURROGATE_KINDS, make_surrogates

__all__ = ["lagged_correlation", "lead_lag", "describe_lead_lag", "plot_lead_lag"]

_MIN_PAIRS = 3


def _support(groups: np.ndarray, lags: np.ndarray, names: list[str] | None = None,
             rate: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Steps ``t`` at which every lag stays inside the stimulus, and their run bounds."""
    bounds = run_bounds(groups)
    lo, hi = max(0, -int(lags.min())), max(0, int(lags.max()))
    idx, seg = [], [0]
    for k, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        if b - a - lo - hi < _MIN_PAIRS:
            name = str(names[k] if names else groups[a])
            raise InputError(f"lags: the range {lags.min() / rate:g}..{lags.max() / rate:g} s needs more than "
                             f"{(lo + hi) / rate:g} s of signal, longer than stimulus {name!r} "
                             f"({(b - a) / rate:g} s); shorten the lag range")
        idx.append(np.arange(a + lo, b - hi))
        seg.append(seg[-1] + idx[-1].size)
    return np.concatenate(idx), np.asarray(seg)


def _centre(a: np.ndarray, seg: np.ndarray) -> np.ndarray:
    """Subtract each run's mean along the last-but-one axis (runs given by ``seg`` bounds)."""
    sizes = np.diff(seg)
    means = np.add.reduceat(a, seg[:-1], axis=-2) / sizes[:, None]
    return a - np.repeat(means, sizes, axis=-2)


def _correlate(xc: np.ndarray, yc: np.ndarray) -> np.ndarray:
    """r per lag from centred pairs: ``xc (n_pairs, 1)``, ``yc (n_pairs, n_lags)``."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return (xc * yc).sum(0) / np.sqrt((xc ** 2).sum(0) * (yc ** 2).sum(0))


def lagged_correlation(x: np.ndarray, y: np.ndarray, groups: np.ndarray, lags: np.ndarray) -> np.ndarray:
    """Within-stimulus cross-correlation ``corr(x[t], y[t + lag])`` for each lag.

    Parameters
    ----------
    x, y : arrays of shape (n_samples,)
        Clock-rate series of several stimuli, concatenated.
    groups : array of shape (n_samples,)
        Stimulus of each sample (contiguous runs).
    lags : int array of shape (n_lags,)
        Lags in clock steps; positive: ``x`` leads ``y``.

    Returns
    -------
    array of shape (n_lags,)
    """
    lags = np.asarray(lags, dtype=int)
    t, seg = _support(np.asarray(groups), lags)
    xc = _centre(np.asarray(x, float)[t][:, None], seg)
    yc = _centre(np.asarray(y, float)[t[:, None] + lags[None, :]], seg)
    return _correlate(xc, yc)


def _block_weights(seg: np.ndarray, block: int, n_boot: int, rng: np.random.Generator,
                   level: str) -> np.ndarray:
    """How often each support pair is drawn in each bootstrap resample, array (n_boot, n_pairs)."""
    sizes = np.diff(seg)
    w = np.zeros((n_boot, seg[-1]))
    if level == "stimulus":
        for b in range(n_boot):
            for s in rng.integers(0, sizes.size, sizes.size):
                w[b, seg[s]:seg[s + 1]] += 1
        return w
    rows = np.arange(n_boot)[:, None]
    for s, m in enumerate(sizes):
        length = min(block, m)
        starts = rng.integers(0, m - length + 1, (n_boot, math.ceil(m / length)))
        idx = (starts[:, :, None] + np.arange(length)).reshape(n_boot, -1)[:, :m]
        np.add.at(w, (np.broadcast_to(rows, idx.shape), seg[s] + idx), 1)
    return w


def _lead_lag_arrays(x, y, groups, lags, *, names, rate, null, n_null, bootstrap, block, n_boot, ci, seed):
    """x (n, n_regions), y (n,): r (n_regions, n_lags), p family-wise over regions and lags, peak intervals."""
    t, seg = _support(groups, lags, names, rate)
    xc = _centre(x[t], seg)                                                   # (n_pairs, n_regions)
    yc = _centre(y[t[:, None] + lags[None, :]], seg)                          # (n_pairs, n_lags)
    y_norm = np.sqrt((yc ** 2).sum(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (xc.T @ yc) / (np.sqrt((xc ** 2).sum(0))[:, None] * y_norm)
    # null: surrogates of all regions together (same lag / phases: their covariance kept), max |r| over
    # regions and lags in each draw; batched so a draw of every region fits in ~100 MB
    max_null = np.empty(n_null)
    batch = max(1, int(100e6 // (8 * x.size)))
    for a in range(0, n_null, batch):
        b = min(n_null, a + batch)
        sc = _centre(make_surrogates(x, groups, b - a, kind=null, seed=seed, start=a)[:, t], seg)
        with np.errstate(invalid="ignore", divide="ignore"):
            rn = np.einsum("bpr,pl->brl", sc, yc) / (np.sqrt((sc ** 2).sum(1))[:, :, None] * y_norm)
        max_null[a:b] = np.nanmax(np.abs(rn), axis=(1, 2))
    p = (1 + (max_null[:, None, None] >= np.abs(r)[None] - 1e-12).sum(0)) / (n_null + 1)
    peak = np.nanargmax(np.abs(r), axis=1)
    # bootstrap interval of each region's peak lag
    w = _block_weights(seg, block, n_boot, np.random.default_rng([seed, 1]), bootstrap)
    yy = w @ yc ** 2
    low, high = np.empty(x.shape[1]), np.empty(x.shape[1])
    for k in range(x.shape[1]):
        with np.errstate(invalid="ignore", divide="ignore"):
            rb = (w @ (xc[:, k, None] * yc)) / np.sqrt((w @ xc[:, k] ** 2)[:, None] * yy)
        boot_peak = lags[np.nanargmax(np.abs(rb), axis=1)] / rate
        low[k], high[k] = np.quantile(boot_peak, [(1 - ci) / 2, (1 + ci) / 2], method="inverted_cdf")
    return r, p, peak, low, high, max_null


def lead_lag(region: xr.DataArray, rating: xr.DataArray, *, lags: tuple[float, float] = (-10.0, 10.0),
             null: str = "shift", n_null: int = 1000, bootstrap: str = "block", block: float | None = None,
             n_boot: int = 1000, ci: float = 0.95, seed: int = 0) -> xr.Dataset:
    """Lagged cross-correlation of a region's signal with a rating, with a lag-max null and a peak-lag interval.

    Parameters
    ----------
    region : DataArray of shape (time,) or (time, region)
        Region signal(s) on the analysis clock (coords ``stimulus``, ``onset``).
        With several regions the p-values are family-wise over regions and lags.
    rating : DataArray of shape (time,)
        A rating on the same clock.
    lags : (float, float)
        Smallest and largest lag in seconds (whole clock steps); positive
        lags: the region leads the rating.
    null : {"shift", "phase", "stimulus"}
        Surrogates of the region signal (:func:`xaffect.surrogates.make_surrogates`).
    n_null : int
    bootstrap : {"block", "stimulus"}
        Resampling of the peak lag: moving blocks within stimuli, or stimuli.
    block : float, optional
        Block length in seconds (default: twice the largest |lag|, at least 10 steps).
    n_boot : int
    ci : float
    seed : int

    Returns
    -------
    xarray.Dataset
        ``r ([region,] lag)``, ``p ([region,] lag)`` (family-wise over lags and regions), ``peak_lag`` (s),
        ``peak_r``, ``p_peak``, ``peak_lag_low``/``peak_lag_high`` (bootstrap
        interval), ``null_max (null_draw)``; attrs name the region, rating,
        null and bootstrap.
    """
    if null not in SURROGATE_KINDS:
        raise ConfigError(f"null: must be one of {SURROGATE_KINDS}, got {null!r}")
    if bootstrap not in ("block", "stimulus"):
        raise ConfigError(f"bootstrap: must be 'block' or 'stimulus', got {bootstrap!r}")
    if rating.dims != ("time",):
        raise InputError(f"rating {rating.name!r}: expected dims ('time',), got {rating.dims}; select one rating")
    if region.ndim > 2 or "time" not in region.dims:
        raise InputError(f"region {region.name!r}: expected dims ('time',) or ('time', <regions>), got {region.dims}")
    region_dim = next((d for d in region.dims if d != "time"), None)
    check_same_clock(region, rating, names=(f"region {region.name!r}", f"rating {rating.name!r}"))
    rate = region.attrs.get("clock_rate") or rating.attrs.get("clock_rate")
    if rate is None:
        on = next(iter(stimulus_slices(region).values()))
        onsets = region["onset"].values[on]
        rate = 1.0 / float(onsets[1] - onsets[0]) if onsets.size > 1 else 1.0
    rate = float(rate)
    lo, hi = (float(v) * rate for v in lags)
    if abs(lo - round(lo)) > 1e-6 or abs(hi - round(hi)) > 1e-6 or lo > hi:
        raise ConfigError(f"lags: {lags} s must be an increasing pair of whole clock steps at {rate:g} Hz")
    steps = np.arange(int(round(lo)), int(round(hi)) + 1)
    x = np.asarray(region.transpose("time", ...).values, float).reshape(region.sizes["time"], -1)
    y = np.asarray(rating.values, float)
    for name, v in (("region", region), ("rating", rating)):
        if not np.isfinite(v.values).all():
            raise InputError(f"{name} {v.name!r}: has missing values; interpolate or drop them first")
    groups = np.asarray(region["stimulus"].values).astype(str)
    names = list(stimulus_slices(region))
    block_steps = int(round(block * rate)) if block is not None else max(10, 2 * int(np.abs(steps).max()))
    r, p, peak, low, high, max_null = _lead_lag_arrays(
        x, y, groups, steps, names=names, rate=rate, null=null, n_null=n_null, bootstrap=bootstrap,
        block=block_steps, n_boot=n_boot, ci=ci, seed=seed)
    lag_s = steps / rate
    ds = xr.Dataset({"r": (("region", "lag"), r), "p": (("region", "lag"), p),
                     "peak_lag": ("region", lag_s[peak]), "peak_r": ("region", r[np.arange(r.shape[0]), peak]),
                     "p_peak": ("region", p[np.arange(p.shape[0]), peak]), "peak_lag_low": ("region", low),
                     "peak_lag_high": ("region", high), "null_max": ("null_draw", max_null)},
                    coords={"lag": lag_s, "region": (region[region_dim].values if region_dim in region.coords else
                                                     np.arange(x.shape[1])) if region_dim else [str(region.name)]})
    if region_dim is None:
        ds = ds.isel(region=0, drop=True)
    elif region_dim != "region":
        ds = ds.rename(region=region_dim)
    ds["lag"].attrs["units"] = "s"
    ds.attrs.update(region=str(region.name), rating=str(rating.name), null=null, n_null=int(n_null),
                    bootstrap=bootstrap, block_s=block_steps / rate, ci=float(ci), clock_rate=rate,
                    stimuli=names)
    return ds


def describe_lead_lag(result: xr.Dataset, *, alpha: float = 0.05) -> str:
    """The result as a sentence: "region X precedes rating Y by k s (…)"."""
    a = dict(result.attrs)
    if result["peak_lag"].ndim:
        raise InputError("describe_lead_lag: select one region first, e.g. result.sel(region='vmPFC')")
    scalar = [c for c in result.coords if result[c].ndim == 0 and c not in ("lag",)]
    if scalar:
        a["region"] = str(result[scalar[0]].values)
    lag, p = float(result["peak_lag"]), float(result["p_peak"])
    ci = f"{a.get('ci', 0.95):.0%} CI {float(result['peak_lag_low']):g} to {float(result['peak_lag_high']):g} s"
    family = a.get("family", "lags")    # "lags and regions" when selected from a multi-region result
    stats_ = f"r = {float(result['peak_r']):.2f}, p = {p:.3g} (max over {family}, {a.get('null')} null), {ci}"
    if p >= alpha:
        return f"no lead-lag between region {a.get('region')} and rating {a.get('rating')} ({stats_})"
    if lag > 0:
        return f"region {a.get('region')} precedes rating {a.get('rating')} by {lag:g} s ({stats_})"
    if lag < 0:
        return f"rating {a.get('rating')} precedes region {a.get('region')} by {-lag:g} s ({stats_})"
    return f"region {a.get('region')} and rating {a.get('rating')} move together at lag 0 ({stats_})"


def plot_lead_lag(result: xr.Dataset, *, alpha: float = 0.05, ax: Any = None):
    """Cross-correlogram with the family-wise threshold of the lag-max null and the peak-lag interval.

    Parameters
    ----------
    result : Dataset from :func:`lead_lag` for one region (``r (lag)``)
    alpha : float
        The dashed lines are the ``1 - alpha`` quantile of the null's max |r|.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    if result["r"].ndim != 1:
        raise InputError("plot_lead_lag: select one region first, e.g. result.sel(region='vmPFC')")
    fig, ax = (plt.subplots(figsize=(7.5, 3.5)) if ax is None else (ax.figure, ax))
    lag = result["lag"].values
    ax.plot(lag, result["r"].values, "o-", color="C0", ms=3, label="r(region[t], rating[t + lag])")
    thr = float(np.quantile(result["null_max"].values, 1 - alpha))
    for sign in (1, -1):
        ax.axhline(sign * thr, color="0.5", ls="--", label=f"max-over-lags null, {1 - alpha:.0%}" if sign > 0 else None)
    half = 0.5 * float(np.min(np.diff(lag))) if lag.size > 1 else 0.5   # a one-lag interval stays visible
    ax.axvspan(float(result["peak_lag_low"]) - half, float(result["peak_lag_high"]) + half, color="C1", alpha=0.2,
               label=f"peak lag {result.attrs.get('ci', 0.95):.0%} interval")
    ax.axvline(0, color="k", lw=0.5)
    ax.set_xlabel("lag (s); > 0: region leads")
    ax.set_ylabel("r")
    ax.set_title(f"{result.attrs.get('region')} vs {result.attrs.get('rating')}")
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # off the data
    fig.tight_layout()
    return fig
