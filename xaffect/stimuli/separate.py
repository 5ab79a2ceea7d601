"""One interface to voice/soundtrack separation, three backends.

``separate(audio, sr, backend=..., **options)`` returns ``{"voice": ...,
"soundtrack": ...}``, each the same length as ``audio``:

* ``nnfilter`` (default) — REPET-SIM nearest-neighbour filtering, no weights
  (:mod:`xaffect.stimuli.nnfilter`); voice + soundtrack = mixture.
* ``demucs`` — Hybrid Transformer Demucs in process, two stems (vocals /
  everything else) (:mod:`xaffect.stimuli.demucs`).
* ``spleeter`` — Spleeter 2stems, what the first seed used, run in its own
  environment as a subprocess (:mod:`xaffect.stimuli.spleeter`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import ConfigError, InputError

__all__ = ["separate", "BACKENDS", "backend_info"]


def _nnfilter(audio: np.ndarray, sr: int, **options: Any) -> dict[str, np.ndarray]:
    from .nnfilter import separate_nnfilter

    return separate_nnfilter(audio, sr, **options)


def _demucs(audio: np.ndarray, sr: int, **options: Any) -> dict[str, np.ndarray]:
    from .demucs import separate_demucs

    return separate_demucs(audio, sr, **options)


def _spleeter(audio: np.ndarray, sr: int, **options: Any) -> dict[str, np.ndarray]:
    from .spleeter import separate_spleeter

    return separate_spleeter(audio, sr, **options)


#: Backend name to its function ``(audio, sr, **options) -> {"voice", "soundtrack"}``.
BACKENDS: dict[str, Callable[..., dict[str, np.ndarray]]] = {
    "nnfilter": _nnfilter,
    "demucs": _demucs,
    "spleeter": _spleeter,
}


def separate(audio: np.ndarray, sr: int, backend: str = "nnfilter", **options: Any) -> dict[str, np.ndarray]:
    """Separate a mono mixture into voice and soundtrack.

    Parameters
    ----------
    audio : ndarray of shape (n_samples,)
        Mono mixture, float.
    sr : int
        Its sample rate in Hz.
    backend : {"nnfilter", "demucs", "spleeter"}
        Separation method.
    **options
        Backend options (see ``separate_nnfilter``, ``separate_demucs``,
        ``separate_spleeter``).

    Returns
    -------
    dict
        ``voice`` and ``soundtrack``: ndarrays of shape (n_samples,), float32.

    Raises
    ------
    ConfigError
        Unknown backend or option.
    InputError
        Audio that is not 1-D, empty or not finite.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"backend: unknown separation backend {backend!r} "
                          f"(available: {', '.join(BACKENDS)})")
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise InputError(f"separate: audio must be mono of shape (n_samples,), got shape {audio.shape}")
    if audio.size == 0:
        raise InputError("separate: audio is empty")
    if not np.isfinite(audio).all():
        raise InputError("separate: audio contains NaN or infinite samples")
    try:
        out = BACKENDS[backend](audio, int(sr), **options)
    except TypeError as exc:
        if "unexpected keyword" in str(exc):
            raise ConfigError(f"backend_options: {exc} (backend {backend!r})") from None
        raise
    for key in ("voice", "soundtrack"):
        x = np.asarray(out[key], dtype=np.float32)
        if x.size < audio.size:
            x = np.pad(x, (0, audio.size - x.size))
        out[key] = x[:audio.size]
    return {"voice": out["voice"], "soundtrack": out["soundtrack"]}


def backend_info(backend: str, **options: Any) -> dict[str, Any]:
    """What identifies a backend's output: its name, options and model (for provenance)."""
    info: dict[str, Any] = {"backend": backend, "options": dict(sorted(options.items()))}
    if backend == "demucs":
        from .demucs import model_identity

        info["model"] = model_identity(**options)
    elif backend == "spleeter":
        from .spleeter import model_identity

        info["model"] = model_identity(**options)
    return info
