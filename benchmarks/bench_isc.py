"""Sliding-window leave-one-out ISC: xaffect's streaming running sums against what a user would run.

Rows (one process, the same float32 data, interleaved repeats, medians):

* **xaffect** ``sliding_isc`` (public API: xarray in, xarray out; the kernel
  streams over time in chunks, block sums and one batched GEMM per chunk);
* **vectorised per-window numpy loop** — the main baseline: what a numpy user
  writes, one pass per window, vectorised over subjects and regions
  (leave-one-out mean by ``total - x``, centring, Pearson r, Fisher mean);
* **brainiak** ``brainiak.isc.isc(pairwise=False)`` per window (then the
  Fisher-z mean over subjects), when brainiak is installed (``pip install
  brainiak``, in the ``compare`` extra). It is slow, so it runs on the first
  ``--brainiak-windows`` windows and its time is scaled to all windows (said
  so in its row).

Then the peak memory (tracemalloc, beyond the input array) of xaffect at two
stimulus lengths (default 5 and 60 minutes): the kernel's working set is a
few time chunks plus the output, so the ratio should stay near 1 (goal <= 1.3).

Usage::

    python benchmarks/bench_isc.py                       # 15 subjects x 68 regions, 5 min at 200 Hz
    python benchmarks/bench_isc.py --mem-minutes 5 60    # plus the memory of 5 vs 60 min (3 GB input)
"""

from __future__ import annotations

import argparse
import os
import time
import tracemalloc

import numpy as np
import xarray as xr

from xaffect.synchrony import sliding_isc


def vectorised_loop(x: np.ndarray, starts: np.ndarray, win: int) -> np.ndarray:
    """Per-window leave-one-out ISC, vectorised over subjects and regions (float64 arithmetic).

    x : (n_subjects, n_samples, n_regions) -> (n_windows, n_regions)
    """
    n_sub = x.shape[0]
    out = np.empty((starts.size, x.shape[2]))
    for w, s0 in enumerate(starts):
        seg = x[:, s0:s0 + win].astype(np.float64)
        others = (seg.sum(axis=0) - seg) / (n_sub - 1)
        xc = seg - seg.mean(axis=1, keepdims=True)
        oc = others - others.mean(axis=1, keepdims=True)
        r = (xc * oc).sum(axis=1) / np.sqrt((xc * xc).sum(axis=1) * (oc * oc).sum(axis=1))
        out[w] = np.tanh(np.arctanh(r).mean(axis=0))
    return out


def brainiak_loop(x: np.ndarray, starts: np.ndarray, win: int) -> np.ndarray:
    """brainiak.isc.isc (leave-one-out) per window, Fisher-z mean over subjects."""
    from brainiak.isc import isc

    out = np.empty((starts.size, x.shape[2]))
    for w, s0 in enumerate(starts):
        seg = np.transpose(x[:, s0:s0 + win].astype(np.float64), (1, 2, 0))  # (TRs, voxels, subjects)
        out[w] = np.tanh(np.arctanh(isc(seg, pairwise=False, summary_statistic=None)).mean(axis=0))
    return out


