"""``xaffect demo``: simulate a study with a known answer and run every stage on it."""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path

import click

__all__ = ["run_demo", "CLI_COMMANDS"]


def run_demo(out: str | Path = "xaffect-demo", *, seed: int = 0, quick: bool = False, model: str | None = None,
             scheduler: str = "threads", echo=print, progress: bool = True) -> dict:
    """Simulate a study, run every stage, compare planted and recovered effects.

    Parameters
    ----------
    out : path
        Folder for the simulated study, its workspace and its report.
    seed : int
        Seed of the simulation.
    quick : bool
        A smaller study (fewer subjects, shorter stimuli, a smaller model).
    model : str, optional
        A Hugging Face id or local directory of real weights for the deep
        feature set; by default randomly initialised models of the real
        architectures are used (weights cannot be downloaded here).
    scheduler : str
        dask scheduler (see :func:`xaffect.use_scheduler`).

    Returns
    -------
    dict
        ``{"study", "report", "summary", "ground_truth", "recovered", "seconds"}``.
    """
    from ..store import use_scheduler
    from ..study import load_study, run_study
    from .simulate import simulate_study

    t0 = time.perf_counter()
    out = Path(out).expanduser().resolve()
    echo(f"simulating a study in {out} (seed {seed}{', quick' if quick else ''}) …")
    study_path = simulate_study(out, seed=seed, quick=quick, model=model)
    study = load_study(study_path)
    if model is None:
        echo("note: deep features come from RANDOMLY INITIALISED models of the real architectures "
             "(no weights can be downloaded here); pass --model ID_OR_PATH for real weights.")
    with use_scheduler(scheduler):
        run_study(study, progress=progress, echo=echo)
    report_dir = Path(study.workspace.url) / "report"
    summary = json.loads((report_dir / "summary.json").read_text())
    truth = json.loads(Path(study.top["ground_truth"] or out / "ground_truth.json").read_text())
    result = {"study": str(study_path), "report": str(report_dir / "report.html"), "summary": summary,
              "ground_truth": truth, "seconds": time.perf_counter() - t0}
    result["comparison"] = compare_with_truth(summary, truth)
    return result


def compare_with_truth(summary: dict, truth: dict) -> dict:
    """Match recovered effects to planted ones.

    A planted effect counts as recovered when its target is significant after
    FDR for the planted element and feature set, with the best layer within
    ±1 of the planted one (deep sets) or on the classical set.
    """
    recovered = summary.get("recovered", [])
    rows = []
    for p in truth["planted"]:
        hits = [r for r in recovered if r["target"] == p["target"]]
        best = max(hits, key=lambda r: r.get("r", 0), default=None)
        ok = bool(best) and best["element"] == p["element"] and best["feature_set"] == p["feature_set"] and (
            p["layer"] is None or (best["layer"] is not None and abs(best["layer"] - p["layer"]) <= 1))
        rows.append({"planted": p, "best": best, "recovered": ok})
    nulls = set(truth.get("null_targets", []))
    false_pos = sorted({r["target"] for r in recovered if r["target"] in nulls})
    return {"effects": rows, "n_recovered": sum(r["recovered"] for r in rows), "n_planted": len(rows),
            "false_positive_targets": false_pos,
            "false_positive_rate": len(false_pos) / max(len(nulls), 1)}


def _fmt(effect: dict | None) -> str:
    if not effect:
        return "—"
    layer = "classical" if effect.get("layer") in (None, -1) else f"layer {effect['layer']}"
    extra = ""
    if "r" in effect:
        extra = f"  r={effect['r']:.2f} p_fdr={effect.get('p_fdr', float('nan')):.3g}"
    return f"{effect['feature_set']}/{effect['element']}/{layer}{extra}"


@click.command("demo")
@click.option("--out", default="xaffect-demo", show_default=True, help="Folder for the simulated study and report.")
@click.option("--seed", default=0, show_default=True, help="Simulation seed.")
@click.option("--quick", is_flag=True, help="A smaller study that finishes in about two minutes.")
@click.option("--model", default=None, help="Hugging Face id or local path of real weights (default: random init).")
@click.option("--scheduler", default="threads", show_default=True, help="dask scheduler or tcp:// address.")
def demo_command(out: str, seed: int, quick: bool, model: str | None, scheduler: str) -> None:
    """Simulate a study with planted effects, run every stage, report planted vs recovered."""
    from ..cli import _user_errors

    @_user_errors
    def _go():
        res = run_demo(out, seed=seed, quick=quick, model=model, scheduler=scheduler, echo=click.echo)
        cmp = res["comparison"]
        click.echo("")
        click.echo("planted effect                              → best recovered")
        for row in cmp["effects"]:
            mark = "✓" if row["recovered"] else "✗"
            p = row["planted"]
            click.echo(f" {mark} {p['target']:<24s} {_fmt(p):<34s} → {_fmt(row['best'])}")
        click.echo(f"recovered {cmp['n_recovered']}/{cmp['n_planted']} planted effects; "
                   f"null targets significant after FDR: {len(cmp['false_positive_targets'])} "
                   f"({100 * cmp['false_positive_rate']:.0f} %)")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        click.echo(f"wall time {res['seconds']:.0f} s, peak memory {peak:.0f} MiB")
        click.echo(f"report: {res['report']}")

    _go()


CLI_COMMANDS = [demo_command]
