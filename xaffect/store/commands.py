"""``xaffect catalog ls|show`` and ``xaffect gc``: looking after a workspace.

Only click is imported here; the workspace machinery (xarray, zarr, intake)
is imported when a command runs, so ``xaffect --help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import user_errors

__all__ = ["catalog", "gc", "CLI_COMMANDS"]


def _workspace_from(path: str):
    from .workspace import Workspace

    p = Path(path)
    if p.suffix in (".yaml", ".yml") and p.is_file() and p.name != "catalog.yaml":
        from ..study import load_study

        return load_study(p).workspace
    if p.name == "catalog.yaml":
        path = str(p.parent)
    return Workspace(path)


@click.group()
def catalog() -> None:
    """List and describe the stores of a workspace."""


@catalog.command("ls")
@click.argument("workspace", default=".")
@user_errors
def catalog_ls(workspace: str) -> None:
    """List the stores of WORKSPACE (a folder, URL or study.yaml), groups indented."""
    ws = _workspace_from(workspace)
    entries = ws._read_catalog_dict()["entries"]
    if not entries:
        click.echo("(no stores yet)")
    for name in sorted(entries):
        meta = entries[name].get("metadata") or {}
        dims = meta.get("dims") or {"groups": len(meta.get("groups", []))}
        dims_txt = ", ".join(f"{k}={v}" for k, v in dims.items())
        label = f"  {name}" if "/" in name else name
        click.echo(f"{label:32s} {meta.get('stage', ''):10s} {dims_txt}  {meta.get('description', '')}")


@catalog.command("show")
@click.argument("workspace")
@click.argument("name")
@click.option("--provenance/--no-provenance", default=True, help="Also print the provenance record.")
@user_errors
def catalog_show(workspace: str, name: str, provenance: bool) -> None:
    """Describe store NAME of WORKSPACE (a store, or one group: stems/clip01)."""
    ws = _workspace_from(workspace)
    ds = ws.open(name)
    click.echo(f"{name}  ({ws.store_url(name)})")
    click.echo(f"read it with: intake.from_yaml_file('{ws.url}/catalog.yaml')['{name}'].read()")
    click.echo(str(ds))
    if provenance:
        click.echo(json.dumps(ws.provenance(name), indent=2))


@click.command("gc")
@click.argument("workspace", default=".")
@click.option("--grace", "grace_s", type=float, default=None,
              help="Keep replaced versions younger than this many seconds (default 3600).")
@click.option("--dry-run", is_flag=True, help="Only list what would be deleted.")
@user_errors
def gc(workspace: str, grace_s: float | None, dry_run: bool) -> None:
    """Delete replaced store versions past their grace period, and debris of dead writers."""
    from .gc import DEFAULT_GRACE_S

    ws = _workspace_from(workspace)
    removed = ws.gc(grace_s=DEFAULT_GRACE_S if grace_s is None else grace_s, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    for rel in removed:
        click.echo(f"{verb} {rel}")
    click.echo(f"{verb} {len(removed)} version(s)")


CLI_COMMANDS = [catalog, gc]
