"""Differential encoding and deep-vs-classical on clips: false "different" rates under the null, power on a
plant, and the time of ``differential_encoding`` at the fMRI grid's scale.

* ``--differential``: pairs of targets from real LOSO nested ridge fits (``tests/test_analysis_differential.py``'s
  ``simulate_pairs``); under the null both targets of a pair follow the same layer's source with independent
  AR(1) noise, in a strong and a weak regime; planted: layers 1 vs 4. Rates are pooled over data sets.
* ``--clips``: ``deep_vs_classical_clips`` on equally informative deep layers and descriptors (null) and on a
  planted deep advantage, before (exact McNemar on clips, the function of commit 26e1411 loaded from git) and
  after (corrected resampled t over repeated cross-validation), same data, one process.
* ``--speed``: ``differential_encoding`` on 400 region pairs x 23 layers x 10 folds (n_boot 2000): median
  of 3, peak traced memory.

Run: ``.venv/bin/python benchmarks/bench_differential.py --differential --clips --speed [--reps N]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import tracemalloc
import types

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

import xarray as xr  # noqa: E402

from xaffect.analysis import differential_encoding  # noqa: E402
from xaffect.analysis.clips import deep_vs_classical_clips  # noqa: E402

ALPHA = 0.05


def _load():
    return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"


def differential(reps: int) -> None:
    from test_analysis_differential import _pairs, simulate_pairs

    regimes = {"null, strong signal": dict(drivers=(2, 2)), "null, weak signal (argmax wanders)":
               dict(drivers=(2, 2), signal=0.2, stim_len=40), "null, no driving layer":
               dict(drivers=(2, 2), signal=0.0),
               "null for the best layer, b at half the signal (profiles do differ)": dict(drivers=(2, 2), scale_b=0.5),
               "planted 1 vs 4, moderate": dict(drivers=(1, 4), signal=0.5),
               "planted 1 vs 4, strong": dict(drivers=(1, 4), signal=1.0),
               "planted 2 vs 3 (neighbours), strong": dict(drivers=(2, 3), signal=1.0)}
    print(f"| regime | pairs | best layers differ (p < .05) | best r_cv differs | profiles differ (Holm over "
          f"layers) | one layer differs (uncorrected, per layer) | point estimates differ |")
    print("|---|---|---|---|---|---|---|")
    for name, kw in regimes.items():
        kw = dict(kw)
        drivers = kw.pop("drivers")
        rows = []
        for s in range(reps):
            ds = simulate_pairs(1000 + s, [drivers] * 25, **kw)
            res = differential_encoding(ds, *_pairs(ds), n_boot=1000, seed=s, family=("layer",))
            rows.append(np.column_stack([res["p_best_differs"] < ALPHA, res["p_r_cv"] < ALPHA,
                                         res["differs"].any("layer"), (res["p"] < ALPHA).mean("layer"),
                                         res["best_difference"] != 0]))
        r = np.concatenate(rows)
        print(f"| {name} | {r.shape[0]} | " + " | ".join(f"{100 * v:.1f} %" for v in r.mean(0)) + " |")
    print(_load())


def _old_clips():
    """``deep_vs_classical_clips`` as of commit 26e1411 (exact McNemar), from git."""
    src = subprocess.run(["git", "-C", HERE, "show", "26e1411:xaffect/analysis/clips.py"], check=True,
                         capture_output=True, text=True).stdout
    mod = types.ModuleType("xaffect.analysis._clips_26e1411")
    mod.__package__ = "xaffect.analysis"
    exec(compile(src, "clips_26e1411.py", "exec"), mod.__dict__)
    return mod.deep_vs_classical_clips


def clips(reps: int, n_repeats: int) -> None:
    from test_analysis_clips import _deep_and_classical

    old = _old_clips()
    for name, (deep, cls) in {"null (equal information)": (0.6, 0.6), "planted deep advantage": (1.0, 0.3)}.items():
        rng = np.random.default_rng(7)
        hits_old, hits_new, t_old, t_new = [], [], [], []
        for k in range(reps):
            pooled, y, classical = _deep_and_classical(rng, 40, deep, cls, n_layers=2, planted=[0, 1])
            t0 = time.perf_counter()
            hits_old.append(old(pooled, y, classical, n_splits=4, inner_splits=3, seed=k).p.item() < ALPHA)
            t1 = time.perf_counter()
            hits_new.append(deep_vs_classical_clips(pooled, y, classical, n_splits=4, inner_splits=3,
                                                    n_repeats=n_repeats, seed=k).p.item() < ALPHA)
            t_old.append(t1 - t0)
            t_new.append(time.perf_counter() - t1)
        print(f"{name}: {reps} data sets of 40 clips, 4 folds x 3 inner; McNemar {100 * np.mean(hits_old):.1f} % "
              f"({np.median(t_old):.2f} s/call), corrected t over {n_repeats} repeats {100 * np.mean(hits_new):.1f} % "
              f"({np.median(t_new):.2f} s/call)")
    print(_load())


def speed(repeats: int = 3) -> None:
    rng = np.random.default_rng(0)
    n_pairs, n_layers, n_folds = 400, 23, 10
    r = rng.normal(0.1, 0.1, (1, n_layers, 1, 2 * n_pairs, n_folds))
    regions = [f"region:p{i:03d}-{h}" for h in ("lh", "rh") for i in range(n_pairs)]
    ds = xr.Dataset({"r": (("feature_set", "layer", "element", "target", "fold"), r)},
                    coords={"feature_set": ["vggish"], "layer": np.arange(1, n_layers + 1), "element": ["original"],
                            "target": regions, "fold": [f"s{k}" for k in range(n_folds)]})
    times, peaks = [], []
    for _ in range(repeats):
        tracemalloc.start()
        t0 = time.perf_counter()
        differential_encoding(ds, regions[:n_pairs], regions[n_pairs:], n_boot=2000)
        times.append(time.perf_counter() - t0)
        peaks.append(tracemalloc.get_traced_memory()[1] / 2 ** 20)
        tracemalloc.stop()
    print(f"differential_encoding, {n_pairs} region pairs x {n_layers} layers x {n_folds} folds, n_boot 2000: "
          f"median {np.median(times):.2f} s (of {repeats}), peak traced memory {max(peaks):.0f} MiB; {_load()}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--differential", action="store_true")
    ap.add_argument("--clips", action="store_true")
    ap.add_argument("--speed", action="store_true")
    ap.add_argument("--reps", type=int, default=8, help="data sets per regime (differential: 25 pairs each)")
    ap.add_argument("--clip-reps", type=int, default=200)
    ap.add_argument("--n-repeats", type=int, default=5, help="CV repeats of deep_vs_classical_clips")
    args = ap.parse_args(argv)
    if args.differential:
        differential(args.reps)
    if args.clips:
        clips(args.clip_reps, args.n_repeats)
    if args.speed:
        speed()


if __name__ == "__main__":
    main()
