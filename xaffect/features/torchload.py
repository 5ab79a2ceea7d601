"""Loading a torch network for ``kind: torch``: factory, TorchScript, state dict or object.

:func:`load_torch_network` builds (or loads) the network, draws its weights
afresh for ``random_init``, and wraps it with its clock geometry in a
:class:`~xaffect.features.torchnet.TorchNetwork`, whose construction probes
every named layer once, so a wrong layer name, an input the network rejects
or an output without a time axis fails here, before any stage runs.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError, InputError
from .torchnet import TorchNetwork

__all__ = ["load_torch_network", "import_object"]


def import_object(ref: str, *, key: str = "factory") -> Any:
    """The object named by ``"package.module:attribute"``.

    Raises
    ------
    ConfigError
        One line naming ``key`` when the module cannot be imported or lacks it.
    """
    if not isinstance(ref, str) or ref.count(":") != 1 or not all(ref.split(":")):
        raise ConfigError(f"{key}: {ref!r} must be 'package.module:callable'")
    mod_name, attr = ref.split(":")
    try:
        module = importlib.import_module(mod_name)
    except Exception as exc:  # noqa: BLE001 - any failure to import is the user's configuration error
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"{key}: cannot import module {mod_name!r} ({type(exc).__name__}: {first})") from None
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            close = difflib.get_close_matches(part, [n for n in dir(obj) if not n.startswith("_")], n=3)
            hint = f" (close: {', '.join(close)})" if close else ""
            raise ConfigError(f"{key}: module {mod_name!r} has no {attr!r}{hint}")
        obj = getattr(obj, part)
    return obj


def _reinitialise(module, seed: int) -> None:
    """Draw every parameter afresh (torch's default initialisation) from ``seed``."""
    import torch

    torch.manual_seed(int(seed))
    n = 0
    for m in module.modules():
        if hasattr(m, "reset_parameters") and callable(m.reset_parameters):
            m.reset_parameters()
            n += 1
    if n == 0:
        raise ConfigError("random_init: the network has no module with reset_parameters() to draw weights for")


def load_torch_network(*, factory: str | Callable | None = None, factory_kwargs: dict | None = None,
                       state_dict: str | Path | None = None, torchscript: str | Path | None = None,
                       factory_loads_weights: bool = False, module=None, layers: Sequence[str],
                       sr: int = 16000, hop_seconds: float, field_seconds: float, input: str = "frames",
                       frame_norm: bool = False, pool: str = "time-mean", time_axis: int = 1,
                       transform: str | Callable | None = None, batch_frames: int = 256,
                       random_init: bool = False, seed: int = 0, name: str | None = None) -> TorchNetwork:
    """Build or load a torch network and describe its geometry.

    Parameters
    ----------
    factory : str or callable, optional
        ``"package.module:callable"`` (or the callable) returning an
        ``nn.Module``; called with ``factory_kwargs``.
    state_dict : path, optional
        Weights loaded into the factory's network (``torch.save`` of a state dict).
    torchscript : path, optional
        A ``torch.jit.save``-d network (instead of a factory).
    factory_loads_weights : bool
        Declares that the factory returns trained weights itself (without it,
        a factory needs ``state_dict`` or ``random_init``: no network falls
        back silently to untrained weights).
    module : torch.nn.Module, optional
        A network object instead of any of the above.
    layers : list of str
        Module names to record (see :class:`TorchNetwork`).
    sr : int
        Sample rate the network reads.
    hop_seconds, field_seconds : float
        Seconds between frames and seconds one frame sees (its receptive field).
    input, frame_norm, pool, time_axis, transform, batch_frames
        See :class:`TorchNetwork`; ``transform`` may be ``"module:callable"``.
    random_init : bool
        Draw the weights from ``seed`` (the random-weight control).

    Returns
    -------
    TorchNetwork

    Raises
    ------
    ConfigError
        A factory that cannot be imported, a layer the network lacks (with
        close names), inconsistent options; one line naming the key.
    InputError
        An unreadable or ill-fitting weights file.
    """
    import torch

    given = [k for k, v in (("factory", factory), ("torchscript", torchscript), ("module", module)) if v is not None]
    if len(given) != 1:
        raise ConfigError("factory, torchscript: give exactly one of factory (module:callable, optionally with "
                          f"state_dict) or torchscript (got {', '.join(given) or 'none'})")
    source: dict[str, Any] = {}
    if module is not None:
        net = module
        source = {"object": type(module).__name__}
        label = name or type(module).__name__
    elif torchscript is not None:
        path = Path(torchscript).expanduser()
        if random_init:
            raise ConfigError("random_init: needs a factory (a TorchScript file's weights cannot be redrawn)")
        if not path.is_file():
            raise InputError(f"torchscript {path}: file does not exist")
        try:
            net = torch.jit.load(str(path), map_location="cpu")
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's input error
            raise InputError(f"torchscript {path}: cannot be loaded ({str(exc).strip().splitlines()[0]})") from None
        source = {"torchscript": str(path)}
        label = name or path.name
    else:
        make = import_object(factory, key="factory") if isinstance(factory, str) else factory
        if not callable(make):
            raise ConfigError(f"factory: {factory!r} is not callable")
        if state_dict is None and not random_init and not factory_loads_weights:
            raise ConfigError(f"factory: {factory!r} without state_dict: give state_dict: FILE, or "
                              "factory_loads_weights: true (the factory returns trained weights), or random_init: true")
        if random_init:
            torch.manual_seed(int(seed))
        try:
            net = make(**(factory_kwargs or {}))
        except (InputError, ConfigError):
            raise
        except Exception as exc:  # noqa: BLE001 - a factory that fails is the user's configuration error
            raise ConfigError(f"factory: {factory!r} failed ({type(exc).__name__}: {exc})") from None
        if not isinstance(net, torch.nn.Module):
            raise ConfigError(f"factory: {factory!r} returned {type(net).__name__}, not a torch.nn.Module")
        source = {"factory": factory if isinstance(factory, str) else getattr(factory, "__qualname__", str(factory)),
                  "factory_kwargs": dict(factory_kwargs or {})}
        if state_dict is not None and not random_init:
            path = Path(state_dict).expanduser()
            if not path.is_file():
                raise InputError(f"state_dict {path}: file does not exist")
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as exc:  # noqa: BLE001
                raise InputError(f"state_dict {path}: cannot be read ({str(exc).strip().splitlines()[0]})") from None
            if isinstance(state, dict) and "state_dict" in state:
                state = state["state_dict"]
            try:
                net.load_state_dict(state)
            except (RuntimeError, TypeError) as exc:
                raise InputError(f"state_dict {path}: does not fit {type(net).__name__} "
                                 f"({str(exc).strip().splitlines()[0][:200]})") from None
            source["state_dict"] = str(path)
        source["weights"] = "random" if random_init else ("state_dict" if state_dict is not None else "factory")
        label = name or source["factory"]
    if random_init and module is None:
        _reinitialise(net, seed)
    net.eval()
    tf = import_object(transform, key="transform") if isinstance(transform, str) else transform
    hop = int(round(float(hop_seconds) * sr))
    field_ = int(round(float(field_seconds) * sr))
    if pool not in ("time-mean", "flatten"):
        raise ConfigError(f"pool: must be 'time-mean' or 'flatten', got {pool!r}")
    return TorchNetwork(net, label, list(layers), int(sr), hop, field_, input, bool(frame_norm), pool,
                        int(time_axis), tf, int(batch_frames), bool(random_init),
                        int(seed) if random_init else None, source)
