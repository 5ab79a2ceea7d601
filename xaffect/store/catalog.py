"""``catalog.yaml``: reading it safely and changing it without losing updates.

The catalog is the workspace's single commit point: a store exists for
readers exactly when the catalog lists it. Several processes (a lab's users,
a cluster's jobs) change it at once, so every change is a *transaction*: read,
modify, write back only if nobody wrote in between, else retry.

* local disks and shared (NFS-like) folders: an OS file lock
  (``filelock.FileLock``: ``flock``, released by the kernel when its holder
  dies, so a crashed writer never leaves a lock behind; where a filesystem
  has no ``flock`` filelock falls back to an exclusive-create lock file)
  serialises writers; the new catalog is written to a fixed scratch name and
  renamed over the old one (atomic), so readers see the old or the new
  catalog, never half of one, and a kill leaves no ``catalog.yaml.*.tmp``;
* S3: no lock service exists, so the write is a conditional PUT
  (``If-Match`` on the ETag read, ``If-None-Match: *`` to create); a writer
  that lost the race (HTTP 412) re-reads and retries;
* any other fsspec backend (GCS, Azure, SFTP, ...): one writer at a time per
  process (a thread lock); nothing guards against other processes, so the
  first catalog transaction warns, naming the backend (``UnsafeBackendWarning``;
  in-process ``memory://`` is exempt). gcsfs exposes only create-if-absent
  through fsspec (``if_generation_match=0``) and adlfs only ``overwrite=False``,
  not a compare-and-swap on the version read; see the README's failure model.

The format is intake 2's, with every store registered under an alias (its
name) so that ``list(cat)``, ``print(cat)`` and ``cat["features.hubert"]``
work in plain intake. ``metadata.xaffect`` holds the catalog format.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import fsspec
import yaml

from ..errors import StoreError

__all__ = ["CATALOG_FILE", "CATALOG_FORMAT", "CatalogFile", "UnsafeBackendWarning", "empty_catalog", "add_aliases"]

CATALOG_FILE = "catalog.yaml"
#: 1: entries without aliases (xaffect 0.1); 2: aliases, retired versions.
CATALOG_FORMAT = 2
LOCK_TIMEOUT_S = 60.0
_thread_lock = threading.RLock()
# libyaml's safe loader/dumper when PyYAML was built with it (about 10x faster on big catalogs)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class UnsafeBackendWarning(UserWarning):
    """Catalog commits on this backend are not safe between processes (see the README's failure model)."""


_warned: set[str] = set()


def empty_catalog(description: str = "") -> dict:
    """The dict of a new, empty intake 2 catalog of the current format."""
    return {"version": 2, "data": {}, "entries": {}, "aliases": {}, "user_parameters": {},
            "metadata": {"xaffect": CATALOG_FORMAT, "description": description}}


def add_aliases(data: dict) -> dict:
    """Register every entry under an alias of its own name (the upgrade 1 → 2)."""
    aliases = data.setdefault("aliases", {}) or {}
    data["aliases"] = aliases
    for key in data.get("entries", {}):
        aliases.setdefault(key, key)
    for alias in [a for a, target in aliases.items() if target not in data.get("entries", {})]:
        del aliases[alias]  # an alias pointing nowhere would break `cat[alias]`
    data.setdefault("metadata", {})["xaffect"] = max(CATALOG_FORMAT, _format_of(data))
    return data


def _format_of(data: dict) -> int:
    fmt = (data.get("metadata") or {}).get("xaffect", 1)
    return fmt if isinstance(fmt, int) else 1


def _is_precondition_failure(exc: BaseException) -> bool:
    if isinstance(exc, FileExistsError):
        return True
    cause = exc.__cause__ or exc.__context__
    code = getattr(cause, "response", {}).get("Error", {}).get("Code") if cause is not None else None
    text = str(exc).lower()
    return (code in ("PreconditionFailed", "412", "ConditionalRequestConflict")
            or "precondition" in text or "pre-condition" in text)


class CatalogFile:
    """The catalog of one workspace on one filesystem.

    Parameters
    ----------
    fs : fsspec.AbstractFileSystem
    root : str
        Workspace root as a path on ``fs``.
    url : str
        Workspace URL, used in messages.
    """

    def __init__(self, fs: fsspec.AbstractFileSystem, root: str, url: str):
        self.fs, self.root, self.url = fs, root, url
        self.path = f"{root}/{CATALOG_FILE}" if root != "/" else f"/{CATALOG_FILE}"
        protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
        self.kind = "local" if ("file" in protocols or "local" in protocols) else (
            "s3" if {"s3", "s3a"} & set(protocols) else "other")
        self.where = f"{url}/{CATALOG_FILE}"

    # ------------------------------------------------------------------ read
    def parse(self, raw: bytes) -> dict:
        """Validate the catalog's bytes; damage is a one-line StoreError."""
        if not raw.strip():
            raise StoreError(f"{self.where}: the catalog is empty (damaged); restore it from a copy, "
                             "or move it aside and rerun the stages to rebuild it")
        try:
            data = yaml.load(raw, Loader=_LOADER)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise StoreError(f"{self.where}: the catalog is not valid YAML{where} (truncated or damaged)") from None
        if not isinstance(data, dict) or data.get("version") != 2 or not isinstance(data.get("entries"), dict):
            raise StoreError(f"{self.where}: not an intake 2 catalog (truncated or damaged: no 'version: 2' "
                             "and 'entries')")
        fmt = _format_of(data)
        if fmt > CATALOG_FORMAT:
            raise StoreError(f"{self.where}: written by a newer xaffect (catalog format {fmt}, this xaffect "
                             f"reads up to {CATALOG_FORMAT}); upgrade xaffect")
        for key in ("data", "aliases", "user_parameters", "metadata"):
            if not isinstance(data.get(key), dict):
                data[key] = {}
        return data

    def check_aliases(self, data: dict) -> dict:
        """An alias pointing at no entry is a one-line error (a write repairs it)."""
        for alias, target in data["aliases"].items():
            if target not in data["entries"]:
                raise StoreError(f"{self.where}: alias {alias!r} points to {target!r}, which is not an entry "
                                 "(opening the workspace for writing drops it)")
        return data

    def read(self) -> dict:
        """The catalog as a validated dict (one GET on S3)."""
        return self.check_aliases(self.read_versioned()[0])

    def read_versioned(self) -> tuple[dict, str | None]:
        """The catalog and a token of the version read (the ETag on S3)."""
        try:
            if self.kind == "s3":
                raw, token = self._read_s3()
            else:
                raw, token = self.fs.cat_file(self.path), None
        except FileNotFoundError:
            raise StoreError(f"{self.url}: not an xaffect workspace (no {CATALOG_FILE}; "
                             "create one with `xaffect init DIR` or Workspace.init)") from None
        except IsADirectoryError:
            raise StoreError(f"{self.where}: is a folder, not a catalog file") from None
        except PermissionError:
            raise StoreError(f"{self.where}: permission denied reading the catalog") from None
        return self.parse(raw), token

    def _read_s3(self) -> tuple[bytes, str | None]:
        # one GET gives the bytes and the ETag of exactly those bytes (s3fs's
        # cat_file would add a HEAD for the size, and info() another): a rerun
        # that finds everything current pays one round trip for the catalog
        from fsspec.asyn import sync

        bucket, key, _ = self.fs.split_path(self.path)

        async def get() -> tuple[bytes, str | None]:
            resp = await self.fs._call_s3("get_object", Bucket=bucket, Key=key)
            try:
                return await resp["Body"].read(), resp.get("ETag")
            finally:
                resp["Body"].close()

        self.fs.invalidate_cache(self.path)
        return sync(self.fs.loop, get)

    # ----------------------------------------------------------------- write
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        if self.kind != "local":
            with _thread_lock:
                yield
            return
        import filelock

        lock_dir = f"{self.root}/.xaffect"
        lock_path = f"{lock_dir}/catalog.lock"
        try:
            os.makedirs(lock_dir, exist_ok=True)
            lock = filelock.FileLock(lock_path, timeout=LOCK_TIMEOUT_S, thread_local=False)
            with _thread_lock, lock:
                yield
        except filelock.Timeout:
            raise StoreError(f"{lock_path}: the catalog stayed locked by another live process for "
                             f"{LOCK_TIMEOUT_S:.0f} s; is a stage hanging?") from None
        except PermissionError:
            raise StoreError(f"{self.url}: the workspace is read-only (cannot lock {lock_path})") from None

    def _write_local(self, data: dict) -> None:
        text = yaml.dump(data, Dumper=_DUMPER, sort_keys=False).encode()
        # fixed scratch name: only the lock holder writes it, so nothing accumulates after kills
        tmp = f"{self.root}/.xaffect/catalog.next.yaml"
        try:
            with open(tmp, "wb") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)  # atomic on POSIX, also over NFS
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.remove(tmp)
            raise StoreError(f"{self.where}: cannot write the catalog ({exc.strerror or exc}); "
                             "it is unchanged") from None

    def update(self, change: Callable[[dict], Any], *, create: bool = False) -> Any:
        """Apply ``change`` to the catalog as one transaction; retried on conflict.

        Parameters
        ----------
        change : callable
            Takes the catalog dict, modifies it in place and returns a value;
            it may run more than once (on S3, when another writer won), so it
            must not have side effects outside the dict.
        create : bool
            Create the catalog (empty) if it does not exist yet.

        Returns
        -------
        Whatever ``change`` returned on the attempt that was committed.
        """
        if self.kind == "local":
            with self._locked():
                if create and not os.path.exists(self.path):
                    data = empty_catalog()
                else:
                    data = self.read_versioned()[0]
                out = change(data)
                self._write_local(add_aliases(data))
                return out
        if self.kind == "s3":
            return self._update_s3(change, create)
        self._warn_unsafe()
        with self._locked():
            data = empty_catalog() if create and not self.fs.exists(self.path) else self.read_versioned()[0]
            out = change(data)
            self.fs.pipe_file(self.path, yaml.dump(add_aliases(data), Dumper=_DUMPER, sort_keys=False).encode())
            return out

    def _warn_unsafe(self) -> None:
        protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        if "memory" in protocols or self.url in _warned:
            return  # memory:// lives in this process: the thread lock covers every writer
        _warned.add(self.url)
        warnings.warn(f"{self.url}: the {protocols[0]!r} backend gives xaffect no conditional write on the "
                      "catalog (used: flock on local/NFS folders, If-Match on S3), so two processes committing "
                      "at once can lose one entry; write from one process at a time",
                      UnsafeBackendWarning, stacklevel=4)

    def _update_s3(self, change: Callable[[dict], Any], create: bool) -> Any:
        deadline = time.monotonic() + LOCK_TIMEOUT_S
        attempt = 0
        while True:
            attempt += 1
            if create and not self.fs.exists(self.path):
                data, token = empty_catalog(), None
            else:
                data, token = self.read_versioned()
            out = change(data)
            text = yaml.dump(add_aliases(data), Dumper=_DUMPER, sort_keys=False).encode()
            cond = {"IfMatch": token} if token else {"mode": "create"}
            try:
                self.fs.pipe_file(self.path, text, **cond)
                self.fs.invalidate_cache(self.path)
                return out
            except OSError as exc:
                if not _is_precondition_failure(exc):
                    raise StoreError(f"{self.where}: cannot write the catalog ({exc}); it is unchanged") from None
                self.fs.invalidate_cache(self.path)
                if time.monotonic() > deadline:
                    raise StoreError(f"{self.where}: gave up after {attempt} conflicting catalog updates in "
                                     f"{LOCK_TIMEOUT_S:.0f} s") from None
                time.sleep(random.uniform(0.01, 0.05 * min(attempt, 10)))


def check_workspace_root(fs: fsspec.AbstractFileSystem, root: str, url: str) -> None:
    """A workspace path that is a file, or unreadable, is a one-line error."""
    try:
        if fs.isfile(root):
            raise StoreError(f"{url}: is a file, not a workspace folder")
    except PermissionError:
        raise StoreError(f"{url}: permission denied") from None
    except OSError as exc:
        if exc.errno not in (errno.ENOENT, None):
            raise StoreError(f"{url}: cannot be read ({exc.strerror or exc})") from None
