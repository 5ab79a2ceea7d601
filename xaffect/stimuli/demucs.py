"""Demucs backend: Hybrid Transformer Demucs in process, two stems.

Demucs predicts drums / bass / other / vocals (or whatever ``model.sources``
holds); two-stem mode keeps ``vocals`` as the voice and the sum of the rest as
the soundtrack, as ``demucs --two-stems vocals`` does. Weights come through
Demucs's own loaders: a pretrained name (``htdemucs``; downloaded by Demucs
into the torch hub cache, or looked up in a local ``repo`` folder), or a
model file saved by ``demucs.states`` (``model_path``).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, InputError

__all__ = ["separate_demucs", "load_demucs", "model_identity"]


def _require_demucs() -> None:
    try:
        import demucs  # noqa: F401
    except ImportError:
        raise ConfigError("backend: demucs is not installed; install it with "
                          "`pip install 'xaffect[demucs]'` (it keeps your torch)") from None


@functools.lru_cache(maxsize=4)
def _load_cached(model: str, model_path: str | None, repo: str | None, stamp: float) -> Any:
    from demucs.pretrained import get_model
    from demucs.states import load_model

    if model_path is not None:
        if not os.path.exists(model_path):
            raise InputError(f"{model_path}: Demucs model file does not exist")
        try:
            net = load_model(model_path)
        except Exception as exc:  # torch/pickle errors of a foreign file
            raise InputError(f"{model_path}: not a Demucs model file saved by demucs.states ({exc})") from None
    else:
        try:
            net = get_model(model, repo=Path(repo) if repo else None)
        except Exception as exc:
            where = f"in {repo}" if repo else "online or in the torch hub cache"
            raise ConfigError(
                f"backend_options.model: cannot load Demucs model {model!r} {where} ({exc}); "
                "download it once with `python -m demucs -n htdemucs any.wav` on a machine with "
                "internet access, or give backend_options.model_path") from None
    net.eval()
    return net


def load_demucs(model: str = "htdemucs", *, model_path: str | os.PathLike | None = None,
                repo: str | os.PathLike | None = None) -> Any:
    """Load a Demucs model (cached per process).

    Parameters
    ----------
    model : str
        Pretrained name (``htdemucs``, ``htdemucs_ft``, ``mdx_extra`` ...).
    model_path : path-like, optional
        A model file saved with ``demucs.states`` (``torch.save`` of the
        package ``{klass, args, kwargs, state}``); overrides ``model``.
    repo : path-like, optional
        Local folder of pretrained checkpoints (Demucs's ``--repo``).

    Returns
    -------
    torch.nn.Module
        A Demucs model (or bag of models) in eval mode.
    """
    _require_demucs()
    path = os.fspath(model_path) if model_path is not None else None
    stamp = os.stat(path).st_mtime_ns if path is not None and os.path.exists(path) else 0
    return _load_cached(str(model), path, os.fspath(repo) if repo is not None else None, stamp)


def model_identity(model: str = "htdemucs", model_path: str | os.PathLike | None = None,
                   repo: str | os.PathLike | None = None, **_: Any) -> dict[str, Any]:
    """Model name and weight file identity, for provenance."""
    out: dict[str, Any] = {"name": f"demucs:{model}"}
    if model_path is not None:
        from .decode import content_hash

        out.update(name="demucs:file", path=os.fspath(model_path), hash=content_hash(model_path))
    elif repo is not None:
        out["repo"] = os.fspath(repo)
    try:
        import demucs

        out["revision"] = demucs.__version__
    except ImportError:
        pass
    return out


def separate_demucs(audio: np.ndarray, sr: int, *, model: str = "htdemucs",
                    model_path: str | os.PathLike | None = None, repo: str | os.PathLike | None = None,
                    shifts: int = 1, overlap: float = 0.25, segment: float | None = None,
                    device: str = "cpu", progress: bool = False) -> dict[str, np.ndarray]:
    """Separate voice and soundtrack with Demucs (two stems).

    Parameters
    ----------
    audio : ndarray of shape (n_samples,)
        Mono mixture at ``sr``; resampled to the model's rate and duplicated
        to its channels, and the stems mixed back down and resampled.
    sr : int
        Sample rate in Hz.
    model, model_path, repo
        As in :func:`load_demucs`.
    shifts, overlap, segment, device, progress
        Passed to ``demucs.apply.apply_model``.

    Returns
    -------
    dict
        ``voice`` (the ``vocals`` source) and ``soundtrack`` (the sum of the
        other sources), ndarrays of shape (n_samples,), float32.
    """
    import torch
    from demucs.apply import apply_model

    from .decode import resample

    net = load_demucs(model, model_path=model_path, repo=repo)
    sources = list(net.sources)
    if "vocals" not in sources:
        raise ConfigError(f"backend_options: Demucs model {model_path or model!r} has no 'vocals' "
                          f"source (sources: {sources})")
    x = resample(np.asarray(audio, dtype=np.float32), sr, int(net.samplerate))
    mix = torch.from_numpy(np.repeat(x[None, :], int(net.audio_channels), axis=0))
    ref = mix.mean(0)
    mean, std = ref.mean(), ref.std().clamp_min(1e-8)
    with torch.inference_mode():
        est = apply_model(net, ((mix - mean) / std)[None], shifts=shifts, overlap=overlap, segment=segment,
                          device=device, progress=progress, split=True)[0]
    est = est * std + mean  # (sources, channels, samples)
    est = est.mean(dim=1).cpu().numpy()  # mono
    vi = sources.index("vocals")
    voice = est[vi]
    rest = np.delete(est, vi, axis=0).sum(axis=0)
    voice = resample(voice, int(net.samplerate), sr)
    rest = resample(rest, int(net.samplerate), sr)
    n = audio.shape[-1]
    fit = lambda y: np.pad(y, (0, max(0, n - y.size)))[:n].astype(np.float32)  # noqa: E731
    return {"voice": fit(voice), "soundtrack": fit(rest)}


def pretrained_available(model: str = "htdemucs") -> bool:
    """Whether Demucs's pretrained ``model`` is already in the torch hub cache (nothing is downloaded).

    Reads the model's bag file (``demucs/remote/<model>.yaml``) and the
    remote file list that ship with Demucs, and looks for every weight file
    of the bag under ``torch.hub.get_dir()/checkpoints``.
    """
    try:
        import demucs
        import torch
        import yaml
    except ImportError:
        return False
    remote = Path(demucs.__file__).parent / "remote"
    bag, files = remote / f"{model}.yaml", remote / "files.txt"
    if not bag.is_file() or not files.is_file():
        return False
    sigs = yaml.safe_load(bag.read_text()).get("models", [])
    names = [line.strip().rsplit("/", 1)[-1] for line in files.read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    found = []
    for sig in sigs:
        match = [n for n in names if n.startswith(f"{sig}-")]
        found.append(bool(match) and (cache / match[0]).is_file())
    return bool(sigs) and all(found)
