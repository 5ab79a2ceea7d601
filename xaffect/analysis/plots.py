"""Figures of the layer-profile analyses.

Each ``plot_*`` takes the labelled result of the matching analysis in
:mod:`xaffect.analysis.profiles` and returns a :class:`matplotlib.figure.Figure`
built without pyplot (so no GUI backend is touched and nothing leaks between
calls): ``fig.savefig(...)``, or display it in a notebook.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib
import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from ..errors import InputError

__all__ = ["plot_layer_profile", "plot_centroid_layer", "plot_middle_vs_final", "plot_element_contrast",
           "plot_deep_vs_classical", "plot_regions", "plot_regions_surface", "split_region"]

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
    axes[-1].legend(fontsize=7, loc="best")
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
            ax.barh(y + i * h, c.sel(element=e).values[:len(names)], height=h, label=e)
        ax.legend(fontsize=7)
    else:
        ax.barh(y, c.values[:len(names)])
    ax.set_yticks(y, names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("centroid layer")
    ax.set_title(f"centroid layer ({centroid.attrs.get('feature_set', '')})")
    return fig


def plot_middle_vs_final(result: xr.Dataset, *, targets: Sequence[str] | None = None) -> Figure:
    """r(layer) - r(final) per target, significant layers marked, band shaded."""
    fig = Figure(figsize=(5.5, 3.4), constrained_layout=True)
    ax = fig.subplots()
    x = result["layer"].values
    for t in _targets(result, targets):
        s = result.sel(target=t)
        line, = ax.plot(x, s["difference"].values, marker="o", ms=3, label=t)
        sig = s["significant"].values.astype(bool)
        ax.plot(x[sig], s["difference"].values[sig], "o", ms=7, mfc="none", color=line.get_color())
        if int(s["band_start"]) >= 0:
            ax.axvspan(int(s["band_start"]) - 0.4, int(s["band_end"]) + 0.4, color=line.get_color(), alpha=0.08)
    ax.axhline(0, color="grey", lw=0.6)
    ax.set_xlabel("layer")
    ax.set_ylabel(f"r - r(layer {result.attrs.get('final_layer')})")
    ax.set_title(f"middle vs final ({result.attrs.get('feature_set', '')}, {result.attrs.get('element', '')}); "
                 "circles: FDR-significant", fontsize=9)
    ax.legend(fontsize=7)
    return fig


def plot_element_contrast(result: xr.Dataset, *, top: int = 30) -> Figure:
    """Mean r difference (first - second element) per target; energy-ratio scatter if present."""
    names = [str(t) for t in result["target"].values][:top]
    has_energy = "log_energy_ratio" in result
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
        ler = result["log_energy_ratio"].values
        for t in names[:_MAX_LINES]:
            ax2.plot(ler, result["difference"].sel(target=t).values, "o", ms=4, label=t)
        ax2.set_xlabel("log10 energy ratio (voice / soundtrack) of held-out stimulus")
        ax2.set_ylabel("r difference in that fold")
        ax2.axhline(0, color="grey", lw=0.6)
        ax2.legend(fontsize=6)
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
    for x, y, n in zip(c, d, names):
        ax.annotate(n, (x, y), fontsize=5)
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


def plot_regions(values: xr.DataArray, *, title: str = "", label: str = "r", cmap: str = "viridis") -> Figure:
    """Heat map of one value per atlas region, rows = Desikan-Killiany region, columns = hemisphere.

    Parameters
    ----------
    values : xarray.DataArray of shape (region,)
        Region names like ``superiortemporal-lh``.
    """
    if values.ndim != 1 or "region" not in values.dims:
        raise InputError("values: expected a 1-D DataArray with dim 'region'")
    table: dict[str, dict[str, float]] = {}
    for reg, v in zip(values["region"].values, np.asarray(values.values, dtype=float)):
        base, hemi = split_region(str(reg))
        table.setdefault(base, {})[hemi or "-"] = v
    hemis = sorted({h for row in table.values() for h in row}, key=lambda h: {"lh": 0, "rh": 1}.get(h, 2))
    rows = sorted(table)
    grid = np.array([[table[r].get(h, np.nan) for h in hemis] for r in rows])
    fig = Figure(figsize=(2.2 + 1.2 * len(hemis), 0.22 * len(rows) + 1.4), constrained_layout=True)
    ax = fig.subplots()
    im = ax.imshow(np.ma.masked_invalid(grid), aspect="auto", cmap=cmap)
    ax.set_xticks(range(len(hemis)), hemis)
    ax.set_yticks(range(len(rows)), rows, fontsize=7)
    fig.colorbar(im, ax=ax, label=label, shrink=0.8)
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
        face_val = np.nanmean(np.where(np.isnan(vert_val[tris]), np.nan, vert_val[tris]), axis=1) \
            if np.isfinite(vert_val).any() else np.full(len(tris), np.nan)
        v0, v1, v2 = coords[tris[:, 0]], coords[tris[:, 1]], coords[tris[:, 2]]
        normal = np.cross(v1 - v0, v2 - v0)
        for col, view in enumerate(("lateral", "medial")):
            side = (-1 if hemi == "lh" else 1) * (1 if view == "lateral" else -1)
            keep = normal[:, 0] * side > 0
            ax = axes[row, col]
            face_rgba = np.array([cmap_(norm(v)) if np.isfinite(v) else (0.8, 0.8, 0.8, 1.0) for v in face_val[keep]])
            y = coords[:, 1] * side  # lateral views: anterior left for lh, right for rh
            from matplotlib.collections import PolyCollection

            polys = np.stack([np.c_[y[tris[keep, k]], coords[tris[keep, k], 2]] for k in range(3)], axis=1)
            ax.add_collection(PolyCollection(polys, facecolors=face_rgba, edgecolors="none"))
            ax.set_xlim(y.min(), y.max())
            ax.set_ylim(coords[:, 2].min(), coords[:, 2].max())
            ax.set_aspect("equal")
            ax.axis("off")
            ax.set_title(f"{hemi} {view}", fontsize=8)
    fig.colorbar(cm.ScalarMappable(norm=norm, cmap=cmap_), ax=axes, label=label, shrink=0.7)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig
