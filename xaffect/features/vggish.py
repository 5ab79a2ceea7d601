"""VGGish (Hershey et al., 2017): log-mel front end and its 23 stages.

The architecture and parameter names follow the widely used PyTorch port
(``features.*`` convolutions, ``embeddings.*`` fully connected layers), so a
state dict converted from the released weights loads with
:func:`load_vggish`. The 23 stages the second seed plots are the input batch,
the 16 modules of ``features`` (conv/ReLU/pool) and the 6 of ``embeddings``
(fc1_1, relu, fc1_2, relu, fc2, relu = the 128-D embedding).

Front end (as in the reference ``vggish_input``): 16 kHz mono, 25 ms periodic
Hann windows every 10 ms, magnitude spectrum of a 512-point FFT, 64 HTK mel
bands 125–7500 Hz, ``log(mel + 0.01)``; examples of 96 frames (0.96 s),
one every ``hop_seconds``. An example's time is its centre.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from ..errors import InputError
from ..store.clock import bin_centres, n_bins, to_clock
from .hf import check_layers, resample_audio
from .hooks import INPUT, hook_activations, pad_layers

__all__ = ["VGGish", "VGGishExtractor", "VGGISH_STAGES", "VGGISH_LABELS", "VGGISH_NAMES", "vggish_examples",
           "load_vggish", "vggish_activations"]

SR = 16000
WIN, HOP, NFFT, NMEL = 400, 160, 512, 64
EXAMPLE_FRAMES = 96

#: Module names of the 23 stages, in order.
VGGISH_STAGES = [INPUT] + [f"features.{i}" for i in range(16)] + [f"embeddings.{i}" for i in range(6)]
#: Their names in the seed's figures (MATLAB's ``vggish``).
VGGISH_LABELS = ["InputBatch", "conv1", "relu", "pool1", "conv2", "relu2", "pool2", "conv3_1", "relu3_1",
                 "conv3_2", "relu3_2", "pool3", "conv4_1", "relu4_1", "conv4_2", "relu4_2", "pool4",
                 "fc1_1", "relu5_1", "fc1_2", "relu5_2", "fc2", "EmbeddingBatch"]
#: The seed numbers the stages 1..23 ("L01: InputBatch" … "L23: EmbeddingBatch"): the ``layer``
#: coordinate of a VGGish cube, and ``layer_name`` is "L01 InputBatch" … "L23 EmbeddingBatch".
VGGISH_FIRST = 1
VGGISH_NAMES = [f"L{i + VGGISH_FIRST:02d} {label}" for i, label in enumerate(VGGISH_LABELS)]


def _build():
    import torch.nn as nn

    class _VGGish(nn.Module):
        """VGGish network: input (n, 1, 96, 64) log-mel examples, output (n, 128)."""

        def __init__(self):
            super().__init__()
            layers, c_in = [], 1
            for c_out, n_conv in ((64, 1), (128, 1), (256, 2), (512, 2)):
                for _ in range(n_conv):
                    layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(inplace=False)]
                    c_in = c_out
                layers.append(nn.MaxPool2d(2, 2))
            self.features = nn.Sequential(*layers)
            self.embeddings = nn.Sequential(nn.Linear(512 * 4 * 6, 4096), nn.ReLU(), nn.Linear(4096, 4096),
                                            nn.ReLU(), nn.Linear(4096, 128), nn.ReLU())

        def forward(self, x):
            x = self.features(x)
            # (n, 512, 6, 4) -> (n, 6, 4, 512): the TensorFlow flattening order
            x = x.permute(0, 2, 3, 1).contiguous().view(x.size(0), -1)
            return self.embeddings(x)

    return _VGGish


def VGGish():
    """A fresh (randomly initialised by torch's defaults) VGGish network."""
    return _build()()


def load_vggish(checkpoint: str | Path | None = None, *, random_init: bool = False, seed: int = 0):
    """VGGish with weights from ``checkpoint``, or seeded random weights.

    Parameters
    ----------
    checkpoint : path, optional
        A ``torch.save``-d state dict (keys ``features.*``, ``embeddings.*``).
    random_init : bool
        Draw weights from ``seed`` instead (the random-weight control); must
        be chosen explicitly when no checkpoint is given.

    Raises
    ------
    InputError
        Missing or incompatible checkpoint, or neither option chosen.
    """
    import torch

    if random_init:
        torch.manual_seed(int(seed))
        return VGGish().eval()
    if checkpoint is None:
        raise InputError("vggish: give checkpoint: PATH (a state dict of the PyTorch VGGish port) "
                         "or choose random_init: true explicitly")
    path = Path(checkpoint).expanduser()
    if not path.is_file():
        raise InputError(f"vggish checkpoint {path}: file does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's input error
        raise InputError(f"vggish checkpoint {path}: cannot be read ({exc})") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    net = VGGish()
    try:
        net.load_state_dict(state)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"vggish checkpoint {path}: does not fit the VGGish architecture "
                         f"({str(exc).splitlines()[0]})") from None
    return net.eval()


def _mel_matrix() -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=SR, n_fft=NFFT, n_mels=NMEL, fmin=125.0, fmax=7500.0, htk=True,
                               norm=None).astype(np.float32)


