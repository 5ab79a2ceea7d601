"""The report's tables as pandas DataFrames: the per-target summary, region leakage, provenance.

Each table is built here from the analyses and written by
:mod:`xaffect.analysis.report` twice: the rows a reader needs in the HTML
(``DataFrame.to_html``), every row in a CSV beside it.
"""

from __future__ import annotations

import json
import platform
import sys
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .layers import layer_summary

__all__ = ["noise_ceiling", "summary_table", "region_table", "provenance_table", "run_provenance", "to_html",
           "family_text"]


def family_text(scores: xr.Dataset, p_var: str) -> str:
    """How ``p_var`` was computed and over which family (from the store's attrs)."""
    fams = scores.attrs.get("p_families")
    if isinstance(fams, Mapping):
        for claim, fam in fams.items():
            if isinstance(fam, Mapping) and fam.get("variable") == p_var:
                return str(fam.get("description") or fam.get("family") or claim)
    if p_var in scores:
        return str(scores[p_var].attrs.get("description", p_var))
    return p_var


def noise_ceiling(workspace: Any) -> xr.DataArray | None:
    """``noise_ceiling (target)`` of the rating scales (``rating:<scale>``), from the ``targets`` store."""
    if "targets" not in workspace:
        return None
    tg = workspace.open("targets")
    if "noise_ceiling" not in tg:
        return None
    nc = tg["noise_ceiling"].load()
    return xr.DataArray(nc.values.astype(float), dims="target",
                        coords={"target": [f"rating:{s}" for s in nc["scale"].values]}, name="noise_ceiling")


def _interval(lo: float, hi: float, digits: int = 0) -> str:
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return ""
    return f"[{lo:.{digits}f}, {hi:.{digits}f}]"


def summary_table(scores: xr.Dataset, *, deep: list[str], p_var: str = "p_fwer", alpha: float = 0.05,
                  ceiling: xr.DataArray | None = None, n_boot: int = 1000, seed: int = 0,
                  summaries: dict[str, xr.Dataset] | None = None) -> pd.DataFrame:
    """One row per target: its best (deep feature set, element) with best and centroid layer and intervals.

    Parameters
    ----------
    scores : xarray.Dataset
        The scores store, loaded.
    deep : list of str
        Deep feature sets (at least one).
    p_var : str
        p-value variable of the claim's family (``p_fwer``: max statistic over
        targets x layers); a family declared in the store's attrs wins.
    alpha : float
    ceiling : xarray.DataArray of shape (target,), optional
        Noise ceiling (r) of the targets that have one.
    n_boot, seed
        Stimulus-level bootstrap of the intervals.
    summaries : dict of str to xarray.Dataset, optional
        Filled with each deep feature set's :func:`~xaffect.analysis.layer_summary`
        (so a caller reuses its bootstrap, e.g. for the layer profiles).

    Returns
    -------
    pandas.DataFrame
        Columns ``target``, ``feature set``, ``element``, ``best layer [CI]``
        (with the layer's name when the store has one), ``centroid [CI]``
        ("undefined" when no layer beats its null), ``r`` (fold-mean r at the
        best layer: optimistic), ``r_cv`` (selection-honest), ``p`` (at the best
        layer, under the family) and ``r / ceiling`` (when any target has a
        noise ceiling); significant targets first, then by r.
    """
    sc = scores
    if ceiling is not None:
        sc = scores.assign(noise_ceiling=ceiling.reindex(target=scores["target"].values))
    best: dict[str, dict[str, Any]] = {}
    for fs in deep:
        summ = layer_summary(sc, feature_set=fs, p_var=p_var, alpha=alpha, n_boot=n_boot, seed=seed)
        if summaries is not None:
            summaries[fs] = summ
        summ = summ.transpose("element", "target") if "element" in summ.dims else summ.expand_dims(element=["-"])
        for el in summ["element"].values:
            row = summ.sel(element=el)
            for i, t in enumerate(row["target"].values):
                r = float(row["best_r"].values[i])
                if not np.isfinite(r) or (str(t) in best and best[str(t)]["r"] >= r):
                    continue
                get = lambda v: row[v].values[i] if v in row else np.nan  # noqa: E731
                p = float(get("p_best"))
                layer = str(int(get("best_layer")))
                if "best_layer_name" in row and str(get("best_layer_name")):
                    layer += f" ({get('best_layer_name')})"
                ci = _interval(float(get("best_lower")), float(get("best_upper")))
                cent = float(get("centroid"))
                cent_ci = _interval(float(get("centroid_lower")), float(get("centroid_upper")), 1)
                best[str(t)] = {
                    "target": str(t), "feature set": fs, "element": str(el),
                    "best layer [CI]": f"{layer} {ci}".strip(),
                    "centroid [CI]": f"{cent:.1f} {cent_ci}" if np.isfinite(cent) else "undefined",
                    "r": r, "r_cv": float(get("best_r_cv")), "p": p,
                    "r / ceiling": float(get("r_over_ceiling"))}
    table = pd.DataFrame(list(best.values()))
    if table.empty:
        return table
    table["_sig"] = table["p"] < alpha
    table = table.sort_values(["_sig", "r"], ascending=[False, False]).drop(columns="_sig").reset_index(drop=True)
    if table["r / ceiling"].isna().all():
        table = table.drop(columns="r / ceiling")
    table.attrs.update(p_var=p_var, alpha=alpha, family=family_text(scores, p_var))
    return table


