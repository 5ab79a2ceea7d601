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
