"""Pure array kernels of sliding-window inter-subject correlation (ISC).

Every kernel works on one stimulus: ``x`` of shape ``(n_subjects, n_samples,
n_regions)`` in its own dtype (float32 stays float32 in memory), windows of
``win`` samples starting at ``starts``.

**Bounded memory.** Every kernel streams over time through
:mod:`._stream`: chunks of whole blocks of ``gcd(win, starts)`` samples,
per-block sums, carried block sums for unfinished windows; windows are
finished (correlations, Fisher mean over subjects) chunk by chunk, so peak
memory is flat in stimulus length.

**Which sums.** Leave-one-out (LOO) ISC of subject ``s`` is the Pearson
correlation of ``x_s`` with the mean of the others. With ``S = sum_t c_t x_t``
(``c`` the subject weights, bootstrap counts) the mean of the others is
``(S - c_s x_s) / (n - c_s)``, so every window needs only the windowed sums of
``x_s``, ``x_s**2`` and ``x_s S`` (``S`` and ``S**2`` follow from them). When
blocks are long enough (``g >= max(8, n_subjects / 2)``) those come from the
per-block Gram matrix of the subjects (one batched GEMM per chunk, which also
gives every pair for pairwise ISC); otherwise from element-wise products.
Both are written here rather than taken from brainiak because brainiak
recomputes every window from scratch (the per-window loop this replaces).
"""

from __future__ import annotations

import numpy as np

from ..stats import fdr_bh  # noqa: F401  (re-exported)
from ._stream import (_block, _centre, _chunk_len, _corr_from_sums, _gram_chunk, _power, _product_chunk, _read,
                      _region_batches, _stream, _use_gram)

__all__: list[str] = []

#: |r| is clipped below 1 before the Fisher transform (r = 1 would give inf).
_R_MAX = 1.0 - 1e-12
#: A window whose variance is below this fraction of the channel's typical
#: variance (times the window length) is "constant": its correlation is NaN.
#: The typical variance is that of the chunk of time holding the window.
_CONST_TOL = 1e-10


def fisher_mean(r: np.ndarray, axis: int = 0, weights: np.ndarray | None = None) -> np.ndarray:
    """Mean of correlations through Fisher's z, ignoring NaN.

    Parameters
    ----------
    r : ndarray
        Correlations.
    axis : int
        Axis averaged over.
    weights : array of shape (r.shape[axis],), optional
        Weights (e.g. bootstrap counts).

    Returns
    -------
    ndarray
        ``tanh(mean(arctanh(r)))``; NaN where every value is NaN.
    """
    z = np.arctanh(np.clip(r, -_R_MAX, _R_MAX))
    ok = ~np.isnan(z)
    if weights is None:
        w = ok.astype(float)
    else:
        shape = [1] * z.ndim
        shape[axis] = -1
        w = ok * np.asarray(weights, dtype=float).reshape(shape)
    num = np.where(ok, z, 0.0) * w
    den = w.sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.tanh(num.sum(axis=axis) / np.where(den > 0, den, np.nan))


# ------------------------------------------------------------ leave-one-out
def _loo_blocks(x, mu, c, g, shifts=None):
    """Block function of LOO sums: x_s, x_s**2, x_s S_d per subject, and NaN counts.

    ``c`` has shape (n_draws, n_subjects); ``x_s S_d`` has shape (..., n_subjects, n_draws).
    """
    def fn(a, b):
        if _use_gram(x, g):
            sx, gm, nanc = _gram_chunk(x, mu, a, b, g, shifts)
            sxx = np.diagonal(gm, axis1=2, axis2=3).copy()
            sxs = gm @ c.T
        else:
            z, nanc = _product_chunk(x, mu, a, b, g, shifts)
            sx = z.sum(axis=-1)
            sxx = np.einsum("brsg,brsg->brs", z, z)
            tot = np.einsum("ds,brsg->brdg", c, z)
            sxs = np.einsum("brsg,brdg->brsd", z, tot)
        return [sx, sxx, sxs, nanc]

    return fn


def _loo_from_sums(sx, sxx, sxs, c, win, tol_x, tol_mean):
    """Per-subject LOO r (n_draws, n_windows, n_regions, n_subjects) from windowed sums."""
    n = c.sum(axis=1)  # (n_draws,)
    out = np.full((c.shape[0],) + sx.shape, np.nan)
    for d, cd in enumerate(c):
        k = n[d] - cd  # (n_subjects,)
        use = (cd > 0) & (k > 0)
        if not use.any():
            continue
        s_s = sx @ cd  # (window, region)
        s_ss = sxs[..., d] @ cd
        kk = np.where(use, k, 1.0)
        sm = (s_s[..., None] - cd * sx) / kk
        smm = (s_ss[..., None] - 2.0 * cd * sxs[..., d] + cd * cd * sxx) / (kk * kk)
        sxm = (sxs[..., d] - cd * sxx) / kk
        r = _corr_from_sums(sx, sm, sxx, smm, sxm, win, tol_x, tol_mean[d][:, None])
        r[..., ~use] = np.nan
        out[d] = r
    return out


