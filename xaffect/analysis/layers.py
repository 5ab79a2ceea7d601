"""Layer profiles, the best and the centroid layer, and layer-vs-layer tests, with uncertainty.

Folds share most of their training stimuli, so their scores are correlated
and are not independent samples. Every interval and test here respects that:

* profile bands and layer-vs-layer tests use Nadeau & Bengio's corrected
  resampled t (:func:`~xaffect.analysis.corrected_resampled_ttest`);
* the best and the centroid layer get a stimulus-level bootstrap interval
  (held-out stimuli resampled with replacement, the statistic recomputed);
* the best layer's score is also given selection-honest (``best_r_cv``): each
  fold read at the layer chosen on the other folds;
* the centroid is taken over the layers that beat their null only, with
  null-subtracted r as weights; it is NaN, with a reason, when none does.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import xarray as xr
from scipy import stats

from ..encoding._compare import corrected_resampled_interval, corrected_resampled_ttest
from ..errors import InputError
from ..stats import fdr_bh
from ._resample import (argmax_finite, argmax_over_layers, bootstrap_counts, bootstrap_layer_means,
                        choose_without_fold, take_along_layer)
from ._scores import check_level, check_resamples, claim_p, layer_names, select_deep

__all__ = ["layer_profile", "best_layer", "centroid_layer", "layer_vs_layer", "layer_summary"]


def _arrays(r: xr.DataArray) -> tuple[np.ndarray, list[str], dict]:
    """r as (..., layer, fold) numpy, the leading dims and their coords."""
    r = r.transpose(..., "layer", "fold")
    lead = [d for d in r.dims if d not in ("layer", "fold")]
    return np.asarray(r.values, dtype=float), lead, {d: r[d].values for d in lead}


def _quantile_interval(samples: np.ndarray, level: float, *, discrete: bool) -> tuple[np.ndarray, np.ndarray]:
    """Central ``level`` percentile interval over axis 0, NaNs ignored.

    Same as ``np.nanquantile`` (``inverted_cdf`` for discrete statistics,
    ``linear`` otherwise), written on one sort because ``nanquantile`` loops
    over columns in Python and dominated the run time for many targets.
    """
    srt = np.sort(samples, axis=0)                                     # NaN sort last
    n = np.isfinite(samples).sum(0)
    out = []
    for q in (0.5 - level / 2, 0.5 + level / 2):
        if discrete:
            lo = hi = np.clip(np.ceil(q * n).astype(int) - 1, 0, None)
            frac = np.zeros(n.shape)
        else:
            pos = q * np.maximum(n - 1, 0)
            lo, hi = np.floor(pos).astype(int), np.ceil(pos).astype(int)
            frac = pos - lo
        a = np.take_along_axis(srt, lo[None], 0)[0]
        b = np.take_along_axis(srt, hi[None], 0)[0]
        out.append(np.where(n > 0, a + frac * (b - a), np.nan))
    return out[0], out[1]


def _best_bootstrap(rv: np.ndarray, layers: np.ndarray, *, n_boot: int, seed: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap argmax layers (n_boot, ...) and the share of resamples agreeing with the point."""
    counts = bootstrap_counts(rv.shape[-1], n_boot, seed)
    out = []
    for means in bootstrap_layer_means(rv, counts):               # (batch, layer, ...)
        idx = argmax_over_layers(means)
        out.append(np.where(idx >= 0, layers[np.maximum(idx, 0)], np.nan))
    return np.concatenate(out, axis=0), counts


