"""Benchmark: one voxelwise-scale ridge cell, xaffect vs himalaya, same data, same folds.

The issue's cell: 3 delays x 768 units (2304 features), 20 000 targets,
3600 samples (15 stimuli x 240 s), 21 alphas, inner leave-one-stimulus-out.
Both sides fit ``RidgeCV`` with the same inner folds; xaffect also runs the
grid's unit of work (one outer fold: inner CV by the hat-matrix identity,
refit, held-out r). Medians over repeats, ratio, and the peak of memory
allocated during each side (tracemalloc, numpy buffers included).

    python benchmarks/bench_ridge.py           # scaled down (a few minutes)
    python benchmarks/bench_ridge.py --full    # 2304 features x 20 000 targets x 3600 samples
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
import warnings

import numpy as np


def measure(fn, repeats):
    times, peak = [], 0
    for _ in range(repeats):
        tracemalloc.start()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        peak = max(peak, tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    return float(np.median(times)), peak / 2**20


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--units", type=int, default=256)
    ap.add_argument("--delays", type=int, default=3)
    ap.add_argument("--targets", type=int, default=2000)
    ap.add_argument("--stimuli", type=int, default=6)
    ap.add_argument("--seconds", type=int, default=240)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--blas-threads", type=int, default=1)
    args = ap.parse_args()
    if args.full:
        args.units, args.targets, args.stimuli = 768, 20000, 15
    import himalaya.ridge
    from threadpoolctl import threadpool_limits

    from xaffect.encoding import DEFAULT_ALPHAS, RidgeCV
    from xaffect.encoding._cv import make_delays
    from xaffect.encoding._nested import fit_outer_fold

    threadpool_limits(limits=args.blas_threads)
    rng = np.random.default_rng(0)
    n = args.stimuli * args.seconds
    groups = np.repeat(np.arange(args.stimuli), args.seconds)
    X = make_delays(rng.standard_normal((n, args.units)), groups, list(range(args.delays)))
    Y = X[:, :16] @ rng.standard_normal((16, args.targets)) * 0.1 + rng.standard_normal((n, args.targets))
    X, Y = (X - X.mean(0)) / X.std(0), Y - Y.mean(0)
    folds = [(np.flatnonzero(groups != g), np.flatnonzero(groups == g)) for g in range(args.stimuli)]
    print(f"cell: {X.shape[1]} features ({args.delays} delays x {args.units} units), {args.targets} targets, "
          f"{n} samples, {args.stimuli} inner folds, 21 alphas, BLAS threads {args.blas_threads}")
    res = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t, m = measure(lambda: res.setdefault("ours", RidgeCV(DEFAULT_ALPHAS, cv=folds).fit(X, Y)), args.repeats)
        print(f"xaffect RidgeCV:      median {t:8.2f} s   peak alloc {m:8.0f} MB")
        t2, m2 = measure(lambda: res.setdefault("him", himalaya.ridge.RidgeCV(
            alphas=DEFAULT_ALPHAS, cv=folds, fit_intercept=True, solver_params=dict(warn=False)).fit(X, Y)),
            args.repeats)
        print(f"himalaya RidgeCV:     median {t2:8.2f} s   peak alloc {m2:8.0f} MB")
        same = np.mean(np.isclose(res["ours"].best_alphas_, np.asarray(res["him"].best_alphas_), rtol=1e-5))
        print(f"ratio {t2 / t:.2f}x; same best alpha for {100 * same:.2f}% of targets")
        tr, te = folds[0]
        t3, m3 = measure(lambda: fit_outer_fold(X, Y, tr, te, groups, alphas=DEFAULT_ALPHAS), args.repeats)
        print(f"xaffect one outer fold of the grid (inner CV on the other {args.stimuli - 1} stimuli): "
              f"{t3:.2f} s, peak alloc {m3:.0f} MB")


if __name__ == "__main__":
    main()
