"""Layer-by-layer activations of Hugging Face speech models, on the clock.

Any ``transformers`` audio model that returns hidden states works: wav2vec 2.0,
HuBERT, WavLM, data2vec-audio (raw-waveform models with a convolutional
feature encoder) and the Whisper encoder (log-mel input). Layer 0 is the input
to the transformer stack, then one layer per block.

Frame geometry (samples per frame and receptive field) is read from the
model's config, never hard-coded. A frame's time is its receptive-field centre;
frames are averaged into clock bins by :func:`xaffect.store.to_clock`.

Long audio runs in chunks of ``batch_seconds`` with ``context_seconds`` of
extra audio on each side that is fed to the model but whose frames are
dropped, so memory stays bounded and the seams do not show. (Models whose
feature encoder uses group normalisation over time, such as wav2vec2-base
and hubert-base, normalise over their whole input; for them each chunk is
normalised over its own ``batch_seconds + 2 * context_seconds`` window, and
a stimulus shorter than ``batch_seconds`` runs in one exact pass.)
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..errors import InputError
from ..store.clock import bin_centres, n_bins, to_clock

__all__ = ["SpeechModel", "load_model", "layer_activations", "frame_layers", "resample_audio"]

_EPS = 1e-9
#: One forward pass at a time: torch already spreads each over every core.
TORCH_LOCK = threading.Lock()


@dataclass
class SpeechModel:
    """A loaded speech model and its frame geometry.

    Attributes
    ----------
    module : torch.nn.Module
        Called as ``module(x, output_hidden_states=True)``.
    name, revision : str
        Model id or folder, and revision (``None`` for a folder).
    family : {"waveform", "whisper"}
        Raw-waveform SSL models or the Whisper encoder.
    sr : int
        Sample rate the model expects.
    hop : int
        Samples between frames.
    first_centre : float
        Centre of frame 0 in samples.
    field : int
        Receptive field of one frame in samples.
    n_layers : int
        Hidden states returned (layer 0 = transformer input).
    n_units : int
        Hidden size.
    normalize : bool
        Whether the waveform is z-scored first (the feature extractor's rule).
    random_init : bool
        Weights drawn at random (``seed``) rather than loaded.
    """

    module: Any = field(repr=False)
    name: str
    revision: str | None
    family: str
    sr: int
    hop: int
    first_centre: float
    field: int
    n_layers: int
    n_units: int
    normalize: bool = False
    random_init: bool = False
    seed: int | None = None
    max_samples: int | None = None
    feature_extractor: Any = field(default=None, repr=False)
    model_type: str = ""

    def centres(self, n_samples: int) -> np.ndarray:
        """Frame centres (seconds) of ``n_samples`` samples, shape (n_frames,)."""
        return frame_centres(self, n_samples)

    def frames(self, audio, n_samples: int, start: int, stop: int, *, layers: Sequence[int],
               context: int) -> np.ndarray:
        """Frames ``start..stop-1``: see :func:`frame_layers`."""
        return frame_layers(self, audio, n_samples, start, stop, layers=layers, context=context)

    def provenance(self) -> dict:
        """Model identity for a store's provenance."""
        return {"name": self.name, "revision": self.revision, "model_type": self.model_type,
                "random_init": self.random_init, "seed": self.seed, "n_layers": self.n_layers,
                "sr": self.sr, "hop_samples": self.hop, "receptive_field_samples": self.field}


def _load_error(model: str, exc: Exception) -> InputError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return InputError(
        f"model {model!r}: cannot be found or loaded ({first}). Give a local folder holding config.json and "
        f"the weights instead (save_pretrained, or on a connected machine `hf download {model} --local-dir DIR`), "
        "or build a random one with xaffect.features.make_random_model")


def _conv_field(kernels: Sequence[int], strides: Sequence[int]) -> tuple[int, int]:
    """Receptive field and hop (samples) of a stack of valid 1-D convolutions."""
    field_, jump = 1, 1
    for k, s in zip(kernels, strides):
        field_ += (k - 1) * jump
        jump *= s
    return field_, jump


def load_model(model: str | Path, *, revision: str | None = None, random_init: bool = False,
               seed: int = 0) -> SpeechModel:
    """Load a Hugging Face audio model by id or local folder.

    Parameters
    ----------
    model : str or Path
        Hub id (``facebook/hubert-base-ls960``) or a folder saved with
        ``save_pretrained``.
    revision : str, optional
        Hub revision (branch, tag or commit).
    random_init : bool
        Build the same architecture from its config with weights drawn from
        ``seed`` instead of loading the trained weights (the random-weight
        control; recorded in provenance).
    seed : int
        Seed of the random weights.

    Returns
    -------
    SpeechModel

    Raises
    ------
    InputError
        If the model cannot be found, loaded, or returns no hidden states.
    """
    import torch
    import transformers

    name = str(model)
    if (name.startswith((".", "/", "~")) or Path(name).expanduser().exists()) and \
            not (Path(name).expanduser() / "config.json").is_file():
        raise _load_error(name, FileNotFoundError(f"no config.json in {name}"))
    try:
        config = transformers.AutoConfig.from_pretrained(name, revision=revision)
    except (OSError, ValueError, KeyError) as exc:
        raise _load_error(name, exc) from None
    try:
        if random_init:
            torch.manual_seed(int(seed))
            net = transformers.AutoModel.from_config(config)
        else:
            net = transformers.AutoModel.from_pretrained(name, revision=revision)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise _load_error(name, exc) from None
    net.eval()
    try:
        fe = transformers.AutoFeatureExtractor.from_pretrained(name, revision=revision)
    except (OSError, ValueError, KeyError):
        fe = None
    mtype = getattr(config, "model_type", "")
    if mtype == "whisper":
        if fe is None:
            fe = transformers.WhisperFeatureExtractor(feature_size=config.num_mel_bins)
        enc = net.get_encoder() if hasattr(net, "get_encoder") else net
        mel_hop = int(fe.hop_length)
        hop = 2 * mel_hop  # conv2 has stride 2
        field_ = int(fe.n_fft) + 4 * mel_hop  # two k=3 convs: 5 mel frames
        n_samples = int(fe.n_samples)
        return SpeechModel(enc, name, revision, "whisper", int(fe.sampling_rate), hop, 0.0, field_,
                           int(config.encoder_layers) + 1, int(config.d_model), False, random_init,
                           int(seed) if random_init else None, n_samples, fe, mtype)
    if not hasattr(config, "conv_kernel") or not hasattr(config, "conv_stride"):
        raise InputError(f"model {name!r} ({mtype or type(net).__name__}): not a raw-waveform speech model "
                         "with a convolutional feature encoder, nor a Whisper encoder")
    field_, hop = _conv_field(config.conv_kernel, config.conv_stride)
    sr = int(getattr(fe, "sampling_rate", 16000) or 16000)
    normalize = bool(getattr(fe, "do_normalize", getattr(config, "feat_extract_norm", "group") == "layer"))
    sm = SpeechModel(net, name, revision, "waveform", sr, hop, field_ / 2.0, field_,
                     int(config.num_hidden_layers) + 1, int(config.hidden_size), normalize, random_init,
                     int(seed) if random_init else None, None, fe, mtype)
    _check_hidden_states(sm)
    return sm


def _forward(sm: SpeechModel, x: np.ndarray) -> tuple:
    """Hidden states of one segment: tuple of arrays (n_frames, n_units)."""
    import torch

    with TORCH_LOCK, torch.inference_mode():
        if sm.family == "whisper":
            feats = sm.feature_extractor(x, sampling_rate=sm.sr, return_tensors="pt").input_features
            out = sm.module(feats, output_hidden_states=True)
        else:
            out = sm.module(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None],
                            output_hidden_states=True)
    hs = getattr(out, "hidden_states", None)
    if hs is None:
        raise InputError(f"model {sm.name!r}: returns no hidden states (output_hidden_states=True gave none)")
    return tuple(h[0] for h in hs)