def loo_isc(x: np.ndarray, starts: np.ndarray, win: int, weights: np.ndarray | None = None,
            min_subjects: int = 3, shifts: np.ndarray | None = None) -> np.ndarray:
    """Leave-one-out ISC per window and region (Fisher mean over subjects).

    NaN-tolerant per subject: a subject with a missing sample in a window is
    left out of that window (for that region); windows with fewer than
    ``min_subjects`` usable subjects are NaN. Memory is flat in ``n_samples``
    (see the module docstring).

    Parameters
    ----------
    x : array of shape (n_subjects, n_samples, n_regions)
        Any real dtype; read chunk by chunk, never copied whole.
    starts : int array of shape (n_windows,)
        First sample of each window (increasing).
    win : int
        Window length in samples.
    weights : array of shape (n_subjects,) or (n_draws, n_subjects), optional
        Multiplicity of each subject (bootstrap counts; NaN-free data only).
        Several draws are computed in one pass over the data.
    min_subjects : int
    shifts : int array of shape (n_subjects,), optional
        Compute the ISC of ``x`` with each subject circularly rolled by its
        shift (a circular-shift surrogate), without copying ``x``.

    Returns
    -------
    ndarray of shape (n_windows, n_regions), or (n_draws, n_windows, n_regions) for 2-D weights
    """
    n_sub = x.shape[0]
    starts = np.asarray(starts, dtype=np.int64)
    batches = _region_batches(x, starts, win)
    if len(batches) > 1:
        return np.concatenate([loo_isc(x[:, :, b], starts, win, weights, min_subjects, shifts) for b in batches],
                              axis=-1)
    c = np.ones((1, n_sub)) if weights is None else np.atleast_2d(np.asarray(weights, dtype=float))
    out = np.full((c.shape[0], starts.size, x.shape[2]), np.nan)
    if starts.size:
        g = _block(starts, win)
        for sl, sums, totals, length in _stream(_loo_blocks(x, _centre(x, g), c, g, shifts), starts, win, g,
                                                _chunk_len(x, g)):
            sx, sxx, sxs, nanc = sums
            has_nan = bool(totals[3].any())
            if has_nan and weights is not None:
                raise ValueError("bootstrap weights need NaN-free data")
            count = length - totals[3]
            tol_x = _CONST_TOL * win * _power(totals[1], length, count)  # (region, subject)
            # power of the mean of all subjects: sum_t S**2 = sum_s c_s sum_t x_s S
            tot_power = _power(np.einsum("rsd,ds->dr", totals[2], c), length)  # (draw, region)
            tol_mean = _CONST_TOL * win * tot_power / np.maximum(c.sum(axis=1), 1.0)[:, None] ** 2
            r = _loo_from_sums(sx, sxx, sxs, c, win, tol_x, tol_mean)
            if nanc.any():
                r[0] = _loo_fix_missing(x, r[0], nanc > 0.5, starts[sl], win, min_subjects, shifts)
            for d in range(c.shape[0]):
                out[d, sl] = fisher_mean(r[d], axis=-1, weights=c[d])
        out[(c > 0).sum(axis=1) < 2] = np.nan
    return out if weights is not None and np.ndim(weights) == 2 else out[0]


def _loo_fix_missing(x, r, bad, starts, win, min_subjects, shifts=None):
    """Recompute, with only the usable subjects, the windows where one had a missing sample.

    ``r`` and ``bad`` have shape (n_windows, n_regions, n_subjects). The fast
    sums zero-filled the missing samples, so "the mean of the others" was
    wrong there: those windows are redone directly (they are few).
    """
    r[bad] = np.nan
    hit = bad.any(axis=-1)  # (window, region)
    for w in np.flatnonzero(hit.any(axis=1)):
        regions = np.flatnonzero(hit[w])
        xw = np.asarray(_read(x, starts[w], starts[w] + win, shifts)[:, :, regions], dtype=np.float64)
        r[w, regions] = loo_direct(xw, ~bad[w, regions].T, min_subjects).T
    return r


