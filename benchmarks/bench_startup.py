"""Start-up time of the command line and of ``import xaffect`` (median of N fresh processes).

Usage: ``python benchmarks/bench_startup.py [--repeat 5]``. Prints the wall
time of each command, bare Python's start-up for comparison, the load average
before and after, and which heavy modules each command imported.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

HEAVY = ("scipy.signal", "pandas", "matplotlib", "torch", "mne", "xarray", "dask", "zarr", "sklearn")
CLI = "import sys; from xaffect.cli import main; sys.argv = ['xaffect', *sys.argv[1:]]; main()"
PROBES = {
    "xaffect --help": [sys.executable, "-c", CLI, "--help"],
    "xaffect demo --help": [sys.executable, "-c", CLI, "demo", "--help"],
    "xaffect report-html --help": [sys.executable, "-c", CLI, "report-html", "--help"],
    "import xaffect": [sys.executable, "-c", "import xaffect"],
    "python -c pass": [sys.executable, "-c", "pass"],
}


def _heavy_imported(argv: list[str]) -> list[str]:
    code = argv[2].replace("main()", "main(standalone_mode=False)") if "main()" in argv[2] else argv[2]
    probe = f"{code}\nimport sys; print('HEAVY=' + ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([argv[0], "-c", probe, *argv[3:]], capture_output=True, text=True).stdout
    return [m for m in out.rpartition("HEAVY=")[2].strip().split(",") if m]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    for name, argv in PROBES.items():
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            subprocess.run(argv, capture_output=True, check=True)
            times.append(time.perf_counter() - t0)
        heavy = _heavy_imported(argv) if name != "python -c pass" else []
        print(f"{name:28s} median {statistics.median(times):.3f} s  "
              f"({' '.join(f'{t:.2f}' for t in times)})  heavy imported: {', '.join(heavy) or 'none'}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
