"""Features on the clock: deep layer cubes, classical descriptors, PCA, visual covariates.

* :func:`layer_activations` — every hidden layer of a Hugging Face speech model
  (wav2vec 2.0, HuBERT, WavLM, data2vec-audio, Whisper encoder).
* :func:`hook_activations` / :func:`vggish_activations` — any torch network by
  forward hooks; VGGish's 23 stages (numbered 1..23 as the seed numbers them).
* :func:`load_torch_network` / :func:`torch_activations` — any torch network
  (factory, TorchScript, state dict, or object) on the clock (``kind: torch``);
  :func:`crepe_network` — CREPE's trained pitch CNN, a worked example.
* :func:`lld` — twelve classical low-level descriptors (librosa);
  :func:`egemaps` — openSMILE's 25 eGeMAPS LLDs (optional).
* :func:`reduce_layers` — per-layer PCA across stimuli.
* :func:`visual_covariates` — luminance, contrast, colourfulness, motion, cuts.
* :func:`make_random_model` — seeded random models saved to disk.
"""

from .crepe import CREPE_LAYERS, crepe_extractor_spec, crepe_network, crepe_pitch, crepe_weights
from .hf import SpeechModel, layer_activations, load_model, resample_audio, speech_model_from
from .hooks import hook_activations, pad_layers, pool_output
from .lld import LLD_NAMES, lld, lld_frames
from .models import RANDOM_MODEL_KINDS, make_random_model
from .reduce import apply_pca, fit_pca, reduce_layers
from .smile import egemaps
from .torchload import load_torch_network
from .torchnet import TorchNetwork, torch_activations
from .vggish import (VGGISH_LABELS, VGGISH_NAMES, VGGISH_STAGES, VGGish, VGGishExtractor, load_vggish,
                     vggish_activations, vggish_examples)
from .visual import VISUAL_NAMES, frame_descriptors, visual_covariates

__all__ = [
    "SpeechModel", "load_model", "speech_model_from", "layer_activations", "resample_audio",
    "TorchNetwork", "load_torch_network", "torch_activations",
    "CREPE_LAYERS", "crepe_network", "crepe_weights", "crepe_extractor_spec", "crepe_pitch",
    "hook_activations", "pool_output", "pad_layers",
    "LLD_NAMES", "lld", "lld_frames", "egemaps",
    "make_random_model", "RANDOM_MODEL_KINDS",
    "fit_pca", "apply_pca", "reduce_layers",
    "VGGish", "VGGishExtractor", "VGGISH_STAGES", "VGGISH_LABELS", "VGGISH_NAMES", "load_vggish", "vggish_activations",
    "vggish_examples",
    "VISUAL_NAMES", "frame_descriptors", "visual_covariates",
]
