"""The life of a store version: being written, current, retired, reclaimed.

::

    stores/<name>/<identity16>-<token>.zarr    one version
    .xaffect/writers/<token>.json              "being written by host/pid since t"
    .xaffect/scratch/<prefix>~<host>~<pid>~<token>/   a process's local scratch space

* A version is written in its own folder, then committed by the catalog
  transaction (:mod:`.catalog`). The writer's record says it is alive, so no
  one removes a version still being written.
* A version replaced by a newer one is *retired*, not deleted: the catalog
  keeps it (with the time) for a grace period, because a reader may have
  opened it lazily a moment before. :func:`collect_garbage` (``xaffect gc``)
  deletes retired versions past the grace period and versions whose writer
  died.
* Deletion is ordered so that a reader can always tell: a tombstone is
  written first and removed last (on a local disk the folder is first renamed
  away, atomically). Readers opened through the workspace check, after
  reading each chunk, that their version has neither a tombstone nor lost its
  metadata, and raise :class:`~xaffect.errors.StoreError` instead of handing
  back zarr's fill values.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import fsspec

from ..errors import StoreError

__all__ = ["TOMBSTONE", "WriterRecord", "delete_version", "version_gone", "guard_dataset", "scratch_dir",
           "now_iso", "age_seconds", "pid_alive"]

TOMBSTONE = "xaffect-deleted"
HOST = socket.gethostname()


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")


def age_seconds(stamp: str) -> float:
    """Seconds since an ISO time stamp (0 for an unreadable one: keep it)."""
    try:
        then = _dt.datetime.fromisoformat(stamp)
    except (TypeError, ValueError):
        return 0.0
    return (_dt.datetime.now(_dt.timezone.utc) - then).total_seconds()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class WriterRecord:
    """A small file saying which process is writing a version (removed when done).

    Parameters
    ----------
    fs : fsspec.AbstractFileSystem
    root : str
        Workspace root on ``fs``.
    rel : str
        The version's path relative to the root.
    """

    def __init__(self, fs: fsspec.AbstractFileSystem, root: str, rel: str):
        self.fs, self.rel = fs, rel
        token = rel.rsplit("/", 1)[-1].removesuffix(".zarr")
        self.path = f"{root}/.xaffect/writers/{token}.json"

    def __enter__(self) -> "WriterRecord":
        self.fs.makedirs(self.path.rsplit("/", 1)[0], exist_ok=True)
        self.fs.pipe_file(self.path, json.dumps({"host": HOST, "pid": os.getpid(), "started": now_iso(),
                                                 "version": self.rel}).encode())
        return self

    def __exit__(self, *exc: Any) -> None:
        with contextlib.suppress(OSError):
            self.fs.rm_file(self.path)


def writer_alive(fs: fsspec.AbstractFileSystem, record_path: str, stale_s: float) -> bool:
    """Whether the writer of a record may still be running."""
    try:
        rec = json.loads(fs.cat_file(record_path))
    except (OSError, ValueError):
        return False
    if rec.get("host") == HOST:
        return pid_alive(int(rec.get("pid", -1)))
    return age_seconds(rec.get("started", "")) < stale_s  # another machine: trust it for a while


def delete_version(fs: fsspec.AbstractFileSystem, root: str, rel: str, *, local: bool) -> None:
    """Delete one version so that no reader can mistake its absence for data.

    Local: rename the folder into ``.xaffect/trash`` (atomic), then remove it.
    Elsewhere: tombstone first, chunks next, root metadata, tombstone last.
    """
    path = f"{root}/{rel}"
    if local:
        trash = f"{root}/.xaffect/trash/{uuid.uuid4().hex}"
        os.makedirs(os.path.dirname(trash), exist_ok=True)
        try:
            os.replace(path, trash)
        except FileNotFoundError:
            return
        shutil.rmtree(trash, ignore_errors=True)
        return
    if not fs.exists(path):
        return
    fs.pipe_file(f"{path}/{TOMBSTONE}", now_iso().encode())
    keep = {f"{path}/zarr.json", f"{path}/{TOMBSTONE}"}
    rest = [p for p in fs.find(path) if p not in keep]
    if rest:
        fs.rm(rest)
    with contextlib.suppress(FileNotFoundError):
        fs.rm_file(f"{path}/zarr.json")
    with contextlib.suppress(FileNotFoundError):
        fs.rm_file(f"{path}/{TOMBSTONE}")
    with contextlib.suppress(OSError):
        fs.rm(path, recursive=True)
    fs.invalidate_cache(path)


def version_gone(fs: fsspec.AbstractFileSystem, version_path: str) -> bool:
    """True once a version is (being) deleted: tombstoned or without root metadata."""
    if isinstance(fs, fsspec.implementations.local.LocalFileSystem):
        return not os.path.exists(f"{version_path}/zarr.json") or os.path.exists(f"{version_path}/{TOMBSTONE}")
    try:  # one listing (a single request on object stores) instead of two existence checks
        names = {p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(version_path, detail=False, refresh=True)}
    except (FileNotFoundError, NotADirectoryError):
        return True
    return TOMBSTONE in names or "zarr.json" not in names


def _checked_block(block: Any, fs: fsspec.AbstractFileSystem, version_path: str, label: str) -> Any:
    # runs after dask has read the chunk: if the version is gone now, the chunk
    # may have been read from a half-deleted folder (zarr fills what is missing)
    if version_gone(fs, version_path):
        raise StoreError(f"{label}: the version this reader opened ({version_path}) was deleted while it "
                         "was being read (replaced and garbage-collected); open the store again")
    return block


def guard_dataset(ds: Any, fs: fsspec.AbstractFileSystem, version_path: str, label: str) -> Any:
    """Make every dask-backed variable of ``ds`` check its version after each chunk read.

    Parameters
    ----------
    ds : xarray.Dataset
        As opened lazily from the version's zarr store.
    fs, version_path
        Where the version lives.
    label : str
        Store name for messages.

    Returns
    -------
    xarray.Dataset
        Same values, chunks and attrs.
    """
    import dask.array as da

    out = ds.copy()
    for name, var in ds.variables.items():
        if isinstance(var.data, da.Array):
            guarded = da.map_blocks(_checked_block, var.data, fs, version_path, label, dtype=var.dtype,
                                    meta=var.data._meta)
            out.variables[name].data = guarded
    return out


@contextlib.contextmanager
def scratch_dir(local_root: str, prefix: str) -> Iterator[str]:
    """A private scratch folder under ``local_root/.xaffect/scratch``, removed on exit.

    Scratch left by killed processes of this host is removed on the next call.
    """
    base = os.path.join(local_root, ".xaffect", "scratch")
    os.makedirs(base, exist_ok=True)
    for entry in os.listdir(base):
        parts = entry.split("~")  # prefix~host~pid~token; host names hold no "~"
        if len(parts) == 4 and parts[1] == HOST and parts[2].isdigit() and not pid_alive(int(parts[2])):
            shutil.rmtree(os.path.join(base, entry), ignore_errors=True)
    path = os.path.join(base, f"{prefix}~{HOST}~{os.getpid()}~{uuid.uuid4().hex[:8]}")
    os.makedirs(path)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
