"""Two renditions of one piece (expressive vs mechanical) compared layer by layer.

For two stimuli that are versions of one piece, on aligned time (the same
clock steps mean the same place in the score), each layer's representations
are compared window by window:

* ``"cka"``: 1 - linear CKA (Kornblith et al. 2019, ICML) between the two
  (time x unit) activation matrices of a window, computed from the
  (time x time) Gram matrices, so the cost does not grow with the units;
* ``"correlation"``: 1 - Pearson correlation of the two windows' activation
  patterns (time x unit, centred per unit within the window).

The layer's distance is the mean over windows. Its null comes from time
shifts: the second rendition is rolled circularly by at least one window
(every admissible shift when there are fewer than ``n_null``), which keeps
each rendition's own temporal structure and breaks the alignment. The same
shifts serve every layer, so the minimum over layers gives family-wise
p-values. "Closer than chance" means a distance below the shifted ones.

Renditions played at different tempi are first put on one time axis by
dynamic time warping (:func:`align_renditions`, librosa's ``dtw``).

Layering: :func:`window_distance` (kernel), :func:`align_renditions`, :func:`rendition_distance`
(DataArrays in, :class:`xarray.Dataset` out), :func:`plot_rendition_distance`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from ..errors import ConfigError, InputError

__all__ = ["RENDITION_MEASURES", "window_distance", "align_renditions", "rendition_distance",
           "plot_rendition_distance"]

RENDITION_MEASURES = ("cka", "correlation")


def _windows(x: np.ndarray, window: int) -> np.ndarray:
    """(n_time, n_layer, n_unit) -> centred (n_layer, n_windows, window, n_unit); the tail that does not fill a window is dropped."""
    n_win = x.shape[0] // window
    w = x[:n_win * window].reshape(n_win, window, *x.shape[1:]).transpose(2, 0, 1, 3)
    return w - w.mean(axis=2, keepdims=True)


def window_distance(a: np.ndarray, b: np.ndarray, *, window: int, measure: str = "cka") -> np.ndarray:
    """Distance between two renditions in each layer and window.

    Parameters
    ----------
    a, b : arrays of shape (n_time, n_layers, n_units)
        Activations of the two renditions on aligned time.
    window : int
        Window length in steps.
    measure : {"cka", "correlation"}

    Returns
    -------
    array of shape (n_layers, n_windows)
        NaN where a window is constant in either rendition.
    """
    if measure not in RENDITION_MEASURES:
        raise ConfigError(f"measure: must be one of {RENDITION_MEASURES}, got {measure!r}")
    wa, wb = _windows(np.asarray(a, float), window), _windows(np.asarray(b, float), window)
    with np.errstate(invalid="ignore", divide="ignore"):
        if measure == "cka":
            ka = np.einsum("lwtu,lwsu->lwts", wa, wa)
            kb = np.einsum("lwtu,lwsu->lwts", wb, wb)
            # Gram matrices of column-centred data are already doubly centred
            hsic = np.einsum("lwts,lwts->lw", ka, kb)
            sim = hsic / np.sqrt(np.einsum("lwts,lwts->lw", ka, ka) * np.einsum("lwts,lwts->lw", kb, kb))
        else:
            num = np.einsum("lwtu,lwtu->lw", wa, wb)
            sim = num / np.sqrt(np.einsum("lwtu,lwtu->lw", wa, wa) * np.einsum("lwtu,lwtu->lw", wb, wb))
    return 1.0 - sim


def _as_cube(x: xr.DataArray, name: str, element: str | None) -> xr.DataArray:
    if "element" in x.dims:
        if element is None:
            if x.sizes["element"] != 1:
                raise ConfigError(f"element: rendition {name!r} has elements "
                                  f"{[str(v) for v in x['element'].values]}; name one")
            x = x.isel(element=0, drop=True)
        else:
            x = x.sel(element=element, drop=True)
    if set(x.dims) != {"time", "layer", "unit"}:
        raise InputError(f"rendition {name!r}: expected dims (time, layer, unit), got {x.dims}")
    return x.transpose("time", "layer", "unit")


def align_renditions(a: xr.DataArray, b: xr.DataArray, *, guide_a: np.ndarray | None = None,
                     guide_b: np.ndarray | None = None, layer: Any = None, element: str | None = None,
                     band: float = 0.25) -> xr.DataArray:
    """Put rendition ``b`` on the time of rendition ``a`` by dynamic time warping (librosa).

    The warping path is found on a guide representation, by default one layer
    of the cubes (``layer``, default the first: the closest to the sound),
    with cosine distance and a Sakoe-Chiba band of ``band`` of the length; each
    step of ``a`` then gets the mean of the ``b`` steps matched to it. Aligning
    on a layer favours that layer in :func:`rendition_distance`: pass guides
    (e.g. chroma of the two audio files on the clock) to keep every layer fair.

    Parameters
    ----------
    a, b : DataArrays of shape ([element,] time, layer, unit)
    guide_a, guide_b : arrays of shape (n_time_a, n_features), (n_time_b, n_features), optional
    layer : label, optional
    element : str, optional
    band : float
        Band radius as a fraction of the length (librosa's ``band_rad``).

    Returns
    -------
    DataArray of shape (time, layer, unit)
        ``b`` on ``a``'s time steps and coordinates, named after ``b``; attrs
        record the warping path length.
    """
    import librosa

    names = (str(a.name or "a"), str(b.name or "b"))
    ca, cb = _as_cube(a, names[0], element), _as_cube(b, names[1], element)
    if guide_a is None or guide_b is None:
        pick = (lambda c: c.isel(layer=0)) if layer is None else (lambda c: c.sel(layer=layer))
        guide_a, guide_b = pick(ca).values, pick(cb).values
    guide_a, guide_b = np.asarray(guide_a, float), np.asarray(guide_b, float)
    if guide_a.shape[0] != ca.sizes["time"] or guide_b.shape[0] != cb.sizes["time"] or \
            guide_a.shape[1:] != guide_b.shape[1:]:
        raise InputError(f"guides: shapes {guide_a.shape} and {guide_b.shape} do not fit renditions "
                         f"{names[0]!r} ({ca.sizes['time']} steps) and {names[1]!r} ({cb.sizes['time']} steps)")
    _, path = librosa.sequence.dtw(X=guide_a.T, Y=guide_b.T, metric="cosine", global_constraints=True,
                                   band_rad=band)
    path = path[::-1]
    xb = np.asarray(cb.values, float)
    summed = np.zeros((ca.sizes["time"],) + xb.shape[1:])
    np.add.at(summed, path[:, 0], xb[path[:, 1]])
    counts = np.bincount(path[:, 0], minlength=ca.sizes["time"])
    out = ca.copy(data=summed / counts[:, None, None]).rename(names[1])
    out.attrs.update(dict(cb.attrs), aligned_to=names[0], warping_path_length=int(path.shape[0]))
    return out


def rendition_distance(a: xr.DataArray, b: xr.DataArray, *, window: float = 10.0, measure: str = "cka",
                       n_null: int = 1000, element: str | None = None, rate: float | None = None,
                       seed: int = 0) -> xr.Dataset:
    """Per-layer representational distance between two renditions, with a time-shift null.

    Parameters
    ----------
    a, b : DataArrays of shape ([element,] time, layer, unit)
        The two renditions' activations on aligned time (same steps, same
        layers and units), e.g. one stimulus each of a feature cube.
    window : float
        Window length in seconds (a whole number of clock steps).
    measure : {"cka", "correlation"}
    n_null : int
        Time shifts (all admissible ones when fewer).
    element : str, optional
    rate : float, optional
        Clock rate (default: ``clock_rate`` attr, else 1 Hz).
    seed : int

    Returns
    -------
    xarray.Dataset
        ``distance (layer)`` (mean over windows), ``window_distance (layer, window)``,
        ``null (shift, layer)``, ``p (layer)`` (per layer), ``p_fwer (layer)``
        (minimum over layers), ``relative (layer)`` (distance / mean null
        distance: 1 = no closer than misaligned), ``shift (shift)`` in steps.
    """
    names = (str(a.name or "a"), str(b.name or "b"))
    a, b = _as_cube(a, names[0], element), _as_cube(b, names[1], element)
    if a.sizes["time"] != b.sizes["time"]:
        raise InputError(f"renditions {names[0]!r} and {names[1]!r} are not on aligned time "
                         f"({a.sizes['time']} vs {b.sizes['time']} steps); align them first")
    for dim in ("layer", "unit"):
        if a.sizes[dim] != b.sizes[dim] or (dim in a.coords and dim in b.coords
                                            and not np.array_equal(a[dim].values, b[dim].values)):
            raise InputError(f"renditions {names[0]!r} and {names[1]!r} have different {dim}s")
    rate = float(rate or a.attrs.get("clock_rate") or 1.0)
    w = window * rate
    if abs(w - round(w)) > 1e-6 or round(w) < 2:
        raise ConfigError(f"window: {window} s must be at least 2 whole clock steps at {rate:g} Hz")
    w, n = int(round(w)), a.sizes["time"]
    if n < 3 * w:
        raise InputError(f"renditions {names[0]!r}/{names[1]!r}: {n / rate:g} s is shorter than three windows "
                         f"of {window:g} s; no room for time shifts")
    xa, xb = np.asarray(a.values, float), np.asarray(b.values, float)
    per_window = window_distance(xa, xb, window=w, measure=measure)
    obs = np.nanmean(per_window, axis=1)
    admissible = np.arange(w, n - w + 1)
    shifts = admissible if admissible.size <= n_null else \
        np.random.default_rng(seed).choice(admissible, n_null, replace=False)
    null = np.stack([np.nanmean(window_distance(xa, np.roll(xb, s, axis=0), window=w, measure=measure), axis=1)
                     for s in shifts])
    n_s = shifts.size
    p = (1 + (null <= obs + 1e-12).sum(0)) / (n_s + 1)
    p_fwer = (1 + (null.min(1)[:, None] <= obs + 1e-12).sum(0)) / (n_s + 1)
    layer = a["layer"].values if "layer" in a.coords else np.arange(a.sizes["layer"])
    ds = xr.Dataset({"distance": ("layer", obs), "window_distance": (("layer", "window"), per_window),
                     "null": (("shift", "layer"), null), "p": ("layer", p), "p_fwer": ("layer", p_fwer),
                     "relative": ("layer", obs / null.mean(0))},
                    coords={"layer": layer, "shift": shifts, "window": (np.arange(per_window.shape[1]) + 0.5) * window})
    ds.attrs.update(a=names[0], b=names[1], measure=measure, window_s=float(window), clock_rate=rate,
                    n_null=int(n_s))
    return ds


def plot_rendition_distance(result: xr.Dataset, *, ax: Any = None):
    """Distance per layer with the time-shift null's 5-95 % band; stars where ``p_fwer < .05``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    fig, ax = (plt.subplots(figsize=(7.5, 3.5)) if ax is None else (ax.figure, ax))
    layers = result["layer"].values
    ax.fill_between(layers, result["null"].quantile(0.05, "shift").values,
                    result["null"].quantile(0.95, "shift").values, color="0.8", label="time-shift null 5-95 %")
    ax.plot(layers, result["distance"].values, "o-", color="C0", label="aligned renditions")
    sig = result["p_fwer"].values < 0.05
    ax.plot(layers[sig], result["distance"].values[sig], "*", color="k", ms=10, label="p_fwer < .05")
    ax.set_xlabel("layer")
    ax.set_ylabel(f"1 - {'linear CKA' if result.attrs.get('measure') == 'cka' else 'correlation'}")
    ax.set_title(f"{result.attrs.get('a')} vs {result.attrs.get('b')}")
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # off the data
    fig.tight_layout()
    return fig
