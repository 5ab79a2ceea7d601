"""Deep-activation plants: a layer-specific component of one layer of a network, on the clock.

A simulated study that plants "region X follows layer L" must make layer L
the one whose encoding peaks, not the direction the whole network shares:
:func:`specific_component` picks, among the layer's principal components,
the one the other layers (more than one away) explain least, and reports
that margin as the plant's *layer specificity* (1 = no far layer explains
it; 0 = another layer explains it fully). Random-weight transformers score
0.01-0.02 there, trained CREPE 0.6-0.9.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["specific_component", "deep_activations", "deep_series", "model_label"]


def _zscore(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / (x.std() + 1e-12)


def _pcs(x: np.ndarray, k: int, *, min_variance: float = 1e-12) -> np.ndarray:
    """Top-``k`` principal component scores of ``x`` (n_samples, n_features), unit variance.

    Components with less than ``min_variance`` times the first one's variance are dropped.
    """
    xc = x - x.mean(0)
    u, sv, _ = np.linalg.svd(xc, full_matrices=False)
    k = min(k, int((sv ** 2 > sv[0] ** 2 * min_variance).sum()))
    return u[:, :k] / (u[:, :k].std(0) + 1e-12)


def _r2(y: np.ndarray, z: np.ndarray) -> float:
    """Variance of ``y`` explained by a least-squares fit on ``z`` (with intercept)."""
    a = np.c_[np.ones(len(z)), z]
    coef = np.linalg.lstsq(a, y, rcond=None)[0]
    return float(1 - np.var(y - a @ coef) / (np.var(y) + 1e-24))


def specific_component(acts: np.ndarray, layer: int, *, n_components: int = 12) -> tuple[np.ndarray, float]:
    """The principal component of ``layer`` that other layers explain least.

    Parameters
    ----------
    acts : array of shape (n_samples, n_layers, n_units)
    layer : int
    n_components : int
        Principal components per layer (what a PCA-reduced feature cube keeps).

    Returns
    -------
    component : ndarray of shape (n_samples,), unit variance
        Of the layer's top components (with at least 0.1 % of the first one's
        variance) and the direction of their span farthest from the joint span
        of the far layers' leading components, the one least explained by the
        top components of any single layer more than one away.
    specificity : float
        1 - that largest R² on a far layer (the layer itself explains all of it).
    """
    # layers of different widths come NaN-padded (torch networks, VGGish): keep each layer's real units
    mats = [a[:, np.isfinite(a).all(axis=0)] for a in (acts[:, l] for l in range(acts.shape[1]))]
    n_layers = len(mats)
    z = _pcs(mats[layer], n_components, min_variance=1e-3)  # candidates: above the noise floor
    far = [l for l in range(n_layers) if abs(l - layer) > 1]
    if not far:
        return z[:, 0], 1.0
    zs = [_pcs(mats[l], n_components) for l in far]
    # candidates: each of the layer's components, and the direction of its span
    # farthest from the joint span of the far layers' leading components
    k_far = max(1, min(n_components, (len(z) // 2) // len(far)))
    q, _ = np.linalg.qr(np.c_[np.ones(len(z)), np.concatenate([zl[:, :k_far] for zl in zs], axis=1)])
    w = np.linalg.svd(z - q @ (q.T @ z), full_matrices=False)[2][0]
    cands = np.c_[z, z @ w]
    worst = [max(_r2(cands[:, j], zl) for zl in zs) for j in range(cands.shape[1])]
    j = int(np.argmin(worst))
    c = cands[:, j]
    return (c - c.mean()) / (c.std() + 1e-12), 1.0 - worst[j]


def deep_activations(model: Any, audios: Mapping[str, np.ndarray], sr: int,
                      rate: float) -> tuple[dict[str, np.ndarray], list[int]]:
    """Layer cubes (time, layer, unit) on the clock per stimulus, and the ``layer`` coordinate values.

    ``model`` is a Hugging Face folder or a ``kind: torch`` extractor entry of
    ``study.yaml`` (a mapping, e.g. :func:`~xaffect.features.crepe_extractor_spec`).
    """
    if isinstance(model, Mapping):
        from ..features import load_torch_network, torch_activations

        keys = ("factory", "factory_kwargs", "factory_loads_weights", "state_dict", "torchscript", "layers", "sr",
                "hop_seconds", "field_seconds", "input", "frame_norm", "pool", "time_axis", "transform",
                "batch_frames", "random_init", "seed")
        net = load_torch_network(**{k: model[k] for k in keys if k in model})
        cubes = {name: torch_activations(a, sr, net, rate=rate) for name, a in audios.items()}
    else:
        from ..features.hf import layer_activations, load_model

        sm = load_model(str(model))
        cubes = {name: layer_activations(a, sr, sm, rate=rate) for name, a in audios.items()}
    coords = [int(v) for v in next(iter(cubes.values()))["layer"].values]
    return {name: np.asarray(c.values, dtype=float) for name, c in cubes.items()}, coords


def deep_series(model: Any, layer: int, audios: Mapping[str, np.ndarray], sr: int,
                 rate: float, *, n_components: int = 12) -> tuple[dict[str, np.ndarray], float]:
    """A layer-specific component of one layer's activations on the clock, per stimulus.

    The one of the top ``n_components`` principal components of ``layer``
    (over all stimuli) least explained by the components of layers more than
    one away (:func:`specific_component`): so the planted feature peaks at
    ``layer``, as the ground truth claims, instead of being the direction the
    whole residual stream shares. With random weights the margin is small
    (about 0.05-0.15 of variance for a random HuBERT-base); it is recorded in
    ``simulation.json`` and a warning is given below 0.05.

    Returns
    -------
    series : dict of str to ndarray of shape (n_bins,)
    specificity : float
        1 - the largest R² of the chosen component on another layer's components.
    """
    acts, coords = deep_activations(model, audios, sr, rate)  # (time, layer, unit) per stimulus
    if layer not in coords:
        raise InputError(f"plants: layer {layer} is not a layer of {model_label(model)} "
                         f"({coords[0]}..{coords[-1]})")
    allx = np.concatenate(list(acts.values()))
    comp, specificity = specific_component(allx, coords.index(layer), n_components=n_components)
    out, i = {}, 0
    for name, x in acts.items():
        out[name] = comp[i:i + len(x)]
        i += len(x)
    return out, specificity


def model_label(model: Any) -> str:
    if isinstance(model, Mapping):
        return str(model.get("name") or model.get("factory") or model.get("torchscript"))
    return str(model)

