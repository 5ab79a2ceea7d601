"""Error of fractional FIR delays built by interpolation, against analytic delayed signals.

``xaffect.encoding.make_delays`` builds a delay that is not a whole number of
samples by interpolating each feature column within its stimulus. This
script measures, for each interpolant ("linear", "cubic"), the error of the
delayed column against the exact delayed signal, which is known in closed
form here:

* fMRI, TR 2 s, delay 5 s (2.5 samples): a feature that is a random event
  train (boxcars of 0.5-4 s, Gaussian amplitudes) convolved with the SPM
  canonical haemodynamic response; its convolution with a boxcar is a
  difference of regularised incomplete gamma functions, so ``f(t - 5)`` is
  exact at every sample;
* fMRI, TR 2 s, delay 5 s: pure sines of 0.01-0.2 Hz (the gain of each
  interpolant at half a sample);
* EEG, 64 Hz, delay 0.1 s (6.4 samples): a sum of random sines of
  0.5-8 Hz (an envelope-like feature).

Errors are RMS over the rows that are interpolated (``t - d`` inside the
stimulus), in % of the signal's SD, and the maximum absolute error. Then the
recovery of a response planted 5 s after HRF-convolved features at TR 2 s
(6 stimuli x 2 min, 3 features, noise SD 0.2 of the signal's, 12 seeds):
held-out r of the grid with delays [4, 6], [4, 5, 6] linear, [4, 5, 6] cubic
and [5] cubic against the oracle (r of the noiseless response). Last, the
time of ``make_delays`` for a VGGish-sized cell (3 stimuli x 270 TRs x 512
units x 3 delays), whole vs fractional, medians of interleaved repeats.

Run: ``python benchmarks/bench_fir_interpolation.py``.
"""

from __future__ import annotations

import os
import time

import numpy as np
from scipy.special import gammainc

from xaffect.encoding._cv import make_delays


def hrf_step(t: np.ndarray) -> np.ndarray:
    """Integral of the SPM canonical HRF (gamma(6) - gamma(16)/6, 1 s units) from 0 to t."""
    t = np.clip(t, 0.0, None)
    return gammainc(6.0, t) - gammainc(16.0, t) / 6.0


def hrf_feature(rng: np.random.Generator, duration: float, rate_events: float = 1 / 3.0, start: float = -30.0):
    """A callable f(t): random boxcar events convolved with the canonical HRF, exact at any t."""
    n = rng.poisson(rate_events * duration)
    on = np.sort(rng.uniform(start, duration, n))
    off = on + rng.uniform(0.5, 4.0, n)
    amp = rng.standard_normal(n)

    def f(t):
        t = np.asarray(t, dtype=np.float64)[..., None]
        return (amp * (hrf_step(t - on) - hrf_step(t - off))).sum(-1)
    return f


def sines(rng: np.random.Generator, fmin: float, fmax: float, n: int = 12):
    freq = rng.uniform(fmin, fmax, n)
    phase = rng.uniform(0, 2 * np.pi, n)
    amp = rng.standard_normal(n)

    def f(t):
        t = np.asarray(t, dtype=np.float64)[..., None]
        return (amp * np.sin(2 * np.pi * freq * t + phase)).sum(-1)
    return f


def delay_error(signals, rate: float, n_samples: int, delay_s: float, method: str):
    """RMS error (% of SD) and max |error| / SD of make_delays at ``delay_s`` over several stimuli."""
    t = np.arange(n_samples) / rate
    X = np.stack([f(t) for f in signals], 1)                     # (n, k): one column per signal
    exact = np.stack([f(t - delay_s) for f in signals], 1)
    got = make_delays(X, np.zeros(n_samples), [delay_s * rate], interpolation=method)
    ok = t - delay_s >= 0
    err = (got - exact)[ok]
    sd = X.std(0)
    return 100 * np.sqrt((err ** 2).mean(0) / sd ** 2).mean(), (np.abs(err).max(0) / sd).max()


