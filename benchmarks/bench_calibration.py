"""Calibration of the encoding grid's permutation nulls: false-positive rates and cost.

Targets independent of the features, of four kinds (white, AR(0.9), AR(0.99),
random walk -- the last two drift on the scale of a stimulus, as continuous
ratings do), against white or autocorrelated (AR(0.9)) features, with and
without FIR delays and a covariate. For each null (stimulus permutation,
circular shift, phase randomisation; optionally with within-stimulus linear
detrending) the table gives the fraction of p < .05 and p < .01, and the
binomial 95 % half-width of the .05 rate. Rates are of p <= alpha: with
n_perm + 1 = 200 the permutation p takes values k / 200, and P(p <= alpha) = alpha
exactly for an exact null (p < alpha would read .045 and .005). Then the cost of the default null
relative to circular shift, and of 1000 nulls relative to the grid without.

Run:  python benchmarks/bench_calibration.py [--quick] [--out table.md]
"""

from __future__ import annotations

import argparse
import itertools
import os
import time
import warnings

import numpy as np
import xarray as xr

from xaffect.encoding import fit_grid

KINDS = ("white", "ar0.9", "ar0.99", "randomwalk")


def series(rng: np.random.Generator, kind: str, n_stim: int, n_time: int, n_cols: int) -> np.ndarray:
    """Independent series per stimulus, shape (n_stim * n_time, n_cols)."""
    e = rng.standard_normal((n_stim, n_time, n_cols))
    if kind == "white":
        x = e
    elif kind == "randomwalk":
        x = np.cumsum(e, axis=1)
    else:
        phi = float(kind[2:])
        x = np.empty_like(e)
        x[:, 0] = e[:, 0] / np.sqrt(1 - phi ** 2)          # stationary start
        for t in range(1, n_time):
            x[:, t] = phi * x[:, t - 1] + e[:, t]
    return x.reshape(n_stim * n_time, n_cols)


def clock(n_stim: int, n_time: int) -> dict:
    return dict(time=np.arange(n_stim * n_time), stimulus=("time", np.repeat([f"s{i}" for i in range(n_stim)], n_time)),
                onset=("time", np.tile(np.arange(n_time) + 0.5, n_stim)))


def simulate(seed: int, target_kind: str, feature_kind: str, *, n_stim: int = 8, n_time: int = 80,
             n_units: int = 4, n_targets: int = 100, covariate: bool = False):
    """Features, targets and (optional) covariate stores with no relation between features and targets."""
    rng = np.random.default_rng(seed)
    F = series(rng, "white" if feature_kind == "white" else "ar0.9", n_stim, n_time, n_units)
    Y = series(rng, target_kind, n_stim, n_time, n_targets)
    c = clock(n_stim, n_time)
    feats = {"f": xr.DataArray(F[None, :, None, :].astype(np.float32), dims=("element", "time", "layer", "unit"),
                               coords=dict(element=["original"], layer=[0], **c), attrs={"clock_rate": 1.0})}
    tg = xr.DataArray(Y, dims=("time", "target"), coords=dict(target=[f"t{i}" for i in range(n_targets)], **c),
                      attrs={"clock_rate": 1.0})
    cov = None
    if covariate:
        cov = xr.DataArray(series(rng, "ar0.9", n_stim, n_time, 1), dims=("time", "descriptor"),
                           coords=dict(descriptor=["luminance"], **c), attrs={"clock_rate": 1.0})
    return feats, tg, cov


def pvalues(null: str, target_kind: str, feature_kind: str, *, reps: int, n_perm: int, delays=(0.0,),
            covariate: bool = False, detrend=None, n_targets: int = 100, seed: int = 0, **sim) -> np.ndarray:
    out = []
    for r in range(reps):
        feats, tg, cov = simulate(1000 * seed + r, target_kind, feature_kind, covariate=covariate,
                                  n_targets=n_targets, **sim)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = fit_grid(feats, tg, covariates=cov, delays=delays, n_perm=n_perm, null=null, detrend=detrend,
                          alphas=[0.1, 10.0, 1000.0], seed=r, progress=False)
        out.append(ds["p"].values.ravel())
    return np.concatenate(out)


def half_width(n: int, p: float = 0.05) -> float:
    return 1.96 * np.sqrt(p * (1 - p) / n)


