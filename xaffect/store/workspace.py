"""A study's workspace: its Zarr stores and the intake catalog that lists them.

Layout under the workspace root (a local folder, a shared folder or any
fsspec URL)::

    catalog.yaml                       intake 2 catalog, paths relative to itself
    stores/<name>/<identity>.zarr      versions of each store
    .xaffect/                          hash cache, catalog lock, writer records, scratch

A write goes to a fresh version folder; when every chunk is written, one
catalog transaction (:mod:`.catalog`) makes it current. The version it
replaces is retired, kept readable for a grace period, and reclaimed by
:meth:`Workspace.gc` (:mod:`.commit`). Every store stays readable with plain
``xr.open_zarr`` or intake, without xaffect.
"""

from __future__ import annotations

import os
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import fsspec
import xarray as xr

from ..errors import InputError, StoreError
from . import entries as _entries
from .catalog import CATALOG_FILE, CATALOG_FORMAT, CatalogFile, check_workspace_root
from .commit import (WriterRecord, delete_version, guard_dataset, now_iso, scratch_dir, version_gone)
from .compute import compute
from .credentials import public_ref
from .gc import DEFAULT_GRACE_S, collect_garbage
from .identity import file_identity, load_hash_cache, save_hash_cache
from .provenance import canonical_json, identity_of, make_provenance

__all__ = ["Workspace", "open_catalog"]

_PROV_ATTR = "xaffect_provenance"
_IDENT_ATTR = "xaffect_identity"
_STATUS_ATTR = "xaffect_status"
_PENDING = object()

# zarr 3 warns that fixed-length string dtypes are not yet in the v3 spec;
# xarray writes label coordinates that way and reads them back exactly.
warnings.filterwarnings("ignore", message=".*(does not have a Zarr V3 specification|not part in the Zarr format 3).*")


def open_catalog(path: str, **storage_options: Any) -> Any:
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
    import intake

    path = str(path).rstrip("/")
    root = path.rsplit("/", 1)[0] if path.endswith((".yaml", ".yml")) else path
    fs, fpath = fsspec.core.url_to_fs(root, **storage_options)
    CatalogFile(fs, fpath.rstrip("/"), root).read()  # one-line errors for missing or damaged catalogs
    return intake.from_yaml_file(f"{root}/{CATALOG_FILE}", **storage_options)


def _open_zarr(url: str, **kwargs: Any) -> xr.Dataset:
    """``xr.open_zarr`` of a store xaffect wrote: Zarr 3 with consolidated metadata.

    Saying so skips xarray's probing for Zarr 2 keys (``.zmetadata``, ``.zattrs``,
    ``.zgroup``: a HEAD and a LIST each on object stores); a store of another
    format (an older xaffect's) falls back to the probing open.
    """
    try:
        return xr.open_zarr(url, zarr_format=3, consolidated=True, **kwargs)
    except (OSError, KeyError, ValueError):
        return xr.open_zarr(url, **kwargs)