def layer_profile(scores: xr.Dataset, *, feature_set: str, element: str | None = None, ci: float = 0.95,
                  n_boot: int = 1000, seed: int = 0, p_var: str = "p_fdr", alpha: float = 0.05,
                  family: Sequence[str] | None = None, method: str = "fdr",
                  test_train_ratio: float | None = None, best: xr.Dataset | None = None) -> xr.Dataset:
    """Mean r per layer with an interval that respects fold overlap, and the best layer with its interval.

    Parameters
    ----------
    scores : xarray.Dataset
        The scores store (``r (feature_set, layer, element, target, fold)``).
    feature_set : str
        A deep feature set with at least two scored layers.
    element : str, optional
        One element; all elements when None (kept as a dim).
    ci : float
        Level of the intervals.
    n_boot : int
        Stimulus-level bootstrap resamples for the best-layer interval.
    seed : int
    p_var : str
        Per-layer p-values marking ``significant`` (used when present).
    alpha : float
    family, method : optional
        A declared family for the ``significant`` marks instead of ``p_var``
        (see :func:`centroid_layer`).
    test_train_ratio : float, optional
        For the corrected t band (default ``1 / (n_folds - 1)``).
    best : xarray.Dataset, optional
        The ``best_*`` variables already computed for the same feature set,
        element, ``ci``, ``n_boot`` and ``seed`` (e.g. by :func:`layer_summary`),
        reused instead of paying the bootstrap again.

    Returns
    -------
    xarray.Dataset
        ``mean``, ``sd``, ``lower``, ``upper`` (corrected resampled t interval),
        ``n_folds`` ``(layer, [element,] target)``; ``significant`` (when
        ``p_var`` exists) and ``null_lower``/``null_upper`` (central ``ci`` of
        the permutation null of the fold-mean r, when the store has ``null``);
        ``best_layer``, ``best_lower``, ``best_upper`` (bootstrap percentile
        interval), ``best_share`` (share of resamples picking ``best_layer``),
        ``best_r`` (max of the mean: optimistic) and ``best_r_cv`` (each fold at
        the layer chosen on the other folds: selection-honest) ``([element,] target)``.
        ``layer_name`` rides along ``layer`` and ``best_layer_name`` is added
        when the store names its layers.
    """
    ci, alpha, n_boot = check_level(ci, "ci"), check_level(alpha, "alpha"), check_resamples(n_boot)
    r = select_deep(scores, feature_set, element, min_layers=2)
    layers = np.asarray(r["layer"].values)
    mean = r.mean("fold", skipna=True)
    sd = r.std("fold", ddof=1, skipna=True)
    n = np.isfinite(r).sum("fold")
    ratio = 1.0 / np.maximum(n - 1, 1) if test_train_ratio is None else test_train_ratio
    with np.errstate(invalid="ignore", divide="ignore"):
        tcrit = xr.apply_ufunc(stats.t.ppf, 0.5 + ci / 2, np.maximum(n - 1, 1))
        half = (tcrit * sd * np.sqrt(1.0 / n + ratio)).where(n > 1)
    out = xr.Dataset({"mean": mean, "sd": sd, "lower": mean - half, "upper": mean + half, "n_folds": n})
    if p_var in scores or family is not None:
        p = claim_p(scores, p_var, feature_set=feature_set, family=family, method=method)
        p = p.sel(feature_set=feature_set, layer=layers, drop=True)
        if element is not None:
            p = p.sel(element=element)
        out["significant"] = (p < alpha).where(p.notnull(), False).astype(bool)
    if "null" in scores.data_vars and "perm" in scores["null"].dims:
        nl = scores["null"].sel(feature_set=feature_set, layer=layers, drop=True)
        if element is not None:
            nl = nl.sel(element=element)
        nl = nl.transpose("perm", ...).astype(float).compute()
        lo, hi = _quantile_interval(np.asarray(nl.values), ci, discrete=False)
        template = nl.isel(perm=0, drop=True)
        out["null_lower"], out["null_upper"] = template.copy(data=lo), template.copy(data=hi)
    if best is None:
        best = _best_layer_dataset(r, ci=ci, n_boot=n_boot, seed=seed)
    else:
        best = best[[v for v in best.data_vars if str(v).startswith("best_")]]
    out = out.merge(best)
    out.attrs.update(feature_set=feature_set, ci=ci, element=element or "all", n_boot=n_boot,
                     interval="Nadeau-Bengio corrected resampled t across folds",
                     best_interval="stimulus-level bootstrap percentile interval")
    return out


