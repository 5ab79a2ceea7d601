"""The ``xaffect`` command.

Every user error (:class:`~xaffect.errors.XaffectError`) becomes one line on
stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import functools
import importlib
import json
import sys
from pathlib import Path

import click

from . import __version__
from .errors import XaffectError

__all__ = ["main"]

_SCHEDULER_HELP = ("dask scheduler for every compute stage: threads (default), processes, synchronous, "
                   "local-cluster, or a dask.distributed address tcp://host:port")


def _user_errors(func):
    """Turn xaffect errors into one line and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except XaffectError as exc:
            click.echo(f"xaffect: error: {exc}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("xaffect: interrupted; completed stores are kept, partial ones are not listed", err=True)
            sys.exit(130)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="xaffect")
def main() -> None:
    """Encoding models of affective responses to naturalistic sound.

    Stores in, stores out: every stage reads and writes labelled Zarr stores
    listed in a workspace's intake catalog.
    """


@main.command()
@click.argument("directory")
@click.option("--description", default="", help="One line describing the workspace.")
@_user_errors
def init(directory: str, description: str) -> None:
    """Create a workspace (stores + catalog.yaml) in DIRECTORY."""
    from .store import Workspace

    ws = Workspace.init(directory, description=description)
    click.echo(f"workspace ready: {ws.url}/catalog.yaml")


@main.group()
def catalog() -> None:
    """List and describe the stores of a workspace."""


def _workspace_from(path: str):
    from .store import Workspace

    p = Path(path)
    if p.suffix in (".yaml", ".yml") and p.is_file() and p.name != "catalog.yaml":
        from .study import load_study

        return load_study(p).workspace
    if p.name == "catalog.yaml":
        path = str(p.parent)
    return Workspace(path)


@catalog.command("ls")
@click.argument("workspace", default=".")
@_user_errors
def catalog_ls(workspace: str) -> None:
    """List the stores of WORKSPACE (a folder, URL or study.yaml)."""
    ws = _workspace_from(workspace)
    names = ws.names()
    if not names:
        click.echo("(no stores yet)")
    for name in names:
        meta = ws.metadata(name)
        dims = meta.get("dims") or {"groups": len(meta.get("groups", []))}
        dims_txt = ", ".join(f"{k}={v}" for k, v in dims.items())
        click.echo(f"{name:32s} {meta.get('stage', ''):10s} {dims_txt}  {meta.get('description', '')}")


@catalog.command("show")
@click.argument("workspace")
@click.argument("name")
@click.option("--provenance/--no-provenance", default=True, help="Also print the provenance record.")
@_user_errors
def catalog_show(workspace: str, name: str, provenance: bool) -> None:
    """Describe store NAME of WORKSPACE."""
    ws = _workspace_from(workspace)
    ds = ws.open(name)
    click.echo(f"{name}  ({ws.store_url(name)})")
    click.echo(f"read it with: intake.from_yaml_file('{ws.url}/catalog.yaml')['{name}'].read()")
    click.echo(str(ds))
    if provenance and "/" not in name:
        click.echo(json.dumps(ws.provenance(name), indent=2))


def _run_stages(study_path: str, stages, scheduler: str | None, force: bool, quiet: bool) -> None:
    from .store import use_scheduler
    from .study import load_study, run_study

    study = load_study(study_path)
    with use_scheduler(scheduler or study.top.get("scheduler") or "threads"):
        run_study(study, stages=stages, force=force, progress=not quiet,
                  echo=(lambda *a: None) if quiet else click.echo)


@main.command()
@click.argument("study", type=click.Path())
@click.option("--stage", "stages", multiple=True, help="Run only these stages (repeatable), in the study's order.")
@click.option("--scheduler", default=None, help=_SCHEDULER_HELP)
@click.option("--force", is_flag=True, help="Recompute even stores whose identity is current.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@_user_errors
def run(study: str, stages, scheduler: str | None, force: bool, quiet: bool) -> None:
    """Run every stage STUDY (a study.yaml) names, skipping current stores."""
    from .study import STAGE_ORDER

    chosen = None
    if stages:
        bad = [s for s in stages if s not in STAGE_ORDER]
        if bad:
            raise click.BadParameter(f"unknown stage {bad[0]!r} (known: {', '.join(STAGE_ORDER)})",
                                     param_hint="--stage")
        chosen = [s for s in STAGE_ORDER if s in stages]
    _run_stages(study, chosen, scheduler, force, quiet)


def _stage_command(stage: str) -> click.Command:
    @click.command(name=stage, help=f"Run the `{stage}` stage of STUDY (a study.yaml).")
    @click.argument("study", type=click.Path())
    @click.option("--scheduler", default=None, help=_SCHEDULER_HELP)
    @click.option("--force", is_flag=True, help="Recompute even if current.")
    @click.option("-q", "--quiet", is_flag=True, help="No progress output.")
    @_user_errors
    def command(study: str, scheduler: str | None, force: bool, quiet: bool) -> None:
        _run_stages(study, [stage], scheduler, force, quiet)

    return command


def _register() -> None:
    from .study import _STAGE_MODULES

    seen_modules = set()
    for stage, module_name in _STAGE_MODULES.items():
        main.add_command(_stage_command(stage))
        if module_name in seen_modules:
            continue
        seen_modules.add(module_name)
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("xaffect"):
                continue
            raise
        for cmd in getattr(module, "CLI_COMMANDS", []):
            main.add_command(cmd)
    try:
        demo_mod = importlib.import_module("xaffect.datasets.demo")
    except ModuleNotFoundError as exc:
        if not (exc.name and exc.name.startswith("xaffect")):
            raise
    else:
        for cmd in getattr(demo_mod, "CLI_COMMANDS", []):
            main.add_command(cmd)


_register()

if __name__ == "__main__":  # pragma: no cover
    main()
