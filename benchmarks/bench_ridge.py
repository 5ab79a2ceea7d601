"""Benchmark: one outer fold of the ridge grid, xaffect vs what a himalaya expert runs, and the physical floor.

Same data, same folds, one process, interleaved repeats. The cell is the
seed's: stimuli x 240 s on a 1 Hz clock, 768 features (``--units`` x
``--delays``), 21 alphas, inner leave-one-stimulus-out, one held-out
stimulus. Sides:

* **xaffect** ``fit_outer_fold`` (the grid's unit of work: inner LOGO scores
  for every alpha, per-target alpha, refit, held-out r) in float32 and
  float64, numpy backend (and torch CPU with ``--torch``);
* **himalaya** ``RidgeCV`` as its documentation recommends: float32 arrays,
  its own ``n_targets_batch``, inner folds = the same leave-one-stimulus-out
  splits, then ``predict`` on the held-out stimulus; numpy and torch
  backends, the faster is the baseline;
* **floor**: the flops the cell cannot avoid -- Gram ``2np^2``, ``X'Y``
  ``2npT``, the exact scoring of every alpha on every inner fold (hat blocks
  ``2 a n_k^2 r``, residuals ``2 a n r T``, solves ``a n_k^3/3 + 2 a n_k^2 T``),
  held-out prediction -- at this machine's measured GEMM rate, plus the
  measured time of one ``eigh`` of the Gram.

    python benchmarks/bench_ridge.py                      # 68 targets, 15 stimuli
    python benchmarks/bench_ridge.py --targets 2000
    python benchmarks/bench_ridge.py --targets 20000 --repeats 1 --him-backends torch --no-float64
    python benchmarks/bench_ridge.py --memory-sweep 500,2000,5000,20000   # xaffect only, batch fixed

Prints medians, ratios, peak traced memory and the load average. The memory
sweep runs xaffect float32 once per number of targets at a fixed
``--targets-batch`` and prints the peak of the numpy buffers allocated during
the call (the input ``Y`` itself is allocated before and not counted; the
outputs, a few floats per target, are).
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np

from _measure import THREADS_HELP, limit_threads, timed  # this folder (scripts run from here)


def gemm_rate(dtype, n=2048, repeats=3) -> float:
    """Measured GEMM flop rate (flop/s) of this machine's BLAS for ``dtype``: the best of 1 and all BLAS threads."""
    from threadpoolctl import threadpool_limits

    a = np.random.default_rng(0).standard_normal((n, n)).astype(dtype)
    a @ a
    best = np.inf
    for threads in (1, None):
        with threadpool_limits(limits=threads):
            for _ in range(repeats):
                t0 = time.perf_counter()
                a @ a
                best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best


def eigh_seconds(G, repeats=2) -> float:
    """Best time of ``eigh(G)`` with 1 or all BLAS threads (threads contend on a loaded machine)."""
    from threadpoolctl import threadpool_limits

    best = np.inf
    for threads in (1, None):
        with threadpool_limits(limits=threads):
            for _ in range(repeats):
                best = min(best, timed(lambda: np.linalg.eigh(G))[0])
    return best


def floor_seconds(n, p, T, n_alphas, sizes, rate, t_eigh) -> float:
    r = min(n, p)
    fl = 2 * n * p * p + 2 * n * p * T
    fl += sum(2 * n_alphas * k * k * r + k ** 3 / 3 * n_alphas + 2 * n_alphas * k * k * T for k in sizes)
    fl += 2 * n_alphas * n * r * T
    return fl / rate + t_eigh


def _cell(args, n_targets, rng):
    from xaffect.encoding._cv import make_delays

    n = args.stimuli * args.seconds
    groups = np.repeat(np.arange(args.stimuli), args.seconds)
    X = make_delays(rng.standard_normal((n, args.units)), groups, list(range(args.delays)))
    X = ((X - X.mean(0)) / X.std(0)).astype(np.float32)
    Y = (X[:, :16] @ rng.standard_normal((16, n_targets)).astype(np.float32) * 0.1
         + rng.standard_normal((n, n_targets)).astype(np.float32))
    return X, Y, groups


