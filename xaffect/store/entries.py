"""Catalog entries of a store: building them, committing them, retiring them.

Pure functions on the catalog's dict, so that a catalog transaction
(:meth:`.catalog.CatalogFile.update`) can re-run them after a conflict.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import xarray as xr

from .credentials import public_options
from .provenance import canonical_json

__all__ = ["store_entries", "commit", "drop", "prepare_for_zarr", "retired_versions"]

_LABEL_COORDS = ("element", "layer", "descriptor", "scale", "region", "target", "feature_set", "band",
                 "component", "subject")


def _jsonable(v: Any) -> Any:
    return json.loads(canonical_json(v))


def _dims_summary(data: xr.Dataset) -> dict[str, Any]:
    return {"dims": {str(k): int(v) for k, v in data.sizes.items()},
            "variables": [str(v) for v in data.data_vars]}


def _labels(data: xr.Dataset) -> dict[str, Any]:
    """Small label coordinates worth putting in catalog metadata."""
    out = {}
    for name in _LABEL_COORDS:
        if name in data.coords and data.coords[name].ndim == 1 and data.coords[name].size <= 500:
            out[name] = [v.item() if hasattr(v, "item") else v for v in data.coords[name].values]
    if "stimulus" in data.coords:
        import pandas as pd

        out["stimuli"] = [str(s) for s in pd.unique(data.coords["stimulus"].values)]
    return out


def store_entries(name: str, data: xr.Dataset | xr.DataTree, *, rel: str, stage: str, description: str,
                  metadata: Mapping[str, Any] | None, ident: str, created: str, elapsed: float,
                  storage_options: Mapping[str, Any]) -> dict:
    """The catalog entries (intake 2 dicts) of one store version and its groups.

    Returns
    -------
    dict
        ``{"data": {token: ...}, "entries": {name: ..., "name/group": ...}}``.
    """
    import intake

    datadesc = intake.readers.datatypes.Zarr(url="{CATALOG_DIR}/" + rel,
                                             storage_options=public_options(storage_options) or None)
    kwargs = {"engine": "zarr", "chunks": {}}
    reader = intake.readers.readers.XArrayDatasetReader(datadesc, **kwargs)
    is_tree = isinstance(data, xr.DataTree)
    summary = {"groups": [p.lstrip("/") for p in data.groups if p != "/"]} if is_tree else {
        **_dims_summary(data), **_labels(data)}
    reader.metadata.update({
        "description": description or f"{stage} store",
        "stage": stage,
        **summary,
        **{k: _jsonable(v) for k, v in (metadata or {}).items()},
        "xaffect": {"identity": ident, "path": rel, "created": created,
                    "kind": "tree" if is_tree else "dataset", "write_seconds": round(elapsed, 3)},
    })
    cat = intake.entry.Catalog()
    cat[name] = reader
    if is_tree:
        for group_path in data.groups:
            if group_path == "/":
                continue
            group = group_path.lstrip("/")
            sub = intake.readers.readers.XArrayDatasetReader(datadesc, group=group, **kwargs)
            node = data[group_path].to_dataset()
            sub.metadata.update({"description": f"{name} group {group}", "stage": stage, "parent": name,
                                 "group": group, **_dims_summary(node), **_labels(node)})
            cat[f"{name}/{group}"] = sub
    out = cat.to_dict()
    return {"data": out["data"], "entries": out["entries"]}


def _data_tokens(obj: Any) -> set[str]:
    out: set[str] = set()
    if isinstance(obj, str):
        out.update(re.findall(r"\{data\(([0-9a-f]+)\)\}", obj))
    elif isinstance(obj, Mapping):
        for v in obj.values():
            out |= _data_tokens(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            out |= _data_tokens(v)
    return out


def retired_versions(cat: dict) -> list[dict]:
    """``[{"store", "path", "at"}]``: versions replaced or removed, not yet reclaimed."""
    return list((cat.get("metadata") or {}).get("retired") or [])


def drop(cat: dict, name: str, *, retire_at: str) -> None:
    """Remove store ``name`` and its group entries; its version becomes retired."""
    entries = cat["entries"]
    retired = retired_versions(cat)
    for key in [k for k in entries if k == name or k.startswith(f"{name}/")]:
        info = ((entries[key].get("metadata") or {}).get("xaffect")) or {}
        if key == name and info.get("path") and info["path"] not in {r["path"] for r in retired}:
            retired.append({"store": name, "path": info["path"], "at": retire_at})
        del entries[key]
        cat["aliases"].pop(key, None)
    cat["metadata"]["retired"] = retired
    used = _data_tokens(entries)
    for tok in [t for t in cat["data"] if t not in used]:
        del cat["data"][tok]


def commit(cat: dict, name: str, fresh: dict, base: str | None, rel: str, at: str) -> dict | None:
    """Make version ``rel`` current, unless another writer committed ``name`` since ``base``.

    Returns
    -------
    None on success, else the winning version's ``xaffect`` record.
    """
    info = (((cat["entries"].get(name) or {}).get("metadata") or {}).get("xaffect")) or {}
    current = info.get("path")
    if current is not None and current != base and current != rel:
        return dict(info)
    drop(cat, name, retire_at=at)
    cat["data"].update(fresh["data"])
    for key, entry in fresh["entries"].items():
        cat["entries"][key] = entry
        cat["aliases"][key] = key
    return None


def prepare_for_zarr(ds: xr.Dataset) -> xr.Dataset:
    """Drop stale encodings and make dask chunks regular (zarr needs that)."""
    ds = ds.copy()
    for var in ds.variables.values():
        var.encoding = {k: v for k, v in var.encoding.items() if k in ("dtype", "_FillValue", "units", "calendar")}
        if var.chunks is not None:
            chunks = var.chunks
            if any(len(set(c[:-1])) > 1 or (len(c) > 1 and c[-1] > c[0]) for c in chunks):
                var.data = var.data.rechunk({i: c[0] for i, c in enumerate(chunks)})
    return ds
