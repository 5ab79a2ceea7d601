"""The study report: ``report.html`` (an :class:`mne.Report`), figures as SVG, tables as CSV, ``summary.json``.

``report.html`` is MNE's report -- sections with a table of contents,
collapsible items, figures embedded as PNG so the file stands alone --
holding, in order: the design (n of subjects, stimuli, folds; the test and
its family), planted vs recovered (simulated studies), one summary table
(target x best layer with its interval, centroid layer with its interval, p
under the declared family, r, selection-honest r and r / noise ceiling),
layer profiles as small multiples with the null band and per-layer
significance, middle vs final on the pre-set band, voice vs soundtrack,
deep vs classical, region maps thresholded by the family with EEG leakage
marked (:mod:`xaffect.neural.crosstalk`), the targets, a section per
``analysis.*`` store (:mod:`.report_analyses`: gradient alignment, lead-lag,
renditions, clip labels), and provenance in full. Beside it: ``figures/*.svg`` (every figure), ``tables/*.csv`` (every
table, all rows; the HTML shows the rows a reader needs) and
``summary.json`` (recovered effects in the keys of a simulated study's
``ground_truth.json``).

What is read from the workspace lives in :mod:`.report_content`, the tables in
:mod:`.report_tables`, the figures in :mod:`.plots`; this module lays them out.
"""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from PIL import Image

from ..errors import InputError, StoreError
from . import plots
from ._scores import classical_feature_sets, deep_feature_sets
from .compare import deep_vs_classical, element_contrast
from .layers import layer_profile
from .report_analyses import add_analysis_sections
from .report_content import _anatomy, _design, _energy_ratio, _leakage, _n_text, build_summary, region_values
from .report_tables import noise_ceiling, provenance_table, region_table, run_provenance, summary_table, to_html
from .zones import middle_vs_final

__all__ = ["write_report", "build_summary", "region_values"]

#: Rows of a table shown in the HTML; the CSV beside it has them all.
HTML_ROWS = 15
_DPI = 90
_CSS = ("<style>.xa-table{font-size:12px;width:auto}.xa-table td,.xa-table th{padding:1px 6px}"
        "details>summary{cursor:pointer;color:#0d6efd}</style>")


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


class _Writer:
    """Adds figures (PNG in the page, SVG beside it) and tables (head in the page, CSV beside it)."""

    def __init__(self, report: Any, out_dir: Path):
        self.report, self.out = report, out_dir
        self.figures: list[str] = []
        self.tables: list[str] = []
        self.rows_shown = 0

    @staticmethod
    def _slug(text: str) -> str:
        return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:80] or "item"

    def figure(self, fig: Any, title: str, caption: str, section: str) -> None:
        name = f"figures/{self._slug(title)}.svg"
        # rendered here and handed over as pixels: MNE's own raster path shears figures whose size
        # is not a whole number of pixels
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=_DPI)
        fig.set_layout_engine("none")  # keep the layout of that draw: laying out again costs as much
        fig.savefig(self.out / name, format="svg")
        self.figures.append(name)
        buf.seek(0)
        img = np.asarray(Image.open(buf).convert("RGB"))
        self.report.add_figure(img, title=title, caption=f"{caption} [SVG: {name}]", section=section,
                               image_format="png")

    def table(self, df: pd.DataFrame, title: str, section: str, *, note: str = "", rows: int = HTML_ROWS,
              show: pd.DataFrame | None = None) -> None:
        name = f"tables/{self._slug(title)}.csv"
        df.to_csv(self.out / name, index=False)
        self.tables.append(name)
        head = (df if show is None else show).head(rows)
        self.rows_shown += len(head)
        more = (f"<p>{len(head)} of {len(df)} rows shown; all in <a href='{name}' download>{name}</a>.</p>"
                if len(df) > len(head) else f"<p>Also as <a href='{name}' download>{name}</a>.</p>")
        self.report.add_html(_CSS + (f"<p>{note}</p>" if note else "") + to_html(head) + more, title=title,
                             section=section)


