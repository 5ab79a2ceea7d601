"""Effects the scores support, and how they compare with a simulated study's ground truth.

The p-value of each effect is ``p_var`` of the store (``p_fdr``: corrected
over the encoding grid, the family named in its attrs) or, with ``family``,
the p-values corrected over that declared family
(:func:`xaffect.encoding.family_pvalues`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from ..errors import InputError
from ._scores import check_scores, claim_p, feature_sets

__all__ = ["recovered_effects", "compare_with_ground_truth"]


def recovered_effects(scores: xr.Dataset, *, alpha: float = 0.05, p_var: str = "p_fdr",
                      targets: Sequence[str] | None = None, family: Sequence[str] | None = None,
                      method: str = "fdr") -> list[dict[str, Any]]:
    """Effects the scores support, one per target, in ``ground_truth.json``'s keys.

    For each target, the (feature set, layer, element) with the highest mean r
    over folds among those with ``p < alpha``; targets with none are left
    out. ``p`` is ``p_var`` of the store, or with ``family`` (e.g.
    ``("feature_set", "layer", "element")``: per target, the whole search
    over sets, layers and elements) the p-values corrected by ``method``.

    Returns
    -------
    list of dict
        ``{"target", "element", "feature_set", "layer" (None for classical),
        "r", "p_fdr"}``, sorted by target.
    """
    check_scores(scores, min_folds=1)
    pv = claim_p(scores, p_var, family=family, method=method)
    pv = pv.transpose("feature_set", "layer", "element", "target")
    mean = scores["r"].mean("fold", skipna=True).transpose("feature_set", "layer", "element", "target")
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
                              layer_tolerance: int = 1, p_var: str = "p_fdr", family: Sequence[str] | None = None,
                              method: str = "fdr") -> dict[str, Any]:
    """Check the scores against a simulated study's ``ground_truth.json``.

    A planted effect counts as recovered when, within its planted feature set,
    (a) the best layer of the planted element is within ``layer_tolerance``
    of the planted layer (classical: layer -1), (b) the planted element's r
    at that layer exceeds the other *separated* element's at its best layer
    (voice vs soundtrack, the seeds' contrast; the original mix contains
    both, so it is reported as ``original_r`` but does not compete with a
    planted voice or soundtrack), and (c) it is significant (``p_var``, or ``family`` corrected by ``method``;
    reported under the key ``p_fdr``).

    Returns
    -------
    dict
        ``planted``: list of per-effect records (planted keys plus
        ``recovered_layer``, ``preferred_element``, ``r``, ``p_fdr``,
        ``layer_ok``, ``element_ok``, ``significant``, ``recovered``);
        ``null``: ``{"n", "n_significant", "fraction", "targets_significant"}``;
        ``all_recovered``: bool.
    """
    check_scores(scores, min_folds=1)
    pvar = claim_p(scores, p_var, family=family, method=method)
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
        p_fdr = float(pvar.sel(feature_set=fs, target=tgt, element=el, layer=rec_layer))
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
        q = np.asarray(pvar.sel(target=t).values, dtype=float)
        if (np.nan_to_num(q, nan=1.0) < alpha).any():
            sig.append(t)
    null = {"n": len(nulls), "n_significant": len(sig), "fraction": len(sig) / len(nulls) if nulls else 0.0,
            "targets_significant": sig}
    return {"planted": records, "null": null, "all_recovered": all(r["recovered"] for r in records)}