def _best_layer_dataset(r: xr.DataArray, *, ci: float, n_boot: int, seed: int) -> xr.Dataset:
    rv, lead, coords = _arrays(r)
    layers = np.asarray(r["layer"].values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(rv, axis=-1)
    idx = argmax_finite(mean, axis=-1)
    best = np.where(idx >= 0, layers[np.maximum(idx, 0)], -1)
    best_r = np.where(idx >= 0, np.take_along_axis(mean, np.maximum(idx, 0)[..., None], -1)[..., 0], np.nan)
    boot, _ = _best_bootstrap(rv, layers, n_boot=n_boot, seed=seed)
    lo, hi = _quantile_interval(boot, ci, discrete=True)
    share = np.mean(boot == best[None], axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        r_cv = np.nanmean(take_along_layer(rv, choose_without_fold(rv)), axis=-1)
    missing = idx < 0
    ds = xr.Dataset({"best_layer": (lead, best.astype(int)),
                     "best_lower": (lead, np.where(missing, np.nan, lo)),
                     "best_upper": (lead, np.where(missing, np.nan, hi)),
                     "best_share": (lead, np.where(missing, np.nan, share)),
                     "best_r": (lead, best_r), "best_r_cv": (lead, r_cv)}, coords=coords)
    names = layer_names(r)
    if names:
        ds["best_layer_name"] = (lead, np.vectorize(lambda v: names.get(int(v), ""), otypes=[object])(best)
                                 .astype(str))
    return ds


def best_layer(scores: xr.Dataset, *, feature_set: str, element: str | None = None, ci: float = 0.95,
               n_boot: int = 1000, seed: int = 0) -> xr.DataArray:
    """Layer with the highest mean r over folds, with a stimulus-level bootstrap interval.

    Returns
    -------
    xarray.DataArray of int, dims ``([element,] target)``
        -1 where nothing was scored; coordinates ``lower`` and ``upper``
        (bootstrap percentile interval, layer units), ``share`` (fraction of
        resamples that pick this layer) and ``r_cv`` (selection-honest score:
        each fold at the layer chosen on the other folds).
    """
    ci, n_boot = check_level(ci, "ci"), check_resamples(n_boot)
    r = select_deep(scores, feature_set, element, min_layers=2)
    ds = _best_layer_dataset(r, ci=ci, n_boot=n_boot, seed=seed)
    out = ds["best_layer"].assign_coords(lower=ds["best_lower"], upper=ds["best_upper"],
                                         share=ds["best_share"], r_cv=ds["best_r_cv"])
    if "best_layer_name" in ds:
        out = out.assign_coords(layer_name=ds["best_layer_name"])
    out.attrs.update(feature_set=feature_set, ci=ci, interval="stimulus-level bootstrap percentile interval")
    return out


def _weighted_centroid(means: np.ndarray, null_mean: np.ndarray, sig: np.ndarray, layers: np.ndarray, *,
                       layer_axis: int) -> np.ndarray:
    """``sum l * w_l / sum w_l``, ``w_l = max(mean_l - null_l, 0)`` on significant layers (NaN means weigh 0).

    ``means`` has the layer on ``layer_axis`` (-1; or 1 for bootstrap batches
    ``(batch, layer, row)``, with ``null_mean``/``sig`` as ``(layer, row)``).
    """
    w = np.fmax(means - null_mean, 0.0) * sig                               # fmax: NaN -> 0
    total = w.sum(layer_axis)
    weighted = np.tensordot(w, layers.astype(w.dtype), axes=([layer_axis % w.ndim], [0]))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, weighted / total, np.nan)


def centroid_layer(scores: xr.Dataset, *, feature_set: str, element: str | None = None, p_var: str = "p_fdr",
                   alpha: float = 0.05, ci: float = 0.95, n_boot: int = 1000, seed: int = 0,
                   family: Sequence[str] | None = None, method: str = "fdr") -> xr.DataArray:
    """Centroid layer over the layers that beat their null, with a bootstrap interval.

    ``sum_l l * w_l / sum_l w_l`` with ``w_l = max(mean r_l - null_mean_l, 0)``
    for layers with ``p_var < alpha`` and ``w_l = 0`` for the others. Taking
    all layers with clipped r (the second seed's formula) pulls every profile
    towards the middle -- a flat null profile read 6.0 of 0-12 every time --
    so layers that do not beat their null get no weight, and a target where
    none does has no centroid (NaN, ``reason`` says why). Without ``null_mean``
    in the store the null mean is taken as 0 (attrs ``null_subtracted``).

    Parameters
    ----------
    scores : xarray.Dataset
    feature_set : str
        Deep feature set with at least two layers.
    element : str, optional
    p_var : str
        Per-layer p-values of the store (``p_fdr``/``p_fwer``: corrected over
        the encoding grid, the family in their attrs), used without ``family``.
    alpha : float
    ci : float
    n_boot : int
        Stimulus-level bootstrap resamples (the set of significant layers is
        held fixed; the weights are recomputed from the resampled means).
    seed : int
    family : sequence of str, optional
        Declare the claim's family instead: e.g. ``("layer",)`` -- which of
        this feature set's layers beat their null, per element and target --
        corrected by ``method`` (:func:`xaffect.encoding.family_pvalues`).
    method : {"fdr", "fwer", "none"}

    Returns
    -------
    xarray.DataArray of float, dims ``([element,] target)``
        Coordinates ``lower``, ``upper`` (percentile interval),
        ``n_layers_significant`` and ``reason`` ('' when defined).
    """
    ci, alpha, n_boot = check_level(ci, "ci"), check_level(alpha, "alpha"), check_resamples(n_boot)
    r = select_deep(scores, feature_set, element, min_layers=2)
    layers = np.asarray(r["layer"].values)
    p = claim_p(scores, p_var, feature_set=feature_set, family=family, method=method)
    p = p.sel(feature_set=feature_set, layer=layers, drop=True)
    if element is not None:
        p = p.sel(element=element)
    rv, lead, coords = _arrays(r)
    pv = np.asarray(p.transpose(*lead, "layer").values, dtype=float)
    sig = np.nan_to_num(pv, nan=1.0) < alpha
    null_subtracted = "null_mean" in scores
    if null_subtracted:
        nm = scores["null_mean"].sel(feature_set=feature_set, layer=layers, drop=True)
        if element is not None:
            nm = nm.sel(element=element)
        null_mean = np.nan_to_num(np.asarray(nm.transpose(*lead, "layer").values, dtype=float))
    else:
        null_mean = np.zeros(sig.shape)

    L = layers.size
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        cent = _weighted_centroid(np.nanmean(rv, axis=-1), null_mean, sig, layers, layer_axis=-1)
    # bootstrap only the targets that have a centroid (the others stay NaN): under a null, few
    rows = np.flatnonzero(np.isfinite(cent).ravel())
    lo, hi = np.full(cent.size, np.nan), np.full(cent.size, np.nan)
    if rows.size:
        rv_rows = rv.reshape(-1, L, rv.shape[-1])[rows]
        null_t, sig_t = null_mean.reshape(-1, L)[rows].T, sig.reshape(-1, L)[rows].T      # (layer, row)
        counts = bootstrap_counts(rv.shape[-1], n_boot, seed)
        boot = np.concatenate([_weighted_centroid(m, null_t, sig_t, layers, layer_axis=1)
                               for m in bootstrap_layer_means(rv_rows, counts)], axis=0)
        lo[rows], hi[rows] = _quantile_interval(boot, ci, discrete=False)
    lo, hi = lo.reshape(cent.shape), hi.reshape(cent.shape)
    n_sig = sig.sum(-1)
    p_label = p_var if family is None else f"{method} over {p.attrs.get('family', family)}"
    reason = np.where(n_sig == 0, f"no layer beats its null ({p_label} < {alpha})",
                      np.where(np.isnan(cent), "no significant layer above its null mean", ""))
    out = xr.DataArray(cent, dims=lead, coords=coords, name="centroid_layer")
    out = out.assign_coords(lower=(lead, lo), upper=(lead, hi),
                            n_layers_significant=(lead, n_sig), reason=(lead, reason.astype(str)))
    out.attrs.update(feature_set=feature_set, long_name="centroid layer", p_var=p_label,
                     alpha=alpha, ci=ci, null_subtracted=bool(null_subtracted),
                     interval="stimulus-level bootstrap percentile interval")
    return out


def layer_vs_layer(scores: xr.Dataset, *, feature_set: str, a: int, b: int, element: str | None = None,
                   alternative: str = "two-sided", test_train_ratio: float | None = None) -> xr.Dataset:
    """Layer ``a`` vs layer ``b`` per target: corrected resampled t across folds.

    Both layers are named in advance, so there is no selection to pay for;
    the folds' shared training data is paid for by the corrected t.

    Returns
    -------
    xarray.Dataset
        ``difference ([element,] target, fold)``; ``mean_difference``,
        ``ci_low``/``ci_high`` (95 % corrected resampled t interval), ``t``,
        ``p``, ``p_fdr`` (BH across targets) ``([element,] target)``.
    """
    r = select_deep(scores, feature_set, element)
    for arg, lay in (("a", a), ("b", b)):
        if lay not in r["layer"].values:
            raise InputError(f"{arg}: layer {lay} is not scored for {feature_set!r} "
                             f"(layers {r['layer'].values.tolist()})")
    d = (r.sel(layer=a, drop=True) - r.sel(layer=b, drop=True)).drop_vars("layer_name", errors="ignore")
    d = d.transpose(..., "fold")
    t, p = corrected_resampled_ttest(d.values, test_train_ratio=test_train_ratio, alternative=alternative)
    low, high = corrected_resampled_interval(d.values, test_train_ratio=test_train_ratio)
    dims = d.dims[:-1]
    out = xr.Dataset({"difference": d, "mean_difference": d.mean("fold", skipna=True),
                      "ci_low": (dims, low), "ci_high": (dims, high),
                      "t": (dims, t), "p": (dims, p), "p_fdr": (dims, fdr_bh(p, axis=dims.index("target")))})
    out.attrs.update(feature_set=feature_set, a=int(a), b=int(b), alternative=alternative,
                     test="Nadeau-Bengio corrected resampled t across folds")
    return out


def layer_summary(scores: xr.Dataset, *, feature_set: str, element: str | None = None, p_var: str = "p_fdr",
                  alpha: float = 0.05, ci: float = 0.95, n_boot: int = 1000, seed: int = 0,
                  family: Sequence[str] | None = None, method: str = "fdr") -> xr.Dataset:
    """One row per ([element,] target): best layer and centroid with their intervals, and the best layer's p.

    Returns
    -------
    xarray.Dataset
        Everything ``best_*`` of :func:`layer_profile`; ``centroid``,
        ``centroid_lower``, ``centroid_upper``, ``centroid_reason``,
        ``n_layers_significant`` of :func:`centroid_layer`; ``p_best`` (``p_var``
        at the best layer, or the declared ``family``) and, when the store has ``noise_ceiling``
        ``([element,] target)``, ``r_over_ceiling`` (best_r / ceiling).
    """
    ci, alpha, n_boot = check_level(ci, "ci"), check_level(alpha, "alpha"), check_resamples(n_boot)
    r = select_deep(scores, feature_set, element, min_layers=2)
    out = _best_layer_dataset(r, ci=ci, n_boot=n_boot, seed=seed)
    cent = centroid_layer(scores, feature_set=feature_set, element=element, p_var=p_var, alpha=alpha, ci=ci,
                          n_boot=n_boot, seed=seed, family=family, method=method)
    out["centroid"] = cent.reset_coords(drop=True)
    for c in ("lower", "upper", "reason"):
        out[f"centroid_{c}"] = cent[c].reset_coords(drop=True)
    out["n_layers_significant"] = cent["n_layers_significant"].reset_coords(drop=True)
    p = claim_p(scores, p_var, feature_set=feature_set, family=family, method=method)
    p = p.sel(feature_set=feature_set, drop=True)
    if element is not None:
        p = p.sel(element=element)
    best = out["best_layer"]
    p_best = p.sel(layer=best.where(best >= 0, int(r["layer"].values[0]))).drop_vars("layer", errors="ignore")
    out["p_best"] = p_best.where(best >= 0).drop_vars("layer_name", errors="ignore")
    if "noise_ceiling" in scores:
        nc = scores["noise_ceiling"]
        if set(nc.dims) <= {"element", "target"}:
            if element is not None and "element" in nc.dims:
                nc = nc.sel(element=element)
            out["r_over_ceiling"] = out["best_r"] / nc.where(nc > 0)
    out.attrs.update(feature_set=feature_set, element=element or "all", p_var=cent.attrs["p_var"], alpha=alpha,
                     ci=ci, n_folds=int(r.sizes["fold"]), n_boot=n_boot)
    return out
