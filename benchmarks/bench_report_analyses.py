"""The ``analyses`` stage and its report sections: time and peak memory (issue 17).

On the workspace of ``tests/test_analysis_stage.py`` (50 Schaefer-100 parcels
of the left hemisphere, 3 subjects, 2 songs of 60 s, 24 clips, 8 layers) with
the stage's default null sizes (1000 Moran maps, 1000 surrogates and
bootstrap resamples, 1000 time shifts at most, 1000 label permutations), in
one process, ``--repeat`` interleaved rounds, medians:

* ``compute``: the analysis alone (``AnalysisSpec.build``: read its inputs,
  run the library function) -- what a user calling :mod:`xaffect.analysis`
  by hand would pay;
* ``as a store``: the same through the stage (``Workspace.run_stage`` forced:
  build + Zarr write + provenance + catalog commit); the ratio is the store's overhead;
* ``skip``: the stage when the store is current (identity check only);
* ``section``: its report section (read the store, figure as PNG + SVG, table).

Peak memory with ``tracemalloc`` (numpy allocations included) in one extra round, not timed. Usage:
``python benchmarks/bench_report_analyses.py [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

DEFAULTS = """\
analyses:
  gradient: {noise_map: reliability}
  leadlag: {ratings: [enjoyment], lags: [-6, 6]}
  renditions: {features: features.vggish, pairs: [[song_a, song_b]], window: 10}
  clips: {features: features.vggish, classical: features.lld, labels: clips.tsv, label: quadrant, n_splits: 4}
"""


def measure(fn, *, trace: bool):
    """(seconds, peak MiB); tracemalloc slows many small allocations (the surface figure ~10x), so timed
    rounds run untraced and one more round is traced for the peak."""
    if trace:
        tracemalloc.start()
    t = time.perf_counter()
    fn()
    wall = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1] / 2 ** 20 if trace else float("nan")
    if trace:
        tracemalloc.stop()
    return wall, peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import mne

    import test_analysis_stage as t
    from xaffect.analysis.analyses_stage import ANALYSES
    from xaffect.analysis.report import _Writer
    from xaffect.study import load_study, run_study

    class Factory:
        def mktemp(self, name):
            return Path(tempfile.mkdtemp(prefix=name))

    build_fixture = getattr(t.study_dir, "__wrapped__", None) or t.study_dir.__pytest_wrapped__.obj
    root = build_fixture(Factory())
    (root / "study.yaml").write_text((root / "head.yaml").read_text() + DEFAULTS)
    print(f"load average at start: {os.getloadavg()[0]:.1f} (2 shared cores)")
    study = load_study(root / "study.yaml")
    run_study(study, stages=["analyses"], progress=False, echo=lambda *a: None)   # warm imports and stores
    ws = study.workspace
    sec = study.section("analyses")
    out = root / "sections"
    for sub in ("figures", "tables"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    rows: dict[str, dict[str, list]] = {n: {"compute": [], "store": [], "skip": [], "section": []} for n in sec}
    for rnd in range(args.repeat + 1):
        trace = rnd == args.repeat          # the last round: peak memory only
        for name, cfg in sec.items():
            spec = ANALYSES[name]
            params = {"analysis": name, **{k: (str(v) if isinstance(v, Path) else v) for k, v in cfg.items()},
                      "rate": float(study.rate)}
            inputs = spec.inputs(study, cfg)
            rows[name]["compute"].append(measure(trace=trace, fn=lambda: spec.build(study, cfg)))
            rows[name]["store"].append(measure(trace=trace, fn=lambda: ws.run_stage(
                f"analysis.{name}", lambda: spec.build(study, cfg), stage="analyses", params=params, inputs=inputs,
                force=True, progress=False)))
            rows[name]["skip"].append(measure(trace=trace, fn=lambda: ws.run_stage(
                f"analysis.{name}", lambda: spec.build(study, cfg), stage="analyses", params=params, inputs=inputs,
                progress=False)))
            w = _Writer(mne.Report(title="bench", verbose="error"), out)
            ds = ws.open(f"analysis.{name}")
            rows[name]["section"].append(measure(trace=trace, fn=lambda: spec.section(w, ds.load(), alpha=0.05)))
    print(f"load average at end: {os.getloadavg()[0]:.1f}; medians of {args.repeat}")
    print("| analysis | compute | as a store (ratio) | skip when current | report section | peak memory "
          "compute / store / section |")
    print("|---|---|---|---|---|---|")
    for name, r in rows.items():
        med = {k: statistics.median(x[0] for x in v[:-1]) for k, v in r.items()}
        peak = {k: v[-1][1] for k, v in r.items()}
        print(f"| {name} | {med['compute']:.2f} s | {med['store']:.2f} s ({med['store'] / med['compute']:.2f}x) | "
              f"{med['skip']:.2f} s | {med['section']:.2f} s | {peak['compute']:.0f} / {peak['store']:.0f} / "
              f"{peak['section']:.0f} MiB |")


if __name__ == "__main__":
    main()
