"""Array kernels that keep layer claims honest about selection and fold overlap.

* :func:`choose_without_fold` -- for every held-out fold ``k``, the layer with
  the highest mean r over the *other* folds, so the score read at fold ``k``
  never took part in choosing its layer (selection on inner folds of the
  training stimuli);
* :func:`bootstrap_counts` / :func:`bootstrap_layer_means` -- a stimulus-level
  bootstrap: held-out stimuli resampled with replacement, the per-layer mean
  r recomputed, so any statistic of the profile (argmax, centroid) gets a
  percentile interval;
* :func:`swap_signs` / :func:`crossing_swap_test` -- a paired swap
  permutation of two targets' per-fold layer profiles with both best layers
  selected anew under every swap;
* :func:`spearman_permutation` -- Spearman's rho with a permutation p.

All take plain arrays with the fold on the last axis.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import numpy as np
from scipy import stats

__all__ = ["choose_without_fold", "take_along_layer", "bootstrap_counts", "bootstrap_layer_means",
           "spearman_permutation", "argmax_finite", "argmax_over_layers", "swap_signs", "crossing_swap_test"]


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


def swap_signs(n_folds: int, n_perm: int, seed: int = 0) -> tuple[np.ndarray, bool]:
    """Which folds swap their two sides, per swap; the identity first.

    Returns
    -------
    swaps : array of shape (n_swaps, n_folds), 0.0 or 1.0
        All ``2 ** n_folds`` swaps when that is at most ``n_perm`` (exact),
        else the identity and ``n_perm`` random ones.
    exact : bool
    """
    if 2 ** n_folds <= n_perm:
        return ((np.arange(2 ** n_folds)[:, None] >> np.arange(n_folds)) & 1).astype(float), True
    rng = np.random.default_rng(seed)
    return np.vstack([np.zeros((1, n_folds)), rng.integers(0, 2, (n_perm, n_folds))]).astype(float), False


def profile_spread(r: np.ndarray) -> np.ndarray:
    """Standard deviation over layers of the fold-mean profile of ``r (..., layer, fold)``; 1 where 0 or NaN."""
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        sd = np.nanstd(np.nanmean(r, axis=-1), axis=-1)
    return np.where(np.isfinite(sd) & (sd > 0), sd, 1.0)


def _crossing(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``(A[a*] - A[b*]) + (B[b*] - B[a*])`` with ``a*``, ``b*`` the argmax of A, B over the last axis."""
    ia, ib = argmax_finite(A, -1), argmax_finite(B, -1)
    take = lambda X, i: np.take_along_axis(X, np.maximum(i, 0)[..., None], -1)[..., 0]  # noqa: E731
    t = take(A, ia) - take(A, ib) + take(B, ib) - take(B, ia)
    return np.where((ia >= 0) & (ib >= 0), t, np.nan)


def crossing_swap_test(a: np.ndarray, b: np.ndarray, *, n_perm: int = 4096, seed: int = 0
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool, int]:
    """Paired swap permutation test of "a and b have different best layers".

    Each side's profiles are first divided by their own spread
    (:func:`profile_spread`), so a difference in predictability alone is not
    a difference in shape. The statistic is the *crossing*
    ``(A[a*] - A[b*]) + (B[b*] - B[a*])`` of the fold-mean profiles ``A``,
    ``B`` with ``a*``, ``b*`` their best layers: how much a prefers its own
    best layer over b's, plus how much b prefers its own over a's; 0 when the
    best layers coincide. Under every swap (a fold's two profiles exchanged)
    both best layers are selected again on the swapped means. H0: at every
    held-out stimulus the two (rescaled) profiles are exchangeable, under
    which the swap distribution is exact. (``scipy.stats.permutation_test``
    permutes scalar observations; here one observation is a whole layer
    profile and the statistic selects layers, so the swaps are written out.)

    Parameters
    ----------
    a, b : arrays of shape (n_pair, n_layers, n_folds)
        Per-fold r of the two sides (NaN where not scored).
    n_perm : int
        Exact enumeration when ``2 ** n_folds <= n_perm``, else ``n_perm`` random swaps.
    seed : int

    Returns
    -------
    p, crossing, p_min : arrays of shape (n_pair,)
        ``p`` = share of swaps (the identity included) whose crossing is at
        least the observed one; NaN where a side has no finite layer.
        ``p_min``: the smallest p the swaps can give (``2 / 2 ** n`` for the
        ``n`` scored folds when exact -- swapping every fold gives the
        observed crossing again -- else ``1 / (n_perm + 1)``).
    exact : bool
    n_swaps : int
    """
    a = np.asarray(a, dtype=float) / profile_spread(a)[..., None, None]
    b = np.asarray(b, dtype=float) / profile_spread(b)[..., None, None]
    oka, okb = np.isfinite(a), np.isfinite(b)
    a0, b0 = np.where(oka, a, 0.0), np.where(okb, b, 0.0)
    swaps, exact = swap_signs(a.shape[-1], n_perm, seed)
    dsum, dcnt = b0 - a0, okb.astype(float) - oka
    same_mask = not dcnt.any()                          # then a swap moves sums, never counts
    sum_a, sum_b, cnt_a, cnt_b = a0.sum(-1), b0.sum(-1), oka.sum(-1), okb.sum(-1)
    observed = None
    hits = np.zeros(a.shape[0])
    batch = max(1, (1 << 19) // max(1, a.shape[0] * a.shape[1]))
    for start in range(0, swaps.shape[0], batch):
        s = swaps[start:start + batch]
        ds = np.einsum("fk,plk->fpl", s, dsum)
        dc = 0.0 if same_mask else np.einsum("fk,plk->fpl", s, dcnt)
        with np.errstate(invalid="ignore", divide="ignore"):
            t = _crossing((sum_a + ds) / (cnt_a + dc), (sum_b - ds) / (cnt_b - dc))    # (batch, pair)
        if observed is None:
            observed = t[0]
        hits += (t >= observed - 1e-9).sum(0)
    p = np.where(np.isfinite(observed), hits / swaps.shape[0], np.nan)
    n_scored = (oka.any(-2) & okb.any(-2)).sum(-1)
    p_min = 2.0 / 2.0 ** n_scored if exact else np.full(a.shape[0], 1.0 / swaps.shape[0])
    return p, observed, p_min, exact, int(swaps.shape[0])
