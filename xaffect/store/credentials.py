"""What of a workspace's storage options and input URLs may be shared.

A catalog and a store's provenance are read by everyone the workspace is
shared with, so they hold only what is *known* to be safe: an allow-list of
fsspec storage options (where the data lives and how to reach it), never a
deny-list of secret-looking names, which misses every backend's new spelling
(Azure ``account_key``/``sas_token``/``connection_string``, HTTP
``headers={"Authorization": ...}``, S3 ``SSECustomerKey`` ...). Credentials
come from the environment or from the caller's own options at read time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["SHAREABLE_OPTIONS", "public_options", "public_ref"]

#: Storage options that locate data without granting access to it, for every
#: fsspec backend: endpoints, regions, anonymous access, addressing and caching.
SHAREABLE_OPTIONS: frozenset[str] = frozenset({
    # s3fs
    "endpoint_url", "anon", "region_name", "use_ssl", "requester_pays", "version_aware",
    "default_block_size", "default_fill_cache", "default_cache_type", "cache_regions",
    "use_listings_cache", "listings_expiry_time", "max_paths", "skip_instance_cache",
    # gcsfs / adlfs / ocifs / webhdfs: names of places, not keys
    "project", "account_name", "account_host", "location", "bucket", "region", "host", "port",
    "protocol", "use_https", "timeout",
    # nested client configuration (filtered recursively with this same list)
    "client_kwargs", "config_kwargs", "s3",
    "signature_version", "addressing_style", "verify", "connect_timeout", "read_timeout",
    "retries", "max_attempts", "mode",
})


def public_options(storage_options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The part of ``storage_options`` that is safe to write into a shared catalog.

    Parameters
    ----------
    storage_options : mapping or None
        fsspec options as given to the workspace (any backend).

    Returns
    -------
    dict
        Only allow-listed keys (:data:`SHAREABLE_OPTIONS`), nested mappings
        filtered the same way; empty mappings are dropped.
    """
    out: dict[str, Any] = {}
    for key, value in (storage_options or {}).items():
        if str(key) not in SHAREABLE_OPTIONS:
            continue
        if isinstance(value, Mapping):
            value = public_options(value)
            if not value:
                continue
        elif not isinstance(value, (str, int, float, bool)) and value is not None:
            continue  # objects (sessions, credential providers) never go into YAML
        out[str(key)] = value
    return out


def public_ref(ref: str) -> str:
    """An input reference with the credentials a URL can carry removed.

    ``user:password@`` and the query string (SAS tokens, pre-signed
    signatures) are replaced by ``<redacted>``; the path stays, so provenance
    still says which file was read.
    """
    if "://" not in ref:
        return ref
    try:
        parts = urlsplit(ref)
    except ValueError:
        return ref
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "<redacted>@" + netloc.rsplit("@", 1)[1]
    query = "<redacted>" if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
