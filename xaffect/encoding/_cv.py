"""Folds, FIR delays and training-only standardisation, all stimulus-aware.

Samples carry a group label (the stimulus). Outer folds leave one stimulus
out, or -- for a single long stimulus -- hold out contiguous blocks with a
gap on either side; inner folds are drawn only from the outer training
samples. Delays are built within each stimulus, never across a boundary;
delays that are not whole samples are interpolated within the stimulus.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ConfigError, InputError
from ..store.clock import run_bounds

__all__ = ["leave_one_stimulus_out", "blocked_kfold", "make_delays", "delay_samples", "check_delays_fit",
           "outer_folds", "detrend_within", "DETREND_KINDS", "DELAY_INTERPOLATIONS"]


def _runs(groups: np.ndarray) -> list:
    """Group labels in order of first appearance."""
    return list(dict.fromkeys(np.asarray(groups).tolist()))


def leave_one_stimulus_out(groups: Sequence) -> list[tuple[np.ndarray, np.ndarray]]:
    """One fold per stimulus: train on the others, test on it.

    Parameters
    ----------
    groups : array of shape (n_samples,)
        Stimulus of each sample.

    Returns
    -------
    list of (train, test) index arrays, one per stimulus in order
    """
    groups = np.asarray(groups)
    labels = _runs(groups)
    if len(labels) < 2:
        raise InputError(f"leave-one-stimulus-out needs at least 2 stimuli, got {len(labels)} "
                         f"({labels[0] if labels else 'none'}); use blocked k-fold (cv: blocked) instead")
    return [(np.flatnonzero(groups != lab), np.flatnonzero(groups == lab)) for lab in labels]


def blocked_kfold(n_samples: int, k: int, *, gap: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Contiguous k-fold with ``gap`` samples dropped on each side of the test block.

    Parameters
    ----------
    n_samples : int
    k : int
        Number of blocks (>= 2).
    gap : int
        Samples excluded from training before and after each test block.

    Returns
    -------
    list of (train, test) index arrays
    """
    if k < 2 or k > n_samples:
        raise ConfigError(f"cv: blocked k-fold needs 2 <= k <= n_samples, got k={k} for {n_samples} samples")
    edges = np.linspace(0, n_samples, k + 1).round().astype(int)
    out = []
    idx = np.arange(n_samples)
    for a, b in zip(edges[:-1], edges[1:]):
        test = idx[a:b]
        train = idx[(idx < a - gap) | (idx >= b + gap)]
        if train.size == 0:
            raise ConfigError(f"cv: gap={gap} leaves no training samples for block [{a}, {b})")
        out.append((train, test))
    return out


def block_labels(n_samples: int, k: int) -> np.ndarray:
    """Block index of each sample for contiguous k blocks, shape (n_samples,)."""
    edges = np.linspace(0, n_samples, k + 1).round().astype(int)
    return np.searchsorted(edges[1:], np.arange(n_samples), side="right")


def outer_folds(groups: np.ndarray, cv: str | int = "loso", *, gap: int = 0):
    """Outer folds and each sample's inner-group label.

    Parameters
    ----------
    groups : array of shape (n_samples,)
        Stimulus of each sample.
    cv : "loso" or int
        Leave one stimulus out, or that many contiguous blocks (with ``gap``).

    Returns
    -------
    folds : list of (name, train, test)
        ``name`` is the held-out stimulus (or ``"block<k>"``).
    inner : array of shape (n_samples,)
        Inner-fold label: the stimulus (LOSO) or the block.
    """
    groups = np.asarray(groups).astype(str)
    if cv == "loso":
        folds = leave_one_stimulus_out(groups)
        return [(lab, tr, te) for lab, (tr, te) in zip(_runs(groups), folds)], groups
    if isinstance(cv, (int, np.integer)) and not isinstance(cv, bool):
        folds = blocked_kfold(groups.size, int(cv), gap=gap)
        labels = np.array([f"block{b}" for b in block_labels(groups.size, int(cv))])
        return [(f"block{i}", tr, te) for i, (tr, te) in enumerate(folds)], labels
    raise ConfigError(f"cv: must be 'loso' or a number of blocks, got {cv!r}")


#: how a delay that is not a whole number of samples is built (:func:`make_delays`)
DELAY_INTERPOLATIONS = ("cubic", "linear", "none")

_WHOLE_TOL = 1e-6          # a delay within this many samples of an integer is that whole number of samples


def _is_whole(lag: float) -> bool:
    return abs(float(lag) - round(float(lag))) <= _WHOLE_TOL


