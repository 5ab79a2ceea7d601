"""Spin test on a 32k-vertex hemisphere: time and peak memory (issue 17).

Alignment of a layer map with the HCP principal gradient (conte69 32k, left
hemisphere, both from brainspace's wheel) under ``n`` random rotations:

* ``spins``: :func:`xaffect.analysis.gradients.make_spins` (brainspace's
  ``SpinPermutations``: one KD-tree query of 32k vertices per rotation);
* ``xaffect``: :func:`align_with_gradient` with those spins (batched, NaN-aware
  Spearman over all null maps at once);
* ``reference``: what a user would otherwise write: ``SpinPermutations.randomize``
  (all null maps in memory) and ``scipy.stats.spearmanr`` per rotation on the
  vertices where both maps are defined.

Peak memory is measured with ``tracemalloc`` (numpy allocations included), one
phase at a time. Usage: ``python benchmarks/bench_spin.py [--n-rotations 1000]``.
"""

from __future__ import annotations

import argparse
import os
import time
import tracemalloc

import numpy as np
import xarray as xr
from scipy import stats

from xaffect.analysis.gradients import align_with_gradient, load_conte69_sphere, load_hcp_gradient, make_spins


def measure(fn):
    tracemalloc.start()
    t = time.perf_counter()
    out = fn()
    wall = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1] / 2 ** 20
    tracemalloc.stop()
    return out, wall, peak


def reference(layer: np.ndarray, gradient: np.ndarray, spins: np.ndarray) -> tuple[float, float]:
    from brainspace.null_models import SpinPermutations

    sp = SpinPermutations(n_rep=spins.shape[0])
    sp.spin_lh_, sp.spin_rh_ = spins, None
    null_maps = sp.randomize(layer)
    ok = np.isfinite(layer) & np.isfinite(gradient)
    r = stats.spearmanr(layer[ok], gradient[ok])[0]
    null = np.empty(spins.shape[0])
    for k, m in enumerate(null_maps):
        keep = np.isfinite(m) & np.isfinite(gradient)
        null[k] = stats.spearmanr(m[keep], gradient[keep])[0]
    return r, (1 + np.sum(np.abs(null) >= abs(r))) / (null.size + 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-rotations", type=int, default=1000)
    args = ap.parse_args()
    g1 = load_hcp_gradient("lh")
    sphere = load_conte69_sphere("lh")
    rng = np.random.default_rng(0)
    layer = np.digitize(g1.values, np.nanquantile(g1.values, np.linspace(0, 1, 24)[1:-1])) + rng.normal(0, 6, g1.size)
    layer[np.isnan(g1.values)] = np.nan
    layer_map = g1.copy(data=layer).rename("best_layer")
    spins, t_spin, m_spin = measure(lambda: make_spins(sphere, n_rotations=args.n_rotations, seed=0))
    ds, t_x, m_x = measure(lambda: align_with_gradient(layer_map, g1, spins=spins))
    (r_ref, p_ref), t_ref, m_ref = measure(lambda: reference(layer, g1.values, spins))
    print(f"{g1.size} vertices, {args.n_rotations} rotations, load average {os.getloadavg()[0]:.1f}")
    print(f"spins (brainspace SpinPermutations): {t_spin:7.1f} s  peak {m_spin:7.0f} MiB")
    print(f"xaffect align_with_gradient:         {t_x:7.1f} s  peak {m_x:7.0f} MiB  r={float(ds.r):.3f} p={float(ds.p):.4f}")
    print(f"reference randomize + spearmanr:     {t_ref:7.1f} s  peak {m_ref:7.0f} MiB  r={r_ref:.3f} p={p_ref:.4f}")
    print(f"ratio reference / xaffect: time {t_ref / t_x:.2f}x, memory {m_ref / m_x:.2f}x")


if __name__ == "__main__":
    main()
