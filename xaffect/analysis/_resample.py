"""Array kernels that keep layer claims honest about selection and fold overlap.

* :func:`choose_without_fold` -- for every held-out fold ``k``, the layer with
  the highest mean r over the *other* folds, so the score read at fold ``k``
  never took part in choosing its layer (selection on inner folds of the
  training stimuli);
* :func:`bootstrap_counts` / :func:`bootstrap_layer_means` -- a stimulus-level
  bootstrap: held-out stimuli resampled with replacement, the per-layer mean
  r recomputed, so any statistic of the profile (argmax, centroid) gets a
  percentile interval;
* :func:`spearman_permutation` -- Spearman's rho with a permutation p.

All take plain arrays with the fold on the last axis.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from scipy import stats

__all__ = ["choose_without_fold", "take_along_layer", "bootstrap_counts", "bootstrap_layer_means",
           "spearman_permutation", "argmax_finite", "argmax_over_layers"]


def argmax_finite(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """Index of the largest finite value along ``axis``; -1 where none is finite."""
    v = np.asarray(values, dtype=float)
    finite = np.isfinite(v)
    if finite.all():
        return np.argmax(v, axis=axis)
    idx = np.argmax(np.where(finite, v, -np.inf), axis=axis)
    return np.where(finite.any(axis=axis), idx, -1)


def choose_without_fold(r: np.ndarray) -> np.ndarray:
    """Layer index chosen for each fold from the other folds' mean r.

    Parameters
    ----------
    r : array of shape (..., n_layers, n_folds)
        Per-fold r (NaN where a fold was not scored).

    Returns
    -------
    array of int, shape (..., n_folds)
        For fold ``k``: ``argmax_l mean_{j != k} r[..., l, j]``; -1 where no
        other fold has a finite score.
    """
    r = np.asarray(r, dtype=float)
    ok = np.isfinite(r)
    total = np.where(ok, r, 0.0).sum(-1, keepdims=True)
    count = ok.sum(-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        loo = (total - np.where(ok, r, 0.0)) / (count - ok)       # (..., layer, fold)
    loo = np.where(count - ok > 0, loo, np.nan)
    return argmax_finite(loo, axis=-2)


def take_along_layer(r: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``r[..., index[..., k], k]``: the score of each fold at its chosen layer.

    Parameters
    ----------
    r : array of shape (..., n_layers, n_folds)
    index : array of int, shape (..., n_folds); -1 gives NaN

    Returns
    -------
    array of shape (..., n_folds)
    """
    r = np.asarray(r, dtype=float)
    got = np.take_along_axis(r, np.maximum(index, 0)[..., None, :], axis=-2)[..., 0, :]
    return np.where(index >= 0, got, np.nan)


def bootstrap_counts(n_folds: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """How often each fold is drawn in each stimulus-level bootstrap resample.

    Returns
    -------
    array of shape (n_boot, n_folds)
    """
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_folds, np.full(n_folds, 1.0 / n_folds), size=n_boot).astype(float)


def bootstrap_layer_means(r: np.ndarray, counts: np.ndarray, *, batch: int | None = None) -> Iterator[np.ndarray]:
    """Per-layer mean r of each bootstrap resample, in batches of resamples.

    Parameters
    ----------
    r : array of shape (..., n_layers, n_folds)
    counts : array of shape (n_boot, n_folds)
        From :func:`bootstrap_counts`.
    batch : int, optional
        Resamples per yielded block; default: blocks of about 2**22 values.

    Yields
    ------
    array of shape (n_batch, n_layers, ...), float32
        Layer first, so a pass over layers (:func:`argmax_over_layers`) reads
        contiguous blocks; NaN where a resample drew no finite fold.
    """
    r = np.moveaxis(np.asarray(r, dtype=float), -2, 0)               # (layer, ..., fold)
    ok = np.isfinite(r)
    # float32: the statistics taken from these means (argmax, weighted mean) do not need more
    flat_t = np.where(ok, r, 0.0).reshape(-1, r.shape[-1]).T.astype(np.float32)   # (n_folds, M)
    ok_t = None if ok.all() else ok.reshape(-1, r.shape[-1]).T.astype(np.float32)
    counts = counts.astype(np.float32)
    if batch is None:
        batch = max(1, (1 << 22) // max(1, flat_t.shape[1]))
    for start in range(0, counts.shape[0], batch):
        c = counts[start:start + batch]                              # (n_batch, n_folds)
        shape = (c.shape[0],) + r.shape[:-1]
        if ok_t is None:
            yield ((c / r.shape[-1]) @ flat_t).reshape(shape)
            continue
        num, den = c @ flat_t, c @ ok_t
        with np.errstate(invalid="ignore", divide="ignore"):
            yield np.where(den > 0, num / den, np.nan).reshape(shape)


def argmax_over_layers(means: np.ndarray) -> np.ndarray:
    """Index of the largest finite value along axis 1 of ``(n_batch, n_layers, ...)``; -1 where none.

    A running maximum over the (few) layers: ``np.argmax`` along a short
    axis of many rows spends its time per row, this spends it per layer.
    """
    first = means[:, 0]
    best = np.where(np.isnan(first), -np.inf, first)
    idx = np.zeros(best.shape, dtype=np.int64)
    for lay in range(1, means.shape[1]):
        cur = means[:, lay]
        upd = cur > best                                                 # NaN never updates
        np.copyto(best, cur, where=upd)
        idx[upd] = lay
    idx[best == -np.inf] = -1
    return idx


def spearman_permutation(x: np.ndarray, y: np.ndarray, *, n_perm: int = 9999, seed: int = 0
                         ) -> tuple[float, float, int]:
    """Spearman's rho of ``x`` and ``y`` with a two-sided permutation p-value.

    Pearson's r of the ranks under ``scipy.stats.PermutationMethod`` (exact
    when ``n!`` <= ``n_perm``), pairs with a NaN dropped.

    Returns
    -------
    rho, p, n : float, float, int
        NaN rho and p when fewer than 3 pairs or a constant variable.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    n = int(ok.sum())
    if n < 3 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return float("nan"), float("nan"), n
    method = stats.PermutationMethod(n_resamples=n_perm, rng=np.random.default_rng(seed))
    res = stats.pearsonr(stats.rankdata(x[ok]), stats.rankdata(y[ok]), method=method)
    return float(res.statistic), float(res.pvalue), n
