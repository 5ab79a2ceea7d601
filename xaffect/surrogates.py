"""Surrogate time series for permutation nulls, shared by encoding and synchrony.

Three families of surrogates, each valid under a different assumption about
the data (what "exchangeable under the null" means):

* **circular shift** (:func:`circular_shift`, :func:`circular_shift_each`):
  each stimulus (or each subject) is rolled by its own random lag. Keeps the
  autocorrelation exactly except at one wrap point. Valid when the series is
  stationary with autocorrelation much shorter than the stimulus; a lag near 0
  would reproduce the data, so lags are drawn from
  ``[ceil(f * n), n - ceil(f * n)]`` with ``f = MIN_SHIFT_FRACTION`` (0.1) of
  the stimulus length ``n`` -- never 0.
* **phase randomisation** (:func:`phase_randomise`, :func:`phase_randomise_each`):
  Fourier phases redrawn within each stimulus, amplitude spectrum kept
  (Theiler et al. 1992, Physica D 58:77; Prichard & Theiler 1994, PRL 73:951).
  Valid for stationary, linear Gaussian series; it treats the series as
  periodic, so drifting series (random-walk-like) are not preserved.
* **stimulus permutation** (:func:`permute_stimuli`): targets of one stimulus
  paired with the features of another, all series left intact. When the
  targets of different stimuli are exchangeable under the null (the same
  rating process on every stimulus), this is an exact permutation test
  whatever the autocorrelation -- drifts as long as the stimulus included --
  which is why it is the calibrated choice for continuous ratings (the
  "between-stimulus" or "mismatched-pair" null of naturalistic ISC/encoding
  work: Nastase et al. 2019, SCAN 14:667; Chen et al. 2016, NeuroImage
  142:248 on why within-series resampling is anti-conservative under strong
  autocorrelation). Lengths are matched by keeping the donor's first ``n``
  samples (stimulus-onset aligned) or, for a shorter donor, extending it by
  mirror reflection at its end (continuous, no jump).

Every function draws from an explicit ``numpy.random.Generator``; the
``*_draws`` helpers give the draws of surrogate ``start .. start+n-1`` for a
``seed`` so the same surrogate index is the same draw in every fold and every
cell of a grid (needed for max-statistic family-wise p-values).
"""

from __future__ import annotations

import math

import numpy as np

from .errors import ConfigError, InputError
from .store.clock import run_bounds

__all__ = ["MIN_SHIFT_FRACTION", "MIN_STIMULI_FOR_PERMUTATION", "SURROGATE_KINDS", "draw_shift",
           "circular_shift", "circular_shift_each", "phase_randomise", "phase_randomise_each",
           "match_length", "permute_stimuli", "shift_draws", "permutation_draws", "make_surrogates"]

#: smallest circular shift, as a fraction of the series length (each side of 0)
MIN_SHIFT_FRACTION = 0.1
#: fewest stimuli for a stimulus-permutation null: 5! = 120 distinct pairings,
#: so p-values resolve below .01 (with 4 stimuli the smallest p is 1/24)
MIN_STIMULI_FOR_PERMUTATION = 5
SURROGATE_KINDS = ("shift", "phase", "stimulus")


def draw_shift(rng: np.random.Generator, n: int, min_fraction: float = MIN_SHIFT_FRACTION) -> int:
    """A circular lag for a series of ``n`` samples, bounded away from 0.

    Drawn uniformly from ``[lo, n - lo]`` with ``lo = max(1, ceil(min_fraction * n))``;
    a series of 1 sample gets 0, of 2 samples 1.

    Parameters
    ----------
    rng : numpy Generator
    n : int
    min_fraction : float
        In ``[0, 0.5)``.

    Returns
    -------
    int
    """
    if not 0.0 <= min_fraction < 0.5:
        raise ConfigError(f"min_shift: must be in [0, 0.5), got {min_fraction}")
    if n < 2:
        return 0
    lo = max(1, int(math.ceil(min_fraction * n)))
    hi = max(lo, n - lo)
    return int(rng.integers(lo, hi + 1))


