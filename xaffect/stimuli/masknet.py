"""``masknet``: a small convolutional mask estimator xaffect trains itself.

Why a trained network rather than a weight-free method: REPET-SIM
(:mod:`~xaffect.stimuli.nnfilter`) assumes the soundtrack repeats and the
voice does not. On real recordings (telephone prompts over music-on-hold)
that fails both ways — sparse speech repeats too (same speaker, same
phrases), and bells, phones and melodic lines do not — so REPET made both
stems *worse* than the unseparated mixture. A network that has seen speech
and music learns what speech looks like in a spectrogram instead.

Model: log-magnitude STFT (16 kHz, 512-point window, 128-sample hop) of the
mixture, normalised to a fixed RMS, through a stack of dilated 1-D
convolutions over time (the 257 frequency bins as channels, 64 hidden
channels, dilations 1-16, residual connections; it sees 0.25 s either side),
giving a sigmoid mask on every STFT bin. The voice is the masked mixture;
the soundtrack is the mixture minus the voice, so the two stems always sum
to the mixture. About 115 000 parameters, shipped as
``xaffect/data/masknet.npz`` (float16, about 0.2 MB, with its training
record in the file's ``__meta__``). Small on purpose: it is trained on two
CPU cores in minutes and runs at hundreds of times real time.

Training (``benchmarks/train_masknet.py``) uses only the *tuning* split of
:mod:`~xaffect.stimuli.recordings` (plus xaffect's synthesiser); the
*held-out* split (other prompt families, other music tracks, other
espeak-ng voices, other sound events) is used only by
``benchmarks/bench_separation.py`` and the tests.

Any rate of at least 8 kHz is taken: the mixture is resampled to 16 kHz
(soxr), separated and the voice resampled back.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, InputError

__all__ = ["separate_masknet", "load_masknet", "build_masknet", "masknet_features", "model_identity",
           "DEFAULT_WEIGHTS", "MODEL_SR", "MIN_SR", "N_FFT", "HOP"]

MODEL_SR = 16000  # Hz, the rate the network works at
MIN_SR = 8000  # Hz, below this the speech band (up to 4 kHz) is not there
N_FFT = 512
HOP = 128
RMS = 0.05  # the mixture is scaled to this RMS before the STFT (the mask is scale-free)
DEFAULT_WEIGHTS = Path(__file__).resolve().parent.parent / "data" / "masknet.npz"


def build_masknet(n_freq: int = N_FFT // 2 + 1, channels: int = 64, kernel: int = 3,
                  dilations: tuple[int, ...] = (1, 2, 4, 8, 16)) -> Any:
    """The mask network (randomly initialised; weights come from :func:`load_masknet`).

    Parameters
    ----------
    n_freq : int
        STFT bins (input and output channels).
    channels : int
        Hidden channels.
    kernel : int
        Temporal kernel size of every convolution.
    dilations : tuple of int
        Dilation of each convolution; the first maps ``n_freq`` to
        ``channels``, the rest are residual.

    Returns
    -------
    torch.nn.Module
        Maps log-magnitudes of shape (batch, n_freq, n_frames) to a mask of
        the same shape in [0, 1].
    """
    import torch
    from torch import nn

    class MaskNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inp = nn.Conv1d(n_freq, channels, kernel, dilation=dilations[0],
                                 padding=dilations[0] * (kernel // 2))
            self.blocks = nn.ModuleList(nn.Conv1d(channels, channels, kernel, dilation=d, padding=d * (kernel // 2))
                                        for d in dilations[1:])
            self.out = nn.Conv1d(channels, n_freq, 1)

        def forward(self, logmag: torch.Tensor) -> torch.Tensor:
            h = torch.relu(self.inp(logmag))
            for block in self.blocks:
                h = h + torch.relu(block(h))
            return torch.sigmoid(self.out(h))

    return MaskNet()


def receptive_frames(dilations: tuple[int, ...] = (1, 2, 4, 8, 16), kernel: int = 3) -> int:
    """Frames either side of a frame that its mask depends on."""
    return int(sum(d * (kernel // 2) for d in dilations))


def masknet_features(spec: Any) -> Any:
    """Network input from a complex STFT: log-magnitude.

    Parameters
    ----------
    spec : torch.Tensor of shape (..., n_freq, n_frames), complex
        STFT of the RMS-normalised mixture.

    Returns
    -------
    torch.Tensor of the same shape, float32
    """
    import torch

    return torch.log(spec.abs() + 1e-4)


def stft(y: Any) -> Any:
    """Complex STFT (torch) with the network's window and hop; ``y`` (..., n_samples)."""
    import torch

    return torch.stft(y, N_FFT, HOP, window=torch.hann_window(N_FFT, device=y.device), center=True,
                      return_complex=True)


def istft(spec: Any, length: int) -> Any:
    """Inverse of :func:`stft`."""
    import torch

    return torch.istft(spec, N_FFT, HOP, window=torch.hann_window(N_FFT, device=spec.device), center=True,
                       length=length)


