"""Decoding audio from any film or music file (PyAV), mono mixdown, resampling.

The decoder streams: packets are decoded, converted to planar float, mixed
down and resampled (soxr, anti-aliased "HQ") block by block, so a two-hour
film never holds its native-rate multichannel audio in memory; only the
output at the target rate is kept.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError

__all__ = ["load_audio", "iter_audio", "probe_audio", "make_stimulus_table", "content_hash", "resample"]

#: Containers the test-suite decodes; anything FFmpeg reads works.
CONTAINERS = ("mp4", "mkv", "webm", "avi", "wav", "flac", "mp3", "ogg")
_SILENCE = 1e-7  # peak amplitude below which a stimulus counts as silent


def _open(path: str | os.PathLike) -> Any:
    import av

    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError(f"{path}: file does not exist")
    if os.path.getsize(path) == 0:
        raise InputError(f"{path}: file is empty (zero bytes)")
    try:
        return av.open(path)
    except av.FFmpegError as exc:
        raise InputError(f"{path}: not a readable audio or video file ({exc})") from None


def _audio_stream(container: Any, path: str) -> Any:
    if not container.streams.audio:
        kinds = sorted({s.type for s in container.streams}) or ["none"]
        container.close()
        raise InputError(f"{path}: no audio stream (streams: {', '.join(kinds)})")
    stream = container.streams.audio[0]
    if stream.codec_context is None or not stream.codec_context.is_decoder:
        container.close()
        raise InputError(f"{path}: unsupported audio codec or sample format "
                         f"({getattr(stream.codec_context, 'name', '?')})")
    return stream


def probe_audio(path: str | os.PathLike) -> dict[str, Any]:
    """Read a file's audio stream header without decoding it.

    Parameters
    ----------
    path : path-like
        Film or audio file.

    Returns
    -------
    dict
        ``codec``, ``native_sr`` (Hz), ``channels``, ``duration`` (seconds,
        NaN when the container does not say).
    """
    path = os.fspath(path)
    container = _open(path)
    try:
        stream = _audio_stream(container, path)
        cc = stream.codec_context
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1e6
        else:
            duration = float("nan")
        return {"codec": cc.name, "native_sr": int(cc.sample_rate or 0),
                "channels": int(cc.channels or 0), "duration": duration}
    finally:
        container.close()


def _native_blocks(path: str) -> Iterator[tuple[np.ndarray, int]]:
    """Decoded blocks ``(channels, n)`` float32 at the native rate, and the rate."""
    import av

    container = _open(path)
    try:
        stream = _audio_stream(container, path)
        resampler = None
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.FFmpegError as exc:
                raise InputError(f"{path}: corrupt audio data ({exc})") from None
            for frame in frames:
                if resampler is None:
                    # Convert any sample format to planar float, same layout/rate.
                    try:
                        resampler = av.AudioResampler(format="fltp", layout=frame.layout.name,
                                                      rate=frame.sample_rate)
                    except (av.FFmpegError, ValueError) as exc:
                        raise InputError(f"{path}: unsupported sample format "
                                         f"{frame.format.name!r} ({exc})") from None
                for out in resampler.resample(frame):
                    yield out.to_ndarray().astype(np.float32, copy=False), out.sample_rate
        if resampler is not None:
            for out in resampler.resample(None):
                yield out.to_ndarray().astype(np.float32, copy=False), out.sample_rate
    except av.FFmpegError as exc:
        raise InputError(f"{path}: corrupt or unreadable audio ({exc})") from None
    finally:
        container.close()


def iter_audio(path: str | os.PathLike, sr: int | None = 16000, *, mono: bool = True) -> Iterator[np.ndarray]:
    """Stream a file's audio as blocks at ``sr`` Hz.

    Parameters
    ----------
    path : path-like
        Film or audio file (any container FFmpeg reads).
    sr : int or None
        Output rate in Hz; None keeps the native rate.
    mono : bool
        Mix channels down to one (their mean).

    Yields
    ------
    ndarray of shape (n,) if mono else (channels, n), float32
    """
    import soxr

    path = os.fspath(path)
    stream = None
    channels = 1
    for block, native in _native_blocks(path):
        if mono:
            block = block.mean(axis=0, dtype=np.float32)
        if sr is None or sr == native:
            yield block
            continue
        if stream is None:
            channels = 1 if mono else block.shape[0]
            stream = soxr.ResampleStream(native, sr, channels, dtype="float32", quality="HQ")
        x = block if mono else np.ascontiguousarray(block.T)
        y = stream.resample_chunk(x)
        if y.size:
            yield y if mono else np.ascontiguousarray(y.T)
    if stream is not None:
        x = np.zeros((0,) if mono else (0, channels), dtype=np.float32)
        y = stream.resample_chunk(x, last=True)
        if y.size:
            yield y if mono else np.ascontiguousarray(y.T)


def load_audio(path: str | os.PathLike, sr: int | None = 16000, mono: bool = True, *,
               allow_silent: bool = False) -> tuple[np.ndarray, int]:
    """Decode a film's or music file's audio.

    Parameters
    ----------
    path : path-like
        mp4, mkv, webm, avi, wav, flac, mp3, ogg, ... (anything FFmpeg reads).
    sr : int or None
        Output sample rate in Hz (default 16000); None keeps the native rate.
    mono : bool
        Mix down to one channel (mean of channels).
    allow_silent : bool
        Accept all-zero audio (for separated stems, which may be silent).

    Returns
    -------
    audio : ndarray of shape (n_samples,) if mono else (channels, n_samples), float32
    sr : int
        Its sample rate.

    Raises
    ------
    InputError
        Naming the file: unreadable or corrupt, no audio stream, zero length,
        all silent, unsupported sample format.
    """
    path = os.fspath(path)
    native = None
    if sr is None:
        native = probe_audio(path)["native_sr"]
    blocks: list[np.ndarray] = []
    for block in iter_audio(path, sr, mono=mono):
        blocks.append(block)
    if not blocks or sum(b.shape[-1] for b in blocks) == 0:
        raise InputError(f"{path}: audio stream has zero length")
    audio = np.concatenate(blocks, axis=-1)
    del blocks
    if not np.isfinite(audio).all():
        raise InputError(f"{path}: audio contains NaN or infinite samples")
    if not allow_silent and float(np.max(np.abs(audio))) < _SILENCE:
        raise InputError(f"{path}: audio is silent (every sample is zero)")
    return audio, int(sr if sr is not None else native)


def resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample along the last axis with soxr (anti-aliased, "HQ").

    Parameters
    ----------
    audio : ndarray of shape (..., n_samples)
    sr_in, sr_out : int
        Rates in Hz.

    Returns
    -------
    ndarray of shape (..., round(n_samples * sr_out / sr_in)), float32
    """
    import soxr

    audio = np.asarray(audio, dtype=np.float32)
    if sr_in == sr_out:
        return audio
    if audio.ndim == 1:
        return soxr.resample(audio, sr_in, sr_out, quality="HQ").astype(np.float32, copy=False)
    flat = audio.reshape(-1, audio.shape[-1])
    out = soxr.resample(np.ascontiguousarray(flat.T), sr_in, sr_out, quality="HQ").T
    return np.ascontiguousarray(out.reshape(audio.shape[:-1] + (out.shape[-1],)), dtype=np.float32)


