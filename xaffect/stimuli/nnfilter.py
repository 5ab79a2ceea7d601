"""Weight-free vocal/background separation: REPET-SIM nearest-neighbour filtering.

The repeating background (music, ambience) of a magnitude spectrogram is
estimated, frame by frame, as the median of the frame's ``k`` most similar
frames (cosine similarity) at least ``width`` seconds away; the voice is what
does not repeat. Soft masks split the mixture so that voice + soundtrack is
the mixture exactly (Rafii & Pardo 2012; librosa's vocal-separation recipe).

librosa's ``decompose.nn_filter`` searches neighbours over the whole
spectrogram (quadratic in duration). Here the audio is cut into blocks of
``block`` seconds with ``context`` seconds of audio either side; neighbours
are searched within a block and its context only, and only the block's own
samples are kept, so time and memory grow linearly with duration.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

__all__ = ["nn_median_filter", "separate_nnfilter"]


def nn_median_filter(S: np.ndarray, *, k: int, width: int) -> np.ndarray:
    """Median of each frame's ``k`` nearest frames (cosine), excluding a band.

    Parameters
    ----------
    S : ndarray of shape (n_freq, n_frames)
        Non-negative magnitude spectrogram.
    k : int
        Number of neighbours.
    width : int
        Frames ``j`` with ``|i - j| < width`` are not neighbours of frame ``i``
        (as ``librosa.segment.recurrence_matrix(width=...)``).

    Returns
    -------
    ndarray of shape (n_freq, n_frames)
        Filtered spectrogram; a frame without any admissible neighbour keeps
        its own values.
    """
    S = np.asarray(S, dtype=np.float32)
    n_freq, n = S.shape
    norms = np.linalg.norm(S, axis=0)
    Z = S / np.maximum(norms, 1e-12)
    sim = Z.T @ Z  # (n, n) cosine similarity
    idx = np.arange(n)
    band = np.abs(idx[:, None] - idx[None, :]) < width
    sim[band] = -np.inf
    sim[:, norms <= 1e-12] = -np.inf  # silent frames are nobody's neighbour
    kk = int(min(k, max(n - 1, 1)))
    if kk < 1 or n < 2:
        return S.copy()
    nbr = np.argpartition(-sim, kk - 1, axis=1)[:, :kk]  # (n, kk)
    valid = np.take_along_axis(sim, nbr, axis=1) > -np.inf
    # sort each row's neighbours so invalid ones come last; count the valid
    order = np.argsort(~valid, axis=1, kind="stable")
    nbr = np.take_along_axis(nbr, order, axis=1).astype(np.int64)
    counts = valid.sum(axis=1).astype(np.int64)
    return _gather_median(np.ascontiguousarray(S.T), nbr, counts).T


def _median_kernel():
    import numba

    @numba.njit(cache=True, nogil=True, parallel=True)
    def gather_median(ST, nbr, counts):  # pragma: no cover - compiled
        n, n_freq = ST.shape
        out = np.empty_like(ST)
        for i in numba.prange(n):
            m = counts[i]
            if m == 0:
                out[i, :] = ST[i, :]
                continue
            rows = np.empty((m, n_freq), dtype=ST.dtype)
            for j in range(m):
                rows[j, :] = ST[nbr[i, j], :]
            buf = np.empty(m, dtype=ST.dtype)
            h = m // 2
            for f in range(n_freq):
                for j in range(m):
                    buf[j] = rows[j, f]
                # quickselect the h-th smallest (Hoare partition)
                lo, hi = 0, m - 1
                while lo < hi:
                    pivot = buf[(lo + hi) // 2]
                    a, b = lo, hi
                    while a <= b:
                        while buf[a] < pivot:
                            a += 1
                        while buf[b] > pivot:
                            b -= 1
                        if a <= b:
                            t = buf[a]
                            buf[a] = buf[b]
                            buf[b] = t
                            a += 1
                            b -= 1
                    if h <= b:
                        hi = b
                    elif h >= a:
                        lo = a
                    else:
                        break
                upper = buf[h]
                if m % 2 == 1:
                    out[i, f] = upper
                else:
                    lower = buf[0]
                    for j in range(1, h):
                        if buf[j] > lower:
                            lower = buf[j]
                    out[i, f] = 0.5 * (lower + upper)
        return out

    return gather_median


_KERNEL: list = []


def _gather_median(ST: np.ndarray, nbr: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Median over ``ST[nbr[i, :counts[i]]]`` per frame ``i`` (numba, parallel).

    Parameters
    ----------
    ST : ndarray of shape (n_frames, n_freq)
    nbr : ndarray of shape (n_frames, k), int64
    counts : ndarray of shape (n_frames,), int64

    Returns
    -------
    ndarray of shape (n_frames, n_freq)
    """
    if not _KERNEL:
        _KERNEL.append(_median_kernel())
    return _KERNEL[0](ST, nbr, counts)