def delay_samples(delays_s: Sequence[float], rate: float, *, interpolation: str = "cubic") -> list[int | float]:
    """FIR delays in seconds to samples at ``rate`` Hz.

    Parameters
    ----------
    delays_s : sequence of float
        Delays in seconds (finite; negative: the feature *after* the response).
    rate : float
        Clock rate in Hz.
    interpolation : {"cubic", "linear", "none"}
        How a delay that is not a whole number of samples will be built
        (:func:`make_delays`); "none" refuses such a delay.

    Returns
    -------
    list of int or float
        Whole delays as ``int`` (they take the exact shift path), the others
        as fractional ``float`` numbers of samples.
    """
    if interpolation not in DELAY_INTERPOLATIONS:
        raise ConfigError(f"delay_interpolation: must be one of {DELAY_INTERPOLATIONS}, got {interpolation!r}")
    delays_s = list(delays_s)
    if not delays_s:
        raise ConfigError("delays: empty list; give at least one delay in seconds (e.g. [0])")
    out: list[int | float] = []
    for i, d in enumerate(delays_s):
        try:
            k = float(d) * rate
        except (TypeError, ValueError):
            raise ConfigError(f"delays: entry {i} is {d!r}, not a number of seconds") from None
        if not np.isfinite(k):
            raise ConfigError(f"delays: entry {i} is {d!r}; delays must be finite numbers of seconds")
        if _is_whole(k):
            out.append(int(round(k)))
        elif interpolation == "none":
            raise ConfigError(f"delays: {d} s is not a whole number of samples at {rate} Hz "
                              "(set delay_interpolation: cubic or linear to interpolate it)")
        else:
            out.append(k)
    return out


def check_delays_fit(groups: np.ndarray, lags: Sequence[float], rate: float) -> None:
    """Refuse delays that leave a stimulus fewer than 2 delayed samples, naming the stimulus.

    Parameters
    ----------
    groups : array of shape (n_samples,)
        Stimulus of each sample (contiguous runs).
    lags : sequence of float
        Delays in samples (:func:`delay_samples`).
    rate : float
        Clock rate in Hz (for the message).
    """
    groups = np.asarray(groups)
    bounds = run_bounds(groups)
    lag = max(lags, key=lambda v: abs(float(v)))
    span = int(np.ceil(abs(float(lag)) - _WHOLE_TOL))
    for a, b in zip(bounds[:-1], bounds[1:]):
        if span + 2 > b - a:
            how = "reaches back before its start" if float(lag) >= 0 else "is negative and reaches past its end"
            raise ConfigError(f"delays: {float(lag) / rate:g} s ({float(lag):g} samples at {rate:g} Hz) leaves "
                              f"stimulus {str(groups[a])!r} ({b - a} samples) fewer than 2 delayed samples (the delay "
                              f"{how}); shorten the delays or drop the stimulus")


def _shift_whole(out: np.ndarray, X: np.ndarray, a: int, b: int, cols: slice, lag: int) -> None:
    if lag >= 0:
        if lag < b - a:
            out[a + lag:b, cols] = X[a:b - lag]
    else:
        if -lag < b - a:
            out[a:b + lag, cols] = X[a - lag:b]


def _shift_fractional(out: np.ndarray, spline, a: int, b: int, cols: slice, lag: float) -> None:
    """Row ``a + t`` gets the stimulus's interpolant at ``t - lag``; zero where that is outside the stimulus.

    Sample ``k`` is the clock bin ``[k, k + 1)`` (centre ``k + 0.5``), so the
    stimulus spans ``[-0.5, n - 0.5]`` in sample units: a delayed time
    before ``-0.5`` is before the stimulus's start (zero, as whole delays
    give); one in ``[-0.5, 0)`` is inside the first bin and takes its value
    (constant beyond the first sample, as :func:`xaffect.store.clock.on_clock`
    does); likewise at the end for negative delays.
    """
    n = b - a
    t = np.arange(n) - lag
    ok = (t >= -0.5 - _WHOLE_TOL) & (t <= n - 0.5 + _WHOLE_TOL)
    out[a + np.flatnonzero(ok), cols] = spline(np.clip(t[ok], 0.0, n - 1.0))