def vggish_examples(audio: np.ndarray, *, hop_seconds: float = 0.96) -> tuple[np.ndarray, np.ndarray]:
    """Log-mel examples of 16 kHz audio.

    Parameters
    ----------
    audio : array of shape (n_samples,)
    hop_seconds : float
        Seconds between example starts (a multiple of 10 ms).

    Returns
    -------
    examples : array of shape (n_examples, 96, 64), float32
    centres : array of shape (n_examples,)
        Example centres in seconds.
    """
    hop_frames = int(round(hop_seconds * SR / HOP))
    if hop_frames < 1 or abs(hop_frames * HOP - hop_seconds * SR) > 1e-6:
        raise InputError(f"hop_seconds: must be a positive multiple of 0.01 s, got {hop_seconds}")
    x = np.asarray(audio, dtype=np.float32)
    n_fr = 0 if x.size < WIN else (x.size - WIN) // HOP + 1
    n_ex = 0 if n_fr < EXAMPLE_FRAMES else (n_fr - EXAMPLE_FRAMES) // hop_frames + 1
    if n_ex == 0:
        return np.zeros((0, EXAMPLE_FRAMES, NMEL), np.float32), np.zeros(0)
    frames = np.lib.stride_tricks.sliding_window_view(x, WIN)[::HOP][:n_fr]
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WIN) / WIN)).astype(np.float32)  # periodic Hann
    spec = np.abs(np.fft.rfft(frames * window, n=NFFT))
    logmel = np.log(spec @ _mel_matrix().T + 0.01).astype(np.float32)
    idx = np.arange(n_ex)[:, None] * hop_frames + np.arange(EXAMPLE_FRAMES)[None, :]
    centres = (np.arange(n_ex) * hop_frames * HOP + ((EXAMPLE_FRAMES - 1) * HOP + WIN) / 2.0) / SR
    return logmel[idx], centres


