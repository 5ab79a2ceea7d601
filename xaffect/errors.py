"""Typed exceptions raised by xaffect.

Every user-facing error names the file, stimulus, subject or config key at
fault. The command line turns these into one line on stderr and exit code 2.
"""

from __future__ import annotations

import functools
import sys

__all__ = ["XaffectError", "InputError", "ConfigError", "StoreError", "user_errors"]


class XaffectError(Exception):
    """Base class of every error xaffect raises on purpose."""


class InputError(XaffectError, ValueError):
    """A stimulus, recording, rating file or array given by the user is unusable."""


class ConfigError(XaffectError, ValueError):
    """A study configuration is invalid (unknown key, wrong type, missing file)."""


class StoreError(XaffectError, RuntimeError):
    """A store or catalog is missing, incomplete or inconsistent."""


def user_errors(func):
    """Decorate a command so that xaffect errors become one line on stderr and exit code 2.

    Lives here, not in :mod:`xaffect.cli`, so that modules defining commands
    need not import the command line (which lists them).
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        import click

        try:
            return func(*args, **kwargs)
        except XaffectError as exc:
            click.echo(f"xaffect: error: {exc}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("xaffect: interrupted; completed stores are kept, partial ones are not listed", err=True)
            sys.exit(130)

    return wrapper
