"""What the ridge benchmarks share: timing with traced peak memory, and one thread count for every side.

Imported by the scripts beside it (``python benchmarks/bench_ridge.py`` puts
this folder on ``sys.path``).
"""

from __future__ import annotations

import time
import tracemalloc

THREADS_HELP = ("BLAS/torch threads for every side (0: leave as is). On a loaded shared machine multithreaded "
                "LAPACK and torch thrash (himalaya 15-60x slower measured), so both sides get the same single "
                "thread by default")


def timed(fn):
    """``(seconds, peak traced MiB, fn())``; tracemalloc sees numpy's buffers, not torch's."""
    tracemalloc.start()
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return dt, peak, out


def limit_threads(n: int) -> None:
    """Give BLAS (threadpoolctl) and torch ``n`` threads for the rest of the process (0: leave as is)."""
    if n:
        import torch
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=n)
        torch.set_num_threads(n)
