"""A study: its ``study.yaml``, its stimuli, its workspace and its stages.

``study.yaml`` is validated up front, section by section, against the schema
each stage declares (its ``STAGES`` dict of :class:`~xaffect.config.StageSpec`),
so a typo fails in the first second with one line naming the key.

Example::

    name: my-study
    workspace: workspace            # relative to this file
    rate: 1.0                       # analysis clock in Hz (1/TR for fMRI)
    stimuli:
      - {name: clip01, path: stimuli/clip01.mp4}
    stages: [stems, features, regions, synchrony, targets, encode, analyses, report]
    stems: {backend: auto}
    ...
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .config import CHECK_FILES, REQUIRED, Field, StageSpec, validate_section
from .errors import ConfigError, InputError
from .store.workspace import Workspace

__all__ = ["Study", "Stimulus", "load_study", "stage_specs", "STAGE_ORDER", "run_study", "check_study"]

#: Where each stage lives; each module has a ``STAGES`` dict.
_STAGE_MODULES = {
    "stems": "xaffect.stimuli.stage",
    "features": "xaffect.features.stage",
    "covariates": "xaffect.features.stage",
    "regions": "xaffect.neural.stage",
    "synchrony": "xaffect.synchrony.stage",
    "targets": "xaffect.synchrony.stage",
    "encode": "xaffect.encoding.stage",
    "analyses": "xaffect.analysis.analyses_stage",
    "report": "xaffect.analysis.stage",
}
#: The order ``xaffect run`` follows.
STAGE_ORDER = tuple(_STAGE_MODULES)

_TOP_SCHEMA = {
    "name": Field(str, default="study", help="study name"),
    "description": Field(str, default="", help="one paragraph shown in the report"),
    "workspace": Field(Path, default="workspace", help="folder (or URL) of the stores and catalog"),
    "storage_options": Field(dict, default=None, help="fsspec options for a remote workspace"),
    "rate": Field(float, default=1.0, help="analysis clock rate in Hz"),
    "scheduler": Field(str, default="threads", help="threads | processes | local-cluster | tcp://host:port"),
    "stimuli": Field(list, default=REQUIRED, help="list of {name, path}"),
    "stages": Field(list, default=None, help="stages `xaffect run` runs, in order (default: every configured one)"),
    "ground_truth": Field(Path, default=None, help="ground_truth.json of a simulated study"),
}
_STIMULUS_SCHEMA = {
    "name": Field(str, default=REQUIRED, help="stimulus name (unique)"),
    "path": Field(Path, default=REQUIRED, must_exist=True, help="audio or video file"),
    "video": Field(Path, default=None, must_exist=True, help="separate video file for covariates"),
}


@dataclass(frozen=True)
class Stimulus:
    """One stimulus: a name and the file it is decoded from."""

    name: str
    path: Path
    video: Path | None = None


def stage_specs(names: Iterable[str] | None = None) -> dict[str, StageSpec]:
    """Import the stage modules and return their specs by stage name.

    Stages whose module is not installed yet are left out.
    """
    out: dict[str, StageSpec] = {}
    for name in (names or STAGE_ORDER):
        if name not in _STAGE_MODULES:
            raise ConfigError(f"stages: unknown stage {name!r} (known: {', '.join(STAGE_ORDER)})")
        try:
            module = importlib.import_module(_STAGE_MODULES[name])
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("xaffect"):
                continue
            raise
        spec = getattr(module, "STAGES", {}).get(name)
        if spec is not None:
            out[name] = spec
    return out


@dataclass
class Study:
    """A validated study configuration.

    Attributes
    ----------
    path : Path
        The ``study.yaml`` file.
    root : Path
        Its folder; relative paths resolve against it.
    name : str
    rate : float
        Analysis clock rate in Hz.
    stimuli : list of Stimulus
    config : dict
        Validated sections by stage name.
    """

    path: Path
    root: Path
    name: str
    rate: float
    stimuli: list[Stimulus]
    config: dict[str, dict]
    top: dict[str, Any]
    stages: list[str]
    _workspace: Workspace | None = field(default=None, repr=False)

    @property
    def workspace(self) -> Workspace:
        """The study's workspace (created on first use)."""
        if self._workspace is None:
            ws = self.top["workspace"]
            self._workspace = Workspace.init(str(ws), storage_options=self.top.get("storage_options"),
                                             description=self.top.get("description", ""))
        return self._workspace

    def section(self, name: str) -> dict:
        """Validated config of stage ``name`` (defaults filled in)."""
        if name not in self.config:
            spec = stage_specs([name]).get(name)
            if spec is None:
                raise ConfigError(f"{self.path.name}: stage {name!r} is not available")
            self.config[name] = validate_section({}, spec.config, where=f"{self.path.name}: {name}", root=self.root)
        return self.config[name]

    def resolve(self, path: str | Path) -> Path:
        """Resolve ``path`` against the study folder."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else (self.root / p).resolve()

    def stimulus(self, name: str) -> Stimulus:
        """The stimulus called ``name``."""
        for s in self.stimuli:
            if s.name == name:
                return s
        raise InputError(f"{self.path.name}: no stimulus named {name!r}")


def load_study(path: str | Path, *, check_files: bool = True) -> Study:
    """Read and validate ``study.yaml``.

    Parameters
    ----------
    path : path
        The study file.
    check_files : bool
        Check that the files it names exist (off to validate a template).

    Raises
    ------
    ConfigError
        One line naming the file and the key at fault.
    """
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise ConfigError(f"{path}: study file does not exist")
    token = CHECK_FILES.set(check_files)
    try:
        return _load_study(path)
    finally:
        CHECK_FILES.reset(token)


def _load_study(path: Path) -> Study:
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path.name}:{where} is not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path.name}: must be a mapping of sections")
    root = path.parent
    specs = stage_specs()
    top_keys = {k: raw[k] for k in raw if k in _TOP_SCHEMA}
    unknown = [k for k in raw if k not in _TOP_SCHEMA and k not in _STAGE_MODULES]
    if unknown:
        import difflib

        close = difflib.get_close_matches(unknown[0], [*_TOP_SCHEMA, *_STAGE_MODULES], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"{path.name}: {unknown[0]}: unknown section{hint}")
    schema = dict(_TOP_SCHEMA)
    if isinstance(top_keys.get("workspace"), str) and "://" in top_keys["workspace"]:
        schema["workspace"] = Field(str)
    top = validate_section(top_keys, schema, where=f"{path.name}:", root=root)
    stimuli = []
    seen = set()
    for i, item in enumerate(top["stimuli"]):
        s = validate_section(item, _STIMULUS_SCHEMA, where=f"{path.name}: stimuli[{i}]", root=root)
        if s["name"] in seen:
            raise ConfigError(f"{path.name}: stimuli[{i}].name: {s['name']!r} appears twice")
        seen.add(s["name"])
        stimuli.append(Stimulus(s["name"], s["path"], s["video"]))
    if not stimuli:
        raise ConfigError(f"{path.name}: stimuli: at least one stimulus is needed")
    if top["rate"] <= 0:
        raise ConfigError(f"{path.name}: rate: must be positive, got {top['rate']}")
    config = {}
    for name in _STAGE_MODULES:
        if name in raw:
            if name not in specs:
                raise ConfigError(f"{path.name}: {name}: this stage is not available in this installation")
            config[name] = validate_section(raw[name], specs[name].config, where=f"{path.name}: {name}", root=root)
    stages = top["stages"]
    if stages is None:
        stages = [s for s in STAGE_ORDER if s in config]
    for s in stages:
        if s not in _STAGE_MODULES:
            raise ConfigError(f"{path.name}: stages: unknown stage {s!r} (known: {', '.join(STAGE_ORDER)})")
        if s not in specs:
            raise ConfigError(f"{path.name}: stages: {s!r} is not available in this installation")
        if s not in config:
            config[s] = validate_section({}, specs[s].config, where=f"{path.name}: {s}", root=root)
    return Study(path=path, root=root, name=top["name"], rate=float(top["rate"]), stimuli=stimuli,
                 config=config, top=top, stages=list(stages))


def _quiet_mne():
    """MNE's log level for a whole stage (unless MNE_LOGGING_LEVEL says otherwise).

    MNE's per-call ``verbose=`` swaps a process-wide logger level; with stages
    running MNE calls in several dask threads at once, one call can restore
    "info" while another runs. Holding "error" around the stage prevents that.
    """
    import contextlib
    import os

    if os.environ.get("MNE_LOGGING_LEVEL"):
        return contextlib.nullcontext()
    try:
        import mne
    except ImportError:  # pragma: no cover
        return contextlib.nullcontext()
    return mne.utils.use_log_level("error")


def check_study(study: Study, *, stages: Iterable[str] | None = None, echo=print) -> list[str]:
    """Resolve what the chosen stages need from outside the study (models, weights) before any runs.

    Each stage's :attr:`~xaffect.config.StageSpec.preflight` runs in turn:
    every model named in ``features`` is loaded, or built offline for
    ``random_init``, so that a missing one fails in the first seconds, not
    after the stems stage.

    Returns
    -------
    list of str
        One line per resolved item.

    Raises
    ------
    ConfigError, InputError
        One line naming the stage, the key and how to provide what is missing.
    """
    from .errors import XaffectError

    chosen = list(stages) if stages is not None else study.stages
    lines: list[str] = []
    for name, spec in stage_specs(chosen).items():
        if spec.preflight is None:
            continue
        try:
            got = spec.preflight(study)
        except XaffectError as exc:
            raise type(exc)(f"{study.path.name}: {exc} [checked before any stage ran]") from None
        lines += got
        for line in got:
            echo(f"  {name}: {line}")
    return lines


def run_study(study: Study, *, stages: Iterable[str] | None = None, force: bool = False,
              progress: bool = True, echo=print) -> dict[str, list[str]]:
    """Run the study's stages in order; each skips what is current.

    Returns
    -------
    dict
        Stage name to the stores it wrote or found current.
    """
    import resource
    import time

    def cpu() -> float:                   # user + sys of every thread of this process and its children
        own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    chosen = list(stages) if stages is not None else study.stages
    specs = stage_specs(chosen)
    for name in chosen:
        if name not in specs:
            raise ConfigError(f"{study.path.name}: stage {name!r} is not available")
    check_study(study, stages=chosen, echo=echo)
    done: dict[str, list[str]] = {}
    for i, name in enumerate(chosen, 1):
        t0, c0 = time.perf_counter(), cpu()
        echo(f"[{i}/{len(chosen)}] {name} …")
        with _quiet_mne():
            done[name] = specs[name].run(study, force=force, progress=progress)
        echo(f"[{i}/{len(chosen)}] {name}: {', '.join(done[name]) or 'nothing to do'} "
             f"({time.perf_counter() - t0:.1f} s, CPU {cpu() - c0:.1f} s)")
    return done
