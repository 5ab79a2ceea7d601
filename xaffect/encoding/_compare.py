"""Paired comparisons between two cells of a scores grid.

Layer vs layer, feature set vs feature set, element vs element: the two
cells share their outer folds (held-out stimuli), so their per-fold scores
are paired. Folds are not independent samples, though: every two folds share
most of their training stimuli, so their scores are positively correlated and
a plain paired t-test across folds is anti-conservative (layer vs layer under
a null: 7.5 % significant at 5 %). :func:`corrected_resampled_ttest` is Nadeau
& Bengio's (2003) corrected resampled t, which inflates the variance of the
mean difference by ``1/J + n_test/n_train``; it is the test to report. The
plain paired t-test, a Wilcoxon signed-rank test, Cohen's d_z and a stimulus
bootstrap of the mean difference are kept as descriptive statistics.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import xarray as xr
from scipy import stats

from ..errors import InputError

__all__ = ["compare", "paired_stats", "corrected_resampled_ttest", "corrected_resampled_interval"]


def corrected_resampled_ttest(diff: np.ndarray, *, test_train_ratio: float | np.ndarray | None = None,
                              axis: int = -1, alternative: str = "two-sided") -> tuple[np.ndarray, np.ndarray]:
    """Nadeau & Bengio's corrected resampled t-test of per-fold differences.

    ``t = mean(d) / sqrt((1/J + n_test/n_train) * var(d))`` with ``J - 1``
    degrees of freedom, ``J`` the number of finite folds. The ``n_test/n_train``
    term accounts for the correlation between folds whose training sets
    overlap (Nadeau & Bengio 2003, Machine Learning 52:239; Bouckaert & Frank
    2004 for k-fold cross-validation). scipy has no such test; this is its
    formula on top of ``scipy.stats.t``.

    Parameters
    ----------
    diff : array of shape (..., n_folds)
        Per-fold differences (NaN folds ignored).
    test_train_ratio : float or array broadcastable to ``diff`` without ``axis``, optional
        Test over training set size. Default ``1 / (J - 1)``: leave-one-
        stimulus-out (or k-fold) with folds of equal size.
    axis : int
        The fold axis.
    alternative : {"two-sided", "greater", "less"}
        ``"greater"``: mean difference > 0.

    Returns
    -------
    t, p : ndarrays of the shape of ``diff`` without ``axis``
        NaN where fewer than two finite folds or no variance.
    """
    if alternative not in ("two-sided", "greater", "less"):
        raise InputError(f"alternative: must be 'two-sided', 'greater' or 'less', got {alternative!r}")
    mean, se, n = _corrected_moments(diff, test_train_ratio, axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = mean / se
    t = np.where((n > 1) & (se > 0), t, np.nan)
    df = np.maximum(n - 1, 1)
    if alternative == "greater":
        p = stats.t.sf(t, df)
    elif alternative == "less":
        p = stats.t.cdf(t, df)
    else:
        p = 2 * stats.t.sf(np.abs(t), df)
    return t, np.where(np.isfinite(t), p, np.nan)


def corrected_resampled_interval(diff: np.ndarray, *, level: float = 0.95,
                                 test_train_ratio: float | np.ndarray | None = None, axis: int = -1
                                 ) -> tuple[np.ndarray, np.ndarray]:
    """Confidence interval of the mean per-fold difference, dual to :func:`corrected_resampled_ttest`.

    ``mean(d) -/+ t_{J-1} * sqrt((1/J + n_test/n_train) * var(d))``: it excludes
    0 exactly when the two-sided corrected test has ``p < 1 - level``.

    Parameters
    ----------
    diff : array of shape (..., n_folds)
    level : float
    test_train_ratio : float or array, optional
        Default ``1 / (J - 1)``.
    axis : int

    Returns
    -------
    low, high : ndarrays of the shape of ``diff`` without ``axis`` (NaN with fewer than two folds)
    """
    mean, se, n = _corrected_moments(diff, test_train_ratio, axis)
    half = np.where(n > 1, stats.t.ppf(0.5 + level / 2, np.maximum(n - 1, 1)) * se, np.nan)
    return mean - half, mean + half


def _corrected_moments(diff, test_train_ratio, axis):
    """Mean, Nadeau-Bengio corrected standard error ``sqrt((1/J + n_test/n_train) var)`` and J, per row."""
    d = np.moveaxis(np.asarray(diff, dtype=float), axis, -1)
    n = np.isfinite(d).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nanmean(np.where(n[..., None] > 0, d, 0.0), axis=-1)
        var = np.nanvar(np.where(n[..., None] > 1, d, 0.0), axis=-1, ddof=1)
        ratio = 1.0 / np.maximum(n - 1, 1) if test_train_ratio is None else np.asarray(test_train_ratio, float)
        se = np.sqrt((1.0 / n + ratio) * var)
    return mean, se, n


def paired_stats(a: np.ndarray, b: np.ndarray, *, n_boot: int = 10000, seed: int = 0,
                 test_train_ratio: float | None = None) -> dict[str, float]:
    """Paired statistics of ``a - b`` across folds.

    Parameters
    ----------
    a, b : array of shape (n_folds,)
        Paired per-fold scores (NaN folds dropped pairwise).
    n_boot : int
        Bootstrap resamples of the folds.
    seed : int
    test_train_ratio : float, optional
        For the corrected t (default ``1 / (n - 1)``, folds of equal size).

    Returns
    -------
    dict
        ``mean_a``, ``mean_b``, ``diff`` (mean a - b), ``t_corrected``,
        ``p_corrected`` (two-sided Nadeau-Bengio corrected resampled t: the
        p-value to report), ``t``, ``p_t`` (plain paired t-test, descriptive:
        anti-conservative because folds share training data), ``p_wilcoxon``, ``dz`` (mean/SD of the differences),
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
    tc, pc = corrected_resampled_ttest(d, test_train_ratio=test_train_ratio)
    p_boot = min(1.0, 2 * min(np.mean(boots <= 0), np.mean(boots >= 0)) + 1.0 / n_boot)
    return dict(mean_a=float(a.mean()), mean_b=float(b.mean()), diff=float(d.mean()),
                t_corrected=float(tc), p_corrected=float(pc),
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
            n_boot: int = 10000, seed: int = 0, test_train_ratio: float | None = None) -> dict[str, float]:
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
    test_train_ratio : float, optional
        Test over training size for the corrected t (default ``1 / (n_folds - 1)``).

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
    out = paired_stats(ca.values, cb.values, n_boot=n_boot, seed=seed, test_train_ratio=test_train_ratio)
    out.update(a=dict(a), b=full_b, target=target)
    return out
