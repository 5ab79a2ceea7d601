"""Benchmark: the xaffect ridge grid against himalaya RidgeCV looped over the same cells.

Both sides run in one process on the same simulated data (the first seed's
scale with ``--full``: 13 layers x 3 elements x 68 region targets, 15 stimuli
x 240 s at 1 Hz, 768 units plus a 12-component PCA, 21 alphas, leave one
stimulus out with inner leave-one-stimulus-out folds). himalaya is given the
same z-scored training designs, the same inner folds and ``fit_intercept=True``.

    python benchmarks/bench_grid.py            # a few minutes
    python benchmarks/bench_grid.py --full     # the seed's full grid (long)
    python benchmarks/bench_grid.py --nulls    # + cost of 1000 nulls vs none, per null kind and route
    python benchmarks/bench_grid.py --nulls --only-nulls --layers 1 --repeats 3   # just that
    python benchmarks/bench_grid.py --workers  # + 2 dask workers vs 1
"""

from __future__ import annotations

import argparse
import resource
import time
import warnings

import numpy as np
import xarray as xr


def simulate(n_stim, n_sec, n_layers, n_elements, n_units, n_targets, seed=0):
    rng = np.random.default_rng(seed)
    n = n_stim * n_sec
    coords = dict(time=np.arange(n), stimulus=("time", np.repeat([f"s{i:02d}" for i in range(n_stim)], n_sec)),
                  onset=("time", np.tile(np.arange(n_sec) + 0.5, n_stim)))
    latent = rng.standard_normal((n, 16))
    acts = np.empty((n_elements, n, n_layers, n_units), dtype=np.float32)
    for e in range(n_elements):
        for lay in range(n_layers):
            mix = rng.standard_normal((16, n_units)) * (lay + 1) / n_layers
            acts[e, :, lay] = latent @ mix + rng.standard_normal((n, n_units))
    elements = ["original", "voice", "soundtrack"][:n_elements]
    deep = xr.DataArray(acts, dims=("element", "time", "layer", "unit"),
                        coords=dict(element=elements, layer=np.arange(n_layers), **coords), attrs={"clock_rate": 1.0})
    pcs = np.empty((n_elements, n, n_layers, 12), dtype=np.float32)
    for e in range(n_elements):
        for lay in range(n_layers):
            a = acts[e, :, lay] - acts[e, :, lay].mean(0)
            u, s, _ = np.linalg.svd(a, full_matrices=False)
            pcs[e, :, lay] = u[:, :12] * s[:12]
    pca = deep.isel(unit=slice(0, 12)).copy(data=pcs).rename(unit="component")
    Y = latent @ rng.standard_normal((16, n_targets)) * 0.3 + rng.standard_normal((n, n_targets)) * 2
    targets = xr.DataArray(Y, dims=("time", "target"), coords=dict(target=[f"region:r{i}" for i in range(n_targets)],
                                                                   **coords), attrs={"clock_rate": 1.0})
    return {"deep": deep, "deep.pca12": pca}, targets


def himalaya_grid(features, targets, alphas):
    from himalaya.ridge import RidgeCV as HRidgeCV

    from xaffect.encoding._nested import zscore_train

    Y = targets.values
    stims = targets["stimulus"].values
    labels = list(dict.fromkeys(stims))
    out = {}
    for name, cube in features.items():
        cube = cube.rename(component="unit") if "component" in cube.dims else cube
        for e in cube["element"].values:
            for lay in cube["layer"].values:
                X = np.asarray(cube.sel(element=e, layer=lay).values, dtype=np.float64)
                alphas_f = []
                for s in labels:
                    tr, te = np.flatnonzero(stims != s), np.flatnonzero(stims == s)
                    D = zscore_train(X, tr)
                    g = stims[tr]
                    inner = [(np.flatnonzero(g != h), np.flatnonzero(g == h)) for h in labels if h != s]
                    m = HRidgeCV(alphas=alphas, cv=inner, fit_intercept=True,
                                 solver_params=dict(warn=False)).fit(D[tr], Y[tr])
                    m.predict(D[te])
                    alphas_f.append(np.asarray(m.best_alphas_))
                out[(name, int(lay), str(e))] = np.stack(alphas_f, -1)
    return out


def timed(fn, repeats):
    times, res = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), res


