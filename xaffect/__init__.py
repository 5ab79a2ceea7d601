"""xaffect: which representations of a sound drive what people feel and what their brains do.

Stages map labelled, chunked Zarr stores to stores through a
:class:`~xaffect.store.Workspace` whose intake catalog lists them all.
"""

from importlib.metadata import PackageNotFoundError, version

from . import errors
from .store import Workspace, open_catalog, use_scheduler

try:
    __version__ = version("xaffect")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = ["Workspace", "open_catalog", "use_scheduler", "errors", "__version__"]
