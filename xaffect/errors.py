"""Typed exceptions raised by xaffect.

Every user-facing error names the file, stimulus, subject or config key at
fault. The command line turns these into one line on stderr and exit code 2.
"""

from __future__ import annotations

__all__ = ["XaffectError", "InputError", "ConfigError", "StoreError"]


class XaffectError(Exception):
    """Base class of every error xaffect raises on purpose."""


class InputError(XaffectError, ValueError):
    """A stimulus, recording, rating file or array given by the user is unusable."""


class ConfigError(XaffectError, ValueError):
    """A study configuration is invalid (unknown key, wrong type, missing file)."""


class StoreError(XaffectError, RuntimeError):
    """A store or catalog is missing, incomplete or inconsistent."""