def circular_shift(Y: np.ndarray, groups: np.ndarray, rng: np.random.Generator, *,
                   min_fraction: float = MIN_SHIFT_FRACTION) -> np.ndarray:
    """Roll each stimulus's rows by its own lag (the same lag for every column).

    Parameters
    ----------
    Y : array of shape (n_samples, ...)
    groups : array of shape (n_samples,)
        Stimulus of each sample (contiguous runs).
    rng : numpy Generator
    min_fraction : float
        See :func:`draw_shift`.

    Returns
    -------
    array of the shape of ``Y``
    """
    out = np.empty_like(Y)
    bounds = run_bounds(np.asarray(groups))
    for a, b in zip(bounds[:-1], bounds[1:]):
        out[a:b] = np.roll(Y[a:b], draw_shift(rng, b - a, min_fraction), axis=0)
    return out


def circular_shift_each(x: np.ndarray, rng: np.random.Generator, *,
                        min_fraction: float = MIN_SHIFT_FRACTION) -> np.ndarray:
    """Roll each series (e.g. each subject, all regions together) by its own lag.

    Parameters
    ----------
    x : array of shape (n_series, n_samples, ...)
    rng : numpy Generator
    min_fraction : float
        See :func:`draw_shift`.

    Returns
    -------
    array of the shape of ``x``
    """
    n = x.shape[1]
    return np.stack([np.roll(x[s], draw_shift(rng, n, min_fraction), axis=0) for s in range(x.shape[0])])


