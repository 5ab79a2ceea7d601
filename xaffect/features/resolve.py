"""Resolving the networks a study's ``features`` section names, before anything runs.

:func:`resolve_extractor` loads (or builds offline, for ``random_init``) the
network of one extractor entry, memoised on the study, and
:func:`check_models` does so for every deep entry: the ``features`` stage's
preflight, which :func:`xaffect.study.run_study` calls before the first stage,
so a missing model fails in the first seconds, not after the stems stage.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import uuid
from pathlib import Path
from typing import Any

from ..errors import ConfigError, InputError
from .hf import load_model
from .torchload import load_torch_network
from .torchnet import TorchNetwork
from .vggish import VGGishExtractor, load_vggish

__all__ = ["resolve_extractor", "ExtractorRef", "check_models", "store_name", "DEEP", "FIRST_LAYER"]

DEEP = ("hf", "vggish", "torch")
#: First number of the ``layer`` coordinate: HF hidden states from 0 (the transformer's input),
#: VGGish stages 1..23 as the seed numbers them, torch networks' recorded layers from 1.
FIRST_LAYER = {"hf": 0, "vggish": 1, "torch": 1}
TORCH_KEYS = ("factory", "factory_kwargs", "factory_loads_weights", "state_dict", "torchscript", "layers", "input",
              "sr", "field_seconds", "hop_seconds", "frame_norm", "pool", "time_axis", "transform", "batch_frames",
              "random_init", "seed", "batch_seconds", "context_seconds")

def store_name(spec: dict) -> str:
    """``features.<name>``, with ``-random`` for random weights."""
    name = spec.get("name") or spec["kind"]
    if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
        raise ConfigError(f"features.extractors: name {name!r} may hold letters, digits, '_' and '-' only")
    return f"features.{name}" + ("-random" if spec.get("random_init") and spec["kind"] in DEEP else "")


def _label(spec: dict) -> str:
    return f"features.extractors[{spec.get('name') or spec['kind']}]"


def _torch_extractor(spec: dict, study) -> TorchNetwork:
    where = _label(spec)
    if spec["hop_seconds"] is None or spec["field_seconds"] is None:
        raise ConfigError(f"{where}: kind torch needs hop_seconds and field_seconds (the frame hop and the "
                          "receptive field, so that frames land in the right clock bins)")
    if not isinstance(spec["layers"], list) or not spec["layers"] or \
            not all(isinstance(v, str) for v in spec["layers"]):
        raise ConfigError(f"{where}.layers: kind torch needs a list of module names, got {spec['layers']!r}")
    files = {k: str(study.resolve(spec[k])) if spec[k] else None for k in ("state_dict", "torchscript")}
    try:
        return load_torch_network(factory=spec["factory"], factory_kwargs=spec["factory_kwargs"],
                                  factory_loads_weights=spec["factory_loads_weights"], layers=spec["layers"],
                                  sr=spec["sr"], hop_seconds=spec["hop_seconds"], field_seconds=spec["field_seconds"],
                                  input=spec["input"], frame_norm=spec["frame_norm"], pool=spec["pool"],
                                  time_axis=spec["time_axis"], transform=spec["transform"],
                                  batch_frames=spec["batch_frames"], random_init=spec["random_init"],
                                  seed=spec["seed"], name=spec.get("name"), **files)
    except ConfigError as exc:
        raise ConfigError(f"{where}.{exc}") from None
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None


def resolve_extractor(spec: dict, study) -> tuple[Any, dict, int]:
    """Load (or build, for ``random_init``) the network of a deep extractor entry.

    Memoised on the study, so the up-front check of :func:`check_models`
    and the stage share one load.

    Returns
    -------
    extractor : SpeechModel, VGGishExtractor or TorchNetwork
    provenance : dict
    n_layers : int

    Raises
    ------
    ConfigError, InputError
        One line naming the extractor, the key and how to provide the model.
    """
    cache = study.__dict__.setdefault("_extractors", {})
    key = json.dumps(spec, sort_keys=True, default=str)
    if key in cache:
        return cache[key]
    if spec["kind"] == "hf":
        if not spec["model"]:
            raise ConfigError(f"{_label(spec)}: kind hf needs model: ID or folder")
        model = spec["model"]
        local = study.resolve(model)
        if local.exists() or model.startswith((".", "/", "~")):
            model = str(local)
        try:
            sm = load_model(model, revision=spec["revision"], random_init=spec["random_init"], seed=spec["seed"])
        except InputError as exc:
            raise InputError(f"{_label(spec)}.model: {exc}") from None
        out = (sm, sm.provenance(), sm.n_layers)
    elif spec["kind"] == "torch":
        net = _torch_extractor(spec, study)
        out = (net, net.provenance(), net.n_layers)
    else:
        ckpt = study.resolve(spec["checkpoint"]) if spec["checkpoint"] else None
        try:
            net = load_vggish(ckpt, random_init=spec["random_init"], seed=spec["seed"])
        except InputError as exc:
            raise InputError(f"{_label(spec)}.checkpoint: {exc}") from None
        hop = 0.96 if spec["hop_seconds"] is None else spec["hop_seconds"]
        ext = VGGishExtractor(net, hop_seconds=hop, pool=spec["pool"])
        prov = {"name": "vggish", "checkpoint": str(ckpt) if ckpt else None, "random_init": spec["random_init"],
                "seed": spec["seed"] if spec["random_init"] else None, "n_layers": ext.n_layers, "pool": spec["pool"]}
        out = (ext, prov, ext.n_layers)
    cache[key] = out
    return out


#: Extractors loaded in this process (by :meth:`ExtractorRef.get`), so a dask worker loads each network once.
_LOADED: dict[str, Any] = {}
_LOADING = threading.Lock()


class ExtractorRef:
    """A picklable handle on a deep extractor: what to load, not the loaded network.

    The features stage's dask tasks carry this instead of the network, which
    cannot always be pickled (e.g. weight-norm parametrised torch modules) and
    would be shipped with every task. Each process, a ``dask worker`` included,
    loads the network once on first :meth:`get`; the process that built the
    graph hands over the one it already resolved.

    Parameters
    ----------
    spec : dict
        The validated extractor entry.
    root : str
        The study folder its relative paths resolve against (a folder every
        worker sees: a shared file system on a cluster).
    """

    def __init__(self, spec: dict, root: str | Path, loaded: Any = None):
        self.spec, self.root = dict(spec), str(root)
        # one token per network the stage resolved: a worker that loaded an earlier
        # one (before the model's files changed) loads again instead of reusing it
        token = getattr(loaded, "_xaffect_ref_token", None)
        if loaded is not None and token is None:
            token = uuid.uuid4().hex
            with contextlib.suppress(AttributeError):  # a network without a __dict__ gets a token per ref
                loaded._xaffect_ref_token = token
        self.key = json.dumps([self.spec, self.root, token], sort_keys=True, default=str)
        if loaded is not None:
            with _LOADING:
                _LOADED[self.key] = loaded
                _trim()

    def __getstate__(self) -> dict:
        return {"spec": self.spec, "root": self.root, "key": self.key}

    def resolve(self, path: str | Path) -> Path:
        """``path`` against the study folder (what :meth:`xaffect.study.Study.resolve` does)."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else (Path(self.root) / p).resolve()

    def get(self) -> Any:
        """The extractor, loaded in this process on first use."""
        with _LOADING:
            if self.key not in _LOADED:
                _LOADED[self.key] = resolve_extractor(self.spec, self)[0]
                _trim()
            return _LOADED[self.key]


def _trim(keep: int = 4) -> None:
    """Keep the networks of the last ``keep`` extractors a process loaded (caller holds the lock)."""
    while len(_LOADED) > keep:
        _LOADED.pop(next(iter(_LOADED)))


def check_models(study) -> list[str]:
    """Resolve every deep model the ``features`` section names, before any stage runs.

    Returns
    -------
    list of str
        One line per model: what was resolved.

    Raises
    ------
    ConfigError, InputError
        The first model that cannot be loaded (or built offline for
        ``random_init``), naming the extractor and how to provide it.
    """
    lines = []
    for spec in study.section("features")["extractors"]:
        if spec["kind"] in DEEP:
            ext, prov, n_layers = resolve_extractor(spec, study)
            lines.append(f"{store_name(spec)}: {prov.get('name')} ({n_layers} layers"
                         f"{', random weights' if spec['random_init'] else ''})")
    return lines
