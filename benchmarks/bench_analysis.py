"""False "better" rates under equal signal, and power on a planted difference, for each layer analysis.

Scores come from real leave-one-stimulus-out nested ridge fits
(``tests/_analysis_sim.py``) on simulated stimuli where every deep layer,
the classical set and both elements see the same latent sources through
equal noise (null), or where one cell has less noise (planted). For each
comparison the share of targets called significant at 5 % is reported,
before (selection on the test folds + plain paired t across folds, as
``xaffect.analysis`` did) and after (inner-fold selection + Nadeau-Bengio
corrected resampled t; pre-set band; centroid over layers that beat their
null).

Run: ``.venv/bin/python benchmarks/bench_analysis.py [--seeds 12] [--targets 40]``;
``--speed`` times the profile, best layer and centroid (with their 1000-resample
bootstrap intervals) on a 2 x 25 x 3 x 500 x 10 scores cube instead.
Targets within one simulated data set share its features, so the rates are
averaged over independent data sets (seeds); the spread is the SD over seeds.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np
from scipy import stats

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

from _analysis_sim import simulate_scores  # noqa: E402

from xaffect.analysis import (deep_vs_classical, element_contrast, fdr_bh, layer_vs_layer,  # noqa: E402
                              middle_vs_final)
from xaffect.analysis.zones import _longest_true_run  # noqa: E402

ALPHA = 0.05
LAYERS = tuple(range(13))


def _old_best(r):
    """Per-target best layer on all folds (the former selection), r at it per fold."""
    mean = r.mean("fold")
    return r.isel(layer=mean.fillna(-np.inf).argmax("layer"))


def _plain_p(a, b):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return stats.ttest_rel(a, b, axis=-1).pvalue


def _old_middle_vs_final(rd):
    """The former route: layers above the final one by plain one-sided paired t (FDR across layers), the
    longest significant run as the band, tested again on the same folds; share of targets with a band p < .05."""
    rv = rd.transpose("target", "layer", "fold").values
    final = rv[:, -1]
    hits = []
    for i in range(rv.shape[0]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            p = stats.ttest_rel(rv[i, :-1], np.broadcast_to(final[i], rv[i, :-1].shape), axis=-1,
                                alternative="greater").pvalue
        s, e = _longest_true_run(fdr_bh(p) < ALPHA)
        if s < 0:
            hits.append(False)
            continue
        band = rv[i, s:e + 1].mean(0)
        hits.append(stats.ttest_rel(band, final[i], alternative="greater").pvalue < ALPHA)
    return float(np.mean(hits))


def rates(ds, *, element="voice"):
    """Share of targets significant at 5 % per comparison, before and after."""
    out = {}
    rd = ds["r"].sel(feature_set="deep", element=element, layer=list(LAYERS))
    rc = ds["r"].sel(feature_set="lld", element=element, layer=-1)
    old = _old_best(rd)
    d_old = old.values - rc.values
    out["deep>classical before"] = np.mean((_plain_p(old.values, rc.values) < ALPHA) & (d_old.mean(-1) > 0))
    dvc = deep_vs_classical(ds, deep="deep", classical="lld", element=element)
    out["deep>classical after"] = float(np.mean((dvc["p"] < ALPHA) & (dvc["mean_difference"] > 0)))
    rboth = ds["r"].sel(feature_set="deep", layer=list(LAYERS))
    best = rboth.mean(("fold", "element")).fillna(-np.inf).argmax("layer")
    rv, rs = (rboth.sel(element=e).isel(layer=best).values for e in ("voice", "soundtrack"))
    out["voice≠soundtrack before"] = np.mean(_plain_p(rv, rs) < ALPHA)
    ec = element_contrast(ds, feature_set="deep", n_perm=99)
    out["voice≠soundtrack after"] = float(np.mean(ec["p"] < ALPHA))
    a, b = rd.sel(layer=6).values, rd.sel(layer=12).values
    out["layer 6≠12 before"] = np.mean(_plain_p(a, b) < ALPHA)
    out["layer 6≠12 after"] = float(np.mean(layer_vs_layer(ds, feature_set="deep", a=6, b=12, element=element)["p"]
                                            < ALPHA))
    out["middle>final before"] = _old_middle_vs_final(rd)
    mvf = middle_vs_final(ds, feature_set="deep", element=element)
    out["middle>final after"] = float(np.mean(mvf["band_p"] < ALPHA))
    return out


SIM = dict(n_stimuli=10, stim_len=60, signal=1.0, phi=0.5, layers=LAYERS)
SCENARIOS = {
    "null: equal signal everywhere": {},
    "planted, moderate: layers 4-7 noise 1.0 (others and classical 2.0), soundtrack noise x2":
        dict(layer_noise={k: 1.0 for k in (4, 5, 6, 7)}, element_noise={"voice": 1.0, "soundtrack": 2.0}),
    "planted, strong: layers 4-7 noise 0.5, soundtrack noise x4":
        dict(layer_noise={k: 0.5 for k in (4, 5, 6, 7)}, element_noise={"voice": 1.0, "soundtrack": 4.0}),
}


def speed(n_targets: int = 500, repeats: int = 3) -> None:
    """Median wall time of the layer claims with intervals on a synthetic cube."""
    import xarray as xr

    from xaffect.analysis import best_layer, centroid_layer, layer_profile

    rng = np.random.default_rng(0)
    layers = np.arange(25)
    peak = rng.integers(0, 25, n_targets)
    prof = 0.3 * np.exp(-0.5 * ((layers[:, None] - peak[None]) / 3.0) ** 2)
    r = prof[None, :, None, :, None] + rng.normal(0, 0.05, (2, 25, 3, n_targets, 10))
    p = np.where(prof[None, :, None, :] > 0.1, 0.001, 0.5) * np.ones((2, 25, 3, n_targets))
    scores = xr.Dataset({"r": (("feature_set", "layer", "element", "target", "fold"), r),
                         "p_fdr": (("feature_set", "layer", "element", "target"), p)},
                        coords={"feature_set": ["hubert", "vggish"], "layer": layers,
                                "element": ["original", "voice", "soundtrack"],
                                "target": [f"t{i}" for i in range(n_targets)], "fold": [f"s{i}" for i in range(10)]})
    for name, fn in (("layer_profile", layer_profile), ("best_layer", best_layer), ("centroid_layer", centroid_layer)):
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            for fs in ("hubert", "vggish"):
                fn(scores, feature_set=fs)
            times.append(time.perf_counter() - t0)
        print(f"{name:15s} 2 x 25 x 3 x {n_targets} x 10: median {1000 * np.median(times):.0f} ms")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=12)
    ap.add_argument("--targets", type=int, default=40)
    ap.add_argument("--speed", action="store_true", help="time the interval computations instead")
    args = ap.parse_args(argv)
    if args.speed:
        print(f"load average before: {os.getloadavg()}")
        speed()
        print(f"load average after: {os.getloadavg()}")
        return
    print(f"load average before: {os.getloadavg()}")
    for name, kw in SCENARIOS.items():
        t0 = time.perf_counter()
        per_seed = [rates(simulate_scores(seed, n_targets=args.targets, **SIM, **kw)) for seed in range(args.seeds)]
        print(f"\n## {name}  ({args.seeds} data sets x {args.targets} targets, 10 stimuli x 60 samples, "
              f"{time.perf_counter() - t0:.0f} s)")
        print("| comparison | before | after |\n|---|---|---|")
        for key in [k[:-len(" before")] for k in per_seed[0] if k.endswith(" before")]:
            cells = []
            for when in ("before", "after"):
                v = np.array([d[f"{key} {when}"] for d in per_seed])
                cells.append(f"{100 * v.mean():.1f} % (SD {100 * v.std(ddof=1):.1f})")
            print(f"| {key} | {cells[0]} | {cells[1]} |")
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
