"""Report size and build time: the report before issue 13 (commit 4d9b5bc) against the current one.

Both build from the same workspace (e.g. the demo's, ``xaffect demo --quick --out /tmp/report-demo``),
in this process, alternating, ``--repeat`` times each; the median build time is reported. Page height
(px at 1400 px width) and table rows are read from the page as headless Chromium lays it out
(``document.documentElement.scrollHeight``, ``<tr>`` count), when ``chromium`` is on the PATH.

    python benchmarks/bench_report.py /tmp/report-demo/study.yaml --ground-truth /tmp/report-demo/ground_truth.json

The old report is read with ``git show 4d9b5bc:xaffect/analysis/report.py`` and imported inside
``xaffect.analysis`` (it calls the analyses by the names they kept).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BEFORE = "4d9b5bc"


def _old_report_module():
    root = Path(__file__).resolve().parents[1]
    src = subprocess.run(["git", "show", f"{BEFORE}:xaffect/analysis/report.py"], cwd=root, check=True,
                         capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "report_before.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("xaffect.analysis._report_before", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def page_size(html_path: Path) -> dict:
    """Height (px) at 1400 px width and ``<tr>`` rows, through headless Chromium (None without it)."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    html = html_path.read_text(encoding="utf-8")
    rows = len(re.findall(r"<tr[\s>]", html))
    if exe is None:
        return {"height_px": None, "rows": rows}
    js = ("<script>window.addEventListener('load',()=>{setTimeout(()=>{document.body.setAttribute('data-h',"
          "String(document.documentElement.scrollHeight));},300)});</script>")
    probe = html_path.with_name("_probe.html")
    i = html.rfind("</body>")
    probe.write_text(html[:i] + js + html[i:], encoding="utf-8")
    try:
        dom = subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                              "--disable-background-networking", "--disable-component-update", "--disable-sync",
                              f"--user-data-dir={tempfile.mkdtemp()}", "--window-size=1400,2000",
                              "--virtual-time-budget=5000", "--dump-dom", probe.resolve().as_uri()],
                             capture_output=True, text=True, timeout=300).stdout
    finally:
        probe.unlink()
    m = re.search(r'data-h="(\d+)"', dom)
    return {"height_px": int(m.group(1)) if m else None, "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("study", help="study.yaml of a study whose workspace holds scores")
    ap.add_argument("--ground-truth", default=None)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--out", default=None, help="folder for the two reports (default: a temporary one)")
    args = ap.parse_args()

    from xaffect.analysis import report as new
    from xaffect.study import load_study

    old = _old_report_module()
    study = load_study(args.study)
    ws = study.workspace
    out = Path(args.out or tempfile.mkdtemp())
    times: dict[str, list[float]] = {"before": [], "after": []}
    for _ in range(args.repeat):
        for name, mod in (("before", old), ("after", new)):
            t = time.perf_counter()
            mod.write_report(ws, out / name, study=study, ground_truth=args.ground_truth)
            times[name].append(time.perf_counter() - t)
    for name in ("before", "after"):
        size = page_size(out / name / "report.html")
        files = sum(1 for _ in (out / name).rglob("*") if _.is_file())
        print(f"{name:>6}: build {statistics.median(times[name]):6.1f} s (median of {args.repeat}), "
              f"height {size['height_px']} px at 1400 px, {size['rows']} table rows, "
              f"{os.path.getsize(out / name / 'report.html') / 1e6:.1f} MB html, {files} files")
    print(f"load average: {os.getloadavg()[0]:.1f}; reports in {out}")


if __name__ == "__main__":
    main()
