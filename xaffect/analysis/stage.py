"""The ``report`` stage: ``report.html`` (+ ``figures/*.svg``, ``tables/*.csv``) and ``summary.json``.

Writes into ``<workspace>/report/`` (or the folder named by ``report.out``).
The report is not a store; it records the identity of the stores it read
in ``summary.json`` and is skipped when that identity is current.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..config import Field, StageSpec
from ..errors import StoreError
from .report import _scores_name, _store_names, write_report

__all__ = ["STAGES", "CLI_COMMANDS", "run_report"]

CONFIG = {
    "alpha": Field(float, default=0.05, help="significance level"),
    "p_var": Field(str, default="p_fwer", help="p-values of the claims (p_fwer: max statistic over targets x layers)"),
    "explained": Field(float, default=0.8, help="share of a region's r that cross-talk must explain to flag leakage"),
    "n_boot": Field(int, default=1000, help="stimulus-level bootstrap resamples of the layer intervals"),
    "scores": Field(str, default=None, help="scores store to report (default: 'scores')"),
    "out": Field(Path, default=None, help="output folder (default: <workspace>/report)"),
    "ground_truth": Field(Path, default=None, must_exist=True,
                          help="ground_truth.json of a simulated study (default: the study's top-level key)"),
}


def _out_dir(study) -> Path:
    sec = study.section("report")
    if sec.get("out") is not None:
        return Path(sec["out"])
    ws = study.workspace
    if not ws._local:
        return study.resolve("report")
    return Path(ws.root) / "report"


def run_report(study, *, force: bool = False, progress: bool = True) -> list[str]:
    """Write the study's report; returns the stores it read."""
    sec = study.section("report")
    ws = study.workspace
    sname = _scores_name(ws, sec.get("scores"))
    gt = sec.get("ground_truth") or study.top.get("ground_truth")
    inputs = [n for n in _store_names(ws)]
    params = {"alpha": sec["alpha"], "scores": sname, "ground_truth": str(gt) if gt else None, "p_var": sec["p_var"],
              "explained": sec["explained"], "n_boot": sec["n_boot"]}
    ident = ws.identity(stage="report", params=params, inputs=inputs + ([str(gt)] if gt else []))
    out = _out_dir(study)
    summary = out / "summary.json"
    if not force and (out / "report.html").exists() and summary.exists():
        try:
            if json.loads(summary.read_text()).get("identity") == ident:
                return inputs
        except ValueError:
            pass
    write_report(ws, out, study=study, ground_truth=gt, alpha=sec["alpha"], scores=sname, p_var=sec["p_var"],
                 explained=sec["explained"], n_boot=sec["n_boot"])
    data = json.loads(summary.read_text())
    data["identity"] = ident
    summary.write_text(json.dumps(data, indent=2))
    if progress:
        click.echo(f"report: {out / 'report.html'}", err=True)
    return inputs


STAGES = {"report": StageSpec(config=CONFIG, run=run_report, help="HTML report and summary.json",
                              requires=("encode",))}


@click.command("report-html")
@click.argument("workspace")
@click.option("--out", "out", default=None, help="output folder (default: WORKSPACE/report)")
@click.option("--ground-truth", "ground_truth", default=None, type=click.Path(exists=True, dir_okay=False),
              help="ground_truth.json to compare with")
@click.option("--alpha", default=0.05, show_default=True, type=float, help="significance level")
@click.option("--p-var", "p_var", default="p_fwer", show_default=True, help="p-values of the claims")
def report_command(workspace: str, out: str | None, ground_truth: str | None, alpha: float, p_var: str) -> None:
    """Write report.html and summary.json for a WORKSPACE folder's scores."""
    from ..store.workspace import Workspace

    ws = Workspace(workspace)
    if out is None:
        if not ws._local:
            raise StoreError(f"{workspace}: remote workspace; give --out")
        out = str(Path(ws.root) / "report")
    path = write_report(ws, out, ground_truth=ground_truth, alpha=alpha, p_var=p_var)
    click.echo(str(path))


CLI_COMMANDS = [report_command]
