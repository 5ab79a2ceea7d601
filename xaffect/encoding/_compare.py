"""Paired comparisons between two cells of a scores grid.

Layer vs layer, feature set vs feature set, element vs element: the two
cells share their outer folds (held-out stimuli), so their per-fold scores
are paired. A paired t-test and a Wilcoxon signed-rank test across folds,
Cohen's d_z, and a stimulus bootstrap (folds resampled with replacement) of
the mean difference are reported.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import xarray as xr
from scipy import stats

from ..errors import InputError

__all__ = ["compare", "paired_stats"]


def paired_stats(a: np.ndarray, b: np.ndarray, *, n_boot: int = 10000, seed: int = 0) -> dict[str, float]:
    """Paired statistics of ``a - b`` across folds.

    Parameters
    ----------
    a, b : array of shape (n_folds,)
        Paired per-fold scores (NaN folds dropped pairwise).
    n_boot : int
        Bootstrap resamples of the folds.
    seed : int

    Returns
    -------
    dict
        ``mean_a``, ``mean_b``, ``diff`` (mean a - b), ``t``, ``p_t`` (two-sided
        paired t-test), ``p_wilcoxon``, ``dz`` (mean/SD of the differences),
        ``ci_low``/``ci_high`` (95% bootstrap CI of ``diff``), ``p_boot``
        (two-sided bootstrap p of ``diff`` = 0), ``n`` (folds used).
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if a.size < 2:
        raise InputError(f"compare: need at least 2 paired folds with finite scores, got {a.size}")
    d = a - b
    sd = d.std(ddof=1)
    t = stats.ttest_rel(a, b)
    try:
        pw = float(stats.wilcoxon(a, b).pvalue) if np.any(d != 0) else 1.0
    except ValueError:
        pw = float("nan")
    rng = np.random.default_rng(seed)
    boots = d[rng.integers(0, d.size, (n_boot, d.size))].mean(1)
    lo, hi = np.quantile(boots, [0.025, 0.975])
    p_boot = min(1.0, 2 * min(np.mean(boots <= 0), np.mean(boots >= 0)) + 1.0 / n_boot)
    return dict(mean_a=float(a.mean()), mean_b=float(b.mean()), diff=float(d.mean()),
                t=float(t.statistic) if sd > 0 else float("nan"), p_t=float(t.pvalue) if sd > 0 else float("nan"),
                p_wilcoxon=pw, dz=float(d.mean() / sd) if sd > 0 else float("nan"),
                ci_low=float(lo), ci_high=float(hi), p_boot=float(p_boot), n=int(a.size))


def _cell(scores: xr.Dataset, sel: Mapping, target: str | None, metric: str, name: str) -> xr.DataArray:
    da = scores[metric]
    sel = dict(sel)
    if target is not None:
        sel.setdefault("target", target)
    for dim, val in sel.items():
        if dim not in da.dims:
            raise InputError(f"compare: {name} selects unknown dimension {dim!r} (have {da.dims})")
        if val not in da[dim].values:
            raise InputError(f"compare: {name}: {dim}={val!r} not in the scores (have {list(da[dim].values)})")
    cell = da.sel(sel)
    if cell.dims != ("fold",):
        raise InputError(f"compare: {name}={sel} leaves dims {cell.dims}; select every dimension but fold")
    return cell


def compare(scores: xr.Dataset, a: Mapping, b: Mapping, *, target: str | None = None, metric: str = "r",
            n_boot: int = 10000, seed: int = 0) -> dict[str, float]:
    """Compare two cells of a ``scores`` store across the held-out folds.

    Parameters
    ----------
    scores : xarray.Dataset
        A ``scores`` store (``r (feature_set, layer, element, target, fold)``).
    a, b : mapping
        Selections of the two cells, e.g. ``{"feature_set": "hubert",
        "layer": 6, "element": "voice"}`` vs ``{..., "layer": 12, ...}``;
        keys not given in ``b`` are taken from ``a``.
    target : str, optional
        Target name (``rating:arousal``), unless ``a``/``b`` select it.
    metric : {"r", "r2"}

    Returns
    -------
    dict
        See :func:`paired_stats`; plus ``a`` and ``b`` (the full selections).

    Examples
    --------
    >>> compare(scores, {"feature_set": "hubert", "layer": 6, "element": "original"},
    ...         {"layer": 12}, target="rating:arousal")  # doctest: +SKIP
    """
    full_b = {**dict(a), **dict(b)}
    ca = _cell(scores, a, target, metric, "a")
    cb = _cell(scores, full_b, target, metric, "b")
    out = paired_stats(ca.values, cb.values, n_boot=n_boot, seed=seed)
    out.update(a=dict(a), b=full_b, target=target)
    return out
