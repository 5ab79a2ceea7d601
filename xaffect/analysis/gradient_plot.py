"""Figure of a gradient alignment (:func:`~xaffect.analysis.gradients.align_with_gradient` plus its maps).

Left: the layer map against the gradient, one point per parcel or vertex,
with the least-squares line (the r reported is the alignment's own:
Spearman by default). Right: the spatial null distribution of r (spin
or Moran surrogates) with the observed r marked, and with the noise-structure
control, its Freedman-Lane null and partial r beside it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from ..errors import InputError

__all__ = ["plot_gradient_alignment"]

_NULL_NAMES = {"spin": "spin test", "moran": "Moran spectral randomisation"}


def _fit_line(ax: Any, x: np.ndarray, y: np.ndarray, color: str) -> None:
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.ptp(x[ok]) == 0:
        return
    slope, icept = np.polyfit(x[ok], y[ok], 1)
    xs = np.array([x[ok].min(), x[ok].max()])
    ax.plot(xs, icept + slope * xs, color=color, lw=1.5, label="least-squares line")


def plot_gradient_alignment(result: xr.Dataset, *, layer_map: xr.DataArray | None = None,
                            gradient: xr.DataArray | None = None, title: str = "") -> Figure:
    """Scatter of the layer map vs the gradient with its fitted line, and the null distribution of r.

    Parameters
    ----------
    result : xarray.Dataset
        From :func:`~xaffect.analysis.align_with_gradient` (``r``, ``p``,
        ``null (null_map,)``; optional ``r_partial``, ``p_partial``,
        ``null_partial``), or an ``analysis.gradient`` store, which also holds
        ``layer_map (region)`` and ``gradient (region)``.
    layer_map, gradient : DataArray of shape (point,), optional
        The two maps (default: the ``layer_map`` and ``gradient`` variables of ``result``).
    title : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    layer_map = result.get("layer_map") if layer_map is None else layer_map
    gradient = result.get("gradient") if gradient is None else gradient
    if layer_map is None or gradient is None:
        raise InputError("plot_gradient_alignment: give layer_map and gradient (or a result holding both)")
    x, y = np.asarray(gradient.values, float), np.asarray(layer_map.values, float)
    if x.shape != y.shape:
        raise InputError(f"plot_gradient_alignment: gradient {x.shape} and layer map {y.shape} differ in shape")
    partial = "r_partial" in result
    fig = Figure(figsize=(9.5 if partial else 8.0, 3.6), constrained_layout=True)
    axes = fig.subplots(1, 3 if partial else 2, squeeze=False)[0]

    ax = axes[0]
    ok = np.isfinite(x) & np.isfinite(y)
    ax.scatter(x[ok], y[ok], s=14, alpha=0.7, color="C0", edgecolor="none", label=f"{int(ok.sum())} points")
    _fit_line(ax, x, y, "C3")
    ax.set_xlabel(str(gradient.attrs.get("long_name") or gradient.name or "gradient"))
    ax.set_ylabel(str(layer_map.attrs.get("long_name") or layer_map.name or "layer"))
    method = str(result.attrs.get("method", "spearman")).capitalize()
    ax.set_title(f"{method} r = {float(result['r']):.2f}, p = {float(result['p']):.3g}", fontsize=9)
    ax.legend(fontsize=7, frameon=False, loc="best")

    null_name = _NULL_NAMES.get(str(result.attrs.get("null")), str(result.attrs.get("null", "null")))
    panels = [("", "alignment")] + ([("_partial", "noise map partialled out")] if partial else [])
    for ax, (tag, what) in zip(axes[1:], panels):
        nd = np.asarray(result[f"null{tag}"].values, float)
        r = float(result[f"r{tag}"])
        ax.hist(nd[np.isfinite(nd)], bins=30, color="0.7", label=f"{null_name} ({nd.size} maps)")
        ax.axvline(r, color="C3", lw=2, label=f"observed r = {r:.2f}")
        ax.axvline(-r, color="C3", lw=1, ls=":", label="-r (two-sided)")
        ax.set_xlabel("r under the null" if not tag else "partial r under the Freedman-Lane null")
        ax.set_ylabel("null maps")
        ax.set_title(f"{what}: p = {float(result[f'p{tag}']):.3g}", fontsize=9)
        ax.legend(fontsize=7, frameon=False, loc="upper left")
    if title:
        fig.suptitle(title, fontsize=9)
    return fig