def _read_weights(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    if not path.is_file():
        raise ConfigError(f"backend_options.weights: {path} does not exist (the shipped masknet weights are "
                          f"{DEFAULT_WEIGHTS}; retrain them with benchmarks/train_masknet.py)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(str(npz["__meta__"]))
            state = {k: np.asarray(npz[k], dtype=np.float32) for k in npz.files if k != "__meta__"}
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"backend_options.weights: {path} is not a masknet weight file ({exc})") from None
    return state, meta


@functools.lru_cache(maxsize=4)
def _load_cached(path: str, stamp: int) -> tuple[Any, dict[str, Any]]:
    import torch

    state, meta = _read_weights(Path(path))
    net = build_masknet(**meta["config"])
    try:
        net.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    except RuntimeError as exc:
        raise ConfigError(f"backend_options.weights: {path} does not fit the masknet configuration "
                          f"{meta['config']} ({str(exc).splitlines()[0]})") from None
    net.eval()
    return net, meta


def load_masknet(weights: str | os.PathLike | None = None) -> tuple[Any, dict[str, Any]]:
    """Load the mask network and its training record (cached per process).

    Parameters
    ----------
    weights : path-like, optional
        A weight file written by ``benchmarks/train_masknet.py`` (default:
        the shipped :data:`DEFAULT_WEIGHTS`). Never falls back to random
        weights: a missing or foreign file is a :class:`ConfigError`.

    Returns
    -------
    net : torch.nn.Module
        In eval mode.
    meta : dict
        ``config`` (architecture), ``training`` (data, steps, seed, split).
    """
    path = Path(weights).expanduser().resolve() if weights is not None else DEFAULT_WEIGHTS
    stamp = path.stat().st_mtime_ns if path.is_file() else 0
    return _load_cached(str(path), stamp)


def model_identity(weights: str | os.PathLike | None = None, **_: Any) -> dict[str, Any]:
    """Weight file path and content hash, for provenance."""
    from .decode import content_hash

    path = Path(weights).expanduser().resolve() if weights is not None else DEFAULT_WEIGHTS
    out: dict[str, Any] = {"name": "masknet", "path": str(path)}
    if path.is_file():
        out["hash"] = content_hash(path)
    return out


def _mask_block(net: Any, y: np.ndarray, scale: float) -> np.ndarray:
    """Voice of one block (16 kHz) by the network's mask."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32) * scale)
    with torch.inference_mode():
        spec = stft(x)
        mask = net(masknet_features(spec)[None])[0]
        voice = istft(mask * spec, length=x.shape[-1])
    return voice.numpy() / scale


def separate_masknet(audio: np.ndarray, sr: int, *, weights: str | os.PathLike | None = None,
                     block: float = 60.0) -> dict[str, np.ndarray]:
    """Split a mixture into voice and soundtrack with the trained mask network.

    Parameters
    ----------
    audio : ndarray of shape (n_samples,)
        Mono mixture.
    sr : int
        Its sample rate in Hz, at least :data:`MIN_SR` (8 kHz).
    weights : path-like, optional
        Weight file (default: the shipped one).
    block : float
        Seconds processed at once (memory is bounded by the block, not the
        recording); blocks overlap by more than the network's receptive
        field, so the result does not depend on it.

    Returns
    -------
    dict
        ``voice`` and ``soundtrack``, each ndarray of shape (n_samples,)
        float32, summing to ``audio``.

    Raises
    ------
    InputError
        Audio that is not mono, or a sample rate below 8 kHz.
    ConfigError
        A missing or unusable weight file, or ``block`` <= 0.
    """
    from .decode import resample

    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise InputError(f"separate: masknet takes mono audio of shape (n_samples,), got {audio.shape}")
    if not sr or int(sr) < MIN_SR:
        raise InputError(f"separate: masknet needs a sample rate of at least {MIN_SR} Hz (the speech band up "
                         f"to 4 kHz), got {sr} Hz")
    if block <= 0:
        raise ConfigError(f"backend_options.block: must be > 0 seconds, got {block}")
    net, meta = load_masknet(weights)
    cfg = meta["config"]
    x = resample(audio, int(sr), MODEL_SR) if int(sr) != MODEL_SR else audio
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    scale = RMS / rms if rms > 1e-9 else 1.0
    # blocks and context are whole hops, so every block's frames lie on the recording's one frame grid
    blk = max(int(block * MODEL_SR) // HOP, 4 * N_FFT // HOP) * HOP
    # context either side: more than the receptive field, in samples
    ctx = (receptive_frames(tuple(cfg["dilations"]), int(cfg["kernel"])) + 4) * HOP + N_FFT
    voice = np.empty_like(x)
    for start in range(0, x.size, blk):
        stop = min(start + blk, x.size)
        a, b = max(0, start - ctx), min(x.size, stop + ctx)
        voice[start:stop] = _mask_block(net, x[a:b], scale)[start - a:stop - a]
    if int(sr) != MODEL_SR:
        voice = resample(voice, MODEL_SR, int(sr))
        voice = np.pad(voice, (0, max(0, audio.size - voice.size)))[:audio.size]
    voice = voice.astype(np.float32)
    return {"voice": voice, "soundtrack": (audio - voice).astype(np.float32)}