def _random_phases(rng: np.random.Generator, n: int, shape: tuple[int, ...] = ()) -> np.ndarray:
    """Phases for an rfft of length ``n``, shape ``shape + (n // 2 + 1,)``; DC and Nyquist kept real."""
    ph = rng.uniform(0.0, 2.0 * np.pi, size=shape + (n // 2 + 1,))
    ph[..., 0] = 0.0
    if n % 2 == 0:
        ph[..., -1] = 0.0
    return ph


def _apply_phases(x: np.ndarray, phases: np.ndarray) -> np.ndarray:
    """Rotate the Fourier phases of ``x`` (time on axis 0) by ``phases`` (n_freq,).

    Missing samples (NaN) enter as the series mean and stay missing.
    """
    nan = np.isnan(x)
    mean = np.nanmean(x, axis=0, keepdims=True) if nan.any() else x.mean(axis=0, keepdims=True)
    xc = np.where(nan, 0.0, x - mean)
    n = x.shape[0]
    rot = np.exp(1j * phases).reshape((-1,) + (1,) * (x.ndim - 1))
    out = np.fft.irfft(np.fft.rfft(xc, axis=0) * rot, n=n, axis=0) + mean
    out[nan] = np.nan
    return out


def phase_randomise(Y: np.ndarray, groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Randomise Fourier phases within each stimulus (the same phases for every column).

    Keeps each column's power spectrum and the cross-column coherence.

    Parameters
    ----------
    Y : array of shape (n_samples, ...)
    groups : array of shape (n_samples,)
    rng : numpy Generator

    Returns
    -------
    array of the shape of ``Y``
    """
    out = np.empty(Y.shape, dtype=np.float64)
    bounds = run_bounds(np.asarray(groups))
    for a, b in zip(bounds[:-1], bounds[1:]):
        out[a:b] = _apply_phases(np.asarray(Y[a:b], dtype=np.float64), _random_phases(rng, b - a))
    return out


def phase_randomise_each(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Randomise the Fourier phases of each series independently.

    Parameters
    ----------
    x : array of shape (n_series, n_samples, ...)
        The same phases for every trailing column of a series (its spatial
        covariance is kept); NaN samples stay NaN.
    rng : numpy Generator

    Returns
    -------
    array of the shape of ``x``
    """
    phases = _random_phases(rng, x.shape[1], (x.shape[0],))
    return np.stack([_apply_phases(np.asarray(x[s], dtype=np.float64), phases[s]) for s in range(x.shape[0])])


def match_length(y: np.ndarray, n: int) -> np.ndarray:
    """``y`` (time first) cut or extended to ``n`` samples, aligned at its onset.

    Longer: the first ``n`` samples. Shorter: extended at the end by mirror
    reflection (``numpy.pad`` mode "symmetric"), which keeps the series
    continuous and its local autocorrelation.
    """
    m = y.shape[0]
    if m >= n:
        return y[:n]
    return np.pad(y, [(0, n - m)] + [(0, 0)] * (y.ndim - 1), mode="symmetric")


def _check_permutable(groups: np.ndarray) -> np.ndarray:
    bounds = run_bounds(np.asarray(groups))
    n_groups = bounds.size - 1
    if n_groups < MIN_STIMULI_FOR_PERMUTATION:
        names = list(dict.fromkeys(np.asarray(groups).tolist()))
        raise InputError(f"null='stimulus': needs at least {MIN_STIMULI_FOR_PERMUTATION} stimuli "
                         f"({MIN_STIMULI_FOR_PERMUTATION}! pairings), got {n_groups} ({names}); "
                         "null='shift' runs with fewer, but is not calibrated for drifting targets")
    return bounds


def permute_stimuli(Y: np.ndarray, groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Give each stimulus the (length-matched) series of a randomly permuted stimulus.

    Parameters
    ----------
    Y : array of shape (n_samples, ...)
    groups : array of shape (n_samples,)
        At least :data:`MIN_STIMULI_FOR_PERMUTATION` contiguous runs.
    rng : numpy Generator

    Returns
    -------
    array of the shape of ``Y``: run ``r`` holds ``match_length(Y[run perm[r]], len(run r))``.
    """
    bounds = _check_permutable(groups)
    perm = rng.permutation(bounds.size - 1)
    out = np.empty_like(Y)
    for r, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        d = perm[r]
        out[a:b] = match_length(Y[bounds[d]:bounds[d + 1]], b - a)
    return out


def shift_draws(groups: np.ndarray, n: int, *, seed: int = 0, start: int = 0,
                min_fraction: float = MIN_SHIFT_FRACTION) -> np.ndarray:
    """The lags ``make_surrogates(kind="shift")`` draws, array of shape (n, n_runs)."""
    sizes = np.diff(run_bounds(np.asarray(groups)))
    out = np.empty((n, sizes.size), dtype=np.int64)
    for j in range(n):
        rng = np.random.default_rng([seed, start + j])
        out[j] = [draw_shift(rng, int(m), min_fraction) for m in sizes]
    return out


def permutation_draws(groups: np.ndarray, n: int, *, seed: int = 0, start: int = 0) -> np.ndarray:
    """The donor runs ``make_surrogates(kind="stimulus")`` draws, array of shape (n, n_runs)."""
    bounds = _check_permutable(groups)
    return np.stack([np.random.default_rng([seed, start + j]).permutation(bounds.size - 1) for j in range(n)])


def make_surrogates(Y: np.ndarray, groups: np.ndarray, n: int, *, kind: str = "shift",
                    seed: int = 0, start: int = 0) -> np.ndarray:
    """Surrogates ``start .. start+n-1`` of ``Y``.

    Parameters
    ----------
    Y : array of shape (n_samples, n_targets)
    groups : array of shape (n_samples,)
    n : int
    kind : {"shift", "phase", "stimulus"}
    seed : int
        Surrogate ``j`` depends only on ``(seed, j)`` and the run lengths.

    Returns
    -------
    array of shape (n, n_samples, n_targets)
    """
    groups = np.asarray(groups)
    fn = {"shift": circular_shift, "phase": phase_randomise, "stimulus": permute_stimuli}.get(kind)
    if fn is None:
        raise ConfigError(f"null: must be one of {SURROGATE_KINDS}, got {kind!r}")
    out = np.empty((n,) + Y.shape)
    for j in range(n):
        out[j] = fn(Y, groups, np.random.default_rng([seed, start + j]))
    return out
