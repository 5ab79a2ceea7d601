"""Differential encoding and deep-vs-classical on clips: false "different" rates under the null, power on a
plant, and the time of ``differential_encoding`` at the fMRI grid's scale.

* ``--differential``: pairs of targets from real LOSO nested ridge fits (``tests/test_analysis_differential.py``'s
  ``simulate_pairs``); under the null both targets of a pair follow the same layer's source (or none) with
  independent AR(1) noise -- strong, weak, flat, b half or a quarter as predictable, AR phi 0.9 (where the swap
  test alone is liberal: a noise-dominated b); planted: layers 2 vs 3 and 1 vs 4. "Different best layers": the
  p reported (swap test, or the bootstrap where the targets are not comparably predictable), the swap test alone
  and the stimulus-bootstrap p alone (main at f782dc4's test), with Clopper-Pearson 95 % intervals. Rates
  pooled over data sets.
* ``--clips``: ``deep_vs_classical_clips`` on equally informative deep layers and descriptors (null) and on a
  planted deep advantage, before (exact McNemar on clips, the function of commit 26e1411 loaded from git) and
  after (corrected resampled t over repeated cross-validation), same data, one process.
* ``--speed``: ``differential_encoding`` on 400 region pairs x 23 layers x 10 folds (exact swaps) and 16 folds
  (4096 random swaps), n_boot 2000: median of 3, the swap test and the bootstrap timed alone, peak traced memory.

Run: ``.venv/bin/python benchmarks/bench_differential.py --differential --clips --speed [--reps N --pairs M]``.
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

from scipy import stats  # noqa: E402

from xaffect.analysis import differential_encoding  # noqa: E402
from xaffect.analysis._resample import crossing_swap_test  # noqa: E402
from xaffect.analysis.differential import _best_bootstrap  # noqa: E402
from xaffect.analysis.clips import deep_vs_classical_clips  # noqa: E402

ALPHA = 0.05


def _load():
    return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"


def _rate(hits: np.ndarray) -> str:
    k, n = int(hits.sum()), hits.size
    ci = stats.binomtest(k, n).proportion_ci(0.95)                     # Clopper-Pearson
    return f"{100 * k / n:.1f} % [{100 * ci.low:.1f}, {100 * ci.high:.1f}]"


def differential(reps: int, pairs: int) -> None:
    from test_analysis_differential import _pairs, simulate_pairs

    regimes = {"null: same driving layer, strong signal": dict(drivers=(2, 2)),
               "null: same layer, b half as predictable": dict(drivers=(2, 2), scale_b=0.5),
               "null: same layer, weak signal (argmax wanders)": dict(drivers=(2, 2), signal=0.2, stim_len=40),
               "null: no driving layer (flat profiles)": dict(drivers=(2, 2), signal=0.0),
               "null: same layer, AR phi 0.9 noise": dict(drivers=(2, 2), signal=0.3, phi=0.9),
               "null: same layer, b half as predictable, AR phi 0.9": dict(drivers=(2, 2), scale_b=0.5, signal=0.3,
                                                                          phi=0.9),
               "null: same layer, b a quarter as predictable, strong a": dict(drivers=(2, 2), scale_b=0.25,
                                                                             signal=1.0),
               "null: same layer, b a quarter as predictable": dict(drivers=(2, 2), scale_b=0.25),
               "planted 2 vs 3 (adjacent), moderate (signal 0.5)": dict(drivers=(2, 3), signal=0.5),
               "planted 1 vs 4 (distant), moderate": dict(drivers=(1, 4), signal=0.5),
               "planted 2 vs 3, strong (signal 1.0)": dict(drivers=(2, 3), signal=1.0)}
    print("| regime | pairs | best layers differ: p_best_differs (after) | swap test alone | stimulus bootstrap alone "
          "(before) | bootstrap used | best r_cv differs | profiles differ (Holm over layers) | one layer differs "
          "(uncorrected, per layer) | point estimates of the best layer differ |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    times = []
    for name, kw in regimes.items():
        kw = dict(kw)
        drivers = kw.pop("drivers")
        rows = []
        for s in range(reps):
            ds = simulate_pairs(1000 + s, [drivers] * pairs, **kw)
            t0 = time.perf_counter()
            res = differential_encoding(ds, *_pairs(ds), n_boot=1000, seed=s, family=("layer",))
            times.append(time.perf_counter() - t0)
            rows.append(np.column_stack([res["p_best_differs"] < ALPHA, res["p_best_swap"] < ALPHA,
                                         res["p_best_bootstrap"] < ALPHA, res["best_test_used"] == "bootstrap",
                                         res["p_r_cv"] < ALPHA,
                                         res["differs"].any("layer"), (res["p"] < ALPHA).mean("layer"),
                                         res["best_difference"] != 0]))
        r = np.concatenate(rows)
        cells = [_rate(r[:, k].astype(bool)) for k in range(3)] + [f"{100 * v:.1f} %" for v in r[:, 3:].mean(0)]
        print(f"| {name} | {r.shape[0]} | " + " | ".join(cells) + " |")
    print(f"differential_encoding on {pairs} pairs x 6 layers x 10 folds: median {np.median(times):.2f} s; {_load()}")


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
    n_pairs, n_layers = 400, 23
    for n_folds in (10, 16):
        r = rng.normal(0.1, 0.1, (1, n_layers, 1, 2 * n_pairs, n_folds))
        regions = [f"region:p{i:03d}-{h}" for h in ("lh", "rh") for i in range(n_pairs)]
        ds = xr.Dataset({"r": (("feature_set", "layer", "element", "target", "fold"), r)},
                        coords={"feature_set": ["vggish"], "layer": np.arange(1, n_layers + 1),
                                "element": ["original"], "target": regions,
                                "fold": [f"s{k}" for k in range(n_folds)]})
        times, peaks, t_swap, t_boot = [], [], [], []
        for _ in range(repeats):
            tracemalloc.start()
            t0 = time.perf_counter()
            res = differential_encoding(ds, regions[:n_pairs], regions[n_pairs:], n_boot=2000)
            times.append(time.perf_counter() - t0)
            peaks.append(tracemalloc.get_traced_memory()[1] / 2 ** 20)
            tracemalloc.stop()
            a, b = res["r_a"].values, res["r_b"].values
            t0 = time.perf_counter()
            crossing_swap_test(a, b)
            t1 = time.perf_counter()
            _best_bootstrap(a, b, res["layer"].values, n_boot=2000, seed=0)
            t_swap.append(t1 - t0)
            t_boot.append(time.perf_counter() - t1)
        print(f"differential_encoding, {n_pairs} region pairs x {n_layers} layers x {n_folds} folds, n_boot 2000, "
              f"{res.attrs['n_swaps']} swaps ({'exact' if res.attrs['swaps_exact'] else 'random'}): median "
              f"{np.median(times):.2f} s (of {repeats}), of which the swap test {np.median(t_swap):.2f} s and the "
              f"best-layer bootstrap {np.median(t_boot):.2f} s; peak traced memory {max(peaks):.0f} MiB; {_load()}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--differential", action="store_true")
    ap.add_argument("--clips", action="store_true")
    ap.add_argument("--speed", action="store_true")
    ap.add_argument("--reps", type=int, default=12, help="data sets per regime (differential)")
    ap.add_argument("--pairs", type=int, default=50, help="pairs per data set (differential)")
    ap.add_argument("--clip-reps", type=int, default=200)
    ap.add_argument("--n-repeats", type=int, default=5, help="CV repeats of deep_vs_classical_clips")
    args = ap.parse_args(argv)
    if args.differential:
        differential(args.reps, args.pairs)
    if args.clips:
        clips(args.clip_reps, args.n_repeats)
    if args.speed:
        speed()


if __name__ == "__main__":
    main()
