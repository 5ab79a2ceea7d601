"""PCA of each layer, fitted across all stimuli of a study.

The seed reduces 768-D wav2vec 2.0/HuBERT layers to 12 components so that deep
and classical feature sets compete with similar dimensionality. One PCA is
fitted per layer, either per element (original, voice, soundtrack each get
their own basis) or jointly (one basis for all elements, so they share axes).
Layers are read one at a time from the (dask-backed) cube, so the full cube
is never in memory.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from ..errors import InputError

__all__ = ["fit_pca", "apply_pca", "reduce_layers"]


def fit_pca(X: np.ndarray, n_components: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Principal components of ``X`` by SVD (scikit-learn's conventions).

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        Rows with NaN are ignored.
    n_components : int

    Returns
    -------
    mean : array of shape (n_features,)
    components : array of shape (k, n_features)
        ``k = min(n_components, n_samples, n_features)``; each row's largest
        absolute loading is positive.
    explained_variance : array of shape (k,)
    explained_variance_ratio : array of shape (k,)
    """
    X = np.asarray(X, dtype=np.float64)
    X = X[np.isfinite(X).all(axis=1)]
    if X.shape[0] < 2:
        raise InputError("pca: fewer than two complete samples to fit on")
    mean = X.mean(axis=0)
    Xc = X - mean
    _, s, vt = np.linalg.svd(Xc, full_matrices=False)
    k = min(n_components, vt.shape[0])
    signs = np.sign(vt[np.arange(vt.shape[0]), np.abs(vt).argmax(axis=1)])
    signs[signs == 0] = 1.0
    vt = vt * signs[:, None]
    var = s ** 2 / (X.shape[0] - 1)
    total = var.sum()
    ratio = var / total if total > 0 else np.zeros_like(var)
    return mean, vt[:k], var[:k], ratio[:k]


def apply_pca(X: np.ndarray, mean: np.ndarray, components: np.ndarray) -> np.ndarray:
    """Project ``X`` (n_samples, n_features) onto ``components`` (k, n_features) → (n_samples, k)."""
    return (np.asarray(X, dtype=np.float64) - mean) @ components.T


def reduce_layers(activation: xr.DataArray, *, n_components: int = 12, joint: bool = False,
                  progress: bool = True) -> xr.Dataset:
    """Per-layer PCA of a layer cube.

    Parameters
    ----------
    activation : xarray.DataArray of shape (element, time, layer, unit)
        Lazy (dask) or in memory; units that are NaN at every time step
        (padding of narrower layers) are left out of the fit.
    n_components : int
        Components kept (default 12, as in the seed).
    joint : bool
        One basis per layer for all elements (True) or one per element.
    progress : bool
        Progress bar over layers.

    Returns
    -------
    xarray.Dataset
        ``activation (element, time, layer, component)`` float32 and
        ``explained_variance_ratio (layer, component)`` (joint) or
        ``(element, layer, component)``; components beyond a layer's rank are NaN.
    """
    if n_components < 1:
        raise InputError(f"pca: n_components must be at least 1, got {n_components}")
    missing = {"element", "time", "layer", "unit"} - set(activation.dims)
    if missing:
        raise InputError(f"pca: activation lacks dims {sorted(missing)} (has {activation.dims})")
    act = activation.transpose("element", "time", "layer", "unit")
    ne, nt, nl = act.sizes["element"], act.sizes["time"], act.sizes["layer"]
    out = np.full((ne, nt, nl, n_components), np.nan, dtype=np.float32)
    ratio = np.full((ne, nl, n_components), np.nan)
    for li in tqdm(range(nl), desc="pca", unit="layer", disable=not progress, leave=False):
        block = np.asarray(act.isel(layer=li).values, dtype=np.float64)  # (element, time, unit)
        keep = ~np.isnan(block).all(axis=(0, 1))
        block = block[..., keep]
        groups = [list(range(ne))] if joint else [[e] for e in range(ne)]
        for g in groups:
            X = block[g].reshape(-1, block.shape[-1])
            mean, comps, _, r = fit_pca(X, n_components)
            k = comps.shape[0]
            for e in g:
                out[e, :, li, :k] = apply_pca(block[e], mean, comps)
                ratio[e, li, :k] = r
    coords = {k: v for k, v in act.coords.items() if set(v.dims) <= {"element", "time", "layer"}}
    ds = xr.Dataset({"activation": (("element", "time", "layer", "component"), out)},
                    coords={**coords, "component": np.arange(n_components)})
    if joint:
        ds["explained_variance_ratio"] = (("layer", "component"), ratio[0])
    else:
        ds["explained_variance_ratio"] = (("element", "layer", "component"), ratio)
    ds.attrs.update({k: v for k, v in activation.attrs.items() if isinstance(v, (str, int, float))})
    ds.attrs.update(pca_components=int(n_components), pca_joint=int(joint))
    return ds
