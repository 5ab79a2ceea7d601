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

__all__ = ["plot_gradient_alignment", "plot_gradient_surface"]

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
    ax.legend(fontsize=7, frameon=False, loc="upper left")

    null_name = _NULL_NAMES.get(str(result.attrs.get("null")), str(result.attrs.get("null", "null")))
    panels = [("", "alignment")] + ([("_partial", "noise partialled out")] if partial else [])
    for ax, (tag, what) in zip(axes[1:], panels):
        nd = np.asarray(result[f"null{tag}"].values, float)
        r = float(result[f"r{tag}"])
        ax.hist(nd[np.isfinite(nd)], bins=30, color="0.7", label=f"null: {null_name} ({nd.size} maps)")
        ax.axvline(r, color="C3", lw=2, label="observed r")
        ax.axvline(-r, color="C3", lw=1, ls=":", label="-observed r (two-sided p)")
        ax.set_xlim(-1.05, 1.05)
        ax.set_xlabel("r of a null map" if not tag else "partial r of a Freedman-Lane null map")
        ax.set_ylabel("null maps")
        ax.set_title(f"{what}: r = {r:.2f}, p = {float(result[f'p{tag}']):.3g}", fontsize=9)
    handles, labels = axes[1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=3, fontsize=7, frameon=False)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def plot_gradient_surface(result: xr.Dataset, *, cmap: str = "viridis") -> Figure:
    """The layer map and the gradient painted on brainspace's conte69 surface, lateral and medial.

    For maps over Schaefer parcels as brainspace names them
    (``schaefer400_lh_001``, :func:`~xaffect.analysis.load_schaefer_parcels`);
    vertices of parcels without a value are grey. Drawn with matplotlib
    (:func:`~xaffect.analysis.plots.paint_surface`), no VTK window.

    Parameters
    ----------
    result : xarray.Dataset
        An ``analysis.gradient`` store: ``layer_map (region)``, ``gradient (region)``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib
    from brainspace.datasets import load_conte69
    from brainspace.mesh.mesh_elements import get_cells, get_points
    from matplotlib import cm, colors

    from .gradients import load_schaefer_parcels
    from .plots import paint_surface
    from .stage_inputs import SCHAEFER_NAME

    regions = [str(r) for r in result["region"].values]
    parsed = [SCHAEFER_NAME.fullmatch(r) for r in regions]
    if not all(parsed) or len({(m.group(1), m.group(2)) for m in parsed}) != 1:
        raise InputError("plot_gradient_surface: needs regions of one hemisphere of one Schaefer parcellation "
                         f"as brainspace names them (e.g. 'schaefer400_lh_001'), got {regions[:2]}")
    scale, hemi = int(parsed[0].group(1)), parsed[0].group(2)
    parcels = load_schaefer_parcels(scale, hemi)
    lh, rh = load_conte69()
    surf = lh if hemi == "lh" else rh
    coords, tris = np.asarray(get_points(surf), float), np.asarray(get_cells(surf))
    label = parcels["label"].values
    ids = dict(zip(parcels["region"].values.astype(str), parcels["label_id"].values))
    maps = [(v, result[v]) for v in ("layer_map", "gradient") if v in result]
    fig = Figure(figsize=(7.5, 2.4 * len(maps) + 0.3), constrained_layout=True)
    axes = fig.subplots(len(maps), 2, squeeze=False)
    for row, (var, da) in enumerate(maps):
        by_id = np.full(int(label.max()) + 1, np.nan)
        for reg, v in zip(regions, np.asarray(da.values, float)):
            by_id[ids[reg]] = v
        vert = np.where(label > 0, by_id[label], np.nan)
        finite = vert[np.isfinite(vert)]
        norm = colors.Normalize(*(np.percentile(finite, [2, 98]) if finite.size else (0.0, 1.0)))
        cmap_ = matplotlib.colormaps[cmap]
        paint_surface(axes[row], coords, tris, vert, hemi=hemi, cmap=cmap_, norm=norm)
        name = str(da.attrs.get("long_name") or var)
        fig.colorbar(cm.ScalarMappable(norm=norm, cmap=cmap_), ax=axes[row], shrink=0.8,
                     label="\n".join(name.split(" (", 1)) if len(name) > 30 else name)
    return fig