class Workspace:
    """A study's folder (or fsspec URL) holding its stores and ``catalog.yaml``.

    Parameters
    ----------
    path : str or os.PathLike
        Workspace root; must already hold a catalog (see :meth:`init`).
    storage_options : dict, optional
        fsspec options, e.g. ``{"endpoint_url": ..., "key": ..., "secret": ...}``
        for S3. Only allow-listed options (:data:`~xaffect.store.credentials.SHAREABLE_OPTIONS`)
        are written to the catalog; credentials never are.
    """

    def __init__(self, path: str | os.PathLike, *, storage_options: Mapping[str, Any] | None = None):
        self.url = str(path).rstrip("/") or "/"
        self.storage_options = dict(storage_options or {})
        self.fs, self.root = fsspec.core.url_to_fs(self.url, **self.storage_options)
        self.root = self.root.rstrip("/") or "/"
        protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        self._local = "file" in protocols or "local" in protocols
        check_workspace_root(self.fs, self.root, self.url)
        self._catalog = CatalogFile(self.fs, self.root, self.url)
        self._catalog.read()  # missing, damaged or newer catalogs fail here, in one line

    # ------------------------------------------------------------------ set-up
    @classmethod
    def init(cls, path: str | os.PathLike, *, storage_options: Mapping[str, Any] | None = None,
             description: str = "") -> "Workspace":
        """Create a workspace (or open an existing one for writing, upgrading its catalog)."""
        url = str(path).rstrip("/") or "/"
        fs, root = fsspec.core.url_to_fs(url, **dict(storage_options or {}))
        root = root.rstrip("/") or "/"
        check_workspace_root(fs, root, url)
        catalog = CatalogFile(fs, root, url)
        try:
            fs.makedirs(root, exist_ok=True)
            exists = fs.exists(catalog.path)
        except PermissionError:
            raise StoreError(f"{url}: permission denied creating the workspace folder") from None
        if not exists:
            catalog.update(lambda data: data["metadata"].update(description=description), create=True)
        else:
            data = catalog.read_versioned()[0]
            aliases = data["aliases"]
            if (data["metadata"].get("xaffect") != CATALOG_FORMAT or set(data["entries"]) - set(aliases)
                    or set(aliases.values()) - set(data["entries"])):
                catalog.update(lambda d: None)  # the transaction adds aliases, drops dangling ones
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
        import zarr

        if "://" not in target:
            return target
        return zarr.storage.FsspecStore.from_url(target, storage_options=self.storage_options or None,
                                                 read_only=read_only)

    def _read_catalog_dict(self) -> dict:
        return self._catalog.read()

    def catalog(self) -> Any:
        """The workspace's intake catalog (re-read from storage)."""
        return open_catalog(self.url, **self.storage_options)

    def names(self) -> list[str]:
        """Names of the complete stores (and their per-stimulus groups) listed in the catalog."""
        return sorted(self._read_catalog_dict()["entries"])

    def __contains__(self, name: str) -> bool:
        return name in self._read_catalog_dict()["entries"]

    def metadata(self, name: str, *, entries: Mapping[str, Any] | None = None) -> dict:
        """Catalog metadata of ``name`` (stage, dims, labels, identity, ...).

        For a per-stimulus group (``"stems/clip01"``) the ``xaffect`` record
        is its parent store's, with ``group`` added. ``entries``: the
        catalog's entries when the caller has just read them.
        """
        entries = self._read_catalog_dict()["entries"] if entries is None else entries
        if name not in entries:
            raise StoreError(f"{self.url}: no store named {name!r} (have: {', '.join(sorted(entries)) or 'none'})")
        meta = dict(entries[name].get("metadata") or {})
        if "xaffect" not in meta and "/" in name:
            parent, group = name.split("/", 1)
            parent_meta = (entries.get(parent) or {}).get("metadata") or {}
            if "xaffect" in parent_meta:
                meta["xaffect"] = {**parent_meta["xaffect"], "group": group}
        if "xaffect" not in meta or "path" not in meta["xaffect"]:
            raise StoreError(f"{self.url}/{CATALOG_FILE}: entry {name!r} was not written by xaffect "
                             "(no 'xaffect' metadata)")
        return meta

    def store_url(self, name: str) -> str:
        """URL of the current version of store ``name`` (with ``/group`` for a group entry)."""
        info = self.metadata(name)["xaffect"]
        url = self._full_url(info["path"])
        return f"{url}/{info['group']}" if info.get("group") else url

    def scratch(self, prefix: str = "scratch"):
        """A context manager giving a private scratch folder, removed on exit.

        It lives in the workspace (``.xaffect/scratch``), never in the system
        temp folder; a remote workspace uses ``$XDG_CACHE_HOME/xaffect``. What a
        killed process left there is removed by the next call on this host.
        """
        if self._local:
            base = self.root
        else:
            base = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "xaffect")
        return scratch_dir(base, prefix)

    # --------------------------------------------------------------- identity
    def input_identities(self, inputs: Iterable[Any], *,
                         entries: Mapping[str, Any] | None = None) -> list[dict[str, str]]:
        """Identity records of stage inputs.

        Parameters
        ----------
        inputs : iterable
            Store names of this workspace, file or folder paths/URLs, or
            ``(ref, hash)`` pairs whose identity the caller already knows.
        entries : mapping, optional
            The catalog's entries when the caller has just read them (saves a read).

        Returns
        -------
        list of dict
            ``{"ref": ..., "hash": ...}`` per input; URLs without their credentials.
        """
        cache = None
        out = []
        for item in inputs:
            if isinstance(item, tuple) and len(item) == 2:
                out.append({"ref": public_ref(str(item[0])), "hash": str(item[1])})
                continue
            if entries is None:
                entries = self._read_catalog_dict()["entries"]
            if str(item) in entries:
                out.append({"ref": f"store:{item}",
                            "hash": self.metadata(str(item), entries=entries)["xaffect"]["identity"]})
                continue
            if cache is None:
                cache = load_hash_cache(self.fs, self._path(".xaffect/hashes.json"))
                known = dict(cache)
            ref = os.fspath(item)
            out.append({"ref": public_ref(ref), "hash": file_identity(ref, cache, self.storage_options)})
        if cache and cache != known:  # a rerun whose inputs all hit the cache writes nothing
            save_hash_cache(self.fs, self._path(".xaffect/hashes.json"), cache)
        return out

    def identity(self, *, stage: str, params: Mapping[str, Any], inputs: Iterable[Any] = (),
                 entries: Mapping[str, Any] | None = None) -> str:
        """The identity hash a stage with these parameters and inputs has."""
        return identity_of(stage, params, self.input_identities(inputs, entries=entries))

    def is_current(self, name: str, *, stage: str, params: Mapping[str, Any], inputs: Iterable[Any] = ()) -> bool:
        """Whether store ``name`` exists, is complete and has this identity."""
        matched = self._identity_matches(name, stage=stage, params=params, inputs=inputs)
        return matched is not None and not version_gone(self.fs, self._path(matched[0]["path"]))

    def _identity_matches(self, name: str, *, stage: str, params: Mapping[str, Any],
                          inputs: Iterable[Any]) -> tuple[dict, dict] | None:
        """``(xaffect record, catalog entries)`` when ``name`` is listed with this identity, else None.

        One catalog read serves the check, the identities of input stores and
        the caller's next step (a rerun on S3 is a handful of round trips).
        """
        entries = self._read_catalog_dict()["entries"]
        if name not in entries:
            return None
        info = self.metadata(name, entries=entries)["xaffect"]
        try:
            same = info.get("identity") == self.identity(stage=stage, params=params, inputs=inputs, entries=entries)
        except InputError:
            return None
        return (info, entries) if same else None

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
            The written store, opened lazily. If another process committed a
            version of ``name`` with the same identity while this one was
            writing, theirs is kept (a warning says so); with a different
            identity this write is discarded and a StoreError raised.
        """
        if not name or any(c in name for c in " /\\:{}~"):
            raise StoreError(f"{name!r}: store names use letters, digits, '.', '_' and '-' only")
        if not isinstance(data, (xr.Dataset, xr.DataTree)):
            raise StoreError(f"{name}: write takes an xarray Dataset or DataTree, not {type(data).__name__}")
        records = self.input_identities(inputs)
        ident = identity_of(stage, params, records)
        prov = make_provenance(stage=stage, params=params, inputs=records, identity=ident, model=model)
        entries = self._read_catalog_dict()["entries"]
        base = ((entries.get(name) or {}).get("metadata") or {}).get("xaffect", {}).get("path")
        folder = f"stores/{name.replace('.', '/')}"
        rel = f"{folder}/{ident[:16]}-{uuid.uuid4().hex[:8]}.zarr"
        attrs = {_PROV_ATTR: canonical_json(prov), _IDENT_ATTR: ident, _STATUS_ATTR: "writing"}

        t0 = time.perf_counter()
        outcome: Any = _PENDING  # until the catalog transaction returns
        try:
            with WriterRecord(self.fs, self.root, rel):
                self._materialise(name, data, rel, attrs, progress)
                elapsed = time.perf_counter() - t0
                fresh = _entries.store_entries(name, data, rel=rel, stage=stage, description=description,
                                               metadata=metadata, ident=ident, created=prov["created"],
                                               elapsed=elapsed, storage_options=self.storage_options)
                outcome = self._catalog.update(lambda cat: _entries.commit(cat, name, fresh, base, rel, now_iso()))
                if outcome is not None:
                    delete_version(self.fs, self.root, rel, local=self._local)
        except OSError as exc:
            if outcome is _PENDING:
                self._discard(rel)
            if isinstance(exc, PermissionError):
                raise StoreError(f"{self.url}: the workspace is read-only (writing store {name!r}: "
                                 f"{exc.filename or exc}); nothing was changed") from None
            raise StoreError(f"{self.url}: writing store {name!r} failed ({exc.strerror or exc}); the partial "
                             "version was removed, the catalog and older versions are unchanged") from None
        except BaseException:
            if outcome is _PENDING:  # never discard a version the catalog already lists
                self._discard(rel)
            raise
        if outcome is not None:
            winner = outcome.get("identity")
            if winner == ident:
                warnings.warn(f"{self.url}: store {name!r} was committed by another process while this one "
                              "wrote the same content; kept theirs", stacklevel=2)
            else:
                raise StoreError(f"{self.url}: store {name!r} was replaced by another writer (identity "
                                 f"{str(winner)[:12]}, created {outcome.get('created')}) while this one was "
                                 "writing; this version was discarded, rerun to replace theirs")
        try:
            collect_garbage(self, grace_s=DEFAULT_GRACE_S, only=folder)
        except (OSError, StoreError):
            pass  # the write is committed; what is left, `xaffect gc` reclaims later
        return self.open(name)

    def _materialise(self, name: str, data: xr.Dataset | xr.DataTree, rel: str, attrs: dict,
                     progress: bool) -> None:
        import zarr

        target = self._zarr_target(rel)
        if isinstance(data, xr.DataTree):
            tree = data.copy()
            tree.attrs = {**tree.attrs, **attrs}
            tree = tree.map_over_datasets(_entries.prepare_for_zarr)
            delayed = tree.to_zarr(target, mode="w-", compute=False, consolidated=False,
                                   write_inherited_coords=True, storage_options=self._so(target))
        else:
            ds = _entries.prepare_for_zarr(data)
            ds.attrs = {**data.attrs, **attrs}
            delayed = ds.to_zarr(target, mode="w-", compute=False, consolidated=False,
                                 storage_options=self._so(target))
        if delayed is not None:
            compute(delayed, desc=f"write {name}", progress=progress)
        group = zarr.open_group(self._zstore(target), mode="r+")
        group.attrs[_STATUS_ATTR] = "complete"
        zarr.consolidate_metadata(self._zstore(target))

    def _discard(self, rel: str) -> None:
        # dask raises on a write's first failed task without waiting for the
        # chunk writes still running on other threads or workers, and those
        # recreate the version's folder after it was removed: remove until it
        # stays gone (a few tenths of a second at most; gc reclaims any rest)
        path = f"{self.root}/{rel}"
        for _ in range(30):
            try:
                delete_version(self.fs, self.root, rel, local=self._local)
            except OSError:
                return  # e.g. read-only: nothing was written; gc removes what is left
            time.sleep(0.1)
            if not (os.path.exists(path) if self._local else self.fs.exists(path)):
                return

    def remove(self, name: str) -> None:
        """Unregister store ``name``; its data is retired and reclaimed by :meth:`gc`."""
        self.metadata(name)
        self._catalog.update(lambda cat: _entries.drop(cat, name, retire_at=now_iso()))

    def gc(self, *, grace_s: float = DEFAULT_GRACE_S, dry_run: bool = False) -> list[str]:
        """Delete retired versions older than ``grace_s`` and versions whose writer died.

        Returns
        -------
        list of str
            Versions (paths relative to the workspace) removed, or that would be.
        """
        return collect_garbage(self, grace_s=grace_s, dry_run=dry_run)

    # ------------------------------------------------------------------- read
    def open(self, name: str, *, group: str | None = None,
             entries: Mapping[str, Any] | None = None) -> xr.Dataset | xr.DataTree:
        """Open store ``name`` lazily (dask-backed).

        Parameters
        ----------
        name : str
            Catalog name, or ``"store/group"`` for one per-stimulus group.
        group : str, optional
            For per-stimulus stores, one group (stimulus) as a Dataset.
        entries : mapping, optional
            The catalog's entries when the caller has just read them.

        Returns
        -------
        xarray.Dataset or xarray.DataTree
            A DataTree for per-stimulus stores when ``group`` is None. Reading
            a chunk after this version was garbage-collected raises StoreError.
        """
        info = self.metadata(name, entries=entries)["xaffect"]
        group = group or info.get("group")
        version_path = self._path(info["path"])
        if version_gone(self.fs, version_path):
            raise StoreError(f"{self.url}: store {name!r} is listed but its data ({info['path']}) is missing "
                             "(deleted behind the catalog's back?); rerun the stage that writes it")
        url = self._zarr_target(info["path"])
        so = self._so(url)
        label = f"{self.url}: store {name!r}"
        try:
            if group is not None:
                ds = _open_zarr(url, group=group, storage_options=so, chunks={})
                return guard_dataset(ds, self.fs, version_path, label)
            if info.get("kind") == "tree":
                tree = xr.open_datatree(url, engine="zarr", chunks={}, storage_options=so)
                return tree.map_over_datasets(lambda ds: guard_dataset(ds, self.fs, version_path, label))
            return guard_dataset(_open_zarr(url, storage_options=so, chunks={}), self.fs, version_path, label)
        except (OSError, KeyError, ValueError):
            if version_gone(self.fs, version_path):  # deleted while opening (gc after a rewrite)
                raise StoreError(f"{label}: its version ({info['path']}) was deleted while being opened; "
                                 "open it again") from None
            raise

    def provenance(self, name: str) -> dict:
        """The provenance record of store ``name`` (of its parent for a group)."""
        import json

        import zarr

        info = self.metadata(name)["xaffect"]
        if version_gone(self.fs, self._path(info["path"])):
            raise StoreError(f"{self.url}: store {name!r}: its data ({info['path']}) is missing")
        g = zarr.open_group(self._zstore(self._zarr_target(info["path"]), read_only=True), mode="r")
        return json.loads(g.attrs[_PROV_ATTR])

    def run_stage(self, name: str, build: Callable[[], xr.Dataset | xr.DataTree], *, stage: str,
                  params: Mapping[str, Any], inputs: Sequence[Any] = (), force: bool = False,
                  **write_kwargs: Any) -> xr.Dataset | xr.DataTree:
        """Open ``name`` if current, else build it with ``build()`` and write it."""
        matched = None if force else self._identity_matches(name, stage=stage, params=params, inputs=inputs)
        if matched is not None:
            try:
                return self.open(name, entries=matched[1])  # checks that the data is still there
            except StoreError:
                pass  # listed but deleted behind the catalog's back: rebuild
        return self.write(name, build(), stage=stage, params=params, inputs=inputs, **write_kwargs)
