"""The study report: one self-contained ``report.html`` and a ``summary.json``.

The HTML embeds every figure as a base64 PNG, so the file can be mailed or
archived on its own. It holds the study description, the provenance of
every store in the workspace, the layer-profile analyses of
:mod:`xaffect.analysis.profiles` with their figures, tables of the targets
significant after FDR, and a Desikan-Killiany region map.

``summary.json`` lists the recovered effects in the keys of a simulated
study's ``ground_truth.json`` (``planted`` -- here: the effects the scores
support -- and ``null_targets`` -- targets with nothing significant), each
effect with its ``r`` and ``p_fdr``; with a ground truth it also holds the
planted-vs-recovered comparison.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..errors import InputError, StoreError
from . import plots
from .profiles import (centroid_layer, classical_feature_sets, compare_with_ground_truth, deep_feature_sets,
                       deep_vs_classical, element_contrast, layer_profile, middle_vs_final, recovered_effects)

__all__ = ["write_report", "build_summary", "region_values"]

_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;font-size:12px;margin:0.5em 0}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}
th{background:#f2f2f2}img{max-width:100%;border:1px solid #eee;margin:4px 0}h2{border-bottom:1px solid #ddd}
.ok{color:#070}.bad{color:#b00}code{background:#f6f6f6;padding:0 3px}"""


def _fig_html(fig: Any, caption: str = "") -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    data = base64.b64encode(buf.getvalue()).decode()
    cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}"/>{cap}</figure>'


