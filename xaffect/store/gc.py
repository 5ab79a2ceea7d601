"""Reclaiming store versions nobody can be reading any more (``xaffect gc``).

A version folder is deleted when it is not current and either

* it was retired (replaced or removed) more than ``grace_s`` seconds ago, or
* it has no writer record, or its writer died (same host: the pid is gone;
  another host: the record is older than ``stale_writer_s``).

Order matters for safety against writers running at the same time: version
folders are listed first, writer records next (a writer creates its record
before its folder, so a folder without a record belongs to a finished
writer), and the catalog last (a finished writer committed before removing
its record, so the catalog read afterwards lists its version).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from typing import TYPE_CHECKING

from .commit import age_seconds, delete_version, writer_alive
from .entries import retired_versions

if TYPE_CHECKING:  # pragma: no cover
    from .workspace import Workspace

__all__ = ["collect_garbage", "DEFAULT_GRACE_S", "STALE_WRITER_S"]

#: How long a replaced version stays readable for readers that opened it.
DEFAULT_GRACE_S = 3600.0
#: After how long a writer record of another machine is presumed dead.
STALE_WRITER_S = 24 * 3600.0


def _version_folders(ws: "Workspace", rel: str) -> list[str]:
    """Version folders (``*.zarr``) under ``rel``, relative to the workspace."""
    out: list[str] = []
    path = ws._path(rel)
    try:
        items = ws.fs.ls(path, detail=True, refresh=True) if not ws._local else ws.fs.ls(path, detail=True)
    except (FileNotFoundError, NotADirectoryError):
        return out
    for item in items:
        if item.get("type") != "directory":
            continue
        child = f"{rel}/{item['name'].rstrip('/').rsplit('/', 1)[-1]}"
        if child.endswith(".zarr"):
            out.append(child)
        else:
            out.extend(_version_folders(ws, child))
    return out


def collect_garbage(ws: "Workspace", *, grace_s: float = DEFAULT_GRACE_S, stale_writer_s: float = STALE_WRITER_S,
                    only: str | None = None, dry_run: bool = False) -> list[str]:
    """Delete versions of ``ws`` nobody can be reading or writing.

    Parameters
    ----------
    ws : Workspace
    grace_s : float
        Retired versions younger than this are kept (readers may hold them).
    stale_writer_s : float
        Writer records of other hosts older than this are presumed dead.
    only : str, optional
        Limit to one store's folder (``stores/features/hubert``), as after a write.
    dry_run : bool
        Only report what would be deleted.

    Returns
    -------
    list of str
        Deleted (or deletable) versions, relative to the workspace root.
    """
    folders = _version_folders(ws, only or "stores")
    records_dir = ws._path(".xaffect/writers")
    try:
        records = {os.path.basename(p).removesuffix(".json"): p
                   for p in ws.fs.ls(records_dir, detail=False, **({} if ws._local else {"refresh": True}))}
    except FileNotFoundError:
        records = {}
    cat = ws._catalog.read()
    current = {((e.get("metadata") or {}).get("xaffect") or {}).get("path") for e in cat["entries"].values()}
    retired = {r["path"]: r for r in retired_versions(cat)}
    doomed = []
    for rel in folders:
        if rel in current:
            continue
        token = rel.rsplit("/", 1)[-1].removesuffix(".zarr")
        if token in records:
            if writer_alive(ws.fs, records[token], stale_writer_s):
                continue
        elif rel in retired and age_seconds(retired[rel]["at"]) < grace_s:
            continue
        doomed.append(rel)
    if dry_run:
        return doomed
    for rel in doomed:
        delete_version(ws.fs, ws.root, rel, local=ws._local)
        token = rel.rsplit("/", 1)[-1].removesuffix(".zarr")
        if token in records:
            with contextlib.suppress(OSError):
                ws.fs.rm_file(records[token])
    scanned = set(folders)
    prefix = f"{only}/" if only else "stores/"
    gone = {p for p, r in retired.items()
            if p in set(doomed) or (p.startswith(prefix) and p not in scanned and age_seconds(r["at"]) >= grace_s)}
    if gone:
        def forget(data: dict) -> None:
            data["metadata"]["retired"] = [r for r in retired_versions(data) if r["path"] not in gone]

        ws._catalog.update(forget)
    if only is None and ws._local:
        shutil.rmtree(ws._path(".xaffect/trash"), ignore_errors=True)
    return doomed