def memory_sweep(targets, args):
    """xaffect float32 peak traced memory and time vs number of targets at a fixed target batch."""
    from xaffect.encoding import DEFAULT_ALPHAS
    from xaffect.encoding._nested import fit_outer_fold

    print(f"memory sweep: n_targets_batch={args.targets_batch}, {args.units * args.delays} features, "
          f"{args.stimuli} stimuli x {args.seconds} s, one outer fold, float32 numpy")
    print(f"{'targets':>8s} {'Y MiB':>7s} {'peak MiB':>9s} {'s':>7s}")
    for T in targets:
        X, Y, groups = _cell(args, T, np.random.default_rng(0))
        tr, te = np.flatnonzero(groups != 0), np.flatnonzero(groups == 0)
        dt, pk, _ = timed(lambda: fit_outer_fold(X, Y, tr, te, groups, alphas=DEFAULT_ALPHAS, scoring="r2",
                                                 dtype="float32", n_targets_batch=args.targets_batch))
        print(f"{T:8d} {Y.nbytes / 2**20:7.0f} {pk:9.0f} {dt:7.1f}", flush=True)
        del X, Y
    print(f"load average {os.getloadavg()}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--units", type=int, default=256)
    ap.add_argument("--delays", type=int, default=3)
    ap.add_argument("--targets", type=int, default=68)
    ap.add_argument("--stimuli", type=int, default=15)
    ap.add_argument("--seconds", type=int, default=240)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--targets-batch", type=int, default=2000, help="himalaya n_targets_batch and xaffect's")
    ap.add_argument("--torch", action="store_true", help="also xaffect on torch CPU")
    ap.add_argument("--skip-himalaya", action="store_true")
    ap.add_argument("--him-backends", default="numpy,torch", help="himalaya backends, comma-separated")
    ap.add_argument("--no-float64", action="store_true", help="skip xaffect float64 (the accuracy reference)")
    ap.add_argument("--memory-sweep", default="", help="targets list: xaffect float32 peak memory at fixed batch")
    ap.add_argument("--threads", type=int, default=1, help=THREADS_HELP)
    args = ap.parse_args()
    limit_threads(args.threads)
    if args.memory_sweep:
        return memory_sweep([int(t) for t in args.memory_sweep.split(",")], args)

    import himalaya.backend
    import himalaya.ridge

    from xaffect.encoding import DEFAULT_ALPHAS
    from xaffect.encoding._nested import fit_outer_fold
    from xaffect.encoding._solvers import score_columns

    X, Y, groups = _cell(args, args.targets, np.random.default_rng(0))
    n = X.shape[0]
    p = X.shape[1]
    test_stim = 0
    tr, te = np.flatnonzero(groups != test_stim), np.flatnonzero(groups == test_stim)
    inner = [(np.flatnonzero(groups[tr] != g), np.flatnonzero(groups[tr] == g))
             for g in np.unique(groups[tr])]
    print(f"cell: {p} features ({args.delays} delays x {args.units} units), {args.targets} targets, "
          f"{n} samples ({args.stimuli} stimuli x {args.seconds} s), one outer fold, "
          f"{len(inner)} inner folds, {len(DEFAULT_ALPHAS)} alphas; load average at start {os.getloadavg()}")

    def ours(dtype, backend="numpy"):
        # inner-CV criterion R², as himalaya's RidgeCV scores its folds
        return lambda: fit_outer_fold(X, Y, tr, te, groups, alphas=DEFAULT_ALPHAS, scoring="r2",
                                      dtype=dtype, backend=backend, n_targets_batch=args.targets_batch)

    def him(backend):
        def run():
            himalaya.backend.set_backend(backend, on_error="raise")
            m = himalaya.ridge.RidgeCV(alphas=DEFAULT_ALPHAS, cv=inner, fit_intercept=True,
                                       solver_params=dict(n_targets_batch=args.targets_batch, warn=False))
            m.fit(X[tr], Y[tr])
            pred = np.asarray(himalaya.backend.get_backend().to_numpy(m.predict(X[te])))
            return {"r": score_columns(Y[te].astype(np.float64), pred[None].astype(np.float64), "r")[0],
                    "alpha": np.asarray(himalaya.backend.get_backend().to_numpy(m.best_alphas_))}
        return run

    sides = {"xaffect float32": ours("float32")}
    if not args.no_float64:
        sides["xaffect float64"] = ours("float64")
    if args.torch:
        sides["xaffect torch-cpu float32"] = ours("float32", "torch")
    if not args.skip_himalaya:
        for b in args.him_backends.split(","):
            sides[f"himalaya {'torch-cpu' if b == 'torch' else b} float32"] = him(b)
    times = {k: [] for k in sides}
    peaks, outs = {}, {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(args.repeats):                  # interleaved
            for k, fn in sides.items():
                dt, pk, out = timed(fn)
                times[k].append(dt)
                peaks[k] = max(peaks.get(k, 0), pk)
                outs[k] = out
    t_eigh = eigh_seconds(X[tr].T.astype(np.float64) @ X[tr].astype(np.float64))
    sizes = np.bincount(groups[tr])[np.bincount(groups[tr]) > 0]
    floor32 = floor_seconds(tr.size, p, args.targets, len(DEFAULT_ALPHAS), sizes, gemm_rate(np.float32), t_eigh)
    floor64 = floor_seconds(tr.size, p, args.targets, len(DEFAULT_ALPHAS), sizes, gemm_rate(np.float64), t_eigh)
    med = {k: float(np.median(v)) for k, v in times.items()}
    print("peak MiB: numpy buffers traced by tracemalloc (torch's own allocations are not seen)")
    print(f"\n{'side':28s} {'median s':>9s} {'peak MiB':>9s}  x floor")
    for k in sides:
        fl = floor32 if "32" in k else floor64
        print(f"{k:28s} {med[k]:9.2f} {peaks[k]:9.0f}  {med[k] / fl:6.1f}x")
    print(f"{'floor float32 (GEMM rate)':28s} {floor32:9.2f}")
    print(f"{'floor float64 (GEMM rate)':28s} {floor64:9.2f}")
    hims = [k for k in sides if k.startswith("himalaya")]
    if hims:
        best_him = min(hims, key=med.get)
        print(f"\nspeed-up xaffect float32 vs {best_him}: {med[best_him] / med['xaffect float32']:.2f}x")
    if "xaffect float64" in outs:
        ref = outs["xaffect float64"]
        for k in ["xaffect float32"] + ([best_him] if hims else []) + [k for k in sides if "torch-cpu" in k and k.startswith("xaffect")]:
            o = outs[k]
            same = np.mean(np.isclose(np.asarray(o["alpha"], float), ref["alpha"], rtol=1e-5))
            dr = np.nanmax(np.abs(np.asarray(o["r"], float) - ref["r"]))
            print(f"{k}: same alpha as xaffect float64 for {100 * same:.1f}% of targets; max |r diff| {dr:.2e}")
    print(f"load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
