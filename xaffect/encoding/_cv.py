"""Folds, FIR delays and training-only standardisation, all stimulus-aware.

Samples carry a group label (the stimulus). Outer folds leave one stimulus
out, or -- for a single long stimulus -- hold out contiguous blocks with a
gap on either side; inner folds are drawn only from the outer training
samples. Delays are built within each stimulus, never across a boundary.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ConfigError, InputError
from ..store.clock import run_bounds

__all__ = ["leave_one_stimulus_out", "blocked_kfold", "make_delays", "delay_samples", "outer_folds", "detrend_within",
           "DETREND_KINDS"]


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


def delay_samples(delays_s: Sequence[float], rate: float) -> list[int]:
    """FIR delays in seconds to whole samples at ``rate`` Hz (must be exact)."""
    out = []
    for d in delays_s:
        k = float(d) * rate
        if abs(k - round(k)) > 1e-6:
            raise ConfigError(f"delays: {d} s is not a whole number of samples at {rate} Hz")
        out.append(int(round(k)))
    return out


def make_delays(X: np.ndarray, groups: np.ndarray, lags: Sequence[int]) -> np.ndarray:
    """Stack delayed copies of ``X``, each stimulus shifted on its own.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
    groups : array of shape (n_samples,)
        Stimulus of each sample; samples of a stimulus are contiguous.
    lags : sequence of int
        Delays in samples (feature at t - lag predicts response at t);
        samples shifted in from before a stimulus's start are zero.

    Returns
    -------
    array of shape (n_samples, n_features * len(lags))
        Blocks in the order of ``lags``.
    """
    lags = list(lags)
    if lags == [0]:
        return X
    groups = np.asarray(groups)
    out = np.zeros((X.shape[0], X.shape[1] * len(lags)), dtype=X.dtype)
    bounds = run_bounds(groups)
    for a, b in zip(bounds[:-1], bounds[1:]):
        for j, lag in enumerate(lags):
            cols = slice(j * X.shape[1], (j + 1) * X.shape[1])
            if lag >= 0:
                if lag < b - a:
                    out[a + lag:b, cols] = X[a:b - lag]
            else:
                if -lag < b - a:
                    out[a:b + lag, cols] = X[a - lag:b]
    return out


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
