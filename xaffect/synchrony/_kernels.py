"""Pure array kernels of sliding-window inter-subject correlation (ISC).

Every kernel works on one stimulus: ``x`` of shape ``(n_subjects, n_samples,
n_regions)``, windows of ``win`` samples starting at ``starts``. Windowed sums
come from cumulative sums, so the cost is independent of the window length
(one pass over the data per subject, not one per window).

Leave-one-out (LOO) ISC of subject ``s`` in a window is the Pearson
correlation of ``x_s`` with the mean of the other subjects. With ``S`` the
(weighted) sum over subjects and ``c_s`` the weight (bootstrap count) of
``s``, the mean of the others is ``m_s = (S - c_s x_s) / (n - c_s)``; its
windowed sums follow from those of ``x_s``, ``x_s**2``, ``x_s S``, ``S`` and
``S**2``, so no per-window work is needed.
"""

from __future__ import annotations

import numpy as np
from ..stats import fdr_bh  # noqa: F401  (re-exported)

__all__: list[str] = []

#: |r| is clipped below 1 before the Fisher transform (r = 1 would give inf).
_R_MAX = 1.0 - 1e-12
#: A window whose variance is below this fraction of the channel's typical
#: variance (times the window length) is "constant": its correlation is NaN.
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


def _wsum(a: np.ndarray, starts: np.ndarray, win: int) -> np.ndarray:
    """Sums of ``a`` (n_samples, ...) over windows ``[start, start + win)``.

    Windows are made of blocks of ``g = gcd(win, starts)`` samples: block sums
    (one pass) then a running sum over blocks, so the cost is one pass over
    the data whatever the window length or the number of windows.
    """
    g = int(np.gcd.reduce(np.r_[starts, win].astype(np.int64)))
    stop = int(starts[-1]) + win if starts.size else 0
    if g > 1:
        blocks = a[:stop].reshape((stop // g, g) + a.shape[1:]).sum(axis=1, dtype=np.float64)
    else:
        blocks = a[:stop]
    cs = np.empty((blocks.shape[0] + 1,) + a.shape[1:], dtype=np.float64)
    cs[0] = 0.0
    np.cumsum(blocks, axis=0, out=cs[1:])
    return cs[(starts + win) // g] - cs[starts // g]


def _corr_from_sums(sx, sy, sxx, syy, sxy, win, tol_x, tol_y):
    """Pearson r from windowed sums; NaN where either side is constant."""
    vx = sxx - sx * sx / win
    vy = syy - sy * sy / win
    cov = sxy - sx * sy / win
    bad = (vx <= tol_x) | (vy <= tol_y)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = cov / np.sqrt(np.where(bad, 1.0, vx * vy))
    r[bad] = np.nan
    return np.clip(r, -1.0, 1.0)


def _scale(x: np.ndarray) -> np.ndarray:
    """Typical per-sample power of each channel, shape (n_subjects, n_regions)."""
    sq = x * x
    p = np.nanmean(sq, axis=1) if np.isnan(sq).any() else sq.mean(axis=1)
    return np.where(np.isfinite(p) & (p > 0), p, 1.0)


def loo_fast(x: np.ndarray, starts: np.ndarray, win: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Leave-one-out correlations per subject and window, by running sums.

    Parameters
    ----------
    x : array of shape (n_subjects, n_samples, n_regions)
        Signals without NaN. Each channel is centred before its running sums
        (centring does not change a correlation but keeps the sums accurate).
    starts : int array of shape (n_windows,)
        First sample of each window.
    win : int
        Window length in samples.
    weights : array of shape (n_subjects,), optional
        Multiplicity of each subject (bootstrap counts); default all 1.

    Returns
    -------
    ndarray of shape (n_subjects, n_windows, n_regions)
        Correlation of each subject with the (weighted) mean of the others;
        NaN where a window is constant or a subject has weight 0.
    """
    n_sub = x.shape[0]
    c = np.ones(n_sub) if weights is None else np.asarray(weights, dtype=float)
    n = c.sum()
    mu = x.mean(axis=1)  # (n_subjects, n_regions): each subject is centred as it is used
    total = np.einsum("s,str->tr", c, x) - c @ mu  # (n_samples, n_regions)
    sq = total * total
    sS = _wsum(total, starts, win)
    sSS = _wsum(sq, starts, win)
    tol_tot = _CONST_TOL * win * sq.mean(axis=0) / max(n, 1.0) ** 2
    del sq
    out = np.full((n_sub, starts.size, x.shape[2]), np.nan)
    for s in range(n_sub):
        cs = c[s]
        if cs <= 0 or n - cs <= 0:
            continue
        xs = x[s] - mu[s]
        sq = xs * xs
        sx = _wsum(xs, starts, win)
        sxx = _wsum(sq, starts, win)
        sxS = _wsum(xs * total, starts, win)
        scale = sq.mean(axis=0)
        scale = np.where(scale > 0, scale, 1.0)
        k = n - cs
        sm = (sS - cs * sx) / k
        smm = (sSS - 2.0 * cs * sxS + cs * cs * sxx) / (k * k)
        sxm = (sxS - cs * sxx) / k
        tol_x = _CONST_TOL * win * scale
        out[s] = _corr_from_sums(sx, sm, sxx, smm, sxm, win, tol_x, tol_tot)
    return out


def pairwise_fast(x: np.ndarray, starts: np.ndarray, win: int, bad: np.ndarray | None = None) -> np.ndarray:
    """Pairwise correlations per subject pair and window, by running sums.

    Parameters
    ----------
    x : array of shape (n_subjects, n_samples, n_regions)
        Signals; NaN (missing samples) allowed when ``bad`` is given. Each
        channel is centred (NaN ignored, then set to 0) as it is used.
    starts : int array of shape (n_windows,)
    win : int
    bad : bool array of shape (n_subjects, n_windows, n_regions), optional
        Windows in which a subject had missing samples; its pairs get NaN.

    Returns
    -------
    ndarray of shape (n_pairs, n_windows, n_regions)
        Pairs in the order of ``np.triu_indices(n_subjects, 1)``.
    """
    n_sub = x.shape[0]
    mu = np.nanmean(x, axis=1) if bad is not None else x.mean(axis=1)

    def centred(i: int) -> np.ndarray:
        xi = x[i] - mu[i]
        if bad is not None:
            xi[np.isnan(xi)] = 0.0
        return xi

    sx = np.empty((n_sub, starts.size, x.shape[2]))
    sxx = np.empty_like(sx)
    tol = np.empty((n_sub, x.shape[2]))
    for i in range(n_sub):
        xi = centred(i)
        sq = xi * xi
        sx[i] = _wsum(xi, starts, win)
        sxx[i] = _wsum(sq, starts, win)
        p = sq.mean(axis=0)
        tol[i] = _CONST_TOL * win * np.where(p > 0, p, 1.0)
    ii, jj = np.triu_indices(n_sub, 1)
    out = np.empty((ii.size, starts.size, x.shape[2]))
    p = 0
    for i in range(n_sub):
        xi = centred(i)
        for j in range(i + 1, n_sub):
            sxy = _wsum(xi * centred(j), starts, win)
            out[p] = _corr_from_sums(sx[i], sx[j], sxx[i], sxx[j], sxy, win, tol[i], tol[j])
            if bad is not None:
                out[p][bad[i] | bad[j]] = np.nan
            p += 1
    return out


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


def window_bad(nanmask: np.ndarray, starts: np.ndarray, win: int) -> np.ndarray:
    """Which (subject, window, region) contain a missing sample.

    Parameters
    ----------
    nanmask : bool array of shape (n_subjects, n_samples, n_regions)

    Returns
    -------
    bool array of shape (n_subjects, n_windows, n_regions)
    """
    return np.stack([_wsum(m.astype(np.float64), starts, win) > 0.5 for m in nanmask])


def loo_isc(x: np.ndarray, starts: np.ndarray, win: int, weights: np.ndarray | None = None,
            min_subjects: int = 3) -> np.ndarray:
    """Leave-one-out ISC per window and region (Fisher mean over subjects).

    NaN-tolerant per subject: a subject with a missing sample in a window is
    left out of that window (for that region); windows with fewer than
    ``min_subjects`` usable subjects are NaN.

    Parameters
    ----------
    x : array of shape (n_subjects, n_samples, n_regions)
    starts : int array of shape (n_windows,)
    win : int
    weights : array of shape (n_subjects,), optional
        Bootstrap counts (NaN-free data only).
    min_subjects : int

    Returns
    -------
    ndarray of shape (n_windows, n_regions)
    """
    x = np.asarray(x, dtype=np.float64)
    if np.isfinite(x.sum()):  # no NaN: one pass, no mask
        r = loo_fast(x, starts, win, weights)
        c = np.ones(x.shape[0]) if weights is None else np.asarray(weights, dtype=float)
        out = fisher_mean(r, axis=0, weights=c)
        if (c > 0).sum() < 2:
            out[:] = np.nan
        return out
    if weights is not None:
        raise ValueError("bootstrap weights need NaN-free data")
    nanmask = np.isnan(x)
    bad = window_bad(nanmask, starts, win)
    filled = np.where(nanmask, 0.0, x - np.nanmean(x, axis=1, keepdims=True))
    r = loo_fast(filled, starts, win)
    r[bad] = np.nan
    # the fast path's "mean of the others" included the zero-filled subjects:
    # redo every affected window directly with only the usable subjects
    hit = bad.any(axis=0)  # (n_windows, n_regions)
    for w in np.flatnonzero(hit.any(axis=1)):
        regions = np.flatnonzero(hit[w])
        xw = x[:, starts[w]:starts[w] + win][:, :, regions]
        r[:, w, regions] = loo_direct(xw, ~bad[:, w, regions], min_subjects)
    return fisher_mean(r, axis=0)


def pairwise_isc(x: np.ndarray, starts: np.ndarray, win: int) -> np.ndarray:
    """Pairwise ISC per window and region (Fisher mean over subject pairs).

    Parameters
    ----------
    x : array of shape (n_subjects, n_samples, n_regions)
    starts : int array of shape (n_windows,)
    win : int

    Returns
    -------
    ndarray of shape (n_windows, n_regions)
    """
    return fisher_mean(pairwise_r(x, starts, win), axis=0)


def pairwise_r(x: np.ndarray, starts: np.ndarray, win: int) -> np.ndarray:
    """Pairwise correlations, shape (n_pairs, n_windows, n_regions); NaN-tolerant."""
    x = np.asarray(x, dtype=np.float64)
    bad = None if np.isfinite(x.sum()) else window_bad(np.isnan(x), starts, win)
    return pairwise_fast(x, starts, win, bad)


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


def circular_shift(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Roll each subject's signals (all regions together) by its own random lag.

    Parameters
    ----------
    x : array of shape (n_subjects, n_samples, n_regions)

    Returns
    -------
    ndarray of the same shape
    """
    n = x.shape[1]
    shifts = rng.integers(0, n, size=x.shape[0])
    return np.stack([np.roll(x[s], shifts[s], axis=0) for s in range(x.shape[0])])


def phase_randomize(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Randomise the Fourier phases of each subject independently.

    The same random phases are used for every region of a subject (spatial
    covariance is kept); the amplitude spectrum of every signal is kept; the
    DC and Nyquist terms are left alone. Missing samples stay missing.

    Parameters
    ----------
    x : array of shape (n_subjects, n_samples, n_regions)

    Returns
    -------
    ndarray of the same shape
    """
    nan = np.isnan(x)
    mean = np.nanmean(x, axis=1, keepdims=True)
    xc = np.where(nan, 0.0, x - mean)
    n = x.shape[1]
    spec = np.fft.rfft(xc, axis=1)
    n_freq = spec.shape[1]
    phases = rng.uniform(0.0, 2.0 * np.pi, size=(x.shape[0], n_freq, 1))
    phases[:, 0] = 0.0
    if n % 2 == 0:
        phases[:, -1] = 0.0
    out = np.fft.irfft(spec * np.exp(1j * phases), n=n, axis=1) + mean
    out[nan] = np.nan
    return out
