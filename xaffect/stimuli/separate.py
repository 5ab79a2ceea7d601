"""One interface to voice/soundtrack separation, four backends and ``auto``.

``separate(audio, sr, backend=..., **options)`` returns ``{"voice": ...,
"soundtrack": ...}``, each the same length as ``audio``:

* ``masknet`` (default) — a small convolutional mask estimator trained by
  xaffect on freely licensed recordings, weights shipped in the package
  (:mod:`xaffect.stimuli.masknet`); voice + soundtrack = mixture. On held-out
  real speech over music it improves both stems over the mixture, where
  REPET-SIM made both worse (``benchmarks/bench_separation.py``).
* ``nnfilter`` — REPET-SIM nearest-neighbour filtering, no weights
  (:mod:`xaffect.stimuli.nnfilter`); good on strictly repeating music only.
* ``demucs`` — Hybrid Transformer Demucs in process, two stems (vocals /
  everything else) (:mod:`xaffect.stimuli.demucs`).
* ``spleeter`` — Spleeter 2stems, what the first seed used, run in its own
  environment as a subprocess (:mod:`xaffect.stimuli.spleeter`).
* ``auto`` — the best available: Demucs ``htdemucs`` when its pretrained
  weights are in the torch hub cache, else Spleeter 2stems when its
  environment and pretrained checkpoint are here, else ``masknet``
  (:func:`resolve_backend`; nothing is downloaded). The stems store records
  which one ran.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import ConfigError, InputError

__all__ = ["separate", "BACKENDS", "DEFAULT_BACKEND", "backend_info", "resolve_backend", "min_sample_rate"]

DEFAULT_BACKEND = "masknet"


def _masknet(audio: np.ndarray, sr: int, **options: Any) -> dict[str, np.ndarray]:
    from .masknet import separate_masknet

    return separate_masknet(audio, sr, **options)


def _nnfilter(audio: np.ndarray, sr: int, **options: Any) -> dict[str, np.ndarray]:
    from .nnfilter import separate_nnfilter

    return separate_nnfilter(audio, sr, **options)


def _demucs(audio: np.ndarray, sr: int, **options: Any) -> dict[str, np.ndarray]:
    from .demucs import separate_demucs

    return separate_demucs(audio, sr, **options)


def _spleeter(audio: np.ndarray, sr: int, **options: Any) -> dict[str, np.ndarray]:
    from .spleeter import separate_spleeter

    return separate_spleeter(audio, sr, **options)


def _auto(audio: np.ndarray, sr: int, **options: Any) -> dict[str, np.ndarray]:
    return BACKENDS[resolve_backend("auto", **options)](audio, sr)


#: Backend name to its function ``(audio, sr, **options) -> {"voice", "soundtrack"}``.
BACKENDS: dict[str, Callable[..., dict[str, np.ndarray]]] = {
    "auto": _auto,
    "masknet": _masknet,
    "nnfilter": _nnfilter,
    "demucs": _demucs,
    "spleeter": _spleeter,
}


def resolve_backend(backend: str = "auto", **options: Any) -> str:
    """The backend ``backend`` stands for: itself, or for ``auto`` the best available.

    ``auto`` picks ``demucs`` when Demucs's pretrained ``htdemucs`` is in the
    torch hub cache, else ``spleeter`` when the Spleeter environment and its
    pretrained ``2stems`` checkpoint are present, else ``masknet`` (whose
    weights ship with xaffect). Nothing is downloaded.

    Raises
    ------
    ConfigError
        An unknown backend, or options given to ``auto`` (they would depend
        on which backend it picks: name the backend to pass options).
    """
    if backend not in BACKENDS:
        raise ConfigError(f"backend: unknown separation backend {backend!r} "
                          f"(available: {', '.join(BACKENDS)})")
    if backend != "auto":
        return backend
    if options:
        raise ConfigError(f"backend_options: backend 'auto' takes no options (got {', '.join(sorted(options))}); "
                          "name the backend (masknet, nnfilter, demucs, spleeter) to pass options")
    from . import demucs, spleeter

    if demucs.pretrained_available("htdemucs"):
        return "demucs"
    if spleeter.pretrained_available("spleeter:2stems"):
        return "spleeter"
    return "masknet"


def min_sample_rate(backend: str) -> int:
    """Lowest sample rate (Hz) of a recording the backend can separate meaningfully."""
    if backend == "masknet":
        from .masknet import MIN_SR

        return MIN_SR
    return 1


def separate(audio: np.ndarray, sr: int, backend: str = DEFAULT_BACKEND, **options: Any) -> dict[str, np.ndarray]:
    """Separate a mono mixture into voice and soundtrack.

    Parameters
    ----------
    audio : ndarray of shape (n_samples,)
        Mono mixture, float.
    sr : int
        Its sample rate in Hz.
    backend : {"masknet", "auto", "nnfilter", "demucs", "spleeter"}
        Separation method (see the module docstring); ``auto`` is resolved
        by :func:`resolve_backend`.
    **options
        Backend options (see ``separate_masknet``, ``separate_nnfilter``,
        ``separate_demucs``, ``separate_spleeter``).

    Returns
    -------
    dict
        ``voice`` and ``soundtrack``: ndarrays of shape (n_samples,), float32.

    Raises
    ------
    ConfigError
        Unknown backend or option.
    InputError
        Audio that is not 1-D, empty or not finite, or a sample rate the
        backend cannot take.
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
    if backend == "auto":
        backend = resolve_backend("auto", **options)
    if int(sr) < min_sample_rate(backend):
        raise InputError(f"separate: sample rate {sr} Hz is below the {min_sample_rate(backend)} Hz the "
                         f"{backend} separator takes")
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
    """What identifies a backend's output: its name, options and model (for provenance).

    ``auto`` is resolved first; ``backend`` is then the one that runs and
    ``requested`` says ``auto``.
    """
    resolved = resolve_backend(backend, **options)
    info: dict[str, Any] = {"backend": resolved, "options": dict(sorted(options.items()))}
    if resolved != backend:
        info["requested"] = backend
    backend = resolved
    if backend == "masknet":
        from .masknet import model_identity

        info["model"] = model_identity(**options)
    elif backend == "demucs":
        from .demucs import model_identity

        info["model"] = model_identity(**options)
    elif backend == "spleeter":
        from .spleeter import model_identity

        info["model"] = model_identity(**options)
    return info