def content_hash(path: str | os.PathLike, *, block: int = 1 << 22) -> str:
    """``sha256:<hex>`` of a file's bytes, read in blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(block), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def make_stimulus_table(stimuli: Mapping[str, str | os.PathLike] | Iterable[Any]) -> pd.DataFrame:
    """One row per stimulus: name, path, duration, native rate, channels, codec, content hash.

    Parameters
    ----------
    stimuli : mapping of name to path, or iterable of paths or of objects
        with ``name`` and ``path`` attributes (:class:`xaffect.study.Stimulus`).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``name``.
    """
    if isinstance(stimuli, Mapping):
        items = [(str(k), Path(v)) for k, v in stimuli.items()]
    else:
        items = []
        for s in stimuli:
            if hasattr(s, "name") and hasattr(s, "path"):
                items.append((str(s.name), Path(s.path)))
            else:
                items.append((Path(s).stem, Path(s)))
    rows = []
    for name, path in items:
        info = probe_audio(path)
        rows.append({"name": name, "path": str(path), "duration": info["duration"],
                     "native_sr": info["native_sr"], "channels": info["channels"], "codec": info["codec"],
                     "hash": content_hash(path)})
    return pd.DataFrame(rows, columns=["name", "path", "duration", "native_sr", "channels", "codec", "hash"]
                        ).set_index("name")
