"""Figures of the layer-profile analyses.

Each ``plot_*`` takes the labelled result of the matching analysis in
:mod:`xaffect.analysis.profiles` and returns a :class:`matplotlib.figure.Figure`
built without pyplot (so no GUI backend is touched and nothing leaks between
calls): ``fig.savefig(...)``, or display it in a notebook.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import matplotlib
import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from ..errors import InputError

__all__ = ["plot_layer_profile", "plot_layer_profiles", "plot_centroid_layer", "plot_middle_vs_final", "plot_element_contrast",
           "plot_deep_vs_classical", "plot_regions", "plot_regions_surface", "paint_surface", "split_region"]

_MAX_LINES = 12


def _targets(ds: xr.Dataset | xr.DataArray, targets: Sequence[str] | None) -> list[str]:
    have = [str(t) for t in ds["target"].values]
    if targets is None:
        if "best_r" in ds:  # a layer profile: the targets its layers predict best
            best = ds["best_r"]
            best = best.max([d for d in best.dims if d != "target"], skipna=True) if best.ndim > 1 else best
            order = np.argsort(-np.nan_to_num(np.asarray(best.values, float), nan=-np.inf))
            return [have[i] for i in order[:_MAX_LINES]]
        return have[:_MAX_LINES]
    for t in targets:
        if t not in have:
            raise InputError(f"targets: {t!r} is not in the result (have: {', '.join(have[:10])}...)")
    return list(targets)


def plot_layer_profile(profile: xr.Dataset, *, targets: Sequence[str] | None = None,
                       element: str | None = None) -> Figure:
    """Mean r per layer with its confidence band, one line per target.

    Parameters
    ----------
    profile : xarray.Dataset
        Result of :func:`~xaffect.analysis.layer_profile`.
    targets : list of str, optional
        Targets drawn (default: the first 12).
    element : str, optional
        Element drawn when the profile has an ``element`` dim (one panel per
        element otherwise).
    """
    elements = [None]
    if "element" in profile["mean"].dims:
        elements = [element] if element else [str(e) for e in profile["element"].values]
    fig = Figure(figsize=(4.2 * len(elements), 3.4), constrained_layout=True)
    axes = fig.subplots(1, len(elements), squeeze=False)[0]
    names = _targets(profile, targets)
    for ax, el in zip(axes, elements):
        sub = profile if el is None else profile.sel(element=el)
        x = sub["layer"].values
        for t in names:
            s = sub.sel(target=t)
            line, = ax.plot(x, s["mean"].values, marker="o", ms=3, label=t)
            ax.fill_between(x, s["lower"].values, s["upper"].values, color=line.get_color(), alpha=0.2)
            bl = int(s["best_layer"])
            if bl >= 0:
                ax.plot([bl], [float(s["mean"].sel(layer=bl))], marker="*", ms=12, color=line.get_color())
        ax.axhline(0, color="grey", lw=0.6)
        ax.set_xlabel("layer")
        ax.set_ylabel("r (mean over folds, %d%% CI)" % round(100 * profile.attrs.get("ci", 0.95)))
        ax.set_title(f"{profile.attrs.get('feature_set', '')} {el or profile.attrs.get('element', '')}".strip())
    axes[-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    return fig


def _distinct_colors(n: int) -> list:
    """``n`` colours that do not repeat: tab10, then tab20's light shades, then evenly spaced hues."""
    base = list(matplotlib.colormaps["tab10"].colors) + list(matplotlib.colormaps["tab20"].colors[1::2])
    if n <= len(base):
        return base[:n]
    return [matplotlib.colormaps["hsv"](i / n) for i in range(n)]


