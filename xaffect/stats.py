"""Statistics shared by the synchrony, encoding and analysis stages."""

from __future__ import annotations

import numpy as np

__all__ = ["fdr_bh"]


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
    p = np.moveaxis(np.asarray(p, dtype=float), axis, -1)
    out = np.full_like(p, np.nan)
    flat_p, flat_o = p.reshape(-1, p.shape[-1]), out.reshape(-1, p.shape[-1])
    for i in range(flat_p.shape[0]):
        ok = np.flatnonzero(~np.isnan(flat_p[i]))
        if ok.size == 0:
            continue
        v = flat_p[i, ok]
        order = np.argsort(v)
        ranked = v[order] * ok.size / np.arange(1, ok.size + 1)
        ranked = np.minimum.accumulate(ranked[::-1])[::-1]
        adj = np.empty_like(v)
        adj[order] = np.minimum(ranked, 1.0)
        flat_o[i, ok] = adj
    return np.moveaxis(flat_o.reshape(p.shape), -1, axis)
