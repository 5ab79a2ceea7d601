"""Sliding-window leave-one-out ISC: xaffect's running sums vs a per-window loop.

The baseline is what a user would otherwise write: a loop over windows, each
calling brainiak-style leave-one-out ISC (brainiak.isc.isc with
pairwise=False: for every subject, ``array_correlation`` of the subject with
``np.nanmean`` of the others, then the Fisher-z mean over subjects). It is
written out here (brainiak itself does not install on current Python/numpy),
following brainiak's code path.

Both sides run in this process on the same data; medians over repeats, the
ratio, the largest absolute difference and the peak memory of each side
(tracemalloc, beyond the input array) are printed.

Usage::

    python benchmarks/bench_isc.py              # 15 subjects x 68 regions x 5 min at 200 Hz
    python benchmarks/bench_isc.py --full       # the issue's size: 60 min (about 6 GB of input)
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
import xarray as xr

from xaffect.synchrony import sliding_isc


def _array_correlation(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """brainiak.utils.utils.array_correlation: column-wise Pearson r of (n_TRs, n_voxels) arrays."""
    xd = x - np.mean(x, axis=0)
    yd = y - np.mean(y, axis=0)
    num = np.sum(xd * yd, axis=0)
    den = np.sqrt(np.sum(xd ** 2, axis=0) * np.sum(yd ** 2, axis=0))
    return num / den


def _brainiak_loo_isc(data: np.ndarray) -> np.ndarray:
    """brainiak.isc.isc(data, pairwise=False, summary_statistic=None) on (n_TRs, n_voxels, n_subjects)."""
    n_subjects = data.shape[2]
    iscs = []
    for s in range(n_subjects):
        iscs.append(_array_correlation(data[..., s], np.nanmean(np.delete(data, s, axis=2), axis=2)))
    return np.array(iscs)


def baseline(x: np.ndarray, sfreq: float, window: float, step: float) -> np.ndarray:
    """Per-window loop: (n_subjects, n_samples, n_regions) -> (n_windows, n_regions)."""
    win = int(round(window * sfreq))
    hop = int(round(step * sfreq))
    starts = np.arange(0, x.shape[1] - win + 1, hop)
    out = np.empty((starts.size, x.shape[2]))
    for w, s0 in enumerate(starts):
        seg = np.transpose(x[:, s0:s0 + win, :], (1, 2, 0))  # brainiak layout (TRs, voxels, subjects)
        iscs = _brainiak_loo_isc(seg)
        out[w] = np.tanh(np.nanmean(np.arctanh(iscs), axis=0))  # brainiak's Fisher-z mean summary
    return out


def _measure(fn, repeats: int):
    times, result, peak = [], None, 0
    for _ in range(repeats):
        tracemalloc.start()
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
        peak = max(peak, tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    return float(np.median(times)), result, peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--full", action="store_true", help="60 minutes of data (the issue's size)")
    ap.add_argument("--minutes", type=float, default=None, help="minutes of data (default 5, --full 60)")
    ap.add_argument("--subjects", type=int, default=15)
    ap.add_argument("--regions", type=int, default=68)
    ap.add_argument("--sfreq", type=float, default=200.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--baseline-repeats", type=int, default=1)
    args = ap.parse_args()
    minutes = args.minutes or (60.0 if args.full else 5.0)
    n = int(minutes * 60 * args.sfreq)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.subjects, n, args.regions))
    x += 0.5 * rng.standard_normal((1, n, args.regions))  # some shared signal
    da = xr.DataArray(x, dims=("subject", "sample", "region"), attrs={"sfreq": args.sfreq})
    print(f"data: {args.subjects} subjects x {args.regions} regions x {minutes:g} min at {args.sfreq:g} Hz "
          f"({x.nbytes / 2**30:.2f} GiB float64); 10 s windows, 1 s step")

    t_ours, ours, m_ours = _measure(lambda: sliding_isc(da, window=10.0, step=1.0, method="loo").values,
                                    args.repeats)
    print(f"xaffect sliding_isc (running sums): median {t_ours:.3f} s over {args.repeats}, "
          f"peak {m_ours / 2**20:.0f} MiB")
    t_base, base, m_base = _measure(lambda: baseline(x, args.sfreq, 10.0, 1.0), args.baseline_repeats)
    print(f"per-window brainiak-style loop:     median {t_base:.3f} s over {args.baseline_repeats}, "
          f"peak {m_base / 2**20:.0f} MiB")
    diff = float(np.nanmax(np.abs(ours.astype(np.float64) - base)))
    print(f"windows: {base.shape[0]}; ratio baseline/xaffect: {t_base / t_ours:.1f}x; "
          f"max |difference| {diff:.2e} (store is float32: rounding ~3e-8)")


if __name__ == "__main__":
    main()
