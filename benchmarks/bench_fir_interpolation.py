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
stimulus), in % of the signal's SD, and the maximum absolute error. Also the
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


def hrf_feature(rng: np.random.Generator, duration: float, rate_events: float = 1 / 3.0):
    """A callable f(t): random boxcar events convolved with the canonical HRF, exact at any t."""
    n = rng.poisson(rate_events * duration)
    on = np.sort(rng.uniform(-30.0, duration, n))
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