def _check_hidden_states(sm: SpeechModel) -> None:
    hs = _forward(sm, np.zeros(max(sm.field * 2, sm.sr // 10), dtype=np.float32))
    if len(hs) != sm.n_layers:
        sm.n_layers = len(hs)


def n_frames(sm: SpeechModel, n_samples: int) -> int:
    """Frames the model makes from ``n_samples`` samples."""
    if sm.family == "whisper":
        return int(n_samples // sm.hop)
    return 0 if n_samples < sm.field else (n_samples - sm.field) // sm.hop + 1


def frame_centres(sm: SpeechModel, n_samples: int) -> np.ndarray:
    """Frame centres in seconds, shape (n_frames,)."""
    return (sm.first_centre + np.arange(n_frames(sm, n_samples)) * sm.hop) / sm.sr


def check_layers(layers: Any, n_layers: int, *, what: str = "model") -> list[int]:
    """Validate a layer selection (``"all"``, an int or a list of ints)."""
    if layers is None or layers == "all":
        return list(range(n_layers))
    if isinstance(layers, str):
        raise InputError(f"layers: {layers!r} is not 'all', an index or a list of indices")
    sel = [layers] if isinstance(layers, (int, np.integer)) else list(layers)
    bad = [int(v) for v in sel if not isinstance(v, (int, np.integer)) or not 0 <= int(v) < n_layers]
    if bad or not sel:
        raise InputError(f"layers: {bad or sel} out of range for {what} with layers 0..{n_layers - 1}")
    return [int(v) for v in sel]


def frame_layers(sm: SpeechModel, audio: Callable[[int, int], np.ndarray] | np.ndarray, n_samples: int,
                 start: int, stop: int, *, layers: Sequence[int], context: int) -> np.ndarray:
    """Hidden states of frames ``start..stop-1`` computed with surrounding context.

    Parameters
    ----------
    sm : SpeechModel
    audio : array of shape (n_samples,) or callable ``(s, e) -> array``
        The (already normalised) waveform at ``sm.sr``, or a reader of a slice.
    n_samples : int
        Length of the waveform.
    start, stop : int
        Frame range wanted.
    layers : sequence of int
        Hidden-state indices.
    context : int
        Samples of context on each side (rounded up to whole frames).

    Returns
    -------
    array of shape (stop - start, len(layers), n_units), float32
    """
    read = audio if callable(audio) else (lambda s, e: audio[s:e])
    ctx = int(math.ceil(context / sm.hop)) * sm.hop
    s0 = max(0, start * sm.hop - ctx)
    if sm.family == "whisper":
        e0 = min(n_samples, stop * sm.hop + ctx)
    else:
        e0 = min(n_samples, (stop - 1) * sm.hop + sm.field + ctx)
    x = np.asarray(read(s0, e0), dtype=np.float32)
    hs = _forward(sm, x)
    off = s0 // sm.hop
    out = np.stack([hs[i][start - off:stop - off].float().numpy() for i in layers], axis=1)
    if out.shape[0] != stop - start:
        raise InputError(f"model {sm.name!r}: returned {out.shape[0]} frames where {stop - start} were expected")
    return out.astype(np.float32, copy=False)


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


def _normalised(audio: np.ndarray) -> np.ndarray:
    mu, sd = float(np.mean(audio)), float(np.std(audio))
    return ((audio - mu) / np.sqrt(sd ** 2 + 1e-7)).astype(np.float32)


def layer_activations(audio: np.ndarray, sr: float, model: str | Path | SpeechModel, *, rate: float = 1.0,
                      layers: Any = "all", revision: str | None = None, random_init: bool = False,
                      seed: int = 0, batch_seconds: float = 60.0, context_seconds: float = 3.0,
                      resample: bool = True, stimulus: str | None = None) -> xr.DataArray:
    """Every layer of a Hugging Face speech model, averaged onto the clock.

    Parameters
    ----------
    audio : array of shape (n_samples,)
        Mono waveform.
    sr : float
        Its sample rate; resampled to the model's rate (or refused if
        ``resample`` is False).
    model : str, Path or SpeechModel
        Hub id, local folder, or a model from :func:`load_model`.
    rate : float
        Clock rate in Hz.
    layers : "all", int or list of int
        Hidden states to keep (0 = transformer input).
    revision, random_init, seed
        As in :func:`load_model`.
    batch_seconds, context_seconds : float
        Chunk length and context on each side for long audio.
    resample : bool
        Resample audio at another rate (default) or raise.
    stimulus : str, optional
        Adds a ``stimulus`` coordinate.

    Returns
    -------
    xarray.DataArray of shape (time, layer, unit), float32
        Coordinates ``onset`` (bin centres), ``layer``; attrs ``model``,
        ``revision``, ``random_init``, ``clock_rate``.
    """
    sm = model if isinstance(model, SpeechModel) else load_model(model, revision=revision,
                                                                random_init=random_init, seed=seed)
    sel = check_layers(layers, sm.n_layers, what=f"model {sm.name!r}")
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim != 1:
        raise InputError(f"audio: expected a mono waveform (n_samples,), got shape {x.shape}")
    x = resample_audio(x, sr, sm.sr, resample=resample, what=f"stimulus {stimulus!r}" if stimulus else "audio")
    if sm.normalize:
        x = _normalised(x)
    nb = n_bins(x.size / sm.sr, rate)
    cube = activations_on_clock(sm, x, x.size, bins=(0, nb), rate=rate, layers=sel,
                                batch_seconds=batch_seconds, context_seconds=context_seconds)
    coords = {"onset": ("time", bin_centres(nb, rate)), "layer": sel}
    if stimulus is not None:
        coords["stimulus"] = ("time", np.full(nb, stimulus))
    return xr.DataArray(cube, dims=("time", "layer", "unit"), coords=coords, name="activation",
                        attrs={"model": sm.name, "revision": str(sm.revision), "random_init": int(sm.random_init),
                               "clock_rate": float(rate)})


def frames_reference(sm: SpeechModel, audio: np.ndarray, *, rate: float, layers: Sequence[int]) -> np.ndarray:
    """Single-pass reference: one forward over all audio, then :func:`to_clock`.

    For tests and benchmarks; shape (n_bins, len(layers), n_units).
    """
    if sm.normalize:
        audio = _normalised(np.asarray(audio, dtype=np.float32))
    hs = _forward(sm, audio)
    fr = np.stack([hs[i].float().numpy() for i in layers], axis=1)
    n = n_frames(sm, audio.size)
    return to_clock(fr[:n], frame_centres(sm, audio.size), rate=rate, duration=audio.size / sm.sr)