def _separate_block(y: np.ndarray, *, n_fft: int, hop: int, k: int, width: int,
                    margin_v: float, power: float, low_bins: int) -> np.ndarray:
    import librosa

    D = librosa.stft(y, n_fft=n_fft, hop_length=hop)
    S = np.abs(D)
    S_filter = np.minimum(S, nn_median_filter(S, k=k, width=width))
    mask_v = librosa.util.softmask(S - S_filter, margin_v * S_filter, power=power)
    mask_v[:low_bins] = 0.0  # no voice below the cut-off (REPET's high-pass)
    return librosa.istft(mask_v * D, hop_length=hop, n_fft=n_fft, length=y.size).astype(np.float32)


def separate_nnfilter(audio: np.ndarray, sr: int, *, n_fft: int | None = None, hop: int | None = None,
                      k: int | None = 100, width: float = 2.0, margin: float = 1.0, power: float = 2.0,
                      cutoff: float = 100.0, block: float = 20.0, context: float = 2.0) -> dict[str, np.ndarray]:
    """Split a mixture into voice and soundtrack by REPET-SIM.

    Parameters
    ----------
    audio : ndarray of shape (n_samples,)
        Mono mixture.
    sr : int
        Its sample rate in Hz.
    n_fft, hop : int, optional
        STFT size and hop in samples (default: 64 ms and 32 ms at ``sr``).
    k : int, optional
        Neighbours per frame (None: ``2 * ceil(sqrt(frames))``, librosa's
        recurrence default).
    width : float
        Seconds around a frame that cannot be its neighbour.
    margin : float
        Soft-mask margin of the voice (librosa's ``margin_v``; larger is
        more conservative).
    power : float
        Soft-mask exponent.
    cutoff : float
        Frequency (Hz) below which everything is soundtrack (REPET's high-pass).
    block, context : float
        Block length and the context either side, in seconds.

    Returns
    -------
    dict
        ``voice`` and ``soundtrack``, each ndarray of shape (n_samples,)
        float32, summing to ``audio``.
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise InputError(f"separate: nnfilter takes mono audio of shape (n_samples,), got {audio.shape}")
    if block <= 0 or context < 0 or width < 0 or margin < 0:
        raise InputError(f"separate: nnfilter needs block > 0 and context, width, margin >= 0 "
                         f"(got block={block}, context={context}, width={width}, margin={margin})")
    n_fft = int(n_fft or 2 ** int(round(np.log2(0.064 * sr))))
    hop = int(hop or n_fft // 2)
    width_frames = max(1, int(round(width * sr / hop)))
    blk = max(int(block * sr), n_fft)
    ctx = int(context * sr)
    frames_per_block = (blk + 2 * ctx) // hop + 1
    kk = int(k or 2 * np.ceil(np.sqrt(max(frames_per_block - 2 * width_frames + 1, 1))))
    low_bins = int(np.ceil(cutoff * n_fft / sr))
    voice = np.empty_like(audio)
    for start in range(0, audio.size, blk):
        stop = min(start + blk, audio.size)
        a, b = max(0, start - ctx), min(audio.size, stop + ctx)
        v = _separate_block(audio[a:b], n_fft=n_fft, hop=hop, k=kk, width=width_frames,
                            margin_v=margin, power=power, low_bins=low_bins)
        voice[start:stop] = v[start - a:stop - a]
    return {"voice": voice, "soundtrack": (audio - voice).astype(np.float32)}
