"""Scores stores from real cross-validated ridge fits on simulated data with known answers.

Used by the analysis tests and ``benchmarks/bench_analysis.py``. Every layer,
element and the classical set see the same latent sources through their own
noise; a target is a random mix of the sources plus autocorrelated noise.
With equal noise everywhere, no layer, element or set is better than another:
any "better" is a false positive. Lowering one cell's noise plants a real
difference. Folds are fitted with the encoding stage's own nested ridge
(:func:`xaffect.encoding._nested.fit_outer_fold`, leave one stimulus out), so
the per-fold scores share training data as real ones do.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from xaffect.encoding._cv import leave_one_stimulus_out
from xaffect.encoding._nested import fit_outer_fold

ALPHAS = 10.0 ** np.arange(-1, 4.0, 1.0)


def _ar1(rng, shape, phi, stim_len):
    """AR(1) noise (unit variance) restarted at every stimulus."""
    e = rng.standard_normal(shape)
    out = np.empty(shape)
    scale = np.sqrt(1 - phi ** 2)
    for i in range(shape[0]):
        if i % stim_len == 0:
            out[i] = e[i]
        else:
            out[i] = phi * out[i - 1] + scale * e[i]
    return out


def simulate_scores(seed: int = 0, *, n_targets: int = 100, n_stimuli: int = 10, stim_len: int = 40,
                    layers=tuple(range(13)), layer_noise=None, classical_noise: float = 2.0,
                    element_noise=None, n_sources: int = 3, n_units: int = 6, target_noise: float = 1.0,
                    signal: float = 0.6, phi: float = 0.7, null_targets: bool = False,
                    layer_names: bool = False) -> xr.Dataset:
    """A scores store ``r (feature_set, layer, element, target, fold)`` from LOSO nested ridge.

    Parameters
    ----------
    layer_noise : dict {layer: sd}, optional
        Feature noise per deep layer (default 2.0 for every layer).
    classical_noise : float
        Feature noise of the classical set ``lld`` (layer -1).
    element_noise : dict {element: factor}, optional
        Multiplies the noise of every set for that element (default 1 for
        ``voice`` and ``soundtrack``).
    null_targets : bool
        Targets carry no signal at all (pure autocorrelated noise).
    layer_names : bool
        Add a ``layer_name`` coordinate (``L00`` ...).
    """
    rng = np.random.default_rng(seed)
    layers = list(layers)
    layer_noise = {lay: 2.0 for lay in layers} | dict(layer_noise or {})
    element_noise = {"voice": 1.0, "soundtrack": 1.0} | dict(element_noise or {})
    elements = list(element_noise)
    n = n_stimuli * stim_len
    groups = np.repeat([f"stim{i:02d}" for i in range(n_stimuli)], stim_len)
    S = _ar1(rng, (n, n_sources), phi, stim_len)
    B = rng.standard_normal((n_sources, n_targets)) / np.sqrt(n_sources)
    M = rng.standard_normal((n_sources, n_units))      # one mixing for every cell: only the noise differs
    Y = target_noise * _ar1(rng, (n, n_targets), phi, stim_len)
    if not null_targets:
        Y = Y + signal * S @ B
    folds = leave_one_stimulus_out(groups)
    all_layers = [-1] + layers
    r = np.full((2, len(all_layers), len(elements), n_targets, n_stimuli), np.nan)
    for e, el in enumerate(elements):
        cells = [(0, li + 1, layer_noise[lay]) for li, lay in enumerate(layers)] + [(1, 0, classical_noise)]
        for fs, li, sd in cells:
            X = S @ M + sd * element_noise[el] * _ar1(rng, (n, n_units), phi, stim_len)
            for k, (train, test) in enumerate(folds):
                r[fs, li, e, :, k] = fit_outer_fold(X, Y, train, test, groups, alphas=ALPHAS, scoring="r")["r"]
    coords = {"feature_set": ["deep", "lld"], "layer": all_layers, "element": elements,
              "target": [f"rating:t{i:03d}" for i in range(n_targets)],
              "fold": [f"stim{i:02d}" for i in range(n_stimuli)]}
    ds = xr.Dataset({"r": (("feature_set", "layer", "element", "target", "fold"), r)}, coords=coords)
    if layer_names:
        ds = ds.assign_coords(layer_name=("layer", ["classical"] + [f"L{lay:02d}" for lay in layers]))
    return ds
