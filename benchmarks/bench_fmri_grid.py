"""Benchmark: the fMRI ridge grid at its scale (issue 17), xaffect ``fit_grid`` vs a himalaya expert's loop.

The second seed's cell: 3 stimuli of 3, 6 and 9 min at TR 2 s (90 + 180 +
270 = 540 volumes), VGGish's 23 stages x 3 FIR delays (2, 4, 6 s), 21
alphas, leave one stimulus out with inner leave-one-stimulus-out folds,
400 parcels (``--targets 400``) or 20 000 voxels (``--targets 20000``).

**Feature widths.** VGGish stages averaged over each example's time *and*
frequency axes (channels only): L01 InputBatch 64 mel bands, L02-L04 64,
L05-L07 128, L08-L12 256, L13-L17 512, the five 4096-wide fc stages
(L18-L22) reduced to 512 by PCA, L23 EmbeddingBatch 128 -- so 4 layers of
64, 4 of 128, 5 of 256 and 10 of 512 units, times 3 delays: 192 to 1536
features for 360-450 training volumes (primal and dual designs both occur).

Sides, same process, same data, interleaved repeats, float32:

* **xaffect** ``fit_grid(features, targets, delays=[2, 4, 6], dtype="float32",
  n_targets_batch=...)``: one dask graph over (layer, fold);
* **himalaya** as an expert writes it: loop layers, stack the delayed copies
  of each layer within each stimulus (what ``voxelwise_tutorials``'
  ``Delayer`` does), per outer fold z-score on the training stimuli and fit
  ``RidgeCV`` (features <= samples) or ``KernelRidgeCV`` with a linear
  kernel (features > samples, as himalaya's docs advise) with the same inner
  folds, alphas and ``n_targets_batch``, ``fit_intercept=True``; then
  ``predict`` the held-out stimulus and correlate. Backends numpy and
  torch (CPU).

The voxel variant (``--layers-per-width 1``) fits one layer of each width
(L01, L05, L08, L13) and extrapolates to the 23 layers as ``4 t64 + 4 t128
+ 5 t256 + 10 t512`` (both sides fit every layer independently, so the
sum is exact up to per-call overhead).

    python benchmarks/bench_fmri_grid.py --targets 400
    python benchmarks/bench_fmri_grid.py --targets 20000 --layers-per-width 1 --repeats 1

Prints medians, ratios, peak traced memory (numpy buffers; torch's own
allocations are not seen by tracemalloc) and the load average. ``--threads 1``
(default) gives every side one core: BLAS and torch limited to one thread and
the grid on dask's synchronous scheduler (on a loaded shared machine
multithreaded LAPACK thrashes; one himalaya layer took 15-60 s with two
threads and 1.2 s with one).
"""

from __future__ import annotations

import argparse
import os
import warnings

import numpy as np

from _measure import THREADS_HELP, limit_threads, timed  # this folder (scripts run from here)
import xarray as xr

TR = 2.0
MINUTES = (3, 6, 9)
DELAYS_S = (2.0, 4.0, 6.0)
#: units per VGGish stage L01..L23 (channels; fc stages after PCA to 512)
WIDTHS = [64] * 4 + [128] * 3 + [256] * 5 + [512] * 5 + [512] * 5 + [128]


def simulate(n_targets: int, seed: int = 0):
    """VGGish-like features (23 layers, NaN-padded to 512 units) and parcel/voxel responses on the TR clock."""
    rng = np.random.default_rng(seed)
    lengths = [int(m * 60 / TR) for m in MINUTES]
    n = sum(lengths)
    stims = np.repeat([f"piece{i}" for i in range(len(lengths))], lengths)
    onset = np.concatenate([(np.arange(k) + 0.5) * TR for k in lengths])
    latent = rng.standard_normal((n, 32))
    for t in range(1, n):                           # slow, music-like drift of the shared latent
        latent[t] += 0.7 * latent[t - 1]
    acts = np.full((1, n, len(WIDTHS), max(WIDTHS)), np.nan, dtype=np.float32)
    for lay, w in enumerate(WIDTHS):
        acts[0, :, lay, :w] = latent @ rng.standard_normal((32, w)) * 0.3 + rng.standard_normal((n, w))
    coords = dict(time=np.arange(n), stimulus=("time", stims), onset=("time", onset))
    feats = xr.DataArray(acts, dims=("element", "time", "layer", "unit"),
                         coords=dict(element=["original"], layer=np.arange(1, len(WIDTHS) + 1), **coords),
                         attrs={"clock_rate": 1 / TR})
    # each target follows one layer's first units 4 s later, plus noise
    src = rng.integers(0, len(WIDTHS), n_targets)
    Y = rng.standard_normal((n, n_targets)).astype(np.float32)
    for lay in np.unique(src):
        cols = np.flatnonzero(src == lay)
        drive = np.roll(acts[0, :, lay, :8], 2, axis=0) @ rng.standard_normal((8, cols.size)).astype(np.float32)
        Y[:, cols] += 0.3 * drive
    targets = xr.DataArray(Y, dims=("time", "target"), coords=dict(target=[f"v{i}" for i in range(n_targets)],
                                                                   **coords), attrs={"clock_rate": 1 / TR})
    return feats, targets, stims


