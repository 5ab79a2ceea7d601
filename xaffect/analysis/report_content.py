"""What the report reads from a workspace: region values and their p, leakage flags, the design, summary.json.

The data side of :mod:`xaffect.analysis.report` (which lays it out).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .effects import compare_with_ground_truth, recovered_effects
from .report_tables import family_text

__all__ = ["region_values", "build_summary"]


def _energy_ratio(ws: Any, names: list[str]) -> xr.DataArray | None:
    if "stems" not in names:
        return None
    try:
        tree = ws.open("stems")
        root = tree.to_dataset() if isinstance(tree, xr.DataTree) else tree
        if "energy_ratio_stimulus" in root:
            er = root["energy_ratio_stimulus"].load()
            if er.ndim == 1 and er.dims[0] != "stimulus":  # tolerate another name of the one dim
                er = er.rename({er.dims[0]: "stimulus"})
            return er
    except (KeyError, ValueError, OSError):
        return None
    return None


def region_values(scores: xr.Dataset, *, kind: str = "region", p_var: str | None = None
                  ) -> xr.DataArray | tuple[xr.DataArray, xr.DataArray] | None:
    """Best mean r per region over feature sets, layers and elements.

    Parameters
    ----------
    scores : xarray.Dataset
    kind : {"region", "isc"}
        Target prefix read (``region:<name>`` or ``isc:<name>[:<band>]``,
        bands averaged).
    p_var : str, optional
        Also return ``p_var`` at each region's best cell (for ``isc``: the
        smallest over its bands).

    Returns
    -------
    xarray.DataArray of shape (region,), or (values, p) with ``p_var``; None when no such target.
    """
    mean = scores["r"].mean("fold", skipna=True)
    best = mean.max(["feature_set", "layer", "element"], skipna=True)
    pbest = None
    if p_var is not None:
        stacked = mean.stack(cell=["feature_set", "layer", "element"])
        idx = stacked.fillna(-np.inf).argmax("cell")
        pst = scores[p_var].stack(cell=["feature_set", "layer", "element"]).transpose(*stacked.dims)
        pbest = np.take_along_axis(np.asarray(pst.values, float), np.asarray(idx.values)[:, None], axis=-1)[:, 0]
    vals: dict[str, list[float]] = {}
    ps: dict[str, list[float]] = {}
    for k, (t, v) in enumerate(zip(best["target"].values, best.values)):
        parts = str(t).split(":")
        if parts[0] == kind and len(parts) >= 2:
            vals.setdefault(parts[1], []).append(float(v))
            if pbest is not None:
                ps.setdefault(parts[1], []).append(float(pbest[k]))
    if not vals:
        return None
    regions = sorted(vals)
    out = xr.DataArray([np.nanmean(vals[r]) for r in regions], dims="region", coords={"region": regions},
                       name=f"best r ({kind})")
    if p_var is None:
        return out
    return out, xr.DataArray([np.nanmin(ps[r]) for r in regions], dims="region", coords={"region": regions},
                             name=p_var)


def build_summary(scores: xr.Dataset, *, alpha: float = 0.05, ground_truth: Mapping[str, Any] | None = None
                  ) -> dict[str, Any]:
    """The content of ``summary.json``.

    Returns
    -------
    dict
        ``planted`` (recovered effects: target, element, feature_set, layer,
        r, p_fdr), ``null_targets`` (targets with nothing FDR-significant),
        ``alpha``, and ``comparison`` when a ground truth is given.
    """
    rec = recovered_effects(scores, alpha=alpha)
    hit = {e["target"] for e in rec}
    out: dict[str, Any] = {"planted": rec, "null_targets": [str(t) for t in scores["target"].values if str(t) not in hit],
                           "alpha": alpha}
    if ground_truth is not None:
        # "recovered"/"null target significant somewhere" rest on the whole search: max-statistic FWER over it
        # (BH over thousands of cells cannot reach alpha with a few hundred permutations)
        out["comparison"] = compare_with_ground_truth(scores, ground_truth, alpha=alpha,
                                                      p_var="p_fwer" if "p_fwer" in scores else "p_fdr")
    return out


def _anatomy(study: Any) -> tuple[str, str] | None:
    """(subjects_dir, subject) of the study's regions section, if its files exist."""
    if study is None or "regions" not in getattr(study, "config", {}):
        return None
    sec = study.config["regions"]
    sdir = sec.get("subjects_dir") or os.environ.get("SUBJECTS_DIR")
    subject = sec.get("subject") or "fsaverage"
    if sdir and (Path(sdir) / subject / "label" / "lh.aparc.annot").is_file():
        return str(sdir), subject
    return None


def _design(ws: Any, names: list[str], ds: xr.Dataset, p_var: str) -> dict[str, Any]:
    """Counts and the test, for captions."""
    d: dict[str, Any] = {"stimuli": ds.sizes["fold"], "folds": ds.sizes["fold"], "cv": ds.attrs.get("cv", "?"),
                         "n_perm": ds.attrs.get("n_perm", 0), "null": ds.attrs.get("null", "?"),
                         "family": family_text(ds, p_var), "subjects": None, "raters": None}
    for name in ("regions", "crosstalk"):
        if d["subjects"] is None and name in names:
            try:
                node = ws.open(name)
                first = (next(iter(node.children.values())).to_dataset() if isinstance(node, xr.DataTree) else node)
                d["subjects"] = int(first.sizes["subject"])
            except (StopIteration, KeyError, ValueError, OSError):
                pass
    if "targets" in names:
        tg = ws.open("targets")
        d["raters"] = int(tg.sizes["rater"]) if "rater" in tg.dims else None
    return d


def _n_text(d: Mapping[str, Any]) -> str:
    who = ", ".join(x for x in (f"{d['subjects']} subjects" if d["subjects"] else "",
                                f"{d['raters']} raters" if d["raters"] else "") if x)
    return (f"n = {d['stimuli']} stimuli in {d['folds']} cross-validation folds ({d['cv']})"
            + (f", {who}" if who else "") + f"; permutation null: {d['n_perm']} '{d['null']}' surrogates")


def _leakage(ws: Any, names: list[str], values: xr.DataArray, p: xr.DataArray, alpha: float, explained: float
             ) -> xr.Dataset | None:
    """Leakage flags of the region targets, from the ``crosstalk`` store (None without one)."""
    if "crosstalk" not in names:
        return None
    from ..neural.crosstalk import flag_leakage

    ct = ws.open("crosstalk")["crosstalk"].load()
    have = set(str(r) for r in ct["region"].values)
    keep = [str(r) for r in values["region"].values if str(r) in have]
    if not keep:
        return None
    return flag_leakage(values.sel(region=keep), (p.sel(region=keep) < alpha), ct, explained=explained)