def region_table(values: xr.DataArray, p: xr.DataArray, alpha: float, flags: xr.Dataset | None) -> pd.DataFrame:
    """Per region: best r, p under the family, significant, and the leakage flag with its source."""
    df = pd.DataFrame({"region": [str(x) for x in values["region"].values], "r": values.values.astype(float),
                       "p": p.sel(region=values["region"]).values.astype(float)})
    df["significant"] = df["p"] < alpha
    if flags is not None:
        df["leakage_from"] = [str(flags["leakage_from"].sel(region=x).item()) if x in flags["region"] else ""
                              for x in df["region"]]
        df["explained_r"] = [float(flags["explained_r"].sel(region=x)) if x in flags["region"] else np.nan
                             for x in df["region"]]
    return df.sort_values("r", ascending=False).reset_index(drop=True)


def provenance_table(workspace: Any) -> pd.DataFrame:
    """One row per store: stage, created, full identity, inputs with their hashes, model, params, versions."""
    rows = []
    for name in [n for n in workspace.names() if "/" not in n]:
        try:
            prov = workspace.provenance(name)
        except (KeyError, OSError, ValueError) as exc:  # a store written by hand
            rows.append({"store": name, "stage": "?", "inputs": f"(no provenance: {exc})"})
            continue
        rows.append({"store": name, "stage": prov.get("stage", ""), "created": prov.get("created", ""),
                     "identity": str(prov.get("identity", "")),
                     "inputs": "; ".join(f"{i.get('ref', '')} ({str(i.get('hash', ''))[:16]})"
                                         for i in prov.get("inputs", [])),
                     "model": json.dumps(prov.get("model"), sort_keys=True, default=str) if prov.get("model") else "",
                     "params": json.dumps(prov.get("params", {}), sort_keys=True, default=str),
                     "versions": ", ".join(f"{k} {v}" for k, v in sorted((prov.get("versions") or {}).items()))})
    return pd.DataFrame(rows)


def run_provenance(argv: list[str] | None = None) -> pd.DataFrame:
    """The report's own run: command line, host, Python and platform, package versions."""
    from ..store.provenance import package_versions

    versions = package_versions(extra=("matplotlib", "pandas", "nibabel", "jinja2"))
    rows = [("command line", " ".join(sys.argv if argv is None else argv)), ("host", platform.node()),
            ("python", sys.version.split()[0]), ("platform", platform.platform())]
    rows += [(f"version: {k}", v) for k, v in sorted(versions.items())]
    return pd.DataFrame(rows, columns=["item", "value"])


def to_html(df: pd.DataFrame, *, digits: int = 3) -> str:
    """A table for the report (no index, floats to ``digits`` significant digits, NaN as '–')."""
    if df.empty:
        return "<p><em>none</em></p>"
    fmt = {c: (lambda v, d=digits: "–" if not np.isfinite(v) else f"{v:.{d}g}")
           for c in df.columns if df[c].dtype.kind == "f"}
    return df.to_html(index=False, formatters=fmt, na_rep="–", classes="table table-sm table-striped xa-table",
                      border=0, escape=True)
