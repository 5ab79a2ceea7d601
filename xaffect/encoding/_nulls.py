"""Null targets, permutation p-values and multiple-comparison corrections.

Surrogates are made from the *training* targets of a fold and pushed through
that fold's decomposition as extra columns (see :mod:`._nested`); the same
surrogate index draws the same shifts / phases for every target and every
cell of a grid, so max-statistics across targets and layers are valid.
"""

from __future__ import annotations

import numpy as np
from ..stats import fdr_bh  # noqa: F401  (re-exported)
from ..store.clock import run_bounds

__all__ = ["circular_shift", "phase_randomise", "make_surrogates", "permutation_p", "fdr_bh", "fwer_maxstat"]


def circular_shift(Y: np.ndarray, groups: np.ndarray, rng: np.random.Generator, *,
                   min_shift: float = 0.1) -> np.ndarray:
    """Shift every stimulus's rows circularly by its own random lag.

    Parameters
    ----------
    Y : array of shape (n_samples, n_targets)
    groups : array of shape (n_samples,)
        Stimulus of each sample (contiguous).
    rng : numpy Generator
    min_shift : float
        Smallest shift as a fraction of the stimulus length.

    Returns
    -------
    array of shape (n_samples, n_targets)
    """
    out = np.empty_like(Y)
    bounds = run_bounds(groups)
    for a, b in zip(bounds[:-1], bounds[1:]):
        out[a:b] = np.roll(Y[a:b], _draw_lag(rng, b - a, min_shift), axis=0)
    return out


def _draw_lag(rng: np.random.Generator, n: int, min_shift: float = 0.1) -> int:
    lo = max(1, int(np.ceil(min_shift * n)))
    return int(rng.integers(lo, max(lo + 1, n - lo + 1))) if n > 2 else 1 % max(n, 1)


def shift_lags(groups: np.ndarray, n: int, *, seed: int = 0, start: int = 0) -> np.ndarray:
    """The lags :func:`make_surrogates` (``kind="shift"``) draws, array of shape (n, n_runs).

    Column ``s`` is the circular shift of the ``s``-th contiguous run of ``groups``.
    """
    groups = np.asarray(groups)
    sizes = np.diff(run_bounds(groups))
    out = np.empty((n, sizes.size), dtype=np.int64)
    for j in range(n):
        rng = np.random.default_rng([seed, start + j])
        out[j] = [_draw_lag(rng, int(m)) for m in sizes]
    return out


def phase_randomise(Y: np.ndarray, groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Randomise Fourier phases within each stimulus (same phases for every target).

    Keeps each target's power spectrum (and the cross-target coherence), so
    autocorrelation is kept and any relation to the features is destroyed.

    Parameters
    ----------
    Y : array of shape (n_samples, n_targets)
    groups : array of shape (n_samples,)
    rng : numpy Generator

    Returns
    -------
    array of shape (n_samples, n_targets)
    """
    out = np.empty_like(Y)
    bounds = run_bounds(groups)
    for a, b in zip(bounds[:-1], bounds[1:]):
        n = b - a
        F = np.fft.rfft(Y[a:b], axis=0)
        ph = rng.uniform(0, 2 * np.pi, F.shape[0])
        ph[0] = 0.0
        if n % 2 == 0:
            ph[-1] = 0.0
        out[a:b] = np.fft.irfft(F * np.exp(1j * ph)[:, None], n=n, axis=0)
    return out


def make_surrogates(Y: np.ndarray, groups: np.ndarray, n: int, *, kind: str = "shift",
                    seed: int = 0, start: int = 0) -> np.ndarray:
    """Surrogates ``start .. start+n-1`` of ``Y``.

    Parameters
    ----------
    Y : array of shape (n_samples, n_targets)
    groups : array of shape (n_samples,)
    n : int
    kind : {"shift", "phase"}
    seed : int
        Surrogate ``j`` depends only on ``(seed, j)`` and the stimulus lengths.

    Returns
    -------
    array of shape (n, n_samples, n_targets)
    """
    groups = np.asarray(groups)
    fn = {"shift": circular_shift, "phase": phase_randomise}.get(kind)
    if fn is None:
        raise ValueError(f"null: must be 'shift' or 'phase', got {kind!r}")
    out = np.empty((n,) + Y.shape)
    for j in range(n):
        out[j] = fn(Y, groups, np.random.default_rng([seed, start + j]))
    return out


def permutation_p(observed: np.ndarray, null: np.ndarray, axis: int = -1) -> np.ndarray:
    """One-sided permutation p-value with the +1 correction.

    Parameters
    ----------
    observed : array of shape S
    null : array of shape S with an extra ``axis`` of n_perm

    Returns
    -------
    array of shape S: ``(1 + #(null >= observed)) / (1 + n_perm)``
    """
    null = np.moveaxis(null, axis, -1)
    count = np.sum(null >= observed[..., None], axis=-1)
    p = (1.0 + count) / (1.0 + null.shape[-1])
    return np.where(np.isnan(observed), np.nan, p)




def fwer_maxstat(observed: np.ndarray, null: np.ndarray, family_axes: tuple[int, ...]) -> np.ndarray:
    """Max-statistic family-wise p-values.

    Parameters
    ----------
    observed : array of shape S
    null : array of shape S + (n_perm,)
        Surrogate ``j`` must be the same draw for every cell of the family.
    family_axes : tuple of int
        Axes of ``observed`` forming the family (e.g. target and layer).

    Returns
    -------
    array of shape S
    """
    mx = np.nanmax(null, axis=family_axes, keepdims=True)          # S' + (n_perm,)
    count = np.sum(mx >= observed[..., None], axis=-1)
    p = (1.0 + count) / (1.0 + null.shape[-1])
    return np.where(np.isnan(observed), np.nan, p)
