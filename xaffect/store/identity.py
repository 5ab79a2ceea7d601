"""Content identity of input files, with a cache that cannot be fooled by a
rewrite of the same size and modification time.

A file's identity is the SHA-256 of its bytes, streamed. Hashing a large
stimulus on every run is slow, so hashes are cached in the workspace under a
key made of what changes whenever the content may have:

* local files: path, size, ``mtime_ns``, ``ctime_ns``, inode and device. A
  rewrite in place changes ``ctime`` (which, unlike ``mtime``, nobody can set
  back); a replace changes the inode. Timestamps have coarse ticks (a few ms
  on Linux), so, as git does for its index ("racy git"), an entry hashed less
  than :data:`RACY_SECONDS` after the file's last change is not trusted and
  the file is hashed again; files up to :data:`ALWAYS_HASH_BYTES` are always
  hashed (cheap, and no key can beat reading them);
* object stores: ETag and version id (content-derived, unlike
  ``LastModified``'s one-second resolution); a backend that gives neither is
  never cached.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Mapping
from typing import Any

import fsspec

from ..errors import InputError

__all__ = ["file_identity", "content_key", "load_hash_cache", "save_hash_cache", "RACY_SECONDS",
           "ALWAYS_HASH_BYTES"]

RACY_SECONDS = 2.0
ALWAYS_HASH_BYTES = 1 << 20
_REMOTE_KEYS = ("ETag", "etag", "VersionId", "version_id", "generation", "md5Hash", "crc32c", "content_md5")


def _is_local(fs: fsspec.AbstractFileSystem) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return "file" in protocols or "local" in protocols


def content_key(fs: fsspec.AbstractFileSystem, path: str) -> tuple[str | None, float, int]:
    """Cache key of a file's current content, its last change and its size.

    Returns
    -------
    key : str or None
        ``None`` when the backend gives nothing content-derived (no caching).
    changed : float
        Seconds since the epoch of the last change (0 when unknown).
    size : int
    """
    if _is_local(fs):
        st = os.stat(path)
        key = f"{path}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}|{st.st_ino}|{st.st_dev}"
        return key, max(st.st_mtime_ns, st.st_ctime_ns) / 1e9, st.st_size
    info = fs.info(path)
    parts = [f"{k}={info[k]}" for k in _REMOTE_KEYS if info.get(k)]
    size = int(info.get("size") or 0)
    if not parts:
        return None, 0.0, size
    return f"{fs.unstrip_protocol(path)}|{size}|{'|'.join(parts)}", 0.0, size


def _sha256(fs: fsspec.AbstractFileSystem, path: str) -> str:
    h = hashlib.sha256()
    with fs.open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return "sha256:" + h.hexdigest()


def file_identity(ref: str, cache: dict, storage_options: Mapping[str, Any] | None = None) -> str:
    """Content hash of a file, or of a folder's files (names and hashes).

    Parameters
    ----------
    ref : str
        Local path or fsspec URL.
    cache : dict
        Hash cache (see :func:`load_hash_cache`), updated in place.
    storage_options : mapping, optional
        fsspec options for URLs.

    Returns
    -------
    str
        ``"sha256:<hex>"`` for a file, ``"dir:<hex>"`` for a folder.
    """
    fs, path = fsspec.core.url_to_fs(ref, **(dict(storage_options or {}) if "://" in ref else {}))
    if not fs.exists(path):
        raise InputError(f"{ref}: input file does not exist")
    if fs.isdir(path):
        files = sorted(p for p in fs.find(path) if not os.path.basename(p).startswith("."))
        h = hashlib.sha256()
        for p in files:
            h.update(os.path.relpath(p, path).encode())
            h.update(file_identity(fs.unstrip_protocol(p), cache, storage_options).encode())
        return "dir:" + h.hexdigest()
    key, changed, size = content_key(fs, path)
    hit = cache.get(key) if key else None
    if isinstance(hit, dict) and size > ALWAYS_HASH_BYTES and hit.get("hashed_at", 0) - changed > RACY_SECONDS:
        return hit["hash"]
    started = time.time()
    digest = _sha256(fs, path)
    if key and size > ALWAYS_HASH_BYTES:
        cache[key] = {"hash": digest, "hashed_at": started}
    return digest


def load_hash_cache(fs: fsspec.AbstractFileSystem, path: str) -> dict:
    """Read the hash cache (a damaged or missing cache is an empty one)."""
    try:
        data = json.loads(fs.cat_file(path))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) else {}


def save_hash_cache(fs: fsspec.AbstractFileSystem, path: str, cache: dict) -> None:
    """Merge ``cache`` into the stored cache; never fails a stage (a cache only)."""
    try:
        merged = {**load_hash_cache(fs, path), **cache}
        text = json.dumps(merged).encode()
        if _is_local(fs):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = f"{path}.{os.getpid()}"
            with open(tmp, "wb") as f:
                f.write(text)
            os.replace(tmp, path)  # readers see the old or the new cache, never half of one
        else:
            fs.pipe_file(path, text)
    except OSError:
        pass  # read-only workspace: hashes are recomputed next time