def loo_direct(xw: np.ndarray, valid: np.ndarray | None = None, min_subjects: int = 3) -> np.ndarray:
    """Leave-one-out correlations in one window, computed directly.

    Parameters
    ----------
    xw : array of shape (n_subjects, win, n_regions)
        The window's samples (NaN allowed where ``valid`` is False).
    valid : bool array of shape (n_subjects, n_regions), optional
        Subjects usable in this window per region (default: no NaN).
    min_subjects : int
        Fewer valid subjects than this gives NaN.

    Returns
    -------
    ndarray of shape (n_subjects, n_regions)
    """
    if valid is None:
        valid = ~np.isnan(xw).any(axis=1)
    x = np.where(valid[:, None, :], xw, 0.0)
    nv = valid.sum(axis=0).astype(float)  # (n_regions,)
    total = x.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        others = (total[None] - x) / (nv - 1.0)[None, None, :]
    xc = x - x.mean(axis=1, keepdims=True)
    oc = others - others.mean(axis=1, keepdims=True)
    vx = (xc * xc).sum(axis=1)
    vo = (oc * oc).sum(axis=1)
    bad = (vx <= _CONST_TOL * (x * x).sum(axis=1)) | (vo <= _CONST_TOL * (others * others).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (xc * oc).sum(axis=1) / np.sqrt(np.where(bad, 1.0, vx * vo))
    r[bad | ~valid] = np.nan
    r[:, nv < min_subjects] = np.nan
    return np.clip(r, -1.0, 1.0)


# ------------------------------------------------------------------ pairwise
def _pair_blocks(x, mu, g, ii, jj, shifts=None):
    """Block function of pairwise sums: x_i, x_i**2 per subject, x_i x_j per pair, and NaN counts."""
    def fn(a, b):
        if _use_gram(x, g):
            sx, gm, nanc = _gram_chunk(x, mu, a, b, g, shifts)
            sxx = np.diagonal(gm, axis1=2, axis2=3).copy()
            sxy = gm[:, :, ii, jj]
        else:
            z, nanc = _product_chunk(x, mu, a, b, g, shifts)
            sx = z.sum(axis=-1)
            sxx = np.einsum("brsg,brsg->brs", z, z)
            sxy = np.stack([np.einsum("brg,brg->br", z[:, :, i], z[:, :, j]) for i, j in zip(ii, jj)], axis=-1)
        return [sx, sxx, sxy, nanc]

    return fn


def _pairwise_stream(x: np.ndarray, starts: np.ndarray, win: int, shifts=None):
    """Yield (window slice, pair correlations (n_windows_done, n_regions, n_pairs))."""
    starts = np.asarray(starts, dtype=np.int64)
    if not starts.size:
        return
    ii, jj = np.triu_indices(x.shape[0], 1)
    g = _block(starts, win)
    for sl, sums, totals, length in _stream(_pair_blocks(x, _centre(x, g), g, ii, jj, shifts), starts, win, g,
                                            _chunk_len(x, g)):
        sx, sxx, sxy, nanc = sums
        tol = _CONST_TOL * win * _power(totals[1], length, length - totals[3])  # (region, subject)
        r = _corr_from_sums(sx[..., ii], sx[..., jj], sxx[..., ii], sxx[..., jj], sxy, win, tol[:, ii], tol[:, jj])
        if nanc.any():
            bad = nanc > 0.5
            r[bad[..., ii] | bad[..., jj]] = np.nan
        yield sl, r


def pairwise_r(x: np.ndarray, starts: np.ndarray, win: int, shifts=None) -> np.ndarray:
    """Pairwise correlations per subject pair and window; NaN-tolerant.

    Parameters
    ----------
    x : array of shape (n_subjects, n_samples, n_regions)
        NaN (missing samples) allowed: the pairs of a subject with a missing
        sample in a window are NaN there.
    starts : int array of shape (n_windows,)
    win : int
    shifts : int array of shape (n_subjects,), optional
        As in :func:`loo_isc`.

    Returns
    -------
    ndarray of shape (n_pairs, n_windows, n_regions)
        Pairs in the order of ``np.triu_indices(n_subjects, 1)``.
    """
    batches = _region_batches(x, starts, win)
    if len(batches) > 1:
        return np.concatenate([pairwise_r(x[:, :, b], starts, win, shifts) for b in batches], axis=-1)
    n_pairs = x.shape[0] * (x.shape[0] - 1) // 2
    out = np.full((n_pairs, np.size(starts), x.shape[2]), np.nan)
    for sl, r in _pairwise_stream(x, starts, win, shifts):
        out[:, sl] = np.moveaxis(r, -1, 0)
    return out


def pairwise_isc(x: np.ndarray, starts: np.ndarray, win: int, shifts=None) -> np.ndarray:
    """Pairwise ISC per window and region (Fisher mean over subject pairs), in flat memory.

    Parameters
    ----------
    x : array of shape (n_subjects, n_samples, n_regions)
    starts : int array of shape (n_windows,)
    win : int

    Returns
    -------
    ndarray of shape (n_windows, n_regions)
    """
    batches = _region_batches(x, starts, win)
    if len(batches) > 1:
        return np.concatenate([pairwise_isc(x[:, :, b], starts, win, shifts) for b in batches], axis=-1)
    out = np.full((np.size(starts), x.shape[2]), np.nan)
    for sl, r in _pairwise_stream(x, starts, win, shifts):
        out[sl] = fisher_mean(r, axis=-1)
    return out


def pair_weights(counts: np.ndarray) -> np.ndarray:
    """Weights of subject pairs under a subject bootstrap (Chen et al. 2016).

    Pairs of two copies of the same subject are excluded; a pair (i, j) of
    distinct subjects counts ``c_i * c_j`` times.

    Parameters
    ----------
    counts : array of shape (n_subjects,)

    Returns
    -------
    ndarray of shape (n_pairs,)
    """
    ii, jj = np.triu_indices(counts.size, 1)
    return counts[ii] * counts[jj]
