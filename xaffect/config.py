"""Declarative, validated study configuration.

Each stage declares its section of ``study.yaml`` as a mapping of key to
:class:`Field`; :func:`validate_section` checks a user's section against it
up front (unknown key, wrong type, missing file) and fills in defaults, so a
study fails in its first second with one line naming the key at fault instead
of an hour into a run.
"""

from __future__ import annotations

import contextvars
import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

__all__ = ["Field", "StageSpec", "validate_section", "REQUIRED"]


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


#: Whether ``must_exist`` paths are checked (off to validate a template).
CHECK_FILES: contextvars.ContextVar[bool] = contextvars.ContextVar("xaffect_check_files", default=True)

#: Marker default for keys that must be given.
REQUIRED = _Required()

_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true/false",
               list: "a list", dict: "a mapping", Path: "a path"}


@dataclass(frozen=True)
class Field:
    """One key of a config section.

    Parameters
    ----------
    type : type or tuple of types
        Accepted Python type(s) after YAML parsing (``float`` accepts ints;
        ``Path`` accepts a string, resolved against the study folder).
    default : object
        Value when the key is absent; :data:`REQUIRED` makes the key mandatory.
    help : str
        One line shown in errors and docs.
    choices : tuple, optional
        Allowed values.
    must_exist : bool
        For ``Path`` fields: the file or folder must exist.
    item : Mapping[str, Field] or type, optional
        Schema (or type) of each list item / mapping value.
    """

    type: Any
    default: Any = None
    help: str = ""
    choices: tuple | None = None
    must_exist: bool = False
    item: Any = None


@dataclass(frozen=True)
class StageSpec:
    """A stage: its config section schema and its runner.

    ``run(study, *, force=False, progress=True) -> list[str]`` returns the
    names of the stores it wrote or found current. ``preflight(study) ->
    list[str]``, when given, resolves what the stage will need from outside
    the study (models, weights) and raises a one-line error if something is
    missing; :func:`xaffect.study.run_study` calls it for every chosen stage
    before the first stage runs, so a study fails in its first seconds.
    """

    config: Mapping[str, Field]
    run: Callable[..., list[str]]
    help: str = ""
    requires: tuple[str, ...] = field(default_factory=tuple)
    preflight: Callable[..., list[str]] | None = None


def _type_ok(value: Any, typ: Any) -> bool:
    types = typ if isinstance(typ, tuple) else (typ,)
    for t in types:
        if t is Any or t is None and value is None:
            return True
        if t is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return True
        if t is int and isinstance(value, int) and not isinstance(value, bool):
            return True
        if t is Path and isinstance(value, (str, Path)):
            return True
        if t not in (float, int, Path, None) and isinstance(value, t):
            return True
    return False


def _type_name(typ: Any) -> str:
    types = typ if isinstance(typ, tuple) else (typ,)
    return " or ".join(_TYPE_NAMES.get(t, "null" if t is None else getattr(t, "__name__", str(t))) for t in types)


def validate_section(section: Any, schema: Mapping[str, Field], *, where: str, root: Path | None = None) -> dict:
    """Validate one config section and fill in defaults.

    Parameters
    ----------
    section : mapping or None
        The user's section (None means empty).
    schema : mapping of str to Field
        What the section may hold.
    where : str
        Prefix for error messages, e.g. ``"study.yaml: stems"``.
    root : Path, optional
        Folder that relative paths are resolved against.

    Returns
    -------
    dict
        Validated values; ``Path`` fields resolved to absolute paths.

    Raises
    ------
    ConfigError
        Naming the key at fault.
    """
    if section is None:
        section = {}
    if not isinstance(section, Mapping):
        raise ConfigError(f"{where}: must be a mapping of keys to values, got {type(section).__name__}")
    if None in section and "null" in schema and "null" not in section:
        # YAML reads an unquoted `null:` key as None; the schemas' `null` (the surrogate null) is meant
        section = {("null" if k is None else k): v for k, v in section.items()}
    out: dict[str, Any] = {}
    sep = " " if where.endswith(":") else "."
    for key in section:
        if key not in schema:
            close = difflib.get_close_matches(str(key), list(schema), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (allowed: {', '.join(sorted(schema))})"
            raise ConfigError(f"{where}{sep}{key}: unknown key{hint}")
    for key, spec in schema.items():
        if key not in section:
            if spec.default is REQUIRED:
                raise ConfigError(f"{where}{sep}{key}: missing required key ({spec.help or _type_name(spec.type)})")
            out[key] = spec.default() if callable(spec.default) and not isinstance(spec.default, type) else spec.default
            continue
        out[key] = _validate_value(section[key], spec, f"{where}{sep}{key}", root)
    return out


def _validate_value(value: Any, spec: Field, where: str, root: Path | None) -> Any:
    if value is None and (spec.default is None or spec.type is None or
                          (isinstance(spec.type, tuple) and None in spec.type)):
        return None
    if not _type_ok(value, spec.type):
        raise ConfigError(f"{where}: expected {_type_name(spec.type)}, got {value!r}")
    if spec.choices is not None and value not in spec.choices:
        raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(str, spec.choices))}")
    types = spec.type if isinstance(spec.type, tuple) else (spec.type,)
    if Path in types and isinstance(value, (str, Path)) and not (isinstance(value, str) and "://" in value):
        p = Path(value).expanduser()
        if root is not None and not p.is_absolute():
            p = (root / p).resolve()
        if spec.must_exist and CHECK_FILES.get() and not p.exists():
            raise ConfigError(f"{where}: {p} does not exist")
        value = p
    if isinstance(value, list) and spec.item is not None:
        return [_validate_item(v, spec.item, f"{where}[{i}]", root) for i, v in enumerate(value)]
    if isinstance(value, dict) and isinstance(spec.item, Mapping):
        return validate_section(value, spec.item, where=where, root=root)
    return value


def _validate_item(value: Any, item: Any, where: str, root: Path | None) -> Any:
    if isinstance(item, Mapping):
        return validate_section(value, item, where=where, root=root)
    if isinstance(item, Field):
        return _validate_value(value, item, where, root)
    if not _type_ok(value, item):
        raise ConfigError(f"{where}: expected {_type_name(item)}, got {value!r}")
    return value