def _layer_ticks(ax: Any, layers: np.ndarray, names: dict[int, str], *, label: bool) -> None:
    """Layer ticks (named when the store names its layers); labels on the bottom row only.

    The panels share x, so ticks and their labels are set the same on every one
    and only hidden (``tick_params``) where not wanted.
    """
    ticks = layers if len(layers) <= 16 else layers[:: max(1, len(layers) // 8)]
    if names and len(layers) <= 16:
        ax.set_xticks(ticks, [names.get(int(v), str(v)) for v in ticks], rotation=60, ha="right", fontsize=6)
    else:
        ax.set_xticks(ticks)
    ax.tick_params(axis="x", labelbottom=label)
    if label:
        ax.set_xlabel("layer", fontsize=8)


def plot_layer_profiles(profile: xr.Dataset, *, targets: Sequence[str] | None = None, ncols: int = 4,
                        max_panels: int = 12) -> Figure:
    """Small multiples: one panel per target, one line per element, with the null band and significance.

    Each panel shows the mean r per layer with its interval (shaded, in the
    element's colour), the central band of the permutation null (grey,
    ``null_lower``-``null_upper``), significant layers as filled markers and
    the others hollow, and the best layer as a star with its bootstrap
    interval as a horizontal bar. The legend sits outside the panels.

    Parameters
    ----------
    profile : xarray.Dataset
        Result of :func:`~xaffect.analysis.layer_profile` (``mean``, ``lower``,
        ``upper``; optional ``null_lower``/``null_upper``, ``significant``,
        ``best_lower``/``best_upper``, ``layer_name``).
    targets : list of str, optional
        Panels drawn (default: the ``max_panels`` targets with the highest best r).
    ncols : int
        Panels per row.
    max_panels : int
        Most panels drawn when ``targets`` is None.
    """
    names_t = _targets(profile, targets)[: (len(targets) if targets is not None else max_panels)]
    elements = [str(e) for e in profile["element"].values] if "element" in profile["mean"].dims else [None]
    colors = dict(zip(elements, _distinct_colors(len(elements))))
    layers = np.asarray(profile["layer"].values)
    lnames = ({int(v): str(n) for v, n in zip(layers, profile["layer_name"].values)}
              if "layer_name" in profile.coords and profile["layer_name"].ndim == 1 else {})
    ncols = max(1, min(ncols, len(names_t)))
    nrows = int(np.ceil(len(names_t) / ncols))
    fig = Figure(figsize=(2.6 * ncols + 1.4, 2.1 * nrows + (0.6 if lnames else 0.3)), constrained_layout=True)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False)).ravel()
    for k, (ax, t) in enumerate(zip(axes, names_t)):
        for el in elements:
            s = profile.sel(target=t) if el is None else profile.sel(target=t, element=el)
            c = colors[el]
            if "null_lower" in s and el == elements[0]:
                ax.fill_between(layers, s["null_lower"].values, s["null_upper"].values, color="0.5", alpha=0.25,
                                lw=0, label="null (central 95 %)")
            mean = np.asarray(s["mean"].values, dtype=float)
            ax.fill_between(layers, s["lower"].values, s["upper"].values, color=c, alpha=0.15, lw=0)
            ax.plot(layers, mean, color=c, lw=1.2, label=el or "r")
            sig = np.asarray(s["significant"].values, dtype=bool) if "significant" in s else np.zeros(len(layers), bool)
            ax.plot(layers[sig], mean[sig], "o", ms=4, color=c, label=f"{el or 'r'}: significant")
            ax.plot(layers[~sig], mean[~sig], "o", ms=3.5, mfc="white", color=c)
            bl = int(s["best_layer"]) if "best_layer" in s else -1
            if bl >= 0:
                y = float(s["mean"].sel(layer=bl))
                if "best_lower" in s and np.isfinite(float(s["best_lower"])):
                    ax.plot([float(s["best_lower"]), float(s["best_upper"])], [y, y], color=c, lw=2.5, alpha=0.6)
                ax.plot([bl], [y], marker="*", ms=10, color=c, mec="black", mew=0.4, ls="none")
        ax.axhline(0, color="0.3", lw=0.6)
        ax.set_title(t, fontsize=8)
        ax.tick_params(labelsize=7)
        _layer_ticks(ax, layers, lnames, label=k >= len(names_t) - ncols)
        if k % ncols == 0:
            ax.set_ylabel("r", fontsize=8)
    for ax in axes[len(names_t):]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    from matplotlib.lines import Line2D

    handles.append(Line2D([], [], marker="*", ms=10, color="0.3", mec="black", mew=0.4, ls="none"))
    labels.append("best layer (bar: bootstrap CI)")
    fig.legend(handles, labels, loc="outside right upper", fontsize=7, frameon=False)
    fig.suptitle(f"{profile.attrs.get('feature_set', '')}: mean r per layer over folds", fontsize=9)
    return fig


