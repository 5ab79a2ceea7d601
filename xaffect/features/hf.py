"""Layer-by-layer activations of Hugging Face speech models, on the clock.

Any ``transformers`` audio model that returns hidden states works: wav2vec 2.0,
HuBERT, WavLM, data2vec-audio (raw-waveform models with a convolutional
feature encoder) and the Whisper encoder (log-mel input). Layer 0 is the input
to the transformer stack (``layer_name`` "input": the convolutional feature
encoder's output after the feature projection and position embedding, i.e.
``hidden_states[0]``), then layer *k* (``"block k"``) is the output of block
*k*: a 12-block base model has layers 0..12, and the seed's "layers 7-14" of
a 24-block model are blocks 7..14.

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..errors import InputError
from ..store.clock import bin_centres, n_bins, to_clock
from .frames import TORCH_LOCK, activations_on_clock, check_layers, resample_audio  # noqa: F401 (re-exported)

__all__ = ["SpeechModel", "load_model", "speech_model_from", "layer_activations", "frame_layers", "resample_audio"]



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
    config_source: str = "model"

    def centres(self, n_samples: int) -> np.ndarray:
        """Frame centres (seconds) of ``n_samples`` samples, shape (n_frames,)."""
        return frame_centres(self, n_samples)

    def frames(self, audio, n_samples: int, start: int, stop: int, *, layers: Sequence[int],
               context: int) -> np.ndarray:
        """Frames ``start..stop-1``: see :func:`frame_layers`."""
        return frame_layers(self, audio, n_samples, start, stop, layers=layers, context=context)

    def layer_names(self, layers: Sequence[int] | None = None) -> list[str]:
        """Names of hidden states: ``input`` (0, the transformer's input: the feature
        encoder's projected output plus position embedding) and ``block 1`` … ``block N``."""
        idx = range(self.n_layers) if layers is None else layers
        return ["input" if i == 0 else f"block {i}" for i in idx]

    def provenance(self) -> dict:
        """Model identity for a store's provenance."""
        return {"name": self.name, "revision": self.revision, "model_type": self.model_type,
                "random_init": self.random_init, "seed": self.seed, "n_layers": self.n_layers,
                "sr": self.sr, "hop_samples": self.hop, "receptive_field_samples": self.field,
                "config_source": self.config_source}


#: Hub ids whose architecture is exactly a transformers config class's defaults: with
#: ``random_init`` they build offline (no weights are read; ``config_source`` says so).
DEFAULT_ARCHITECTURES = {"facebook/hubert-base-ls960": "HubertConfig", "facebook/wav2vec2-base": "Wav2Vec2Config",
                         "facebook/wav2vec2-base-960h": "Wav2Vec2Config", "microsoft/wavlm-base": "WavLMConfig"}


def _load_error(model: str, exc: Exception, *, random_init: bool = False) -> InputError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    what = "its config.json (random_init)" if random_init else "config.json and the weights"
    return InputError(
        f"model {model!r}: cannot be found or loaded ({first[:160]}). Give a local folder holding {what} instead "
        f"(save_pretrained, or on a connected machine `hf download {model} --local-dir DIR`), "
        "or build a random one with `xaffect make-random-model KIND DIR --size base`")


def _conv_field(kernels: Sequence[int], strides: Sequence[int]) -> tuple[int, int]:
    """Receptive field and hop (samples) of a stack of valid 1-D convolutions."""
    field_, jump = 1, 1
    for k, s in zip(kernels, strides):
        field_ += (k - 1) * jump
        jump *= s
    return field_, jump


def load_model(model: Any, *, revision: str | None = None, random_init: bool = False,
               seed: int = 0) -> SpeechModel:
    """Load a Hugging Face audio model by id or local folder.

    Parameters
    ----------
    model : str, Path, SpeechModel or transformers model
        Hub id (``facebook/hubert-base-ls960``), a folder saved with
        ``save_pretrained``, or a model object (wrapped by :func:`speech_model_from`).
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

    if isinstance(model, SpeechModel):
        return model
    if isinstance(model, torch.nn.Module):
        return speech_model_from(model)
    if not isinstance(model, (str, Path)):
        raise InputError(f"model: expected a Hugging Face id, a folder, a SpeechModel or a transformers model, "
                         f"got {type(model).__name__}")
    name = str(model)
    if (name.startswith((".", "/", "~")) or Path(name).expanduser().exists()) and \
            not (Path(name).expanduser() / "config.json").is_file():
        raise _load_error(name, FileNotFoundError(f"no config.json in {name}"))
    config_source = "model"
    try:
        config = transformers.AutoConfig.from_pretrained(name, revision=revision)
    except (OSError, ValueError, KeyError) as exc:
        if not (random_init and name in DEFAULT_ARCHITECTURES):
            raise _load_error(name, exc, random_init=random_init) from None
        # random weights need only the architecture, which these configs' defaults are
        config = getattr(transformers, DEFAULT_ARCHITECTURES[name])()
        config_source = f"transformers {DEFAULT_ARCHITECTURES[name]}() defaults (= {name}'s architecture; offline)"
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
    sm = _wrap(net, config, fe, name, revision, random_init, seed)
    sm.config_source = config_source
    return sm


def speech_model_from(module, *, feature_extractor=None, name: str | None = None) -> SpeechModel:
    """A :class:`SpeechModel` around a ``transformers`` model object already in memory.

    Parameters
    ----------
    module : transformers.PreTrainedModel
        A speech model with a ``config`` (e.g. ``HubertModel``), as loaded or built.
    feature_extractor : optional
        Its feature extractor (default: the config's rule, as for a folder without one).
    name : str, optional
        For provenance (default: the config's ``_name_or_path`` or the class name).

    Raises
    ------
    InputError
        For a torch module that is not a transformers model (use
        :func:`xaffect.features.torchnet.load_torch_network` for those).
    """
    config = getattr(module, "config", None)
    if config is None or not hasattr(config, "model_type"):
        raise InputError(f"model: a {type(module).__name__} is not a transformers speech model; for any other "
                         "torch network use xaffect.features.load_torch_network(module=..., layers=...) and "
                         "torch_activations (or kind: torch in study.yaml)")
    label = name or getattr(config, "_name_or_path", "") or type(module).__name__
    module.eval()
    return _wrap(module, config, feature_extractor, str(label), None, False, 0)


def _wrap(net, config, fe, name: str, revision: str | None, random_init: bool, seed: int) -> SpeechModel:
    """Frame geometry of a loaded transformers model."""
    import transformers

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
    model : str, Path, SpeechModel, transformers model or TorchNetwork
        Hub id, local folder, a model from :func:`load_model`, a
        ``transformers`` model object in memory, or a network from
        :func:`~xaffect.features.torchnet.load_torch_network`.
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
    from .torchnet import TorchNetwork, torch_activations

    if isinstance(model, TorchNetwork):
        if layers not in (None, "all"):
            raise InputError("layers: a TorchNetwork records the layers it was built with (load_torch_network)")
        return torch_activations(audio, sr, model, rate=rate, resample=resample, stimulus=stimulus)
    sm = load_model(model, revision=revision, random_init=random_init, seed=seed)
    sel = check_layers(layers, sm.n_layers, what=f"model {sm.name!r}")
    what = f"stimulus {stimulus!r}" if stimulus else "audio"
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim != 1:
        raise InputError(f"{what}: expected a mono waveform (n_samples,), got shape {x.shape}")
    x = resample_audio(x, sr, sm.sr, resample=resample, what=what)
    if sm.normalize:
        x = _normalised(x)
    nb = n_bins(x.size / sm.sr, rate)
    if nb == 0:
        raise InputError(f"{what}: {x.size / sm.sr:.3f} s is shorter than one clock bin at {rate:g} Hz")
    cube = activations_on_clock(sm, x, x.size, bins=(0, nb), rate=rate, layers=sel,
                                batch_seconds=batch_seconds, context_seconds=context_seconds)
    coords = {"onset": ("time", bin_centres(nb, rate)), "layer": sel, "layer_name": ("layer", sm.layer_names(sel))}
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