def delay_within(X: np.ndarray, stims: np.ndarray, lags) -> np.ndarray:
    """Delayed copies stacked column-wise, zero-filled at each stimulus start (a Delayer per stimulus)."""
    out = np.zeros((X.shape[0], X.shape[1] * len(lags)), dtype=X.dtype)
    bounds = np.flatnonzero(np.r_[True, stims[1:] != stims[:-1], True])
    for a, b in zip(bounds[:-1], bounds[1:]):
        for j, k in enumerate(lags):
            out[a + k:b, j * X.shape[1]:(j + 1) * X.shape[1]] = X[a:b - k]
    return out


def himalaya_loop(feats, targets, stims, layers, backend, n_targets_batch, alphas):
    """What a himalaya user writes for the layer x delay grid; returns r, alpha of shape (layer, fold, target)."""
    import himalaya.backend
    from himalaya.kernel_ridge import KernelRidgeCV
    from himalaya.ridge import RidgeCV

    himalaya.backend.set_backend(backend, on_error="raise")
    be = himalaya.backend.get_backend()
    lags = [int(d / TR) for d in DELAYS_S]
    Y = targets.values
    labels = list(dict.fromkeys(stims))
    r_out, a_out = [], []
    for lay in layers:
        w = WIDTHS[lay - 1]
        X = delay_within(feats.sel(layer=lay).values[0][:, :w], stims, lags)
        r_lay, a_lay = [], []
        for held in labels:
            tr, te = np.flatnonzero(stims != held), np.flatnonzero(stims == held)
            mu, sd = X[tr].mean(0), X[tr].std(0)
            sd[sd == 0] = 1
            Xtr, Xte = (X[tr] - mu) / sd, (X[te] - mu) / sd
            g = stims[tr]
            inner = [(np.flatnonzero(g != s), np.flatnonzero(g == s)) for s in dict.fromkeys(g)]
            params = dict(n_targets_batch=n_targets_batch)
            if Xtr.shape[1] <= Xtr.shape[0]:
                m = RidgeCV(alphas=alphas, cv=inner, fit_intercept=True, solver_params=params)
            else:
                m = KernelRidgeCV(alphas=alphas, kernel="linear", cv=inner, fit_intercept=True,
                                  solver_params=params)
            m.fit(Xtr.astype(Y.dtype), Y[tr])
            pred = np.asarray(be.to_numpy(m.predict(Xte.astype(Y.dtype))), dtype=np.float64)
            yt = Y[te].astype(np.float64)
            yt, pred = yt - yt.mean(0), pred - pred.mean(0)
            with np.errstate(invalid="ignore", divide="ignore"):
                r_lay.append((yt * pred).sum(0) / np.sqrt((yt ** 2).sum(0) * (pred ** 2).sum(0)))
            a_lay.append(np.asarray(be.to_numpy(m.best_alphas_)))
        r_out.append(r_lay)
        a_out.append(a_lay)
    return np.array(r_out), np.array(a_out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", type=int, default=400)
    ap.add_argument("--targets-batch", type=int, default=0, help="n_targets_batch of both sides (0: all)")
    ap.add_argument("--layers-per-width", type=int, default=0, help="0: all 23 layers; k: k layers of each width")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--him-backends", default="numpy,torch")
    ap.add_argument("--threads", type=int, default=1, help=THREADS_HELP)
    args = ap.parse_args()
    limit_threads(args.threads)

    from xaffect.encoding import DEFAULT_ALPHAS, fit_grid
    from xaffect.store.compute import use_scheduler

    feats, targets, stims = simulate(args.targets)
    if args.layers_per_width:
        firsts = {}
        for lay, w in enumerate(WIDTHS, start=1):
            firsts.setdefault(w, []).append(lay)
        layers = sorted(lay for w, lays in firsts.items() for lay in lays[:args.layers_per_width])
    else:
        layers = list(range(1, len(WIDTHS) + 1))
    batch = args.targets_batch or args.targets
    print(f"fMRI cell: {targets.sizes['time']} volumes (3 stimuli of {MINUTES} min at TR {TR:g} s), "
          f"{args.targets} targets, layers {layers} (widths {[WIDTHS[lay - 1] for lay in layers]}) x "
          f"{len(DELAYS_S)} delays, 21 alphas, LOSO outer + inner, n_targets_batch={batch}; "
          f"load average at start {os.getloadavg()}", flush=True)

    def ours(lays):
        with use_scheduler("synchronous" if args.threads == 1 else "threads"):
            ds = fit_grid({"vggish": feats}, targets, delays=list(DELAYS_S), scoring="r2", n_perm=0,
                          layers=lays, dtype="float32", n_targets_batch=batch, progress=False,
                          blas_threads=args.threads or None)
        sel = ds.sel(feature_set="vggish", element="original")
        return (sel["r"].transpose("layer", "fold", "target").values,
                sel["alpha"].transpose("layer", "fold", "target").values)

    sides = {"xaffect fit_grid float32": ours}
    for b in args.him_backends.split(","):
        sides[f"himalaya {'torch-cpu' if b == 'torch' else b} float32"] = (
            lambda lays, b=b: himalaya_loop(feats, targets, stims, lays, b, batch, DEFAULT_ALPHAS))
    # all layers in one call (the grid's own parallelism over layers counts), or one call per
    # measured layer in the voxel variant (times summed per width, then extrapolated)
    calls = [layers] if not args.layers_per_width else [[lay] for lay in layers]
    times = {k: {i: [] for i in range(len(calls))} for k in sides}
    peaks, outs = {}, {k: [None] * len(calls) for k in sides}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(args.repeats):                      # interleaved
            for i, lays in enumerate(calls):
                for k, fn in sides.items():
                    dt, pk, out = timed(lambda: fn(lays))
                    times[k][i].append(dt)
                    peaks[k] = max(peaks.get(k, 0.0), pk)
                    outs[k][i] = out
                    print(f"  {k} layers {lays}: {dt:.1f} s", flush=True)
    med = {k: sum(float(np.median(v)) for v in times[k].values()) for k in sides}
    outs = {k: tuple(np.concatenate([o[j] for o in v]) for j in range(2)) for k, v in outs.items()}
    if args.layers_per_width:
        counts = {w: WIDTHS.count(w) for w in sorted(set(WIDTHS))}
        print(f"\nextrapolation to 23 layers: layers per width {counts}; each measured layer's median time x "
              f"(layers of its width / measured layers of that width)")
    head = f"\n{'side':30s} {'median s':>9s} {'peak MiB':>9s}"
    print(head + ("  23 layers (extrapolated) s" if args.layers_per_width else ""))
    full = {}
    for k in sides:
        line = f"{k:30s} {med[k]:9.1f} {peaks[k]:9.0f}"
        if args.layers_per_width:
            full[k] = sum(float(np.median(times[k][i])) * WIDTHS.count(WIDTHS[lays[0] - 1])
                          / sum(WIDTHS[lay - 1] == WIDTHS[lays[0] - 1] for lay in layers)
                          for i, lays in enumerate(calls))
            line += f"  {full[k]:9.0f}"
        print(line + ("  (torch buffers not traced)" if "torch" in k else ""))
    ours_k = "xaffect fit_grid float32"
    ref = outs[ours_k]
    for k in sides:
        if k.startswith("himalaya"):
            r_h, a_h = outs[k]
            eq = np.isclose(a_h, ref[1], rtol=1e-5)
            same = eq.mean()
            print(f"{k}: max |r diff| where both chose the same alpha {np.nanmax(np.abs(r_h - ref[0])[eq]):.2e}")
            ratio = (full[k] / full[ours_k]) if full else med[k] / med[ours_k]
            print(f"{k}: {ratio:.2f}x the time of xaffect; same alpha for {100 * same:.1f}% of "
                  f"(layer, fold, target); max |r diff| {np.nanmax(np.abs(r_h - ref[0])):.2e}")
    print(f"load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
