"""Statistics shared by the synchrony, encoding and analysis stages."""

from __future__ import annotations

import numpy as np

__all__ = ["fdr_bh", "holm", "adjust_family"]


def fdr_bh(p: np.ndarray, axis: int = -1) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values along ``axis`` (NaNs ignored and kept).

    Parameters
    ----------
    p : ndarray
        p-values; NaN marks a test that was not run.
    axis : int
        The axis holding one family of tests.

    Returns
    -------
    ndarray of the same shape
        Adjusted p-values (``scipy.stats.false_discovery_control`` per family).
    """
    from scipy.stats import false_discovery_control

    # scipy's BH has no NaN handling (any NaN makes every output NaN): this
    # wrapper runs it on the finite p-values of each family and keeps NaN
    p = np.moveaxis(np.asarray(p, dtype=float), axis, -1)
    out = np.full_like(p, np.nan)
    flat_p, flat_o = p.reshape(-1, p.shape[-1]), out.reshape(-1, p.shape[-1])
    for i in range(flat_p.shape[0]):
        ok = ~np.isnan(flat_p[i])
        if ok.any():
            flat_o[i, ok] = false_discovery_control(flat_p[i, ok], method="bh")
    return np.moveaxis(flat_o.reshape(p.shape), -1, axis)


def holm(p: np.ndarray, axis: int = -1) -> np.ndarray:
    """Holm's step-down family-wise adjusted p-values along ``axis`` (NaNs ignored and kept).

    Valid under any dependence between the tests (Holm 1979). Written here
    because scipy has no Holm correction and statsmodels is not a dependency:
    ``p_(i) * (m - i + 1)`` on the sorted p-values, made monotone, capped at 1.

    Parameters
    ----------
    p : ndarray
    axis : int
        The axis holding one family of tests.

    Returns
    -------
    ndarray of the same shape
    """
    p = np.moveaxis(np.asarray(p, dtype=float), axis, -1)
    out = np.full_like(p, np.nan)
    flat_p, flat_o = p.reshape(-1, p.shape[-1]), out.reshape(-1, p.shape[-1])
    for i in range(flat_p.shape[0]):
        ok = np.flatnonzero(~np.isnan(flat_p[i]))
        if ok.size:
            order = ok[np.argsort(flat_p[i, ok], kind="stable")]
            m = order.size
            adj = np.maximum.accumulate(flat_p[i, order] * (m - np.arange(m)))
            flat_o[i, order] = np.minimum(adj, 1.0)
    return np.moveaxis(flat_o.reshape(p.shape), -1, axis)


def adjust_family(p: np.ndarray, axes: tuple[int, ...], method: str = "fwer") -> np.ndarray:
    """p-values corrected over the family spanned by ``axes`` (every other axis indexes separate families).

    Parameters
    ----------
    p : ndarray
    axes : tuple of int
        Axes pooled into one family; ``()`` leaves ``p`` unchanged.
    method : {"fwer", "fdr", "none"}
        Holm (:func:`holm`), Benjamini-Hochberg (:func:`fdr_bh`), or none.

    Returns
    -------
    ndarray of the shape of ``p``
    """
    p = np.asarray(p, dtype=float)
    if method == "none" or not axes:
        return p.copy()
    axes = tuple(a % p.ndim for a in axes)
    rest = [a for a in range(p.ndim) if a not in axes]
    moved = np.transpose(p, rest + list(axes))
    flat = moved.reshape(moved.shape[:len(rest)] + (-1,))
    adj = (holm if method == "fwer" else fdr_bh)(flat, axis=-1).reshape(moved.shape)
    return np.transpose(adj, np.argsort(rest + list(axes)))
