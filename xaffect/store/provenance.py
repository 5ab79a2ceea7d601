"""Provenance records and stage identities.

A stage's *identity* is a hash of its stage name, its parameters and the
identities of its inputs (store identities or file content hashes). Package
versions and creation time are recorded but are not part of the identity, so
upgrading numpy does not invalidate a study, while a changed parameter, model
revision or input file does.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib.metadata
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import PurePath
from typing import Any

import numpy as np

__all__ = ["canonical_json", "identity_of", "package_versions", "make_provenance"]

#: Packages whose versions every store records (when installed).
_RECORDED_PACKAGES = (
    "xaffect", "numpy", "scipy", "xarray", "zarr", "dask", "intake",
    "scikit-learn", "mne", "torch", "transformers", "librosa", "av",
)


def _to_jsonable(obj: Any) -> Any:
    """Turn numpy scalars/arrays, paths and tuples into plain JSON values."""
    if isinstance(obj, Mapping):
        return {str(k): _to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        seq = sorted(obj, key=repr) if isinstance(obj, (set, frozenset)) else obj
        return [_to_jsonable(v) for v in seq]
    if isinstance(obj, np.ndarray):
        return _to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return _to_jsonable(obj.item())
    if isinstance(obj, float):
        if math.isnan(obj) or math.isinf(obj):
            return repr(obj)
        return float(repr(obj)) if obj == obj else None
    if isinstance(obj, PurePath):
        return str(obj)
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    return repr(obj)


def canonical_json(obj: Any) -> str:
    """Serialise ``obj`` to a canonical JSON string (sorted keys, no spaces)."""
    return json.dumps(_to_jsonable(obj), sort_keys=True, separators=(",", ":"))


def identity_of(stage: str, params: Mapping[str, Any], inputs: Sequence[Mapping[str, str]]) -> str:
    """Hash a stage name, its parameters and its input identities.

    Parameters
    ----------
    stage : str
        Stage name, e.g. ``"features"``.
    params : mapping
        JSON-able parameters of the stage.
    inputs : sequence of mapping
        One ``{"ref": ..., "hash": ...}`` record per input.

    Returns
    -------
    str
        Hex SHA-256 digest.
    """
    payload = canonical_json({"stage": stage, "params": params,
                              "inputs": [{"ref": i["ref"], "hash": i["hash"]} for i in inputs]})
    return hashlib.sha256(payload.encode()).hexdigest()


def package_versions(extra: Sequence[str] = ()) -> dict[str, str]:
    """Versions of the recorded packages (and ``extra``) that are installed."""
    out = {}
    for name in (*_RECORDED_PACKAGES, *extra):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def make_provenance(*, stage: str, params: Mapping[str, Any], inputs: Sequence[Mapping[str, str]],
                    identity: str, model: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Assemble the provenance record stored in a store's attrs."""
    return {
        "stage": stage,
        "params": _to_jsonable(params),
        "inputs": _to_jsonable(list(inputs)),
        "identity": identity,
        "model": _to_jsonable(model) if model else None,
        "versions": package_versions(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
