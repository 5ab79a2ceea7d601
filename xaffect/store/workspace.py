"""A study's workspace: its Zarr stores and the intake catalog that lists them.

Layout under the workspace root (a local folder or any fsspec URL)::

    catalog.yaml                       intake 2 catalog, paths relative to itself
    stores/<name>/<identity>.zarr      one version of each store
    .xaffect/hashes.json               cache of input file content hashes

A write goes to a fresh ``<identity>.zarr`` folder. Only when every chunk is
written is the catalog (the single commit point) rewritten to point at it and
older versions removed. A write killed midway therefore leaves the catalog and
the previous version untouched; the next run removes the debris and starts
again.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import warnings

import fsspec
import intake
import xarray as xr
import yaml
import zarr

from ..errors import InputError, StoreError
from .compute import compute
from .provenance import canonical_json, identity_of, make_provenance

__all__ = ["Workspace", "open_catalog"]

CATALOG_FILE = "catalog.yaml"
_SECRET_KEYS = {"key", "secret", "token", "password", "aws_access_key_id",
                "aws_secret_access_key", "aws_session_token", "session_token"}
_PROV_ATTR = "xaffect_provenance"
_IDENT_ATTR = "xaffect_identity"
_STATUS_ATTR = "xaffect_status"
_lock = threading.RLock()

# zarr 3 warns that fixed-length string dtypes are not yet in the v3 spec;
# xarray writes label coordinates that way and reads them back exactly.
warnings.filterwarnings("ignore", message=".*(does not have a Zarr V3 specification|not part in the Zarr format 3).*")


def open_catalog(path: str, **storage_options: Any) -> intake.Catalog:
    """Open a workspace's intake catalog.

    Parameters
    ----------
    path : str
        Workspace root (folder or URL) or the ``catalog.yaml`` itself.
    **storage_options
        fsspec options (credentials come from the environment or here; the
        catalog never stores them).

    Returns
    -------
    intake.Catalog
        Entries read with ``cat[name].read()`` into xarray objects.
    """
    path = str(path).rstrip("/")
    if not path.endswith((".yaml", ".yml")):
        path = f"{path}/{CATALOG_FILE}"
    fs, fpath = fsspec.core.url_to_fs(path, **storage_options)
    if not fs.exists(fpath):
        raise StoreError(f"{path}: no catalog here (create one with `xaffect init`)")
    return intake.from_yaml_file(path, **storage_options)


def _public_options(storage_options: Mapping[str, Any]) -> dict[str, Any]:
    """Storage options safe to write into a shared catalog (no credentials)."""
    out = {}
    for k, v in storage_options.items():
        if k.lower() in _SECRET_KEYS:
            continue
        if isinstance(v, Mapping):
            v = _public_options(v)
        out[k] = v
    return out


def _dims_summary(data: Any) -> dict[str, Any]:
    if isinstance(data, xr.DataTree):
        return {"groups": [p.lstrip("/") for p in data.groups if p != "/"]}
    return {"dims": {str(k): int(v) for k, v in data.sizes.items()},
            "variables": [str(v) for v in data.data_vars]}


def _labels(data: Any) -> dict[str, Any]:
    """Small label coordinates worth putting in catalog metadata."""
    if isinstance(data, xr.DataTree):
        return {}
    out = {}
    for name in ("element", "layer", "descriptor", "scale", "region", "target", "feature_set", "band",
                 "component", "subject"):
        if name in data.coords and data.coords[name].ndim == 1 and data.coords[name].size <= 500:
            out[name] = [v.item() if hasattr(v, "item") else v for v in data.coords[name].values]
    if "stimulus" in data.coords:
        import pandas as pd

        out["stimuli"] = [str(s) for s in pd.unique(data.coords["stimulus"].values)]
    return out


class Workspace:
    """A study's folder (or fsspec URL) holding its stores and ``catalog.yaml``.

    Parameters
    ----------
    path : str or os.PathLike
        Workspace root; must already hold a catalog (see :meth:`init`).
    storage_options : dict, optional
        fsspec options, e.g. ``{"endpoint_url": ..., "key": ..., "secret": ...}``
        for S3. Credentials are used but never written to the catalog.
    """

    def __init__(self, path: str | os.PathLike, *, storage_options: Mapping[str, Any] | None = None):
        self.url = str(path).rstrip("/") or "/"
        self.storage_options = dict(storage_options or {})
        self.fs, self.root = fsspec.core.url_to_fs(self.url, **self.storage_options)
        self.root = self.root.rstrip("/")
        if not self.fs.exists(self._path(CATALOG_FILE)):
            raise StoreError(f"{self.url}: not an xaffect workspace (no {CATALOG_FILE}; "
                             "create one with `xaffect init DIR` or Workspace.init)")
        self._local = "file" in (self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,))

    # ------------------------------------------------------------------ set-up
    @classmethod
    def init(cls, path: str | os.PathLike, *, storage_options: Mapping[str, Any] | None = None,
             description: str = "") -> "Workspace":
        """Create a workspace (or open an existing one) at ``path``."""
        url = str(path).rstrip("/") or "/"
        fs, root = fsspec.core.url_to_fs(url, **dict(storage_options or {}))
        root = root.rstrip("/")
        cat_path = f"{root}/{CATALOG_FILE}"
        if not fs.exists(cat_path):
            fs.makedirs(root, exist_ok=True)
            cat = intake.entry.Catalog(metadata={"xaffect": 1, "description": description})
            fs.pipe_file(cat_path, yaml.safe_dump(cat.to_dict(), sort_keys=False).encode())
        return cls(url, storage_options=storage_options)

    def __repr__(self) -> str:
        return f"Workspace({self.url!r}, stores={self.names()})"

    # ---------------------------------------------------------------- helpers
    def _path(self, rel: str) -> str:
        return f"{self.root}/{rel}" if self.root != "/" else f"/{rel}"

    def _full_url(self, rel: str) -> str:
        return self.fs.unstrip_protocol(self._path(rel))

    def _zarr_target(self, rel: str) -> str:
        """What zarr/xarray take for a path: a plain path locally, else a URL."""
        return self._path(rel) if self._local else self._full_url(rel)

    def _so(self, target: str) -> dict | None:
        return (self.storage_options or None) if "://" in target else None

    def _zstore(self, target: str, read_only: bool = False) -> Any:
        if "://" not in target:
            return target
        return zarr.storage.FsspecStore.from_url(target, storage_options=self.storage_options or None,
                                                 read_only=read_only)

    def _read_catalog_dict(self) -> dict:
        with self.fs.open(self._path(CATALOG_FILE), "rb") as f:
            return yaml.safe_load(f)

    def _write_catalog_dict(self, data: dict) -> None:
        text = yaml.safe_dump(data, sort_keys=False).encode()
        target = self._path(CATALOG_FILE)
        if self._local:
            tmp = f"{target}.{uuid.uuid4().hex}.tmp"
            with open(tmp, "wb") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)  # atomic on POSIX
        else:
            self.fs.pipe_file(target, text)  # a single PUT: atomic on object stores

    def catalog(self) -> intake.Catalog:
        """The workspace's intake catalog (re-read from storage)."""
        return intake.from_yaml_file(self._full_url(CATALOG_FILE), **self.storage_options)

    def names(self) -> list[str]:
        """Names of the complete stores listed in the catalog."""
        return sorted(self._read_catalog_dict().get("entries", {}))

    def __contains__(self, name: str) -> bool:
        return name in self._read_catalog_dict().get("entries", {})

    def metadata(self, name: str) -> dict:
        """Catalog metadata of ``name`` (stage, dims, labels, identity, ...)."""
        entries = self._read_catalog_dict().get("entries", {})
        if name not in entries:
            raise StoreError(f"{self.url}: no store named {name!r} (have: {', '.join(sorted(entries)) or 'none'})")
        return entries[name].get("metadata", {})

    def store_url(self, name: str) -> str:
        """URL of the current version of store ``name``."""
        rel = self.metadata(name)["xaffect"]["path"]
        return self._full_url(rel)

    # --------------------------------------------------------------- identity
    def _hash_cache(self) -> dict:
        p = self._path(".xaffect/hashes.json")
        if self.fs.exists(p):
            try:
                return json.loads(self.fs.cat_file(p))
            except (ValueError, OSError):
                return {}
        return {}

    def _save_hash_cache(self, cache: dict) -> None:
        self.fs.makedirs(self._path(".xaffect"), exist_ok=True)
        self.fs.pipe_file(self._path(".xaffect/hashes.json"), json.dumps(cache).encode())

    def _file_hash(self, ref: str, cache: dict) -> str:
        fs, path = fsspec.core.url_to_fs(ref, **(self.storage_options if "://" in ref else {}))
        if not fs.exists(path):
            raise InputError(f"{ref}: input file does not exist")
        if fs.isdir(path):
            files = sorted(p for p in fs.find(path) if not os.path.basename(p).startswith("."))
            h = hashlib.sha256()
            for p in files:
                h.update(os.path.relpath(p, path).encode())
                h.update(self._file_hash(fs.unstrip_protocol(p), cache).encode())
            return "dir:" + h.hexdigest()
        info = fs.info(path)
        key = f"{fs.unstrip_protocol(path)}|{info.get('size')}|{info.get('mtime') or info.get('LastModified') or info.get('ETag')}"
        if key in cache:
            return cache[key]
        h = hashlib.sha256()
        with fs.open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
        cache[key] = "sha256:" + h.hexdigest()
        return cache[key]

    def input_identities(self, inputs: Iterable[Any]) -> list[dict[str, str]]:
        """Identity records of stage inputs.

        Parameters
        ----------
        inputs : iterable
            Store names of this workspace, file or folder paths/URLs, or
            ``(ref, hash)`` pairs whose identity the caller already knows.

        Returns
        -------
        list of dict
            ``{"ref": ..., "hash": ...}`` per input.
        """
        entries = self._read_catalog_dict().get("entries", {})
        cache = None
        out = []
        for item in inputs:
            if isinstance(item, tuple) and len(item) == 2:
                out.append({"ref": str(item[0]), "hash": str(item[1])})
            elif str(item) in entries:
                out.append({"ref": f"store:{item}", "hash": entries[str(item)]["metadata"]["xaffect"]["identity"]})
            else:
                if cache is None:
                    cache = self._hash_cache()
                ref = os.fspath(item)
                out.append({"ref": ref, "hash": self._file_hash(ref, cache)})
        if cache is not None:
            self._save_hash_cache(cache)
        return out

    def identity(self, *, stage: str, params: Mapping[str, Any], inputs: Iterable[Any] = ()) -> str:
        """The identity hash a stage with these parameters and inputs has."""
        return identity_of(stage, params, self.input_identities(inputs))

    def is_current(self, name: str, *, stage: str, params: Mapping[str, Any], inputs: Iterable[Any] = ()) -> bool:
        """Whether store ``name`` exists, is complete and has this identity."""
        entries = self._read_catalog_dict().get("entries", {})
        if name not in entries:
            return False
        try:
            ident = self.identity(stage=stage, params=params, inputs=inputs)
        except InputError:
            return False
        info = entries[name]["metadata"].get("xaffect", {})
        return info.get("identity") == ident and self.fs.exists(self._path(info["path"]))

    # ------------------------------------------------------------------ write
    def write(self, name: str, data: xr.Dataset | xr.DataTree, *, stage: str, params: Mapping[str, Any],
              inputs: Iterable[Any] = (), description: str = "", metadata: Mapping[str, Any] | None = None,
              model: Mapping[str, Any] | None = None, progress: bool = True) -> xr.Dataset | xr.DataTree:
        """Materialise ``data`` as store ``name`` and register it in the catalog.

        Parameters
        ----------
        name : str
            Catalog name, e.g. ``"features.hubert"`` (dots become folders).
        data : xarray.Dataset or xarray.DataTree
            Lazy (dask) or in-memory data; a DataTree for per-stimulus groups.
        stage : str
            Stage that made it.
        params : mapping
            Parameters of the stage (JSON-able); part of the identity.
        inputs : iterable
            Store names and file paths the stage read; part of the identity.
        description : str
            One line shown by ``xaffect catalog ls``.
        metadata : mapping, optional
            Extra catalog metadata (labels such as model, layers, elements).
        model : mapping, optional
            Model name/revision/weights, recorded in provenance.
        progress : bool
            Show a progress bar while writing.

        Returns
        -------
        xarray.Dataset or xarray.DataTree
            The written store, opened lazily.
        """
        if not name or any(c in name for c in " /\\:{}"):
            raise StoreError(f"{name!r}: store names use letters, digits, '.', '_' and '-' only")
        if not isinstance(data, (xr.Dataset, xr.DataTree)):
            raise StoreError(f"{name}: write takes an xarray Dataset or DataTree, not {type(data).__name__}")
        records = self.input_identities(inputs)
        ident = identity_of(stage, params, records)
        prov = make_provenance(stage=stage, params=params, inputs=records, identity=ident, model=model)
        folder = f"stores/{name.replace('.', '/')}"
        rel = f"{folder}/{ident[:16]}-{uuid.uuid4().hex[:8]}.zarr"
        target = self._zarr_target(rel)
        attrs = {_PROV_ATTR: canonical_json(prov), _IDENT_ATTR: ident, _STATUS_ATTR: "writing"}

        t0 = time.perf_counter()
        if isinstance(data, xr.DataTree):
            tree = data.copy()
            tree.attrs = {**tree.attrs, **attrs}
            tree = tree.map_over_datasets(_prepare_for_zarr)
            delayed = tree.to_zarr(target, mode="w", compute=False, consolidated=False, write_inherited_coords=True,
                                   storage_options=self._so(target))
        else:
            ds = _prepare_for_zarr(data)
            ds.attrs = {**data.attrs, **attrs}
            delayed = ds.to_zarr(target, mode="w", compute=False, consolidated=False,
                                 storage_options=self._so(target))
        if delayed is not None:
            compute(delayed, desc=f"write {name}", progress=progress)
        # finalise: mark complete, consolidate, then commit to the catalog
        group = zarr.open_group(self._zstore(target), mode="r+")
        group.attrs[_STATUS_ATTR] = "complete"
        zarr.consolidate_metadata(self._zstore(target))
        elapsed = time.perf_counter() - t0

        with _lock:
            cat = intake.entry.Catalog.from_dict(self._read_catalog_dict())
            if name in cat.entries:
                self._drop_entry(cat, name)
            datadesc = intake.readers.datatypes.Zarr(
                url="{CATALOG_DIR}/" + rel, storage_options=_public_options(self.storage_options) or None)
            kwargs = {"engine": "zarr", "chunks": {}}
            if isinstance(data, xr.DataTree):
                reader = intake.readers.readers.XArrayDatasetReader(datadesc, **kwargs)
            else:
                reader = intake.readers.readers.XArrayDatasetReader(datadesc, **kwargs)
            meta = {
                "description": description or f"{stage} store",
                "stage": stage,
                **_dims_summary(data),
                **_labels(data),
                **({k: _jsonable(v) for k, v in (metadata or {}).items()}),
                "xaffect": {"identity": ident, "path": rel, "created": prov["created"],
                            "kind": "tree" if isinstance(data, xr.DataTree) else "dataset",
                            "write_seconds": round(elapsed, 3)},
            }
            reader.metadata.update(meta)
            cat[name] = reader
            if isinstance(data, xr.DataTree):
                for group_path in data.groups:
                    if group_path == "/":
                        continue
                    sub = intake.readers.readers.XArrayDatasetReader(
                        datadesc, group=group_path.lstrip("/"), **kwargs)
                    sub.metadata.update({"description": f"{name} group {group_path.lstrip('/')}",
                                         "stage": stage, "parent": name,
                                         **_dims_summary(data[group_path].to_dataset())})
                    cat[f"{name}/{group_path.lstrip('/')}"] = sub
            self._write_catalog_dict(cat.to_dict())
        self._cleanup(folder, keep=rel)
        return self.open(name)

    def _drop_entry(self, cat: intake.Catalog, name: str) -> None:
        for key in [k for k in cat.entries if k == name or k.startswith(f"{name}/")]:
            del cat[key]
        used = set()
        for entry in cat.entries.values():
            used.update(_data_tokens(entry.kwargs))
        for tok in [t for t in cat.data if t not in used]:
            cat.data.pop(tok)

    def _cleanup(self, folder: str, keep: str) -> None:
        """Remove every version of a store but ``keep`` (old ones, killed writes)."""
        path = self._path(folder)
        if not self.fs.exists(path):
            return
        for p in self.fs.ls(path, detail=False):
            if p.rstrip("/").endswith(".zarr") and not p.rstrip("/").endswith(keep.split("/")[-1]):
                try:
                    self.fs.rm(p, recursive=True)
                except FileNotFoundError:
                    pass

    def remove(self, name: str) -> None:
        """Unregister store ``name`` and delete its data."""
        with _lock:
            meta = self.metadata(name)
            cat = intake.entry.Catalog.from_dict(self._read_catalog_dict())
            self._drop_entry(cat, name)
            self._write_catalog_dict(cat.to_dict())
        folder = "/".join(meta["xaffect"]["path"].split("/")[:-1])
        self._cleanup(folder, keep="\0")

    # ------------------------------------------------------------------- read
    def open(self, name: str, *, group: str | None = None) -> xr.Dataset | xr.DataTree:
        """Open store ``name`` lazily (dask-backed).

        Parameters
        ----------
        name : str
            Catalog name.
        group : str, optional
            For per-stimulus stores, one group (stimulus) as a Dataset.

        Returns
        -------
        xarray.Dataset or xarray.DataTree
            A DataTree for per-stimulus stores when ``group`` is None.
        """
        meta = self.metadata(name)
        url = self._zarr_target(meta["xaffect"]["path"])
        so = self._so(url)
        if group is not None:
            return xr.open_zarr(url, group=group, storage_options=so, chunks={})
        if meta["xaffect"].get("kind") == "tree":
            return xr.open_datatree(url, engine="zarr", chunks={}, storage_options=so)
        return xr.open_zarr(url, storage_options=so, chunks={})

    def provenance(self, name: str) -> dict:
        """The provenance record of store ``name``."""
        meta = self.metadata(name)
        target = self._zarr_target(meta["xaffect"]["path"])
        g = zarr.open_group(self._zstore(target, read_only=True), mode="r")
        return json.loads(g.attrs[_PROV_ATTR])

    def run_stage(self, name: str, build: Callable[[], xr.Dataset | xr.DataTree], *, stage: str,
                  params: Mapping[str, Any], inputs: Sequence[Any] = (), force: bool = False,
                  **write_kwargs: Any) -> xr.Dataset | xr.DataTree:
        """Open ``name`` if current, else build it with ``build()`` and write it."""
        if not force and self.is_current(name, stage=stage, params=params, inputs=inputs):
            return self.open(name)
        return self.write(name, build(), stage=stage, params=params, inputs=inputs, **write_kwargs)


def _data_tokens(obj: Any) -> set[str]:
    import re

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


def _jsonable(v: Any) -> Any:
    return json.loads(canonical_json(v))


def _prepare_for_zarr(ds: xr.Dataset) -> xr.Dataset:
    """Drop stale encodings and make dask chunks regular (zarr needs that)."""
    ds = ds.copy()
    for var in ds.variables.values():
        var.encoding = {k: v for k, v in var.encoding.items() if k in ("dtype", "_FillValue", "units", "calendar")}
        if var.chunks is not None:
            chunks = var.chunks
            if any(len(set(c[:-1])) > 1 or (len(c) > 1 and c[-1] > c[0]) for c in chunks):
                var.data = var.data.rechunk({i: c[0] for i, c in enumerate(chunks)})
    return ds
