"""Layer-profile analyses of a ``scores`` store.

Every function takes the ``scores`` Dataset of the encoding stage
(``r (feature_set, layer, element, target, fold)``, ``p`` and ``p_fdr``
``(feature_set, layer, element, target)``; classical feature sets at
``layer = -1``, NaN elsewhere; ``fold`` = held-out stimulus) and returns
labelled xarray objects:

* :func:`layer_profile` -- mean r over folds per layer with a confidence band
  across folds, and the best layer per target;
* :func:`best_layer` and :func:`centroid_layer` (the accuracy-weighted mean
  layer index, negative r clipped at 0, as the second seed maps it);
* :func:`middle_vs_final` -- the contiguous band of layers significantly above
  the final layer (the first seed's "synergistic zone", layers 7-14);
* :func:`element_contrast` -- voice vs soundtrack per target, and its relation
  to the stimulus energy ratio;
* :func:`deep_vs_classical` -- best layer vs classical descriptors per target;
* :func:`recovered_effects` / :func:`compare_with_ground_truth` -- the effects
  the scores support, in the keys of a simulated study's ``ground_truth.json``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr
from scipy import stats

from ..errors import InputError
from ..stats import fdr_bh  # noqa: F401  (re-exported)

__all__ = [
    "layer_profile", "best_layer", "centroid_layer", "middle_vs_final", "element_contrast",
    "deep_vs_classical", "recovered_effects", "compare_with_ground_truth", "fdr_bh",
    "paired_ttest", "feature_sets", "deep_feature_sets", "classical_feature_sets",
]

_REQUIRED_DIMS = ("feature_set", "layer", "element", "target", "fold")


# ----------------------------------------------------------------- kernels

def paired_ttest(a: np.ndarray, b: np.ndarray, *, axis: int = -1, alternative: str = "two-sided"
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Paired t-test of ``a - b`` across ``axis`` (NaN pairs dropped).

    Parameters
    ----------
    a, b : arrays of the same shape (..., n_folds)
    alternative : {"two-sided", "greater", "less"}

    Returns
    -------
    t, p : ndarrays of the shape of ``a`` without ``axis``
        NaN where fewer than two pairs or no variance.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        res = stats.ttest_rel(a, b, axis=axis, nan_policy="omit", alternative=alternative)
    t = np.asarray(res.statistic, dtype=float)
    p = np.asarray(res.pvalue, dtype=float)
    if np.ma.isMaskedArray(res.statistic):
        t = np.ma.filled(res.statistic.astype(float), np.nan)
        p = np.ma.filled(res.pvalue.astype(float), np.nan)
    return t, p


def _ci_halfwidth(sd: np.ndarray, n: np.ndarray, level: float) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        tcrit = stats.t.ppf(0.5 + level / 2, np.maximum(n - 1, 1))
        return np.where(n > 1, tcrit * sd / np.sqrt(n), np.nan)


def _longest_true_run(mask: np.ndarray) -> tuple[int, int]:
    """Start and end (inclusive) indices of the longest run of True; (-1, -1) if none."""
    best = (-1, -1)
    start = None
    for i, v in enumerate(list(mask) + [False]):
        if v and start is None:
            start = i
        elif not v and start is not None:
            if best[0] < 0 or i - start > best[1] - best[0] + 1:
                best = (start, i - 1)
            start = None
    return best


# --------------------------------------------------------------- selectors
def _check_scores(scores: xr.Dataset) -> None:
    if not isinstance(scores, xr.Dataset) or "r" not in scores:
        raise InputError("scores: expected the scores Dataset with a variable 'r'")
    missing = [d for d in _REQUIRED_DIMS if d not in scores["r"].dims]
    if missing:
        raise InputError(f"scores: r lacks dims {missing} (has {list(scores['r'].dims)})")


def feature_sets(scores: xr.Dataset) -> list[str]:
    """Names of the feature sets in ``scores``."""
    _check_scores(scores)
    return [str(f) for f in scores["feature_set"].values]


def _layers_present(scores: xr.Dataset, fs: str) -> np.ndarray:
    r = scores["r"].sel(feature_set=fs)
    ok = np.isfinite(np.asarray(r.values)).any(axis=tuple(i for i, d in enumerate(r.dims) if d != "layer"))
    return np.asarray(scores["layer"].values)[ok]


def classical_feature_sets(scores: xr.Dataset) -> list[str]:
    """Feature sets whose only scored layer is -1 (classical descriptors)."""
    return [f for f in feature_sets(scores) if list(_layers_present(scores, f)) == [-1]]


def deep_feature_sets(scores: xr.Dataset) -> list[str]:
    """Feature sets scored at layers >= 0."""
    return [f for f in feature_sets(scores) if (_layers_present(scores, f) >= 0).any()]


def _select(scores: xr.Dataset, feature_set: str, element: str | None, *, deep: bool = True) -> xr.DataArray:
    """``r`` of one feature set (and element) on its own layers."""
    _check_scores(scores)
    if feature_set not in feature_sets(scores):
        raise InputError(f"feature_set: {feature_set!r} is not in the scores "
                         f"(have: {', '.join(feature_sets(scores))})")
    r = scores["r"].sel(feature_set=feature_set)
    if element is not None:
        have = [str(e) for e in scores["element"].values]
        if element not in have:
            raise InputError(f"element: {element!r} is not in the scores (have: {', '.join(have)})")
        r = r.sel(element=element)
    layers = _layers_present(scores, feature_set)
    if deep:
        layers = layers[layers >= 0]
        if layers.size == 0:
            raise InputError(f"feature_set: {feature_set!r} is classical (layer -1 only); "
                             "layer analyses need a deep feature set")
    return r.sel(layer=layers).astype(float).compute()  # small; stores read lazily


# ---------------------------------------------------------------- analyses
def layer_profile(scores: xr.Dataset, *, feature_set: str, element: str | None = None,
                  ci: float = 0.95) -> xr.Dataset:
    """Mean r per layer with a confidence band across folds, and the best layer.

    Parameters
    ----------
    scores : xarray.Dataset
        The scores store.
    feature_set : str
        A deep feature set.
    element : str, optional
        One element; all elements when None (kept as a dim).
    ci : float
        Level of the t-based confidence interval across folds.

    Returns
    -------
    xarray.Dataset
        ``mean``, ``lower``, ``upper``, ``sd`` ``(layer, [element,] target)``,
        ``n_folds``; ``best_layer`` and ``best_r`` ``([element,] target)``.
    """
    r = _select(scores, feature_set, element)
    mean = r.mean("fold", skipna=True)
    sd = r.std("fold", ddof=1, skipna=True)
    n = np.isfinite(r).sum("fold")
    half = xr.apply_ufunc(_ci_halfwidth, sd, n, kwargs={"level": ci})
    out = xr.Dataset({"mean": mean, "sd": sd, "lower": mean - half, "upper": mean + half, "n_folds": n})
    out["best_layer"] = _argmax_layer(mean)
    out["best_r"] = mean.max("layer", skipna=True)
    out.attrs.update(feature_set=feature_set, ci=ci, element=element or "all")
    return out


def _argmax_layer(mean: xr.DataArray) -> xr.DataArray:
    filled = mean.fillna(-np.inf)
    idx = filled.argmax("layer")
    best = mean["layer"].isel(layer=idx).drop_vars("layer", errors="ignore")
    allnan = mean.isnull().all("layer")
    return best.where(~allnan, -1).astype(int).rename("best_layer")


def best_layer(scores: xr.Dataset, *, feature_set: str, element: str | None = None) -> xr.DataArray:
    """Layer with the highest mean r over folds, per target (and element).

    Returns
    -------
    xarray.DataArray of int, dims ``([element,] target)``; -1 where nothing was scored.
    """
    return _argmax_layer(_select(scores, feature_set, element).mean("fold", skipna=True))


def centroid_layer(scores: xr.Dataset, *, feature_set: str, element: str | None = None) -> xr.DataArray:
    """Accuracy-weighted mean layer index: ``sum(l * max(r_l, 0)) / sum(max(r_l, 0))``.

    ``r_l`` is the mean r over folds of layer ``l``; a target whose r is
    never positive has a NaN centroid.

    Returns
    -------
    xarray.DataArray of float, dims ``([element,] target)``.
    """
    mean = _select(scores, feature_set, element).mean("fold", skipna=True)
    w = mean.clip(min=0).fillna(0)
    total = w.sum("layer")
    cent = (w * w["layer"]).sum("layer") / total.where(total > 0)
    cent.attrs.update(feature_set=feature_set, long_name="centroid layer")
    return cent.rename("centroid_layer")


def middle_vs_final(scores: xr.Dataset, *, feature_set: str, element: str, alpha: float = 0.05,
                    final: int | None = None) -> xr.Dataset:
    """Layers significantly above the final layer, and the contiguous band they form.

    Per target and layer, a one-sided paired t-test across folds of
    ``r_layer - r_final``; p-values are FDR-corrected across layers within a
    target. The band is the longest contiguous run of significant layers. The
    band is then tested as a whole: its mean r against the final layer's
    (one-sided paired t-test across folds).

    Parameters
    ----------
    scores : xarray.Dataset
    feature_set : str
        A deep feature set.
    element : str
    alpha : float
        Significance level for the per-layer (FDR) tests.
    final : int, optional
        The final layer (default: the highest scored layer).

    Returns
    -------
    xarray.Dataset
        ``difference``, ``t``, ``p``, ``p_fdr``, ``significant`` ``(layer, target)``;
        ``band_start``, ``band_end`` (-1 when no band), ``band_difference``,
        ``band_t``, ``band_p`` ``(target)``.
    """
    r = _select(scores, feature_set, element).transpose("target", "layer", "fold")
    layers = np.asarray(r["layer"].values)
    final = int(layers.max()) if final is None else int(final)
    if final not in layers:
        raise InputError(f"final: layer {final} is not scored for {feature_set!r} (layers {layers.min()}..{layers.max()})")
    rv = np.asarray(r.values)
    rf = np.asarray(r.sel(layer=final).values)  # (target, fold)
    diff = rv - rf[:, None, :]
    t, p = paired_ttest(rv, np.broadcast_to(rf[:, None, :], rv.shape), axis=-1, alternative="greater")
    fi = int(np.flatnonzero(layers == final)[0])
    p[:, fi] = np.nan
    t[:, fi] = np.nan
    p_fdr = np.vstack([fdr_bh(row) for row in p])
    sig = np.nan_to_num(p_fdr, nan=1.0) < alpha
    n_t = rv.shape[0]
    bs, be = np.full(n_t, -1), np.full(n_t, -1)
    bd, bt, bp = np.full(n_t, np.nan), np.full(n_t, np.nan), np.full(n_t, np.nan)
    for i in range(n_t):
        s, e = _longest_true_run(sig[i])
        if s < 0:
            continue
        bs[i], be[i] = layers[s], layers[e]
        band = np.nanmean(rv[i, s:e + 1], axis=0)
        bd[i] = np.nanmean(band - rf[i])
        ti, pi = paired_ttest(band, rf[i], alternative="greater")
        bt[i], bp[i] = float(ti), float(pi)
    coords = {"target": r["target"].values, "layer": layers}
    out = xr.Dataset(
        {"difference": (("target", "layer"), np.nanmean(diff, axis=-1)), "t": (("target", "layer"), t),
         "p": (("target", "layer"), p), "p_fdr": (("target", "layer"), p_fdr),
         "significant": (("target", "layer"), sig),
         "band_start": ("target", bs), "band_end": ("target", be), "band_difference": ("target", bd),
         "band_t": ("target", bt), "band_p": ("target", bp)},
        coords=coords)
    out.attrs.update(feature_set=feature_set, element=element, final_layer=final, alpha=alpha)
    return out


def _best_r_per_fold(scores: xr.Dataset, feature_set: str, element: str | None,
                     layer: int | str | None) -> tuple[xr.DataArray, xr.DataArray]:
    """r per (…, target, fold) at a chosen layer, and that layer per target.

    ``layer="best"`` picks per target the layer with the highest mean r,
    averaged over the elements in view (so both elements of a contrast are
    read at the same layer). Classical sets are read at layer -1.
    """
    if feature_set in classical_feature_sets(scores):
        r = scores["r"].sel(feature_set=feature_set, layer=-1).astype(float)
        if element is not None:
            r = r.sel(element=element)
        return r, xr.DataArray(np.full(r.sizes["target"], -1), dims="target", coords={"target": r["target"]})
    r = _select(scores, feature_set, element)
    if layer is None or layer == "best":
        mean = r.mean("fold", skipna=True)
        if "element" in mean.dims:
            mean = mean.mean("element", skipna=True)
        chosen = _argmax_layer(mean)
    else:
        chosen = xr.DataArray(np.full(r.sizes["target"], int(layer)), dims="target",
                              coords={"target": r["target"]})
    return r.sel(layer=chosen).drop_vars("layer", errors="ignore"), chosen


def element_contrast(scores: xr.Dataset, *, feature_set: str, layer: int | str | None = "best",
                     elements: Sequence[str] = ("voice", "soundtrack"),
                     energy_ratio: xr.DataArray | None = None) -> xr.Dataset:
    """Voice vs soundtrack per target, and its relation to the energy ratio.

    Parameters
    ----------
    scores : xarray.Dataset
    feature_set : str
    layer : int or "best"
        Layer compared (classical sets: -1). ``"best"``: per target, the layer
        with the highest r averaged over both elements.
    elements : pair of str
        The two elements contrasted (first minus second).
    energy_ratio : xarray.DataArray, optional
        ``energy_ratio_stimulus (stimulus)`` of the stems store (voice /
        soundtrack energy). Folds are held-out stimuli, so the per-fold
        difference is correlated (Spearman) with the log energy ratio.

    Returns
    -------
    xarray.Dataset
        ``r_first``, ``r_second``, ``difference`` ``(target, fold)``;
        ``mean_difference``, ``t``, ``p``, ``p_fdr``, ``preferred``, ``layer``
        ``(target)``; with ``energy_ratio``: ``energy_rho``, ``energy_p``
        ``(target)`` and ``log_energy_ratio (fold)``.
    """
    a, b = elements
    have = [str(e) for e in scores["element"].values]
    for e in elements:
        if e not in have:
            raise InputError(f"elements: {e!r} is not in the scores (have: {', '.join(have)})")
    r, chosen = _best_r_per_fold(scores, feature_set, None, layer)
    r = r.sel(element=[a, b]).transpose("element", "target", "fold")
    ra, rb = np.asarray(r.sel(element=a).values), np.asarray(r.sel(element=b).values)
    diff = ra - rb
    t, p = paired_ttest(ra, rb, axis=-1)
    md = np.nanmean(diff, axis=-1)
    preferred = np.where(md >= 0, a, b).astype(object)
    coords = {"target": r["target"].values, "fold": r["fold"].values}
    out = xr.Dataset(
        {"r_first": (("target", "fold"), ra), "r_second": (("target", "fold"), rb),
         "difference": (("target", "fold"), diff), "mean_difference": ("target", md),
         "t": ("target", t), "p": ("target", p), "p_fdr": ("target", fdr_bh(p)),
         "preferred": ("target", preferred.astype(str)), "layer": ("target", np.asarray(chosen.values))},
        coords=coords)
    if energy_ratio is not None:
        if "stimulus" not in energy_ratio.dims:
            raise InputError("energy_ratio: expected a DataArray with dim 'stimulus' (stems energy_ratio_stimulus)")
        folds = [str(f) for f in coords["fold"]]
        stims = [str(s) for s in energy_ratio["stimulus"].values]
        missing = [f for f in folds if f not in stims]
        if missing:
            raise InputError(f"energy_ratio: no value for held-out stimulus {missing[0]!r}")
        er = np.asarray(energy_ratio.sel(stimulus=folds).values, dtype=float)
        with np.errstate(divide="ignore"):
            ler = np.log10(np.maximum(er, 1e-12))
        rho, rp = np.full(len(md), np.nan), np.full(len(md), np.nan)
        for i in range(len(md)):
            ok = np.isfinite(diff[i]) & np.isfinite(ler)
            if ok.sum() >= 3 and np.ptp(ler[ok]) > 0 and np.ptp(diff[i, ok]) > 0:
                res = stats.spearmanr(ler[ok], diff[i, ok])
                rho[i], rp[i] = float(res.statistic), float(res.pvalue)
        out["energy_rho"] = ("target", rho)
        out["energy_p"] = ("target", rp)
        out["log_energy_ratio"] = ("fold", ler)
    out.attrs.update(feature_set=feature_set, first=a, second=b)
    return out


def deep_vs_classical(scores: xr.Dataset, *, deep: str | None = None, classical: str | None = None,
                      element: str | None = None) -> xr.Dataset:
    """Best layer of a deep feature set vs a classical descriptor set, per target.

    Parameters
    ----------
    scores : xarray.Dataset
    deep, classical : str, optional
        Feature sets (default: the first deep / classical set in the scores).
    element : str, optional
        One element; all when None (kept as a dim).

    Returns
    -------
    xarray.Dataset
        ``r_deep``, ``r_classical``, ``difference`` ``([element,] target, fold)``;
        ``best_layer``, ``mean_difference``, ``t``, ``p`` (two-sided paired t-test
        across folds) ``([element,] target)``.
    """
    deeps, classicals = deep_feature_sets(scores), classical_feature_sets(scores)
    deep = deep or (deeps[0] if deeps else None)
    classical = classical or (classicals[0] if classicals else None)
    if deep is None or classical is None:
        raise InputError(f"scores: need a deep and a classical feature set (deep: {deeps}, classical: {classicals})")
    rd = _select(scores, deep, element)
    bl = _argmax_layer(rd.mean("fold", skipna=True))
    rd = rd.sel(layer=bl).drop_vars("layer", errors="ignore")
    rc = scores["r"].sel(feature_set=classical, layer=-1, drop=True).astype(float)
    if element is not None:
        rc = rc.sel(element=element)
    rc = rc.drop_vars("feature_set", errors="ignore").transpose(*rd.dims)
    t, p = paired_ttest(rd.values, rc.values, axis=rd.dims.index("fold"))
    dims = tuple(d for d in rd.dims if d != "fold")
    out = xr.Dataset({"r_deep": rd.drop_vars("feature_set", errors="ignore"), "r_classical": rc,
                      "difference": rd.drop_vars("feature_set", errors="ignore") - rc, "best_layer": bl,
                      "t": (dims, t), "p": (dims, p)})
    out["mean_difference"] = out["difference"].mean("fold", skipna=True)
    out.attrs.update(deep=deep, classical=classical)
    return out


def recovered_effects(scores: xr.Dataset, *, alpha: float = 0.05, p_var: str = "p_fdr",
                      targets: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Effects the scores support, one per target, in ``ground_truth.json``'s keys.

    For each target, the (feature set, layer, element) with the highest mean r
    over folds among those with ``p_fdr < alpha``; targets with none are left
    out.

    Returns
    -------
    list of dict
        ``{"target", "element", "feature_set", "layer" (None for classical),
        "r", "p_fdr"}``, sorted by target.
    """
    _check_scores(scores)
    if p_var not in scores:
        raise InputError(f"scores: no variable {p_var!r} (have: {', '.join(scores.data_vars)})")
    mean = scores["r"].mean("fold", skipna=True).transpose("feature_set", "layer", "element", "target")
    pv = scores[p_var].transpose("feature_set", "layer", "element", "target")
    m, pq = np.asarray(mean.values, dtype=float), np.asarray(pv.values, dtype=float)
    fsets = [str(f) for f in scores["feature_set"].values]
    layers = [int(v) for v in scores["layer"].values]
    elements = [str(e) for e in scores["element"].values]
    out = []
    for ti, target in enumerate(str(t) for t in scores["target"].values):
        if targets is not None and target not in targets:
            continue
        ok = np.isfinite(m[..., ti]) & (np.nan_to_num(pq[..., ti], nan=1.0) < alpha)
        if not ok.any():
            continue
        cand = np.where(ok, m[..., ti], -np.inf)
        f, l, e = np.unravel_index(int(np.argmax(cand)), cand.shape)
        out.append({"target": target, "element": elements[e], "feature_set": fsets[f],
                    "layer": None if layers[l] < 0 else layers[l],
                    "r": float(m[f, l, e, ti]), "p_fdr": float(pq[f, l, e, ti])})
    return out


