"""Bounded-memory windowed sums over time: the streaming machinery of the ISC kernels.

Windows are made of blocks of ``g = gcd(win, starts)`` samples. Time is read
in chunks of whole blocks (about :data:`CHUNK_BYTES` of float64 working data
whatever the stimulus length); each chunk is centred, cast to float64 and
reduced to per-block sums (through the subjects' Gram matrix when blocks are
long, element-wise products otherwise), and the block sums of the windows not
finished yet are carried into the next chunk. Windowed sums are differences of
cumulative block sums, so the cost is one pass over the data whatever the
window length, and the caller finishes every window as soon as its last chunk
is read: peak memory is a few chunks plus the output, flat in stimulus length.
"""

from __future__ import annotations

import warnings

import numpy as np

#: float64 working data per time chunk (bytes); the peak is a few times this.
CHUNK_BYTES = 32 << 20
#: Shortest block (samples) for the Gram-matrix path.
_GRAM_MIN_BLOCK = 8


def _block(starts: np.ndarray, win: int) -> int:
    return int(np.gcd.reduce(np.r_[starts, win].astype(np.int64)))


def _chunk_len(x: np.ndarray, g: int) -> int:
    """Samples per chunk: whole blocks, about CHUNK_BYTES of float64 for all subjects."""
    per_sample = 8 * x.shape[0] * max(1, x.shape[2])
    return g * max(1, CHUNK_BYTES // (per_sample * g))


def _region_batches(x: np.ndarray, starts: np.ndarray, win: int) -> list[slice]:
    """Region slices so that one block of every subject fits in CHUNK_BYTES (one slice when it already does).

    Long blocks (window and step of many samples, many subjects) would
    otherwise make even a one-block chunk large; regions are independent, so
    the kernels then run region batch by region batch.
    """
    if not np.size(starts):
        return [slice(None)]
    per_region = 8 * (x.shape[0] + 1) * _block(np.asarray(starts), win)
    size = max(1, CHUNK_BYTES // per_region)
    if size >= x.shape[2]:
        return [slice(None)]
    return [slice(i, i + size) for i in range(0, x.shape[2], size)]


def _centre(x: np.ndarray, g: int) -> np.ndarray:
    """A centring constant per (subject, region): the mean of the first chunk, NaN ignored (0 if none).

    Correlations do not depend on it; it only keeps the running sums small
    (any value near the channel's level does), and it costs no extra pass.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing channel: 0
        mu = np.nanmean(x[:, : _chunk_len(x, g)], axis=1, dtype=np.float64)
    return np.where(np.isnan(mu), 0.0, mu)


def _read(x: np.ndarray, a: int, b: int, shifts=None) -> np.ndarray:
    """Samples ``[a, b)`` of every subject, shape (n_subjects, b - a, n_regions).

    With ``shifts``, of ``x`` with subject ``s`` circularly rolled by
    ``shifts[s]`` (``numpy.roll`` semantics), gathered chunk by chunk so that
    a circular-shift surrogate never copies the whole recording.
    """
    if shifts is None:
        return x[:, a:b]
    n = x.shape[1]
    out = np.empty((x.shape[0], b - a, x.shape[2]), dtype=x.dtype)
    for s, k in enumerate(shifts):
        lo = (a - int(k)) % n  # rolled[t] = x[(t - k) mod n]
        first = min(b - a, n - lo)
        out[s, :first] = x[s, lo:lo + first]
        out[s, first:] = x[s, : b - a - first]
    return out


def _gram_chunk(x: np.ndarray, mu: np.ndarray, a: int, b: int, g: int, shifts=None):
    """Per-block sums of a chunk through the Gram matrix of the subjects.

    The chunk ``[a, b)`` is centred by ``mu``, cast to float64 and laid out
    as (block, region, subject, g) with a row of ones appended after the
    subjects, so one batched GEMM gives every ``sum x_i x_j`` and every
    ``sum x_i`` of a block. Missing samples are counted and zero-filled.

    Returns
    -------
    sx : (n_blocks, n_regions, n_subjects)
    gram : (n_blocks, n_regions, n_subjects, n_subjects)
    nanc : (n_blocks, n_regions, n_subjects)
        Missing samples per block.
    """
    n_sub, n_reg = x.shape[0], x.shape[2]
    nb = (b - a) // g
    z = np.empty((nb, n_reg, n_sub + 1, g))
    np.subtract(_read(x, a, b, shifts).reshape(n_sub, nb, g, n_reg).transpose(1, 3, 0, 2), mu.T[None, :, :, None],
                out=z[:, :, :n_sub])
    z[:, :, n_sub] = 1.0
    gm = np.matmul(z, z.transpose(0, 1, 3, 2))
    nanc = np.zeros((nb, n_reg, n_sub))
    if not np.isfinite(gm[:, :, n_sub, :n_sub]).all():  # missing samples in this chunk (NaN propagates)
        m = np.isnan(z)
        nanc = m.sum(axis=-1)[:, :, :n_sub].astype(np.float64)
        z[m] = 0.0
        gm = np.matmul(z, z.transpose(0, 1, 3, 2))
    return gm[:, :, n_sub, :n_sub], gm[:, :, :n_sub, :n_sub], nanc


def _product_chunk(x: np.ndarray, mu: np.ndarray, a: int, b: int, g: int, shifts=None):
    """Centred float64 chunk as blocks (n_blocks, n_regions, n_subjects, g), NaN -> 0, and NaN counts."""
    n_sub, n_reg = x.shape[0], x.shape[2]
    nb = (b - a) // g
    z = np.empty((nb, n_reg, n_sub, g))
    np.subtract(_read(x, a, b, shifts).reshape(n_sub, nb, g, n_reg).transpose(1, 3, 0, 2), mu.T[None, :, :, None], out=z)
    m = np.isnan(z)
    nanc = m.sum(axis=-1).astype(np.float64)
    if nanc.any():
        z[m] = 0.0
    return z, nanc


def _stream(block_fn, starts: np.ndarray, win: int, g: int, chunk: int):
    """Windowed sums, chunk by chunk, carrying the block sums of unfinished windows.

    Parameters
    ----------
    block_fn : callable (a, b) -> list of arrays of shape (n_blocks, ...)
        Per-block sums of samples ``[a, b)`` (whole blocks).
    starts : int array of shape (n_windows,), increasing, multiples of ``g``
    win, g, chunk : int
        Window, block and chunk lengths in samples (``chunk`` a multiple of ``g``).

    Yields
    ------
    (slice, list of arrays of shape (n_windows_done, ...), list of arrays, int)
        The windows finished by this chunk, their sums, the chunk's total of
        every block sum, and the chunk length in samples.
    """
    stop = int(starts[-1]) + win
    ends = starts + win
    nb_win = win // g
    carry, carry_start, w = None, 0, 0
    for a in range(0, stop, chunk):
        b = min(stop, a + chunk)
        new = block_fn(a, b)
        totals = [v.sum(axis=0) for v in new]
        blocks = new if carry is None else [np.concatenate([c, v]) for c, v in zip(carry, new)]
        w_end = int(np.searchsorted(ends, b, side="right"))
        if w_end > w:
            first = starts[w:w_end] // g - carry_start
            sums = []
            for v in blocks:
                cs = np.empty((v.shape[0] + 1,) + v.shape[1:])
                cs[0] = 0.0
                np.cumsum(v, axis=0, out=cs[1:])
                sums.append(cs[first + nb_win] - cs[first])
            yield slice(w, w_end), sums, totals, b - a
            w = w_end
        keep = min(int(starts[w]) // g, b // g) if w < starts.size else b // g
        carry = [v[keep - carry_start:] for v in blocks]
        carry_start = keep


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


def _power(total_sq, n_samples: int, count=None) -> np.ndarray:
    """Typical per-sample power from a chunk's sum of squares (1 where there is none)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        p = total_sq / (n_samples if count is None else np.maximum(count, 1.0))
    return np.where(np.isfinite(p) & (p > 0), p, 1.0)


def _use_gram(x: np.ndarray, g: int) -> bool:
    """Gram path when blocks are long enough that the (subject x subject) sums stay small."""
    return g >= max(_GRAM_MIN_BLOCK, x.shape[0] // 2)