def calibration_table(*, quick: bool, full: bool = False, done: dict[str, str] | None = None) -> list[str]:
    """Stimulus null x target kind x feature kind; the other nulls on autocorrelated features; delays + covariate.

    ``done`` maps a row's leading cells to a row already computed (``--resume``).
    """
    reps, n_targets, n_perm = (1, 200, 199) if quick else (3, 270, 199)
    rows = ["| null | detrend | targets | features | delays | covariate | FPR p<=.05 | FPR p<=.01 | ±95% (.05) | n p |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    plain = [("stimulus", None, tk, fk, (0.0,), False) for tk, fk in itertools.product(KINDS, ("white", "ar0.9"))]
    # the other nulls on autocorrelated features, where they can fail (full grid: --all)
    kinds = KINDS if full else ("ar0.9", "ar0.99", "randomwalk")
    plain += [(null, det, tk, "ar0.9", (0.0,), False) for (null, det), tk in itertools.product(
        [("shift", None), ("phase", None), ("shift", "linear")], kinds)
        if full or null == "shift" and det is None or tk != "ar0.99"]
    lagged = [(null, None, tk, "ar0.9", (0.0, 1.0, 2.0), True) for null, tk in itertools.product(
        ("stimulus", "shift"), KINDS if full else ("ar0.99", "randomwalk")) if full or null == "stimulus" or tk != "ar0.99"]
    for null, det, tk, fk, delays, cov in plain + lagged:
        key = f"| {null} | {det or '-'} | {tk} | {fk} | {len(delays)} | {'yes' if cov else 'no'} |"
        if done and key in done:
            rows.append(done[key])
            continue
        p = pvalues(null, tk, fk, reps=reps, n_perm=n_perm, delays=delays, covariate=cov, detrend=det,
                    n_targets=n_targets)
        rows.append(f"{key} {np.mean(p <= .05):.3f} | {np.mean(p <= .01):.3f} | {half_width(p.size):.3f} | {p.size} |")
        print(rows[-1], flush=True)
    return rows


def cost_table(*, repeats: int = 3) -> list[str]:
    feats, tg, _ = simulate(7, "randomwalk", "ar0.9", n_stim=10, n_time=120, n_units=12, n_targets=20)
    feats = {"f": xr.concat([feats["f"].assign_coords(layer=[k]) for k in range(6)], dim="layer")}
    kw = dict(alphas=np.logspace(-3, 3, 13), progress=False)

    def run(**extra):
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit_grid(feats, tg, **kw, **extra)
        return time.perf_counter() - t

    times = {k: [] for k in ("none", "shift", "stimulus", "phase")}
    for _ in range(repeats):                              # interleaved repeats
        times["none"].append(run(n_perm=0))
        times["shift"].append(run(n_perm=1000, null="shift"))
        times["stimulus"].append(run(n_perm=1000, null="stimulus"))
        times["phase"].append(run(n_perm=1000, null="phase"))
    med = {k: float(np.median(v)) for k, v in times.items()}
    rows = ["| grid (10 stimuli x 120 s, 6 layers x 12 units, 20 targets) | median s | ratio |", "|---|---|---|"]
    rows.append(f"| no nulls | {med['none']:.2f} | 1.0 |")
    for k in ("stimulus", "shift", "phase"):
        rows.append(f"| 1000 nulls, {k} | {med[k]:.2f} | {med[k] / med['none']:.1f}x no nulls, "
                    f"{med[k] / med['shift']:.2f}x shift |")
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer p-values (smoke run)")
    ap.add_argument("--no-cost", action="store_true")
    ap.add_argument("--out", default=None)
    ap.add_argument("--all", action="store_true", help="every null x target kind x delays (slow)")
    ap.add_argument("--resume", default=None, help="a log of rows already computed (skipped)")
    args = ap.parse_args()
    done = {}
    if args.resume:
        for line in open(args.resume):
            if line.startswith("| ") and line.count("|") == 11:
                done["|".join(line.split("|")[:7]) + "|"] = line.rstrip("\n")
    lines = [f"load average before: {os.getloadavg()}"]
    lines += calibration_table(quick=args.quick, full=args.all, done=done)
    if not args.no_cost:
        lines += [""] + cost_table()
    lines.append(f"load average after: {os.getloadavg()}")
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")


if __name__ == "__main__":
    main()