def _data(n_sub: int, n: int, n_reg: int, dtype, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.empty((n_sub, n, n_reg), dtype=dtype)
    shared = 0.5 * rng.standard_normal((n, n_reg)).astype(dtype)
    for s in range(n_sub):
        x[s] = rng.standard_normal((n, n_reg), dtype=np.float32 if dtype == np.float32 else np.float64) + shared
    return x


def _ours(x: np.ndarray, sfreq: float, window: float, step: float) -> np.ndarray:
    da = xr.DataArray(x, dims=("subject", "sample", "region"), attrs={"sfreq": sfreq})
    return sliding_isc(da, window=window, step=step, method="loo").values


def _peak(fn) -> tuple[float, int]:
    tracemalloc.start()
    t0 = time.perf_counter()
    fn()
    dt = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return dt, peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=5.0, help="stimulus length for the speed rows")
    ap.add_argument("--subjects", type=int, default=15)
    ap.add_argument("--regions", type=int, default=68)
    ap.add_argument("--sfreq", type=float, default=200.0)
    ap.add_argument("--window", type=float, default=10.0)
    ap.add_argument("--step", type=float, default=1.0)
    ap.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--brainiak-windows", type=int, default=20)
    ap.add_argument("--mem-minutes", type=float, nargs=2, default=None, metavar=("SHORT", "LONG"),
                    help="also measure xaffect's peak memory at these two stimulus lengths")
    args = ap.parse_args()
    dtype = np.float32 if args.dtype == "float32" else np.float64
    n = int(args.minutes * 60 * args.sfreq)
    x = _data(args.subjects, n, args.regions, dtype)
    win, hop = int(round(args.window * args.sfreq)), int(round(args.step * args.sfreq))
    starts = np.arange(0, n - win + 1, hop)
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}; "
          f"{os.cpu_count()} CPUs")
    print(f"data: {args.subjects} subjects x {args.regions} regions x {args.minutes:g} min at {args.sfreq:g} Hz, "
          f"{args.dtype} ({x.nbytes / 2**20:.0f} MiB); {args.window:g} s windows, {args.step:g} s step: "
          f"{starts.size} windows")
    try:
        import brainiak  # noqa: F401

        sub = starts[: args.brainiak_windows]
    except ImportError:
        sub = None
        print("brainiak: not installed (pip install brainiak): row skipped")
    _ours(x[:, : 3 * win], args.sfreq, args.window, args.step)  # warm-up: imports, dask start
    t_ours, t_loop, t_bk = [], [], []
    ours = loop = bk = None
    for _ in range(args.repeats):  # interleaved
        t0 = time.perf_counter()
        ours = _ours(x, args.sfreq, args.window, args.step)
        t_ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        loop = vectorised_loop(x, starts, win)
        t_loop.append(time.perf_counter() - t0)
        if sub is not None:
            t0 = time.perf_counter()
            bk = brainiak_loop(x, sub, win)
            t_bk.append((time.perf_counter() - t0) * starts.size / sub.size)
    m_ours, m_loop = float(np.median(t_ours)), float(np.median(t_loop))
    print(f"{'row':44s} {'median s':>9s} {'vs xaffect':>10s}  max |diff|")
    print(f"{'xaffect sliding_isc (streaming)':44s} {m_ours:9.3f} {'1.0x':>10s}")
    print(f"{'vectorised per-window numpy loop':44s} {m_loop:9.3f} {m_loop / m_ours:9.1f}x  "
          f"{np.nanmax(np.abs(ours - loop)):.1e}")
    if sub is not None:
        m_bk = float(np.median(t_bk))
        label = f"brainiak isc per window ({sub.size} of {starts.size}, scaled)"
        print(f"{label:44s} {m_bk:9.3f} {m_bk / m_ours:9.1f}x  {np.nanmax(np.abs(ours[: sub.size] - bk)):.1e}")
    print(f"(repeats: {args.repeats}, interleaved; the ISC store is float32, whose rounding is ~3e-8)")
    if args.mem_minutes:
        del x
        peaks = []
        for minutes in args.mem_minutes:
            xm = _data(args.subjects, int(minutes * 60 * args.sfreq), args.regions, dtype, seed=1)
            dt, peak = _peak(lambda: _ours(xm, args.sfreq, args.window, args.step))
            peaks.append(peak)
            print(f"xaffect peak memory beyond the input, {minutes:g} min ({xm.nbytes / 2**30:.2f} GiB input): "
                  f"{peak / 2**20:.0f} MiB in {dt:.1f} s")
            del xm
        print(f"peak memory ratio {args.mem_minutes[1]:g} min / {args.mem_minutes[0]:g} min: "
              f"{peaks[1] / peaks[0]:.2f} (goal <= 1.3)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