def write_report(workspace: Any, out_dir: str | os.PathLike, *, study: Any = None,
                 ground_truth: Mapping[str, Any] | str | os.PathLike | None = None, alpha: float = 0.05,
                 scores: str | None = None, anatomy: tuple[str, str] | None = None, p_var: str = "p_fwer",
                 explained: float = 0.8, n_boot: int = 1000, argv: list[str] | None = None) -> Path:
    """Write ``report.html``, ``figures/*.svg``, ``tables/*.csv`` and ``summary.json`` for a workspace.

    Parameters
    ----------
    workspace : Workspace
        Holds a ``scores`` store (and, optionally, ``stems``, ``targets``,
        ``regions``, ``crosstalk``, ``synchrony``).
    out_dir : path
        Folder written (created).
    study : Study, optional
        For the study description (name, description, stimuli, clock).
    ground_truth : mapping or path, optional
        A simulated study's ``ground_truth.json``: adds planted-vs-recovered.
    alpha : float
        Significance level.
    scores : str, optional
        Name of the scores store (default: ``scores`` or the first ``scores*``).
    anatomy : (subjects_dir, subject), optional
        FreeSurfer subject for the cortical surface figure (default: the
        study's ``regions`` section, when its files exist).
    p_var : str
        p-values of the claims (default ``p_fwer``: max statistic over
        targets x layers); a family the store declares for the claim wins.
    explained : float
        Share of a region's r that cross-talk from a stronger region must
        explain for the region to be flagged as leakage.
    n_boot : int
        Stimulus-level bootstrap resamples of the layer intervals.
    argv : list of str, optional
        Command line recorded in the provenance (default ``sys.argv``).

    Returns
    -------
    Path
        The ``report.html`` written.
    """
    import mne

    if isinstance(ground_truth, (str, os.PathLike)):
        gt_path = Path(ground_truth)
        try:
            ground_truth = json.loads(gt_path.read_text())
        except (OSError, ValueError) as exc:
            raise InputError(f"{gt_path}: cannot read the ground truth ({exc})") from exc
    if not 0 < alpha < 1:
        raise InputError(f"alpha: must be in (0, 1), got {alpha}")
    sname = _scores_name(workspace, scores)
    ds = workspace.open(sname).load()
    if p_var not in ds:
        have = ", ".join(v for v in ds.data_vars if str(v).startswith("p")) or "none"
        raise InputError(f"p_var: scores store {sname!r} has no {p_var!r} (p-values: {have}); "
                         "run the encode stage with n_perm > 0")
    if anatomy is None:
        anatomy = _anatomy(study)
    summary = build_summary(ds, alpha=alpha, ground_truth=ground_truth)
    out_dir = Path(out_dir)
    for sub in ("figures", "tables"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    title = str(getattr(study, "name", None) or "xaffect study")
    rep = mne.Report(title=title, image_format="png", img_max_width=None, img_max_res=None, verbose="error")
    w = _Writer(rep, out_dir)
    names = workspace.names()  # read the catalog once
    d = _design(workspace, names, ds, p_var)
    n_text = _n_text(d)
    test = f"p: {d['family']} (α = {alpha})"

    # ------------------------------------------------------------- design
    desc = (getattr(study, "top", {}) or {}).get("description", "") if study is not None else ""
    rep.add_html(f"<p>{desc}</p>" * bool(desc) + f"<p>{n_text}.</p><p>Test: {test}.</p>"
                 f"<p>Workspace <code>{workspace.url}</code>, scores store <code>{sname}</code>: "
                 f"{ds.sizes['target']} targets, feature sets {', '.join(map(str, ds['feature_set'].values))}, "
                 f"elements {', '.join(map(str, ds['element'].values))}.</p>", title="Design", section="Study")
    if ground_truth is not None:
        cmp = summary["comparison"]
        n = cmp["null"]
        planted = pd.DataFrame(cmp["planted"])
        planted = planted[[c for c in ("target", "element", "feature_set", "layer", "recovered_layer",
                                       "preferred_element", "r", "p_fdr", "recovered") if c in planted]]
        # compare_with_ground_truth's "p_fdr" column holds the p of the family the comparison used
        family = "p_fwer" if "p_fwer" in ds else "p_fdr"
        planted = planted.rename(columns={"p_fdr": family})
        w.table(planted, "Planted vs recovered", "Study",
                note=f"Null targets significant under the family of the claims ({family}, feature set x layer x "
                     f"element x target): {n['n_significant']} of {n['n']} ({100 * n['fraction']:.0f} %).")

    # ------------------------------------------------------------ summary
    deeps, classicals = deep_feature_sets(ds), classical_feature_sets(ds)
    elements = [str(e) for e in ds["element"].values]
    region_maps = {}
    for kind in ("region", "isc"):
        got = region_values(ds, kind=kind, p_var=p_var)
        if got is not None:
            vals, p = got
            flags = _leakage(workspace, names, vals, p, alpha, explained) if kind == "region" else None
            region_maps[kind] = (vals, p, flags)
    summaries: dict[str, xr.Dataset] = {}        # each deep set's bootstrap, paid once for table and profiles
    if deeps:
        table = summary_table(ds, deep=deeps, p_var=p_var, alpha=alpha, ceiling=noise_ceiling(workspace) if "targets" in names else None,
                              n_boot=n_boot, summaries=summaries)
        flags = region_maps.get("region", (None, None, None))[2]
        if flags is not None and not table.empty:
            src = {f"region:{r}": f"leakage from {s}" for r, s, f in
                   zip(flags["region"].values, flags["leakage_from"].values, flags["leakage"].values) if f}
            table["leakage"] = [src.get(t, "") for t in table["target"]]
        shown = table[table["p"] < alpha] if (table["p"] < alpha).any() else table
        w.table(table, "Summary: best and centroid layer per target", "Summary",
                note=f"Per target, its best deep feature set and element: best layer (argmax of the fold-mean r) "
                     f"with its {n_boot}-resample stimulus-level bootstrap interval; centroid layer over the layers "
                     f"that beat their null, with its bootstrap interval; r at the best layer (optimistic) and "
                     f"r_cv (each fold at the layer chosen on the other folds); p at the best layer — {test}; "
                     f"r / noise ceiling where the target has one"
                     + ("; leakage: a region whose effect the cross-talk of the inverse from another "
                        "significant region explains (see Regions)" if "leakage" in table else "") + f". {n_text}. "
                     "Significant targets shown first.",
                show=shown)

    # ----------------------------------------------------- layer profiles
    for fs in deeps:
        prof = layer_profile(ds, feature_set=fs, p_var=p_var, alpha=alpha, n_boot=n_boot, best=summaries.get(fs))
        w.figure(plots.plot_layer_profiles(prof, max_panels=8), f"Layer profiles: {fs}",
                 f"{fs}: mean r per layer (band: corrected resampled t 95 % interval), grey: central 95 % of the "
                 f"permutation null, filled markers: layer significant ({test}), star: best layer with its "
                 f"bootstrap interval. 8 targets with the highest best r. {n_text}.", "Layer profiles")

    # ---------------------------------------------------- middle vs final
    rows = []
    for fs in deeps:
        best_el, best_n = elements[0], -1
        for el in elements:
            mvf = middle_vs_final(ds, feature_set=fs, element=el, alpha=alpha)
            df = mvf[["band_difference", "band_p", "band_p_fdr"]].to_dataframe().reset_index()
            df.insert(0, "element", el)
            df.insert(0, "feature_set", fs)
            df["band"] = f"{int(mvf['band_start'].values[0])}–{int(mvf['band_end'].values[0])}"
            rows.append(df)
            n_sig = int((mvf["band_p_fdr"] < alpha).sum())
            if n_sig > best_n:
                best_el, best_n, best_mvf = el, n_sig, mvf
        w.figure(plots.plot_middle_vs_final(best_mvf, targets=_top(best_mvf["band_difference"], 6)),
                 f"Middle vs final: {fs}",
                 f"{fs}, {best_el} (the element with most targets whose pre-set middle band beats the final layer; "
                 f"all elements in the CSV): r(layer) − r(final) per target, circles: layer significant (corrected "
                 f"resampled t, FDR), shade: the pre-set band. {n_text}.", "Middle vs final")
    if rows:
        mv = pd.concat(rows, ignore_index=True).sort_values("band_p")
        w.table(mv, "Middle vs final: pre-set band vs final layer", "Middle vs final",
                note=f"Band fixed in advance (the seed's middle by relative depth); corrected resampled t across "
                     f"folds, BH-FDR across targets (α = {alpha}).")

    # -------------------------------------------------- element contrast
    if "voice" in elements and "soundtrack" in elements:
        energy = _energy_ratio(workspace, names)
        rows = []
        for fs in deeps + classicals:
            ec = element_contrast(ds, feature_set=fs, energy_ratio=energy)
            keep = [v for v in ("mean_difference", "p", "p_fdr", "preferred", "energy_rho", "energy_p", "energy_n")
                    if v in ec]
            df = ec[keep].to_dataframe().reset_index()[["target", *keep]]
            df.insert(0, "feature_set", fs)
            rows.append(df)
            top = _top(-ec["p"], 12)
            w.figure(plots.plot_element_contrast(ec.sel(target=top)), f"Voice vs soundtrack: {fs}",
                     f"{fs}: r(voice) − r(soundtrack) per target (12 smallest p; layer chosen on inner folds), "
                     f"error bar: SD over folds" + (", right: against the held-out stimulus's energy ratio"
                                                    if energy is not None else "") + f". {n_text}.",
                     "Voice vs soundtrack")
        w.table(pd.concat(rows, ignore_index=True).sort_values("p"), "Voice vs soundtrack: all targets",
                "Voice vs soundtrack", note="Corrected resampled t across folds; BH-FDR across targets.")
    if deeps and classicals:
        el = "original" if "original" in elements else elements[0]
        dvc = deep_vs_classical(ds, deep=deeps[0], classical=classicals[0], element=el)
        w.figure(plots.plot_deep_vs_classical(dvc), f"Deep vs classical ({el})",
                 f"{deeps[0]} (layer chosen on inner folds) vs {classicals[0]}, element {el}: fold-mean r per "
                 f"target; grey: identity. {n_text}.", "Deep vs classical")

    # ------------------------------------------------------------ regions
    for kind, (vals, p, flags) in region_maps.items():
        sig = p < alpha
        leak = flags["leakage"] if flags is not None else None
        n_leak = int(leak.sum()) if leak is not None else 0
        leak_text = (f" L: leakage — significant, but {explained:.0%} or more of its r is what the cross-talk of "
                     f"the inverse used predicts from another significant region that it explains less well in "
                     f"return ({n_leak} of {int(sig.sum())} significant regions)."
                     if flags is not None else "")
        w.figure(plots.plot_regions(vals, significant=sig, leakage=leak, title=f"best mean r ({kind}), p < {alpha}"),
                 f"Regions: {kind} targets",
                 f"Best fold-mean r per region, shown where significant ({test}); blank: not significant."
                 f"{leak_text} {n_text}.", "Regions")
        if anatomy is not None:
            w.figure(plots.plot_regions_surface(vals.where(sig), subjects_dir=anatomy[0], subject=anatomy[1],
                                                title=f"best mean r ({kind}), p < {alpha}"),
                     f"Regions on the cortex: {kind}", f"The same map on {anatomy[1]}'s cortex; grey: not "
                     f"significant.", "Regions")
        table = region_table(vals, p, alpha, flags)
        w.table(table, f"Regions: {kind} table", "Regions", show=table[table["significant"]],
                note="Significant regions first by r" + ("; leakage_from: the stronger region whose cross-talk "
                                                         "explains the effect" if flags is not None else "") + ".")

    # ------------------------------------------------------------ targets
    if "synchrony" in names:
        from ..synchrony import plot_isc

        w.figure(plot_isc(workspace.open("synchrony").load()), "Inter-subject correlation",
                 f"Sliding-window inter-subject correlation, region × time. {n_text}.", "Targets")
    if "targets" in names:
        from ..synchrony import plot_ratings

        w.figure(plot_ratings(workspace.open("targets").load()), "Ratings",
                 "Continuous ratings with the inter-rater band.", "Targets")

    # ------------------------------------------- analysis.* stores (issue 17)
    add_analysis_sections(w, workspace, names, alpha=alpha)

    # --------------------------------------------------------- provenance
    run = run_provenance(argv)
    run.to_csv(out_dir / "tables" / "run.csv", index=False)
    prov = provenance_table(workspace)
    prov.to_csv(out_dir / "tables" / "provenance.csv", index=False)
    w.tables += ["tables/run.csv", "tables/provenance.csv"]
    links = "".join(f"<li><a href='{f}' download>{f}</a></li>" for f in w.tables + w.figures)
    rep.add_html(_CSS + to_html(run) + "<details><summary>Every store: stage, identity, inputs, parameters, "
                 f"versions ({len(prov)} stores)</summary>" + to_html(prov) + "</details>"
                 f"<details><summary>Files beside this page ({len(w.tables)} tables, {len(w.figures)} figures)"
                 f"</summary><ul>{links}</ul></details>", title="Provenance", section="Provenance")

    path = out_dir / "report.html"
    tmp = out_dir / "report.tmp.html"
    rep.save(tmp, open_browser=False, overwrite=True, verbose="error")
    os.replace(tmp, path)
    summary["report"] = {"figures": w.figures, "tables": w.tables, "rows_shown": w.rows_shown, "p_var": p_var}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=_json_default))
    return path


def _top(values: xr.DataArray, n: int) -> list[str]:
    """The ``n`` targets with the largest finite ``values``."""
    v = np.nan_to_num(np.asarray(values.values, dtype=float), nan=-np.inf)
    return [str(values["target"].values[i]) for i in np.argsort(-v)[:n]]


def _json_default(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    raise TypeError(f"not JSON-able: {type(v).__name__}")
