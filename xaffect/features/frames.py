"""Frame extractors onto the clock: the rule every deep extractor shares.

A frame extractor (:class:`~xaffect.features.hf.SpeechModel`,
:class:`~xaffect.features.vggish.VGGishExtractor`,
:class:`~xaffect.features.torchnet.TorchNetwork`) tells where its frames
centre (``centres(n_samples)``) and computes a range of frames
(``frames(...)``); :func:`activations_on_clock` runs it in bounded chunks and
averages the frames whose centres fall in each clock bin. Also the shared
input checks: layer selections and sample rates.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["TORCH_LOCK", "activations_on_clock", "check_layers", "plan_chunks", "resample_audio"]

_EPS = 1e-9
#: One forward pass at a time: torch already spreads each over every core.
TORCH_LOCK = threading.Lock()


def check_layers(layers: Any, n_layers: int, *, what: str = "model", first: int = 0) -> list[int]:
    """Validate a layer selection (``"all"``, a number or a list of numbers).

    Layers are numbered ``first .. first + n_layers - 1`` (0 for HF hidden
    states, 1 for VGGish's stages as the seed numbers them); the positions
    returned are 0-based.
    """
    if layers is None or layers == "all":
        return list(range(n_layers))
    if isinstance(layers, str):
        raise InputError(f"layers: {layers!r} is not 'all', an index or a list of indices")
    sel = [layers] if isinstance(layers, (int, np.integer)) else list(layers)
    bad = [v for v in sel if not isinstance(v, (int, np.integer)) or not first <= int(v) < first + n_layers]
    if bad or not sel:
        raise InputError(f"layers: {bad or sel} out of range for {what} with layers {first}..{first + n_layers - 1}")
    return [int(v) - first for v in sel]


def resample_audio(audio: np.ndarray, sr: float, target: int, *, resample: bool = True,
                   what: str = "audio") -> np.ndarray:
    """Bring ``audio`` (n_samples,) to ``target`` Hz, or refuse.

    Raises
    ------
    InputError
        If the rates differ and ``resample`` is False.
    """
    if abs(float(sr) - target) < 1e-6:
        return np.asarray(audio, dtype=np.float32)
    if not resample:
        raise InputError(f"{what}: sample rate {sr} Hz but the model expects {target} Hz "
                         "(resample it, or allow resample=True)")
    import soxr

    return soxr.resample(np.asarray(audio, dtype=np.float32), float(sr), float(target)).astype(np.float32)


def plan_chunks(n: int, size: int) -> list[tuple[int, int]]:
    """Split ``range(n)`` into consecutive pieces of at most ``size``."""
    size = max(1, int(size))
    return [(a, min(n, a + size)) for a in range(0, n, size)]


def activations_on_clock(sm: Any, audio: Callable[[int, int], np.ndarray] | np.ndarray, n_samples: int,
                         *, bins: tuple[int, int], rate: float, layers: Sequence[int], batch_seconds: float,
                         context_seconds: float) -> np.ndarray:
    """Clock bins ``bins[0]..bins[1]-1`` of the layer cube.

    ``sm`` is any frame extractor with ``sr``, ``hop``, ``n_units``,
    ``max_samples``, ``centres(n)`` and ``frames(...)`` (a
    :class:`SpeechModel` or :class:`~xaffect.features.vggish.VGGishExtractor`).

    Returns
    -------
    array of shape (n_bins, len(layers), n_units), float32
        Mean of the frames whose centres fall in each bin (NaN if none).
    """
    times = sm.centres(n_samples)
    idx = np.floor(times * rate + _EPS).astype(np.int64)
    sel = np.nonzero((idx >= bins[0]) & (idx < bins[1]))[0]
    nb = bins[1] - bins[0]
    if sel.size == 0:
        return np.full((nb, len(layers), sm.n_units), np.nan, dtype=np.float32)
    per = max(1, int(batch_seconds * sm.sr) // sm.hop)
    if sm.max_samples is not None:
        per = min(per, max(1, (sm.max_samples - 2 * int(context_seconds * sm.sr)) // sm.hop))
    sums = np.zeros((nb, len(layers), sm.n_units))
    counts = np.zeros(nb)
    f_lo, f_hi = int(sel[0]), int(sel[-1]) + 1
    for a, b in plan_chunks(f_hi - f_lo, per):
        fr = sm.frames(audio, n_samples, f_lo + a, f_lo + b, layers=layers,
                       context=int(context_seconds * sm.sr))
        where = idx[f_lo + a:f_lo + b] - bins[0]  # sorted: frames are in time order
        used, starts = np.unique(where, return_index=True)
        sums[used] += np.add.reduceat(fr, starts, axis=0)
        counts[used] += np.diff(np.r_[starts, where.size])
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sums / counts[:, None, None]).astype(np.float32)