def _table(rows: list[Mapping[str, Any]], columns: list[str] | None = None) -> str:
    if not rows:
        return "<p><em>none</em></p>"
    columns = columns or list(rows[0])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for r in rows:
        cells = []
        for c in columns:
            v = r.get(c, "")
            if isinstance(v, float):
                v = f"{v:.3g}"
            elif isinstance(v, bool):
                v = f'<span class="{"ok" if v else "bad"}">{"yes" if v else "no"}</span>'
                cells.append(f"<td>{v}</td>")
                continue
            elif v is None:
                v = "–"
            cells.append(f"<td>{html.escape(str(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _store_names(ws: Any) -> list[str]:
    return [n for n in ws.names() if "/" not in n]


def _scores_name(ws: Any, scores: str | None) -> str:
    names = _store_names(ws)
    if scores is not None:
        if scores not in names:
            raise StoreError(f"{ws.url}: no scores store {scores!r} (have: {', '.join(names) or 'none'})")
        return scores
    cands = [n for n in names if n == "scores" or n.startswith("scores")]
    if not cands:
        raise StoreError(f"{ws.url}: no scores store yet (run the encode stage first; have: {', '.join(names) or 'none'})")
    return cands[0]


def _energy_ratio(ws: Any) -> xr.DataArray | None:
    if "stems" not in ws:
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


def region_values(scores: xr.Dataset, *, kind: str = "region") -> xr.DataArray | None:
    """Best mean r per region over feature sets, layers and elements.

    Parameters
    ----------
    scores : xarray.Dataset
    kind : {"region", "isc"}
        Target prefix read (``region:<name>`` or ``isc:<name>[:<band>]``,
        bands averaged).

    Returns
    -------
    xarray.DataArray of shape (region,), or None when no such target.
    """
    mean = scores["r"].mean("fold", skipna=True)
    best = mean.max(["feature_set", "layer", "element"], skipna=True)
    vals: dict[str, list[float]] = {}
    for t, v in zip(best["target"].values, best.values):
        parts = str(t).split(":")
        if parts[0] == kind and len(parts) >= 2:
            vals.setdefault(parts[1], []).append(float(v))
    if not vals:
        return None
    regions = sorted(vals)
    return xr.DataArray([np.nanmean(vals[r]) for r in regions], dims="region", coords={"region": regions},
                        name=f"best r ({kind})")


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
        out["comparison"] = compare_with_ground_truth(scores, ground_truth, alpha=alpha)
    return out


def _top_targets(scores: xr.Dataset, fs: str, n: int = 8) -> list[str]:
    m = scores["r"].sel(feature_set=fs).mean("fold", skipna=True).max(["layer", "element"], skipna=True)
    order = np.argsort(-np.nan_to_num(m.values, nan=-np.inf))
    return [str(m["target"].values[i]) for i in order[:n]]


def _provenance_rows(ws: Any) -> list[dict[str, Any]]:
    rows = []
    for name in _store_names(ws):
        try:
            prov = ws.provenance(name)
        except (KeyError, OSError, ValueError) as exc:  # a store written by hand
            rows.append({"store": name, "stage": "?", "created": "", "identity": "", "inputs": f"({exc})"})
            continue
        params = json.dumps(prov.get("params", {}), sort_keys=True, default=str)
        model = prov.get("model") or {}
        rows.append({"store": name, "stage": prov.get("stage", ""), "created": prov.get("created", ""),
                     "identity": str(prov.get("identity", ""))[:12],
                     "inputs": ", ".join(i.get("ref", "") for i in prov.get("inputs", [])),
                     "model": ", ".join(f"{k}={v}" for k, v in model.items()) if isinstance(model, Mapping) else str(model),
                     "params": params[:300] + ("…" if len(params) > 300 else "")})
    return rows


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


def write_report(workspace: Any, out_dir: str | os.PathLike, *, study: Any = None,
                 ground_truth: Mapping[str, Any] | str | os.PathLike | None = None, alpha: float = 0.05,
                 scores: str | None = None, anatomy: tuple[str, str] | None = None) -> Path:
    """Write ``report.html`` and ``summary.json`` for a workspace.

    Parameters
    ----------
    workspace : Workspace
        Holds a ``scores`` store (and, optionally, ``stems`` for energy ratios).
    out_dir : path
        Folder written (created).
    study : Study, optional
        For the study description (name, description, stimuli, clock).
    ground_truth : mapping or path, optional
        A simulated study's ``ground_truth.json``: adds planted-vs-recovered.
    alpha : float
        FDR level of the significance tables.
    scores : str, optional
        Name of the scores store (default: ``scores`` or the first ``scores*``).
    anatomy : (subjects_dir, subject), optional
        FreeSurfer subject for the cortical surface figure (default: the
        study's ``regions`` section, when its files exist).

    Returns
    -------
    Path
        The ``report.html`` written.
    """
    if isinstance(ground_truth, (str, os.PathLike)):
        gt_path = Path(ground_truth)
        try:
            ground_truth = json.loads(gt_path.read_text())
        except (OSError, ValueError) as exc:
            raise InputError(f"{gt_path}: cannot read the ground truth ({exc})") from exc
    if not 0 < alpha < 1:
        raise InputError(f"alpha: must be in (0, 1), got {alpha}")
    sname = _scores_name(workspace, scores)
    if anatomy is None:
        anatomy = _anatomy(study)
    ds = workspace.open(sname)
    ds = ds.load()
    summary = build_summary(ds, alpha=alpha, ground_truth=ground_truth)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    parts: list[str] = []
    title = getattr(study, "name", None) or "xaffect study"
    parts.append(f"<h1>{html.escape(str(title))}</h1>")
    if study is not None:
        desc = (getattr(study, "top", {}) or {}).get("description", "")
        if desc:
            parts.append(f"<p>{html.escape(desc)}</p>")
        stims = [{"stimulus": s.name, "file": str(s.path)} for s in getattr(study, "stimuli", [])]
        parts.append(f"<p>Clock: {getattr(study, 'rate', '?')} Hz; stages: "
                     f"{html.escape(', '.join(getattr(study, 'stages', []) or []))}</p>")
        parts.append("<h3>Stimuli</h3>" + _table(stims))
    parts.append(f"<p>Workspace: <code>{html.escape(workspace.url)}</code>; scores store: <code>{sname}</code>; "
                 f"folds (held-out stimuli): {ds.sizes['fold']}; targets: {ds.sizes['target']}.</p>")

    if ground_truth is not None:
        cmp = summary["comparison"]
        parts.append("<h2>Planted vs recovered</h2>")
        parts.append(_table(cmp["planted"], ["target", "feature_set", "element", "layer", "recovered_layer",
                                             "preferred_element", "r", "p_fdr", "layer_ok", "element_ok",
                                             "significant", "recovered"]))
        n = cmp["null"]
        parts.append(f"<p>Null targets significant after FDR: {n['n_significant']} of {n['n']} "
                     f"({100 * n['fraction']:.0f} %).</p>")

    parts.append(f"<h2>Significant targets (FDR &lt; {alpha})</h2>")
    parts.append(_table(summary["planted"], ["target", "feature_set", "element", "layer", "r", "p_fdr"]))

    energy = _energy_ratio(workspace)
    deeps, classicals = deep_feature_sets(ds), classical_feature_sets(ds)
    elements = [str(e) for e in ds["element"].values]
    for fs in deeps:
        parts.append(f"<h2>Layer profiles: {html.escape(fs)}</h2>")
        top = _top_targets(ds, fs)
        prof = layer_profile(ds, feature_set=fs)
        parts.append(_fig_html(plots.plot_layer_profile(prof, targets=top),
                               f"{fs}: mean r per layer over folds with 95% CI; star = best layer"))
        bl = prof["best_layer"].transpose("target", "element")
        rows = [{"target": str(t), **{f"best layer ({e})": int(bl.sel(target=t, element=e)) for e in elements}}
                for t in top]
        parts.append(_table(rows))
        cent = centroid_layer(ds, feature_set=fs)
        parts.append(_fig_html(plots.plot_centroid_layer(cent.sel(target=top)),
                               f"{fs}: centroid layer (accuracy-weighted mean layer, negative r clipped at 0)"))
        parts.append(f"<h3>Middle vs final layer ({html.escape(fs)})</h3>")
        for el in elements:
            mvf = middle_vs_final(ds, feature_set=fs, element=el, alpha=alpha)
            parts.append(_fig_html(plots.plot_middle_vs_final(mvf, targets=top[:6]), f"{fs}, {el}"))
            rows = [{"target": str(t), "element": el, "band": (f"{int(mvf['band_start'].sel(target=t))}–"
                                                                f"{int(mvf['band_end'].sel(target=t))}"),
                     "band − final r": float(mvf["band_difference"].sel(target=t)),
                     "p (band > final)": float(mvf["band_p"].sel(target=t))}
                    for t in mvf["target"].values if int(mvf["band_start"].sel(target=t)) >= 0]
            parts.append(_table(rows))
    for fs in deeps + classicals:
        if "voice" in elements and "soundtrack" in elements:
            ec = element_contrast(ds, feature_set=fs, energy_ratio=energy)
            parts.append(f"<h2>Voice vs soundtrack: {html.escape(fs)}</h2>")
            parts.append(_fig_html(plots.plot_element_contrast(ec), f"{fs}: r(voice) − r(soundtrack) per target"))
            rows = [{"target": str(t), "preferred": str(ec["preferred"].sel(target=t).item()),
                     "Δr": float(ec["mean_difference"].sel(target=t)), "p_fdr": float(ec["p_fdr"].sel(target=t)),
                     **({"ρ with energy ratio": float(ec["energy_rho"].sel(target=t))} if "energy_rho" in ec else {})}
                    for t in ec["target"].values]
            parts.append(_table(rows))
    if deeps and classicals:
        parts.append("<h2>Deep vs classical</h2>")
        for el in elements:
            dvc = deep_vs_classical(ds, deep=deeps[0], classical=classicals[0], element=el)
            parts.append(_fig_html(plots.plot_deep_vs_classical(dvc), f"{deeps[0]} best layer vs {classicals[0]}, {el}"))
    for kind in ("region", "isc"):
        vals = region_values(ds, kind=kind)
        if vals is not None:
            parts.append(f"<h2>Regions ({kind} targets)</h2>")
            parts.append(_fig_html(plots.plot_regions(vals, title=f"best mean r per region ({kind})"),
                                   "Desikan–Killiany regions by hemisphere"))
            if anatomy is not None:
                parts.append(_fig_html(plots.plot_regions_surface(vals, subjects_dir=anatomy[0], subject=anatomy[1],
                                                                  title=f"best mean r ({kind})"),
                                       f"cortical surface of {anatomy[1]}"))
    names = workspace.names()
    if "synchrony" in names or "targets" in names:
        from ..synchrony import plot_isc, plot_ratings

        parts.append("<h2>Targets</h2>")
        if "synchrony" in names:
            parts.append(_fig_html(plot_isc(workspace.open("synchrony").load()),
                                   "sliding-window inter-subject correlation, region × time"))
        if "targets" in names:
            parts.append(_fig_html(plot_ratings(workspace.open("targets").load()),
                                   "continuous ratings with the inter-rater band"))
    parts.append("<h2>Provenance</h2>")
    parts.append(_table(_provenance_rows(workspace)))

    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(str(title))}</title>"
            f"<style>{_CSS}</style></head><body>{''.join(parts)}</body></html>")
    path = out_dir / "report.html"
    tmp = out_dir / "report.html.tmp"
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, path)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=_json_default))
    return path


def _json_default(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    raise TypeError(f"not JSON-able: {type(v).__name__}")
