"""Layer-profile analyses: xaffect.analysis vs the pandas long-table route a user would take.

Both sides run in one process on the same scores cube (feature_set x layer x
element x target x fold) and compute the same things: mean r per layer with a
95 % t-interval across folds, the best layer and the centroid layer per
(feature set, element, target). Results are checked equal before timing.

    python benchmarks/bench_analysis.py            # 2 x 25 layers x 3 elements x 500 targets x 10 folds
    python benchmarks/bench_analysis.py --full     # 2000 targets (68 regions x bands x ...)
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from xaffect.analysis import best_layer, centroid_layer, layer_profile


def make_scores(n_targets: int, n_layers: int = 25, n_folds: int = 10, seed: int = 0) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    layers = np.arange(n_layers)
    peak = rng.integers(0, n_layers, n_targets)
    prof = 0.3 * np.exp(-0.5 * ((layers[:, None] - peak[None]) / 3.0) ** 2)  # (layer, target)
    r = prof[None, :, None, :, None] + rng.normal(0, 0.05, (2, n_layers, 3, n_targets, n_folds))
    return xr.Dataset({"r": (("feature_set", "layer", "element", "target", "fold"), r)},
                      coords={"feature_set": ["hubert", "vggish"], "layer": layers,
                              "element": ["original", "voice", "soundtrack"],
                              "target": [f"t{i}" for i in range(n_targets)],
                              "fold": [f"s{i}" for i in range(n_folds)]})


def with_xaffect(scores: xr.Dataset) -> dict[str, np.ndarray]:
    out = {}
    for fs in scores["feature_set"].values:
        prof = layer_profile(scores, feature_set=str(fs))
        out[f"{fs}/upper"] = prof["upper"].transpose("layer", "element", "target").values
        out[f"{fs}/best"] = best_layer(scores, feature_set=str(fs)).transpose("element", "target").values
        out[f"{fs}/centroid"] = centroid_layer(scores, feature_set=str(fs)).transpose("element", "target").values
    return out


def with_pandas(scores: xr.Dataset) -> dict[str, np.ndarray]:
    df = scores["r"].to_dataframe().reset_index()
    g = df.groupby(["feature_set", "layer", "element", "target"], sort=True)["r"].agg(["mean", "std", "count"])
    g["upper"] = g["mean"] + stats.t.ppf(0.975, g["count"] - 1) * g["std"] / np.sqrt(g["count"])
    g = g.reset_index()
    out = {}
    elements = list(scores["element"].values)
    targets = list(scores["target"].values)
    for fs, sub in g.groupby("feature_set"):
        up = sub.pivot_table(index="layer", columns=["element", "target"], values="upper")
        out[f"{fs}/upper"] = up.reindex(columns=pd.MultiIndex.from_product([elements, targets])).values.reshape(
            len(up), len(elements), len(targets))
        idx = sub.loc[sub.groupby(["element", "target"])["mean"].idxmax()]
        best = idx.set_index(["element", "target"])["layer"]
        out[f"{fs}/best"] = best.reindex(pd.MultiIndex.from_product([elements, targets])).values.reshape(
            len(elements), len(targets))
        sub = sub.assign(w=sub["mean"].clip(lower=0))
        sub = sub.assign(wl=sub["w"] * sub["layer"])
        agg = sub.groupby(["element", "target"])[["w", "wl"]].sum()
        cent = (agg["wl"] / agg["w"]).reindex(pd.MultiIndex.from_product([elements, targets]))
        out[f"{fs}/centroid"] = cent.values.reshape(len(elements), len(targets))
    return out


def measure(fn, scores, repeats: int) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        fn(scores)
        times.append(time.perf_counter() - t0)
    gc.collect()
    tracemalloc.start()
    fn(scores)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return float(np.median(times)), peak / 2 ** 20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="2000 targets")
    ap.add_argument("--targets", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    n = args.targets or (2000 if args.full else 500)
    scores = make_scores(n)
    a, b = with_xaffect(scores), with_pandas(scores)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-9, atol=1e-12, err_msg=k)
    print(f"scores cube: {dict(scores.sizes)} ({scores.nbytes / 2**20:.1f} MiB); results equal")
    tx, mx = measure(with_xaffect, scores, args.repeats)
    tp, mp = measure(with_pandas, scores, args.repeats)
    print(f"xaffect.analysis : median {tx * 1000:8.1f} ms  peak {mx:7.1f} MiB")
    print(f"pandas long table: median {tp * 1000:8.1f} ms  peak {mp:7.1f} MiB")
    print(f"speed-up (pandas / xaffect): {tp / tx:.2f}x; memory ratio: {mp / mx:.2f}x")


if __name__ == "__main__":
    main()
