"""xaffect: which representations of a sound drive what people feel and what their brains do.

Stages map labelled, chunked Zarr stores to stores through a
:class:`~xaffect.store.Workspace` whose intake catalog lists them all.

``import xaffect`` is light: the names below and the sub-packages
(``xaffect.encoding``, ``xaffect.analysis`` ...) are imported on first use
(PEP 562 module ``__getattr__``), so the ``xaffect`` command answers ``--help``
without loading numpy-heavy stacks.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from . import errors

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from .store import Workspace, open_catalog, use_scheduler

#: public name -> module that defines it (imported on first access)
_LAZY_ATTRIBUTES = {
    "Workspace": "xaffect.store",
    "open_catalog": "xaffect.store",
    "use_scheduler": "xaffect.store",
}
_SUBPACKAGES = ("analysis", "datasets", "encoding", "features", "neural", "stimuli", "store", "synchrony",
                "config", "study", "stats", "cli")

__all__ = ["Workspace", "open_catalog", "use_scheduler", "errors", "__version__"]


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("xaffect")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0"


def __getattr__(name: str):
    if name == "__version__":
        value = _package_version()
    elif name in _LAZY_ATTRIBUTES:
        value = getattr(importlib.import_module(_LAZY_ATTRIBUTES[name]), name)
    elif name in _SUBPACKAGES:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # cache: later look-ups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | set(_SUBPACKAGES))