def compare_with_ground_truth(scores: xr.Dataset, ground_truth: Mapping[str, Any], *, alpha: float = 0.05,
                              layer_tolerance: int = 1) -> dict[str, Any]:
    """Check the scores against a simulated study's ``ground_truth.json``.

    A planted effect counts as recovered when, within its planted feature set,
    (a) the best layer of the planted element is within ``layer_tolerance``
    of the planted layer (classical: layer -1), (b) the planted element's r
    at that layer exceeds the other *separated* element's at its best layer
    (voice vs soundtrack, the seeds' contrast; the original mix contains
    both, so it is reported as ``original_r`` but does not compete with a
    planted voice or soundtrack), and (c) it is significant after FDR.

    Returns
    -------
    dict
        ``planted``: list of per-effect records (planted keys plus
        ``recovered_layer``, ``preferred_element``, ``r``, ``p_fdr``,
        ``layer_ok``, ``element_ok``, ``significant``, ``recovered``);
        ``null``: ``{"n", "n_significant", "fraction", "targets_significant"}``;
        ``all_recovered``: bool.
    """
    _check_scores(scores)
    have_targets = {str(t) for t in scores["target"].values}
    mean = scores["r"].mean("fold", skipna=True)
    records = []
    for eff in ground_truth.get("planted", []):
        tgt, fs, el = eff["target"], eff["feature_set"], eff["element"]
        if tgt not in have_targets:
            raise InputError(f"ground_truth: planted target {tgt!r} is not in the scores")
        if fs not in feature_sets(scores):
            raise InputError(f"ground_truth: planted feature set {fs!r} is not in the scores")
        m = mean.sel(feature_set=fs, target=tgt)
        planted_layer = -1 if eff.get("layer") is None else int(eff["layer"])
        if planted_layer < 0:
            per_el = m.sel(layer=-1)
            layer_of = {str(e): -1 for e in m["element"].values}
        else:
            mm = m.where(m["layer"] >= 0)
            per_el = mm.max("layer", skipna=True)
            layer_of = {str(e): int(mm.sel(element=e).fillna(-np.inf).idxmax("layer")) for e in m["element"].values}
        contest = per_el
        if el != "original" and "original" in per_el["element"].values:
            contest = per_el.drop_sel(element="original")
        best_el = str(contest.fillna(-np.inf).idxmax("element").item())
        original_r = float(per_el.sel(element="original")) if "original" in per_el["element"].values else None
        rec_layer = layer_of[el]
        p_fdr = float(scores["p_fdr"].sel(feature_set=fs, target=tgt, element=el, layer=rec_layer))
        layer_ok = abs(rec_layer - planted_layer) <= layer_tolerance if planted_layer >= 0 else rec_layer == -1
        records.append({**eff, "recovered_layer": None if rec_layer < 0 else rec_layer,
                        "preferred_element": best_el, "r": float(per_el.sel(element=el)),
                        "original_r": original_r,
                        "p_fdr": p_fdr, "layer_ok": bool(layer_ok), "element_ok": best_el == el,
                        "significant": bool(p_fdr < alpha),
                        "recovered": bool(layer_ok and best_el == el and p_fdr < alpha)})
    nulls = [t for t in ground_truth.get("null_targets", []) if t in have_targets]
    sig = []
    for t in nulls:
        q = np.asarray(scores["p_fdr"].sel(target=t).values, dtype=float)
        if (np.nan_to_num(q, nan=1.0) < alpha).any():
            sig.append(t)
    null = {"n": len(nulls), "n_significant": len(sig), "fraction": len(sig) / len(nulls) if nulls else 0.0,
            "targets_significant": sig}
    return {"planted": records, "null": null, "all_recovered": all(r["recovered"] for r in records)}
