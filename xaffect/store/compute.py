"""Where dask graphs run, and how their progress is shown.

Every compute stage goes through :func:`compute`, so one ``--scheduler``
switch (``threads``, ``processes``, ``synchronous``, a ``tcp://host:port``
dask.distributed address, ``local-cluster`` or a ``distributed.Client``)
applies to the whole study.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

import dask

from ..errors import ConfigError

__all__ = ["use_scheduler", "current_scheduler", "compute", "progress_bar"]

_LOCAL = ("threads", "processes", "synchronous", "sync", "single-threaded")
_state: dict[str, Any] = {"spec": "threads", "client": None}


@contextlib.contextmanager
def use_scheduler(spec: Any = "threads", *, n_workers: int | None = None) -> Iterator[Any]:
    """Run every xaffect compute inside this block on ``spec``.

    Parameters
    ----------
    spec : str or distributed.Client
        ``"threads"`` (default), ``"processes"``, ``"synchronous"``,
        ``"local-cluster"`` (a ``distributed.LocalCluster`` started here),
        a ``"tcp://host:port"`` scheduler address, or an existing client.
    n_workers : int, optional
        Workers of a ``local-cluster``.

    Yields
    ------
    client or None
        The distributed client in use, if any.
    """
    previous = dict(_state)
    client = None
    own = False
    try:
        if spec is None or spec in _LOCAL:
            _state.update(spec=spec or "threads", client=None)
        elif isinstance(spec, str) and (spec.startswith(("tcp://", "tls://", "inproc://")) or spec == "local-cluster"):
            from distributed import Client, LocalCluster

            if spec == "local-cluster":
                cluster = LocalCluster(n_workers=n_workers or 2, threads_per_worker=1,
                                       processes=True, dashboard_address=None)
                client = Client(cluster)
            else:
                try:
                    client = Client(spec, timeout="10s")
                except OSError as exc:
                    raise ConfigError(f"scheduler: cannot reach dask scheduler at {spec} ({exc})") from None
            own = True
            _state.update(spec=spec, client=client)
        elif hasattr(spec, "submit") and hasattr(spec, "scheduler_info"):
            client = spec
            _state.update(spec="client", client=client)
        else:
            raise ConfigError(
                f"scheduler: unknown value {spec!r} (use threads, processes, synchronous, "
                "local-cluster or tcp://host:port)")
        yield client
    finally:
        if own and client is not None:
            cluster = getattr(client, "cluster", None)
            client.close()
            if cluster is not None:
                cluster.close()
        _state.clear()
        _state.update(previous)


def current_scheduler() -> Any:
    """The scheduler spec (or client) compute calls use now."""
    return _state["client"] or _state["spec"]


def _force_progress() -> bool:
    import os

    return os.environ.get("XAFFECT_PROGRESS", "") == "1"


@contextlib.contextmanager
def progress_bar(desc: str = "compute", enabled: bool = True) -> Iterator[None]:
    """Show a progress bar for dask work done on the local scheduler."""
    if not enabled or _state["client"] is not None:
        yield
        return
    from tqdm.dask import TqdmCallback

    with TqdmCallback(desc=desc, unit="task", leave=False,
                      disable=not sys.stderr.isatty() and not _force_progress()):
        yield


def compute(*objs: Any, desc: str = "compute", progress: bool = True) -> tuple:
    """Compute dask collections on the current scheduler with a progress bar.

    Parameters
    ----------
    *objs
        Dask collections, delayed objects or xarray objects.
    desc : str
        Label of the progress bar.
    progress : bool
        Show progress.

    Returns
    -------
    tuple
        The computed objects, in order.
    """
    client = _state["client"]
    if client is not None:
        futures = client.compute(list(objs))
        if progress and sys.stderr.isatty():
            from distributed import progress as _progress

            _progress(futures)
        return tuple(client.gather(futures))
    spec = _state["spec"]
    scheduler = "sync" if spec in ("synchronous", "single-threaded") else spec
    with progress_bar(desc, progress):
        return dask.compute(*objs, scheduler=scheduler)