def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def null_costs(feats, targets, args):
    """1000 nulls vs none, per null kind and per route, interleaved repeats, medians.

    The deep set (``--units`` features, 14 x 240 training samples) goes through the hat-matrix
    route (rank >= the held-out length), its 12-component PCA through the low-rank route
    (rank 12, everything in the rank-sized space): each is timed as a grid of its own.
    """
    import os

    from xaffect.encoding import DEFAULT_ALPHAS, fit_grid
    from xaffect.store import use_scheduler

    kinds = [k for k in args.null_kinds.split(",") if k]
    routes = {"hat-matrix route (deep set)": {"deep": feats["deep"]},
              "low-rank route (pca12)": {"deep.pca12": feats["deep.pca12"]}}
    print(f"load average before: {os.getloadavg()}")
    for route, fs in routes.items():
        times = {k: [] for k in ["none"] + kinds}
        for _ in range(args.repeats):                       # interleaved: none, stimulus, shift, phase, none, ...
            for k in times:
                t0 = time.perf_counter()
                with use_scheduler("synchronous"), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    fit_grid(fs, targets, alphas=DEFAULT_ALPHAS, progress=False, blas_threads=args.blas_threads,
                             n_perm=0 if k == "none" else args.n_perm, null="auto" if k == "none" else k)
                times[k].append(time.perf_counter() - t0)
        med = {k: float(np.median(v)) for k, v in times.items()}
        print(f"{route}: no nulls median {med['none']:.2f} s ({args.repeats} repeats)")
        for k in kinds:
            print(f"  {args.n_perm} nulls, {k:8s}: median {med[k]:7.2f} s = {med[k] / med['none']:5.2f}x the grid "
                  f"without nulls (all: {', '.join(f'{t:.2f}' for t in times[k])})")
        print(f"  peak RSS so far {peak_mb():.0f} MB; load average {os.getloadavg()}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="the seed's full grid")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--elements", type=int, default=1)
    ap.add_argument("--stimuli", type=int, default=15)
    ap.add_argument("--seconds", type=int, default=240)
    ap.add_argument("--units", type=int, default=256, help="units of the deep set (seed: 768)")
    ap.add_argument("--targets", type=int, default=68)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--nulls", action="store_true", help="also time 1000 nulls vs none")
    ap.add_argument("--n-perm", type=int, default=1000)
    ap.add_argument("--null-kinds", default="stimulus,shift,phase", help="nulls timed by --nulls")
    ap.add_argument("--only-nulls", action="store_true", help="with --nulls: skip the himalaya comparison")
    ap.add_argument("--workers", action="store_true", help="also time 2 dask workers vs 1")
    ap.add_argument("--skip-himalaya", action="store_true")
    ap.add_argument("--blas-threads", type=int, default=1,
                    help="BLAS threads for both sides (1: no oversubscription on a shared machine)")
    args = ap.parse_args()
    if args.full:
        args.layers, args.elements, args.units = 13, 3, 768
    import himalaya.ridge  # noqa: F401  (load every BLAS pool before limiting them)
    import scipy.linalg  # noqa: F401
    from threadpoolctl import threadpool_info, threadpool_limits

    from xaffect.encoding import DEFAULT_ALPHAS, fit_grid
    from xaffect.store import use_scheduler

    threadpool_limits(limits=args.blas_threads)

    feats, targets = simulate(args.stimuli, args.seconds, args.layers, args.elements, args.units, args.targets)
    print(f"grid: 2 feature sets ({args.units} units, pca12) x {args.layers} layers x {args.elements} elements x "
          f"{args.targets} targets, {args.stimuli} stimuli x {args.seconds} s, 21 alphas, LOSO + inner LOSO; "
          f"BLAS threads {[i.get('num_threads') for i in threadpool_info()]}")
    if args.nulls and args.only_nulls:
        null_costs(feats, targets, args)
        return
    with use_scheduler("synchronous"):
        t_ours, ds = timed(lambda: fit_grid(feats, targets, alphas=DEFAULT_ALPHAS, progress=False,
                                                       blas_threads=args.blas_threads), args.repeats)
    print(f"xaffect fit_grid:           median {t_ours:8.2f} s   peak RSS {peak_mb():.0f} MB")
    if not args.skip_himalaya:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t_him, ref = timed(lambda: himalaya_grid(feats, targets, DEFAULT_ALPHAS), args.repeats)
        same = all(np.allclose(ds["alpha"].sel(feature_set=k[0], layer=k[1], element=k[2]).values, v, rtol=1e-5)
                   for k, v in ref.items())
        n_diff = sum(int((~np.isclose(ds["alpha"].sel(feature_set=k[0], layer=k[1], element=k[2]).values, v,
                                      rtol=1e-5)).sum()) for k, v in ref.items())
        print(f"himalaya RidgeCV loop:      median {t_him:8.2f} s   peak RSS {peak_mb():.0f} MB")
        print(f"speed-up {t_him / t_ours:.2f}x; identical chosen alphas: {same} ({n_diff} differ)")
    if args.nulls:
        null_costs(feats, targets, args)
    if args.workers:
        res = {}
        for nw in (1, 2):
            with use_scheduler("local-cluster", n_workers=nw):
                res[nw], _ = timed(lambda: fit_grid(feats, targets, alphas=DEFAULT_ALPHAS, progress=False), 1)
        print(f"dask.distributed: 1 worker {res[1]:.2f} s, 2 workers {res[2]:.2f} s, "
              f"speed-up {res[1] / res[2]:.2f}x")


if __name__ == "__main__":
    main()
