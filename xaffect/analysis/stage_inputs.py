"""What the ``analyses`` stage reads: layer maps from scores, clock signals from stores, and the lab's tables.

Every reader takes a workspace (stores by name) or a file path and returns
labelled xarray objects for the analysis functions of
:mod:`xaffect.analysis`; errors name the store, file or key at fault.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import ConfigError, InputError, StoreError
from ..store.clock import concat_stimuli, frame_times, on_clock, stimulus_slices

__all__ = ["layer_map", "clock_signals", "region_reliability", "read_region_table", "read_clip_labels",
           "feature_cube", "hcp_parcel_gradient", "SCHAEFER_NAME"]

#: Parcel names as :func:`~xaffect.analysis.load_schaefer_parcels` gives them.
SCHAEFER_NAME = re.compile(r"schaefer(\d+)_(lh|rh)_(\d+)")


def _need(ws: Any, name: str, what: str) -> None:
    if name not in ws:
        have = ", ".join(n for n in ws.names() if "/" not in n) or "none"
        raise StoreError(f"{what}: no store {name!r} in {ws.url} (have: {have})")


def layer_map(scores: xr.Dataset, *, feature_set: str, element: str, kind: str = "best", p_var: str = "p_fwer",
              alpha: float = 0.05, prefix: str = "region") -> xr.DataArray:
    """Best or centroid layer of every ``<prefix>:<name>`` target, as a map over regions.

    Returns
    -------
    DataArray of shape (region,)
        NaN where a region has no centroid (no layer beats its null).
    """
    from .layers import best_layer, centroid_layer

    keep = [str(t) for t in scores["target"].values if str(t).startswith(f"{prefix}:")]
    if not keep:
        raise InputError(f"scores store: no '{prefix}:<name>' targets to make a layer map of "
                         f"(targets: {[str(t) for t in scores['target'].values[:5]]})")
    sub = scores.sel(target=keep)
    if kind == "best":
        m = best_layer(sub, feature_set=feature_set, element=element, n_boot=1).astype(float)
        m = m.where(m >= 0)
    else:
        m = centroid_layer(sub, feature_set=feature_set, element=element, p_var=p_var, alpha=alpha, n_boot=1)
    m = m.reset_coords(drop=True)
    out = xr.DataArray(np.asarray(m.values, float), dims="region",
                       coords={"region": [t.split(":", 1)[1] for t in keep]}, name="layer_map")
    out.attrs.update(long_name=f"{kind} layer ({feature_set}, {element})", feature_set=feature_set,
                     element=element, kind=kind)
    return out


def clock_signals(ws: Any, kinds: tuple[str, ...] = ("ratings", "regions")) -> dict[str, xr.DataArray]:
    """Ratings (``targets``) and subject-mean region signals (``regions``) on one clock, ``(time, target)``.

    The clock and the stimulus order are the ``targets`` store's; region
    signals are put on it as the encode stage does (:func:`xaffect.encoding.stage.load_targets`).
    """
    from ..encoding.stage import load_targets

    _need(ws, "targets", "lead-lag")
    tg = ws.open("targets")
    slices = stimulus_slices(tg)
    rate = float(tg.attrs.get("clock_rate", 1.0))
    return load_targets(ws, list(kinds), rate=rate, order=list(slices),
                        lengths={k: v.stop - v.start for k, v in slices.items()}, explicit=True)


def region_reliability(ws: Any, *, rate: float, regions_store: str = "regions") -> xr.DataArray:
    """Each region's leave-one-subject-out reliability on the clock: a noise-ceiling map.

    Every subject's region signal is put on the analysis clock, correlated with
    the mean of the other subjects within each stimulus, and averaged through
    Fisher's z (:func:`xaffect.synchrony.ratings.rater_agreement`, subjects as raters).

    Returns
    -------
    DataArray of shape (region,)
    """
    from ..synchrony.ratings import rater_agreement

    _need(ws, regions_store, "analyses.gradient.noise_map")
    tree = ws.open(regions_store)
    parts = {}
    for path, node in tree.children.items():
        ds = node.to_dataset()
        sig = ds["signal"].transpose("subject", "sample", "region")
        sfreq = float(ds.attrs.get("sfreq", sig.attrs.get("sfreq", 0)) or 0)
        if sfreq <= 0:
            raise InputError(f"{regions_store} store, stimulus {path!r}: no 'sfreq' attr")
        if sig.sizes["subject"] < 2:
            raise InputError(f"analyses.gradient.noise_map: 'reliability' needs two subjects or more; "
                             f"{regions_store} store, stimulus {path!r} has {sig.sizes['subject']}")
        times = frame_times(sig.sizes["sample"], hop=1.0 / sfreq)
        parts[path] = on_clock(sig.load(), rate=rate, dim="sample", times=times)
    da = concat_stimuli(parts).rename(subject="rater", region="scale").transpose("rater", "time", "scale")
    nc = rater_agreement(da)["noise_ceiling"].rename(scale="region")
    return nc.rename("reliability").assign_attrs(long_name="leave-one-subject-out reliability (r)")


def _read_table(path: Path, what: str) -> pd.DataFrame:
    try:
        return pd.read_csv(path, sep=None, engine="python")
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise InputError(f"{path}: cannot read the {what} table ({exc})") from None


def read_region_table(path: str | Path, *, column: str, what: str) -> xr.Dataset:
    """A per-region table (CSV/TSV): ``region``, the value ``column``, and optional ``x, y, z`` coordinates.

    Returns
    -------
    xarray.Dataset
        ``<column> (region)`` and, when the file has them, ``xyz (region, axis)``.
    """
    path = Path(path)
    df = _read_table(path, what)
    for col in ("region", column):
        if col not in df.columns:
            raise InputError(f"{path}: the {what} table has no {col!r} column (columns: {list(df.columns)})")
    if df["region"].duplicated().any():
        raise InputError(f"{path}: region {df['region'][df['region'].duplicated()].iloc[0]!r} appears twice")
    values = pd.to_numeric(df[column], errors="coerce")
    if values.isna().any():
        raise InputError(f"{path}: {column!r} of region {df['region'][values.isna()].iloc[0]!r} is not a number")
    out = xr.Dataset({column: ("region", values.to_numpy(float))},
                     coords={"region": df["region"].astype(str).to_numpy()})
    if {"x", "y", "z"} <= set(df.columns):
        out["xyz"] = (("region", "axis"), df[["x", "y", "z"]].to_numpy(float))
        out = out.assign_coords(axis=["x", "y", "z"])
    out[column].attrs["long_name"] = f"{column} ({path.name})"
    return out


def read_clip_labels(path: str | Path, *, label: str, group: str | None = None) -> tuple[xr.DataArray, xr.DataArray | None]:
    """Clip labels (CSV/TSV with ``stimulus`` and the ``label`` column; ``group`` optional).

    Returns
    -------
    (labels, groups) : DataArrays of shape (stimulus,)
        Labels as text (classes) or numbers (static ratings); groups or None.
    """
    path = Path(path)
    df = _read_table(path, "clip label")
    for col, key in (("stimulus", None), (label, "label"), (group, "group")):
        if col is not None and col not in df.columns:
            where = f" (analyses.clips.{key})" if key else ""
            raise InputError(f"{path}: no {col!r} column{where}; columns: {list(df.columns)}")
    if df["stimulus"].duplicated().any():
        raise InputError(f"{path}: clip {df['stimulus'][df['stimulus'].duplicated()].iloc[0]!r} appears twice")
    stim = df["stimulus"].astype(str).to_numpy()
    col = df[label]
    values = col.astype(str).to_numpy() if col.dtype.kind in "OUSbi" else col.to_numpy(float)
    labels = xr.DataArray(values, dims="stimulus", coords={"stimulus": stim}, name=label)
    groups = None if group is None else xr.DataArray(df[group].astype(str).to_numpy(), dims="stimulus",
                                                     coords={"stimulus": stim}, name=group)
    return labels, groups


def feature_cube(ws: Any, name: str, what: str) -> xr.DataArray:
    """The clock-rate cube of feature store ``name``: ``activation (element, time, layer, unit)`` or ``lld``.

    A reduced cube's ``component`` dimension is returned as ``unit``.
    """
    _need(ws, name, what)
    ds = ws.open(name)
    var = next((v for v in ("activation", "lld") if v in ds), None)
    if var is None:
        raise InputError(f"{what}: store {name!r} has neither 'activation' nor 'lld' (variables: {list(ds.data_vars)})")
    da = ds[var]
    if "component" in da.dims:
        da = da.rename(component="unit")
    da.attrs = {**ds.attrs, **da.attrs}
    return da.rename(name)


def hcp_parcel_gradient(regions: list[str], *, hemisphere: str, component: int = 0) -> xr.Dataset:
    """The HCP FC gradient brainspace ships, averaged in the Schaefer parcels named ``regions``.

    Returns
    -------
    xarray.Dataset
        ``gradient (region)`` and ``xyz (region, axis)`` (parcel centroid on
        the conte69 sphere) for the regions of ``hemisphere``.
    """
    from .gradients import load_hcp_gradient, load_schaefer_parcels, parcellate

    parsed = [SCHAEFER_NAME.fullmatch(r) for r in regions]
    if not all(parsed):
        bad = next(r for r, m in zip(regions, parsed) if not m)
        raise ConfigError(f"analyses.gradient.gradient_file: region {bad!r} is not a Schaefer parcel as brainspace "
                          "names them ('schaefer400_lh_001'), so the HCP gradient cannot be placed on it; "
                          "give a gradient_file with one value per region")
    scales = {int(m.group(1)) for m in parsed}
    if len(scales) != 1:
        raise InputError(f"analyses.gradient: regions mix Schaefer parcellations {sorted(scales)}")
    keep = [r for r, m in zip(regions, parsed) if m.group(2) == hemisphere]
    if len(keep) < 3:
        raise ConfigError(f"analyses.gradient.hemisphere: {len(keep)} regions in {hemisphere!r} (need 3 or more)")
    parcels = load_schaefer_parcels(scales.pop(), hemisphere)
    missing = sorted(set(keep) - set(parcels["region"].values))
    if missing:
        raise InputError(f"analyses.gradient: regions {missing[:3]} are not in brainspace's parcellation")
    g = parcellate(load_hcp_gradient(hemisphere, component=component), parcels).sel(region=keep)
    g.attrs["long_name"] = (f"HCP principal FC gradient G1 ({hemisphere}, parcel means)" if component == 0 else
                            f"HCP FC gradient {component + 1} ({hemisphere}, parcel means)")
    return xr.Dataset({"gradient": g, "xyz": parcels["centroid"].sel(region=keep).rename(axis="axis")})