def recovery(seed: int, n_stim: int = 6, n_tr: int = 60, tr: float = 2.0, noise: float = 0.2) -> dict:
    """Mean held-out r per delay set, and the oracle's, for a response planted 5 s after HRF features."""
    import xarray as xr

    from xaffect.encoding import fit_grid

    rng = np.random.default_rng(seed)
    t = (np.arange(n_tr) + 0.5) * tr
    X, clean = [], []
    for _ in range(n_stim):
        fs = [hrf_feature(rng, n_tr * tr, start=0.0) for _ in range(3)]    # silence before the start
        X.append(np.stack([f(t) for f in fs], 1))
        clean.append(np.stack([f(t - 5.0) for f in fs], 1) @ np.array([1.0, -0.7, 0.5]))
    X, clean = np.concatenate(X), np.concatenate(clean)
    clean /= clean.std()
    y = clean + noise * rng.standard_normal(clean.size)
    stim = np.repeat([f"s{i}" for i in range(n_stim)], n_tr)
    coords = dict(time=np.arange(stim.size), stimulus=("time", stim), onset=("time", np.tile(t, n_stim)))
    feats = {"f": xr.DataArray(X[None, :, None], dims=("element", "time", "layer", "unit"),
                               coords=dict(element=["original"], layer=[0], **coords), attrs={"clock_rate": 1 / tr})}
    tg = xr.DataArray(y[:, None], dims=("time", "target"), coords=dict(target=["y"], **coords),
                      attrs={"clock_rate": 1 / tr})
    out = {"oracle": np.mean([np.corrcoef(y[stim == s], clean[stim == s])[0, 1] for s in dict.fromkeys(stim)])}
    for key, delays, method in (("[4, 6]", [4.0, 6.0], "cubic"), ("[4, 5, 6] linear", [4.0, 5.0, 6.0], "linear"),
                                ("[4, 5, 6] cubic", [4.0, 5.0, 6.0], "cubic"), ("[5] cubic", [5.0], "cubic")):
        ds = fit_grid(feats, tg, delays=delays, delay_interpolation=method, progress=False)
        out[key] = float(ds["r_mean"].squeeze())
    return out


def main() -> None:
    rng = np.random.default_rng(0)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("| signal | clock | delay | method | RMS error (% SD) | max error (x SD) |")
    print("|---|---|---|---|---|---|")
    cases = [("HRF-convolved events", [hrf_feature(rng, 600.0) for _ in range(20)], 0.5, 300, 5.0),
             ("sines 0.01-0.05 Hz", [sines(rng, 0.01, 0.05) for _ in range(20)], 0.5, 300, 5.0),
             ("sines 0.05-0.1 Hz", [sines(rng, 0.05, 0.1) for _ in range(20)], 0.5, 300, 5.0),
             ("sines 0.1-0.2 Hz", [sines(rng, 0.1, 0.2) for _ in range(20)], 0.5, 300, 5.0),
             ("sines 0.5-8 Hz", [sines(rng, 0.5, 8.0) for _ in range(20)], 64.0, 64 * 60, 0.1)]
    for name, sig, rate, n, d in cases:
        for method in ("linear", "cubic"):
            rms, mx = delay_error(sig, rate, n, d, method)
            print(f"| {name} | {rate:g} Hz | {d:g} s ({d * rate:g} samples) | {method} | {rms:.2f} | {mx:.3f} |")
    rows = [recovery(seed) for seed in range(2, 14)]
    print("\nplanted 5 s response at TR 2 s, 12 seeds: mean held-out r (min-max over seeds); gap to the oracle")
    print("| delays | r | oracle - r | share of the [4, 6] gap closed |")
    print("|---|---|---|---|")
    gap46 = np.array([r["oracle"] - r["[4, 6]"] for r in rows])
    for key in ("oracle", "[4, 6]", "[4, 5, 6] linear", "[4, 5, 6] cubic", "[5] cubic"):
        v = np.array([r[key] for r in rows])
        gap = np.array([r["oracle"] for r in rows]) - v
        closed = "" if key == "oracle" else f"{np.median(1 - gap / gap46):.0%} ({np.min(1 - gap / gap46):.0%}-" \
                                            f"{np.max(1 - gap / gap46):.0%})"
        print(f"| {key} | {v.mean():.4f} ({v.min():.4f}-{v.max():.4f}) | {gap.mean():.4f} | {closed} |")
    # time: a VGGish-sized cell at TR 2 s
    X = rng.standard_normal((3 * 270, 512))
    groups = np.repeat(np.arange(3), 270)
    runs = {"whole [2, 3, 4] samples": ([2, 3, 4], "cubic"), "cubic [2, 2.5, 3]": ([2, 2.5, 3], "cubic"),
            "linear [2, 2.5, 3]": ([2, 2.5, 3], "linear")}
    times = {k: [] for k in runs}
    for _ in range(7):
        for k, (lags, method) in runs.items():
            t0 = time.perf_counter()
            make_delays(X, groups, lags, interpolation=method)
            times[k].append(time.perf_counter() - t0)
    base = np.median(times["whole [2, 3, 4] samples"])
    for k, v in times.items():
        print(f"make_delays {k}: {1e3 * np.median(v):.1f} ms (x{np.median(v) / base:.1f})")
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