def vggish_activations(audio: np.ndarray, sr: float, network=None, *, rate: float = 1.0, layers="all",
                       hop_seconds: float = 0.96, pool: str = "time-mean", batch_examples: int = 64,
                       resample: bool = True, stimulus: str | None = None) -> xr.DataArray:
    """The 23 VGGish stages, one vector per example, averaged onto the clock.

    Parameters
    ----------
    audio : array of shape (n_samples,)
    sr : float
        Sample rate; resampled to 16 kHz (or refused if ``resample`` is False).
    network : torch.nn.Module, optional
        From :func:`load_vggish` (default: seeded random weights, seed 0).
    rate : float
        Clock rate in Hz.
    layers : "all", int or list of int
        Stage numbers 1..23 as the seed numbers them (1 = InputBatch, 23 = EmbeddingBatch).
    hop_seconds : float
        Seconds between examples.
    pool : {"time-mean", "flatten"}
        Conv/pool outputs ``(channel, time, freq)`` per example: averaged
        over the example's time axis (``channel*freq`` units, at most 4096;
        the default) or flattened (up to 393 216 units).
    batch_examples : int
        Examples per forward pass (bounds memory).

    Returns
    -------
    xarray.DataArray of shape (time, layer, unit), float32
        NaN-padded beyond each stage's width; coordinates ``onset``,
        ``layer`` (1..23), ``layer_name`` ("L01 InputBatch" …), ``n_units``.
    """
    import torch

    net = network if network is not None else load_vggish(random_init=True, seed=0)
    sel = check_layers(layers, len(VGGISH_STAGES), what="VGGish", first=VGGISH_FIRST)
    names = [VGGISH_STAGES[i] for i in sel]
    what = f"stimulus {stimulus!r}" if stimulus else "audio"
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim != 1:
        raise InputError(f"{what}: expected a mono waveform (n_samples,), got shape {x.shape}")
    x = resample_audio(x, sr, SR, resample=resample, what=what)
    if n_bins(x.size / SR, rate) == 0:
        raise InputError(f"{what}: {x.size / SR:.3f} s is shorter than one clock bin at {rate:g} Hz")
    examples, centres = vggish_examples(x, hop_seconds=hop_seconds)
    duration = x.size / SR
    nb = n_bins(duration, rate)
    parts: list[list[np.ndarray]] = [[] for _ in names]
    for a in range(0, examples.shape[0], batch_examples):
        batch = torch.from_numpy(examples[a:a + batch_examples])[:, None]
        got = hook_activations(net, batch, names, pool=pool)
        for i, name in enumerate(names):
            parts[i].append(got[name])
    if examples.shape[0] == 0:
        raise InputError(f"{'stimulus ' + repr(stimulus) if stimulus else 'audio'}: shorter than one "
                         f"VGGish example (0.975 s)")
    cube, n_units = pad_layers([np.concatenate(p) for p in parts])
    # VGGish examples (0.96 s hop) can leave a stimulus's last bin without an example centre:
    # fill such bins from the neighbouring examples rather than leaving NaN
    values = to_clock(cube, centres, rate=rate, duration=duration, empty="interpolate").astype(np.float32)
    coords = {"onset": ("time", bin_centres(nb, rate)), "layer": [i + VGGISH_FIRST for i in sel],
              "layer_name": ("layer", [VGGISH_NAMES[i] for i in sel]), "n_units": ("layer", n_units)}
    if stimulus is not None:
        coords["stimulus"] = ("time", np.full(nb, stimulus))
    return xr.DataArray(values, dims=("time", "layer", "unit"), coords=coords, name="activation",
                        attrs={"model": "vggish", "pool": pool, "clock_rate": float(rate)})


class VGGishExtractor:
    """VGGish as a frame extractor (one frame per example) for chunked, lazy extraction.

    Parameters
    ----------
    network : torch.nn.Module
        From :func:`load_vggish`.
    hop_seconds : float
        Seconds between examples.
    pool : {"time-mean", "flatten"}
        As in :func:`vggish_activations`.
    """

    sr = SR
    max_samples = None

    def __init__(self, network, *, hop_seconds: float = 0.96, pool: str = "time-mean"):
        self.network = network
        self.hop = int(round(hop_seconds * SR / HOP)) * HOP
        vggish_examples(np.zeros(0), hop_seconds=hop_seconds)  # validates hop_seconds
        self.hop_seconds = hop_seconds
        self.pool = pool
        self.field = (EXAMPLE_FRAMES - 1) * HOP + WIN
        self.n_layers = len(VGGISH_STAGES)
        probe = hook_activations(network, __import__("torch").zeros(1, 1, EXAMPLE_FRAMES, NMEL),
                                 VGGISH_STAGES, pool=pool)
        self.widths = np.array([v.shape[1] for v in probe.values()])
        self.n_units = int(self.widths.max())

    @staticmethod
    def layer_names(layers=None) -> list[str]:
        """"L01 InputBatch" … "L23 EmbeddingBatch" of stage positions ``layers`` (0-based)."""
        return [VGGISH_NAMES[i] for i in (range(len(VGGISH_NAMES)) if layers is None else layers)]

    def centres(self, n_samples: int) -> np.ndarray:
        """Example centres in seconds, shape (n_examples,)."""
        n = 0 if n_samples < self.field else (n_samples - self.field) // self.hop + 1
        return (np.arange(n) * self.hop + self.field / 2.0) / SR

    def frames(self, audio, n_samples: int, start: int, stop: int, *, layers, context: int = 0) -> np.ndarray:
        """Examples ``start..stop-1`` → array of shape (stop - start, len(layers), n_units)."""
        import torch

        from .hf import TORCH_LOCK

        read = audio if callable(audio) else (lambda s, e: audio[s:e])
        x = np.asarray(read(start * self.hop, (stop - 1) * self.hop + self.field), dtype=np.float32)
        ex, _ = vggish_examples(x, hop_seconds=self.hop_seconds)
        names = [VGGISH_STAGES[i] for i in layers]
        with TORCH_LOCK:
            got = hook_activations(self.network, torch.from_numpy(ex[:stop - start])[:, None], names, pool=self.pool)
        cube, _ = pad_layers(list(got.values()), self.n_units)
        return cube
