"""Figures of the synchrony and targets stores (matplotlib, Agg)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..errors import InputError

__all__ = ["plot_isc", "plot_ratings"]


def _figure(**kwargs):
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def _boundaries(ax, ds: xr.Dataset | xr.DataArray) -> None:
    names = np.asarray(ds["stimulus"].values).astype(str)
    cut = np.flatnonzero(names[1:] != names[:-1]) + 1
    for c in cut:
        ax.axvline(c - 0.5, color="k", lw=0.8)
    starts = np.r_[0, cut]
    ax.set_xticks(starts)
    ax.set_xticklabels([names[s] for s in starts], rotation=30, ha="right", fontsize=7)


def plot_isc(ds: xr.Dataset | xr.DataArray, *, band: str | None = None, alpha: float = 0.05):
    """Region x time heat map of sliding-window ISC.

    Parameters
    ----------
    ds : Dataset with ``isc (time, region[, band])`` (and optionally ``p_cluster`` or ``p_fdr``), or that DataArray
    band : str, optional
        Band to show (default: the first).
    alpha : float
        Windows in a temporal cluster with ``p_cluster < alpha`` (family-wise
        over windows x regions) are marked with dots; stores without cluster
        inference mark ``p_fdr < alpha`` (regions, per window) instead.

    Returns
    -------
    matplotlib.figure.Figure
    """
    isc = (ds["isc"] if isinstance(ds, xr.Dataset) else ds).load()
    mark = next((v for v in ("p_cluster", "p_fdr") if isinstance(ds, xr.Dataset) and v in ds), None)
    sig = ds[mark].load() if mark else None
    if "band" in isc.dims:
        band = band if band is not None else str(isc["band"].values[0])
        if band not in [str(b) for b in isc["band"].values]:
            raise InputError(f"plot_isc: no band {band!r} (have: {', '.join(map(str, isc['band'].values))})")
        isc = isc.sel(band=band)
        sig = sig.sel(band=band) if sig is not None else None
    isc = isc.transpose("region", "time")
    vals = np.asarray(isc.values, dtype=float)
    fig = _figure(figsize=(10, max(3.0, 0.12 * vals.shape[0] + 1.5)), layout="constrained")
    ax = fig.add_subplot()
    lim = np.nanmax(np.abs(vals)) if np.isfinite(vals).any() else 1.0
    im = ax.imshow(vals, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
    if sig is not None:
        yy, xx = np.nonzero(np.asarray(sig.transpose("region", "time").values) < alpha)
        label = f"cluster p_FWER < {alpha}" if mark == "p_cluster" else f"p_FDR < {alpha}"
        ax.scatter(xx, yy, s=2, c="k", marker=".", label=label)
        if xx.size:
            ax.legend(loc="upper right", fontsize=7)
    ax.set_yticks(np.arange(vals.shape[0]))
    ax.set_yticklabels([str(r) for r in isc["region"].values], fontsize=6)
    _boundaries(ax, isc)
    ax.set_xlabel("window (stimulus start marked)")
    title = f"sliding ISC ({ds.attrs.get('window', '?')} s windows, {ds.attrs.get('step', '?')} s step)"
    ax.set_title(title + (f", {band} envelope" if band else ""))
    fig.colorbar(im, ax=ax, label="ISC (r)")
    return fig


def plot_ratings(ds: xr.Dataset):
    """Rating traces per scale with the inter-rater band (mean +/- sd).

    Parameters
    ----------
    ds : Dataset
        The targets store: ``rating (time, scale)``, ``rating_std (time, scale)``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if "rating" not in ds:
        raise InputError("plot_ratings: the dataset has no 'rating' variable")
    ds = ds[[v for v in ("rating", "rating_std", "noise_ceiling") if v in ds]].load()
    scales = [str(s) for s in ds["scale"].values]
    fig = _figure(figsize=(10, 2.2 * len(scales) + 0.5), layout="constrained")
    axes = fig.subplots(len(scales), 1, sharex=True, squeeze=False)[:, 0]
    x = np.arange(ds.sizes["time"])
    for ax, sc in zip(axes, scales):
        m = np.asarray(ds["rating"].sel(scale=sc).values, dtype=float)
        ax.plot(x, m, lw=1.2, label="mean")
        if "rating_std" in ds:
            sd = np.asarray(ds["rating_std"].sel(scale=sc).values, dtype=float)
            ax.fill_between(x, m - sd, m + sd, alpha=0.3, lw=0, label="inter-rater sd")
        nc = float(ds["noise_ceiling"].sel(scale=sc)) if "noise_ceiling" in ds else np.nan
        ax.set_ylabel(sc)
        ax.set_title(f"{sc}" + (f" (inter-rater LOO r = {nc:.2f})" if np.isfinite(nc) else ""), fontsize=9)
        _boundaries(ax, ds)
    axes[0].legend(loc="upper right", fontsize=7)
    return fig