def plot_centroid_layer(centroid: xr.DataArray, *, top: int = 30) -> Figure:
    """Horizontal bars of the centroid layer per target (per element if present)."""
    c = centroid
    if "element" in c.dims:
        c = c.transpose("target", "element")
    names = [str(t) for t in c["target"].values][:top]
    fig = Figure(figsize=(5.5, 0.25 * len(names) + 1.5), constrained_layout=True)
    ax = fig.subplots()
    y = np.arange(len(names))
    if "element" in c.dims:
        els = [str(e) for e in c["element"].values]
        h = 0.8 / len(els)
        for i, e in enumerate(els):
            ce = c.sel(element=e)
            ax.barh(y + i * h, ce.values[:len(names)], height=h, label=e, xerr=_bar_err(ce, len(names)),
                    error_kw={"lw": 0.8})
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    else:
        ax.barh(y, c.values[:len(names)], xerr=_bar_err(c, len(names)), error_kw={"lw": 0.8})
    ax.set_yticks(y, names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("centroid layer")
    ax.set_title(f"centroid layer ({centroid.attrs.get('feature_set', '')})")
    return fig


def _bar_err(c: xr.DataArray, n: int) -> np.ndarray | None:
    """Asymmetric error bars from the ``lower``/``upper`` coordinates of an interval result."""
    if "lower" not in c.coords or "upper" not in c.coords:
        return None
    v = np.asarray(c.values[:n], dtype=float)
    lo = np.asarray(c["lower"].values[:n], dtype=float)
    hi = np.asarray(c["upper"].values[:n], dtype=float)
    return np.nan_to_num(np.vstack([np.clip(v - lo, 0, None), np.clip(hi - v, 0, None)]))


def plot_middle_vs_final(result: xr.Dataset, *, targets: Sequence[str] | None = None) -> Figure:
    """r(layer) - r(final) per target, significant layers marked, band shaded."""
    fig = Figure(figsize=(5.5, 3.4), constrained_layout=True)
    ax = fig.subplots()
    x = result["layer"].values
    shaded: set = set()
    for t in _targets(result, targets):
        s = result.sel(target=t)
        line, = ax.plot(x, s["difference"].values, marker="o", ms=3, label=t)
        sig = s["significant"].values.astype(bool)
        ax.plot(x[sig], s["difference"].values[sig], "o", ms=7, mfc="none", color=line.get_color())
        if int(s["band_start"]) >= 0 and (int(s["band_start"]), int(s["band_end"])) not in shaded:
            shaded.add((int(s["band_start"]), int(s["band_end"])))
            ax.axvspan(int(s["band_start"]) - 0.4, int(s["band_end"]) + 0.4, color="0.5", alpha=0.15, lw=0)
    ax.axhline(0, color="grey", lw=0.6)
    ax.set_xlabel("layer")
    ax.set_ylabel(f"r - r(layer {result.attrs.get('final_layer')})")
    fig.suptitle(f"middle vs final ({result.attrs.get('feature_set', '')}, {result.attrs.get('element', '')}); "
                 "circles: FDR-significant; shade: band", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    return fig


def plot_element_contrast(result: xr.Dataset, *, top: int = 30) -> Figure:
    """Mean r difference (first - second element) per target; energy-ratio scatter if present."""
    names = [str(t) for t in result["target"].values][:top]
    energy_var = next((v for v in ("energy_ratio_db", "log_energy_ratio") if v in result), None)
    has_energy = energy_var is not None
    fig = Figure(figsize=(10 if has_energy else 5.5, 0.25 * len(names) + 1.8), constrained_layout=True)
    axes = fig.subplots(1, 2 if has_energy else 1, squeeze=False)[0]
    ax = axes[0]
    md = result["mean_difference"].values[:len(names)]
    sd = np.nanstd(result["difference"].values[:len(names)], axis=-1)
    colors = ["tab:orange" if v >= 0 else "tab:blue" for v in md]
    ax.barh(np.arange(len(names)), md, xerr=sd, color=colors)
    ax.set_yticks(np.arange(len(names)), names, fontsize=7)
    ax.invert_yaxis()
    ax.axvline(0, color="grey", lw=0.6)
    ax.set_xlabel(f"r({result.attrs['first']}) - r({result.attrs['second']})")
    ax.set_title(f"element contrast ({result.attrs.get('feature_set', '')})", fontsize=9)
    if has_energy:
        ax2 = axes[1]
        ler = result[energy_var].values
        for t, col in zip(names[:_MAX_LINES], _distinct_colors(_MAX_LINES)):
            ax2.plot(ler, result["difference"].sel(target=t).values, "o", ms=4, label=t, color=col)
        ax2.set_xlabel("energy ratio voice / soundtrack of the held-out stimulus"
                       + (" (dB)" if energy_var == "energy_ratio_db" else " (log10)"))
        ax2.set_ylabel("r difference in that fold")
        ax2.axhline(0, color="grey", lw=0.6)
        ax2.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    return fig


def plot_deep_vs_classical(result: xr.Dataset, *, element: str | None = None, top: int = 30) -> Figure:
    """Scatter of best-layer r vs classical r per target (identity line)."""
    res = result
    if "element" in res["r_deep"].dims:
        res = res.sel(element=element or str(res["element"].values[0]))
    d = res["r_deep"].mean("fold").values[:top]
    c = res["r_classical"].mean("fold").values[:top]
    names = [str(t) for t in res["target"].values][:top]
    fig = Figure(figsize=(4.5, 4.2), constrained_layout=True)
    ax = fig.subplots()
    ax.scatter(c, d, s=14)
    gap = np.nan_to_num(np.abs(d - c), nan=-1.0)
    for i in np.argsort(-gap)[:10]:  # label the targets furthest from the identity line only
        ax.annotate(names[i], (c[i], d[i]), fontsize=6)
    lo = np.nanmin(np.r_[c, d, 0.0]) - 0.05
    hi = np.nanmax(np.r_[c, d, 0.0]) + 0.05
    ax.plot([lo, hi], [lo, hi], color="grey", lw=0.6)
    ax.set_xlabel(f"r classical ({result.attrs.get('classical')})")
    ax.set_ylabel(f"r best layer ({result.attrs.get('deep')})")
    ax.set_title(f"deep vs classical{(' — ' + str(res['element'].values)) if 'element' in res.coords else ''}",
                 fontsize=9)
    return fig


def split_region(name: str) -> tuple[str, str]:
    """``"superiortemporal-lh"`` -> ``("superiortemporal", "lh")``; no suffix -> ``(name, "")``."""
    for hemi in ("lh", "rh"):
        for sep in ("-", "_", "."):
            if name.endswith(f"{sep}{hemi}"):
                return name[: -len(hemi) - 1], hemi
            if name.startswith(f"{hemi}{sep}"):
                return name[len(hemi) + 1:], hemi
    return name, ""


def plot_regions(values: xr.DataArray, *, title: str = "", label: str = "r", cmap: str = "viridis",
                 significant: xr.DataArray | None = None, leakage: xr.DataArray | None = None) -> Figure:
    """Heat map of one value per atlas region: columns = Desikan-Killiany region, rows = hemisphere.

    Parameters
    ----------
    values : xarray.DataArray of shape (region,)
        Region names like ``superiortemporal-lh``.
    significant : xarray.DataArray of bool, shape (region,), optional
        Threshold: regions not significant (under the claim's family) are left blank.
    leakage : xarray.DataArray of bool, shape (region,), optional
        Regions whose effect cross-talk from a stronger region explains; marked "L".
    """
    if values.ndim != 1 or "region" not in values.dims:
        raise InputError("values: expected a 1-D DataArray with dim 'region'")
    if significant is not None:
        values = values.where(significant.reindex(region=values["region"].values, fill_value=False).values)
    marked = set()
    if leakage is not None:
        marked = {str(r) for r, f in zip(leakage["region"].values, np.asarray(leakage.values, bool)) if f}
    table: dict[str, dict[str, float]] = {}
    for reg, v in zip(values["region"].values, np.asarray(values.values, dtype=float)):
        base, hemi = split_region(str(reg))
        table.setdefault(base, {})[hemi or "-"] = v
    hemis = sorted({h for row in table.values() for h in row}, key=lambda h: {"lh": 0, "rh": 1}.get(h, 2))
    rows = sorted(table)
    grid = np.array([[table[r].get(h, np.nan) for r in rows] for h in hemis])  # (hemisphere, region)
    fig = Figure(figsize=(max(4.0, 0.2 * len(rows) + 2.0), 0.35 * len(hemis) + 2.2), constrained_layout=True)
    ax = fig.subplots()
    im = ax.imshow(np.ma.masked_invalid(grid), aspect="auto", cmap=cmap)
    ax.set_yticks(range(len(hemis)), hemis)
    ax.set_xticks(range(len(rows)), rows, fontsize=7, rotation=90)
    for j, base in enumerate(rows):
        for i, h in enumerate(hemis):
            if f"{base}-{h}" in marked or (h == "-" and base in marked):
                ax.text(j, i, "L", ha="center", va="center", fontsize=7, color="white", fontweight="bold")
    fig.colorbar(im, ax=ax, label=label, shrink=0.9, pad=0.01)
    ax.set_title(title, fontsize=9)
    return fig


def plot_regions_surface(values: xr.DataArray, *, subjects_dir: str, subject: str, parc: str = "aparc",
                         surf: str = "pial", title: str = "", label: str = "r", cmap: str = "viridis") -> Figure:
    """Region values painted on a FreeSurfer subject's cortex (lateral and medial views).

    Back-facing triangles are culled, so the view is exact for a convex
    sheet (the synthetic subject) and a fair approximation for a folded one.

    Parameters
    ----------
    values : xarray.DataArray of shape (region,)
        Region names like ``superiortemporal-lh``; regions absent are grey.
    subjects_dir, subject : str
        FreeSurfer subject with ``surf/{lh,rh}.<surf>`` and ``label/{lh,rh}.<parc>.annot``.
    """
    import os

    import nibabel.freesurfer as nfs
    from matplotlib import cm, colors

    if values.ndim != 1 or "region" not in values.dims:
        raise InputError("values: expected a 1-D DataArray with dim 'region'")
    by_name = {str(r): float(v) for r, v in zip(values["region"].values, np.asarray(values.values, dtype=float))}
    finite = [v for v in by_name.values() if np.isfinite(v)]
    norm = colors.Normalize(min(finite, default=0.0), max(finite, default=1.0))
    cmap_ = matplotlib.colormaps[cmap]
    fig = Figure(figsize=(9, 5), constrained_layout=True)
    axes = fig.subplots(2, 2)
    for row, hemi in enumerate(("lh", "rh")):
        root = os.path.join(str(subjects_dir), subject)
        for f in (f"surf/{hemi}.{surf}", f"label/{hemi}.{parc}.annot"):
            if not os.path.isfile(os.path.join(root, f)):
                raise InputError(f"subject {subject!r}: {f} missing under {subjects_dir}")
        coords, tris = nfs.read_geometry(os.path.join(root, "surf", f"{hemi}.{surf}"))
        annot, _, names = nfs.read_annot(os.path.join(root, "label", f"{hemi}.{parc}.annot"))
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
        vert_val = np.array([by_name.get(f"{names[a]}-{hemi}", np.nan) if a >= 0 else np.nan for a in annot])
        paint_surface(axes[row], coords, tris, vert_val, hemi=hemi, cmap=cmap_, norm=norm)
    fig.colorbar(cm.ScalarMappable(norm=norm, cmap=cmap_), ax=axes, label=label, shrink=0.7)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def paint_surface(axes: Sequence[Any], coords: np.ndarray, tris: np.ndarray, vert_val: np.ndarray, *, hemi: str,
                  cmap: Any, norm: Any) -> None:
    """Paint vertex values on a hemisphere's mesh: lateral view in ``axes[0]``, medial in ``axes[1]``.

    A face takes the mean of its vertices (grey where none has a value);
    back-facing triangles are culled, so the view is exact for a convex sheet
    (a sphere, the synthetic subject) and a fair approximation for a folded
    surface. Drawn with matplotlib only (no VTK window).

    Parameters
    ----------
    axes : two matplotlib Axes
    coords : array of shape (n_vertices, 3)
    tris : int array of shape (n_faces, 3)
    vert_val : array of shape (n_vertices,)
        NaN where a vertex has no value.
    hemi : {"lh", "rh"}
    cmap, norm : matplotlib colormap and normalisation
    """
    from matplotlib.collections import PolyCollection

    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # faces of blank (e.g. not significant) regions
        face_val = np.nanmean(vert_val[tris], axis=1) if np.isfinite(vert_val).any() \
            else np.full(len(tris), np.nan)
    v0, v1, v2 = coords[tris[:, 0]], coords[tris[:, 1]], coords[tris[:, 2]]
    normal = np.cross(v1 - v0, v2 - v0)
    for ax, view in zip(axes, ("lateral", "medial")):
        side = (-1 if hemi == "lh" else 1) * (1 if view == "lateral" else -1)
        keep = normal[:, 0] * side > 0
        fv = face_val[keep]
        face_rgba = np.asarray(cmap(norm(np.nan_to_num(fv))))
        face_rgba[~np.isfinite(fv)] = (0.8, 0.8, 0.8, 1.0)
        y = coords[:, 1] * side  # lateral views: anterior left for lh, right for rh
        polys = np.stack([np.c_[y[tris[keep, k]], coords[tris[keep, k], 2]] for k in range(3)], axis=1)
        # rasterised: a vector file of thousands of triangles is slow to write and to open
        # edges in the face colour: no light seams between triangles
        ax.add_collection(PolyCollection(polys, facecolors=face_rgba, edgecolors=face_rgba, linewidths=0.3,
                                         rasterized=True))
        ax.set_xlim(y.min(), y.max())
        ax.set_ylim(coords[:, 2].min(), coords[:, 2].max())
        ax.set_aspect("equal")
        ax.axis("off")
        ax.set_title(f"{hemi} {view}", fontsize=8)