def make_delays(X: np.ndarray, groups: np.ndarray, lags: Sequence[float], *,
                interpolation: str = "cubic") -> np.ndarray:
    """Stack delayed copies of ``X``, each stimulus shifted on its own.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
    groups : array of shape (n_samples,)
        Stimulus of each sample; samples of a stimulus are contiguous.
    lags : sequence of float
        Delays in samples (feature at t - lag predicts response at t).
        Whole lags are exact shifts; samples shifted in from before a
        stimulus's start (after its end, for a negative lag) are zero.
        A fractional lag interpolates each column *within* its stimulus at
        ``t - lag``; rows whose delayed time falls before the stimulus's
        start (after its end) are zero, as for whole lags, and one that
        falls in the first (last) half bin takes the first (last) sample --
        nothing is ever taken from the neighbouring stimulus.
    interpolation : {"cubic", "linear", "none"}
        Interpolant of fractional lags (scipy's ``make_interp_spline`` of
        degree 3, not-a-knot ends, or degree 1); "none" refuses them.

    Returns
    -------
    array of shape (n_samples, n_features * len(lags))
        Blocks in the order of ``lags``.

    Notes
    -----
    Default "cubic", chosen on measurement (``benchmarks/bench_fir_interpolation.py``):
    at TR 2 s, a 5 s delay of a feature convolved with the canonical
    haemodynamic response has an RMS error of 8.2 % of the feature's SD with
    linear interpolation and 1.8 % with the cubic spline (0.1 s at 64 Hz of
    a 0.5-8 Hz signal: 3.1 % and 0.03 %). Linear interpolation halfway between two
    samples is their mean: a low-pass (gain cos(pi f / rate), 0.81 at
    0.1 Hz, TR 2 s) that the HRF band does not escape, and -- worse for an
    FIR model -- the 5 s column is then exactly the mean of the 4 s and 6 s
    columns, so adding it spans nothing new. The cubic spline uses the
    neighbouring samples too (a near-band-limited reconstruction, error
    O(h^4) against O(h^2)); its small overshoot at sharp steps is the price,
    and "linear" (never outside the range of its two samples) stays
    available for features with jumps.

    scipy does the interpolation; only the placement within each stimulus
    and the fill are written here: the field's FIR delayers (e.g. the
    voxelwise tutorials' ``Delayer``) shift whole samples over the whole
    array, across stimulus boundaries.
    """
    lags = list(lags)
    if lags == [0]:
        return X
    if interpolation not in DELAY_INTERPOLATIONS:
        raise ConfigError(f"delay_interpolation: must be one of {DELAY_INTERPOLATIONS}, got {interpolation!r}")
    whole = [_is_whole(lag) for lag in lags]
    if not all(whole) and interpolation == "none":
        bad = next(lag for lag, w in zip(lags, whole) if not w)
        raise ConfigError(f"delays: {bad} samples is not a whole number of samples "
                          "(set delay_interpolation: cubic or linear to interpolate it)")
    groups = np.asarray(groups)
    out = np.zeros((X.shape[0], X.shape[1] * len(lags)), dtype=X.dtype)
    bounds = run_bounds(groups)
    for a, b in zip(bounds[:-1], bounds[1:]):
        spline = None
        for j, lag in enumerate(lags):
            cols = slice(j * X.shape[1], (j + 1) * X.shape[1])
            if whole[j]:
                _shift_whole(out, X, a, b, cols, int(round(float(lag))))
                continue
            if spline is None:
                spline = _interpolant(X[a:b], interpolation, str(groups[a]))
            _shift_fractional(out, spline, a, b, cols, float(lag))
    return out


def _interpolant(x: np.ndarray, interpolation: str, stimulus: str):
    """Spline through one stimulus's samples (time axis 0), degree 3 or 1."""
    from scipy.interpolate import make_interp_spline

    k = 3 if interpolation == "cubic" else 1
    if x.shape[0] < k + 1:
        raise ConfigError(f"delays: stimulus {stimulus!r} has {x.shape[0]} samples, too few for a "
                          f"{interpolation} interpolation of a fractional delay (needs {k + 1})")
    return make_interp_spline(np.arange(x.shape[0], dtype=np.float64), x, k=k, axis=0)


DETREND_KINDS = (None, "linear", "cosine")


def detrend_within(X: np.ndarray, groups: np.ndarray, kind: str | None, *, rate: float,
                   high_pass: float | None = None) -> np.ndarray:
    """Remove slow drifts from each stimulus separately.

    Parameters
    ----------
    X : array of shape (n_samples, n_columns)
    groups : array of shape (n_samples,)
        Stimulus of each sample (contiguous runs).
    kind : {None, "linear", "cosine"}
        None: unchanged. "linear": mean and linear trend per stimulus
        (``scipy.signal.detrend`` with a breakpoint at every stimulus start).
        "cosine": linear detrend plus a discrete-cosine high-pass at
        ``high_pass`` Hz per stimulus (``nilearn.signal.clean``, the
        SPM-style drift model of fMRI, 1/128 Hz there).
    rate : float
        Sampling rate of ``X`` in Hz.
    high_pass : float, optional
        Cut-off in Hz for "cosine".

    Returns
    -------
    array of shape (n_samples, n_columns), float64
    """
    X = np.asarray(X, dtype=np.float64)
    if kind is None:
        return X
    bounds = run_bounds(np.asarray(groups))
    if kind == "linear":
        from scipy.signal import detrend

        return detrend(X, axis=0, type="linear", bp=bounds[1:-1])
    if kind == "cosine":
        if high_pass is None or not high_pass > 0:
            raise ConfigError(f"high_pass: detrend='cosine' needs a cut-off in Hz > 0, got {high_pass}")
        from nilearn.signal import clean   # imported here: nilearn takes seconds to import

        runs = np.repeat(np.arange(bounds.size - 1), np.diff(bounds))
        return clean(X, runs=runs, detrend=True, standardize=None, filter="cosine", high_pass=float(high_pass),
                     t_r=1.0 / rate)
    raise ConfigError(f"detrend: must be null, 'linear' or 'cosine', got {kind!r}")
