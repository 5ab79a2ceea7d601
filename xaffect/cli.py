"""The ``xaffect`` command.

Every user error (:class:`~xaffect.errors.XaffectError`) becomes one line on
stderr and exit code 2, never a traceback.

Commands are registered lazily so that ``xaffect --help`` and
``xaffect CMD --help`` answer at once: :data:`COMMANDS` names, for each
command, the ``"module:attr"`` that defines it and its one-line help; the
module is imported only when that command is asked for. Stage commands
(``xaffect stems STUDY`` ...) are built here from :data:`STAGE_HELP` without
importing the stage modules. To add a command, define it in a module that
imports only click at module level and add one line to :data:`COMMANDS`.
"""

from __future__ import annotations

import importlib
import sys

import click

from .errors import user_errors

__all__ = ["main", "COMMANDS", "STAGE_HELP"]

#: command name -> ("module:attr" of a click command, or of a list of them holding one of that name; short help)
COMMANDS: dict[str, tuple[str, str]] = {
    "catalog": ("xaffect.store.commands:catalog", "List and describe the stores of a workspace."),
    "gc": ("xaffect.store.commands:gc", "Delete replaced store versions past their grace period."),
    "demo": ("xaffect.datasets.demo:demo_command", "Simulate a study with planted effects, run every stage, report."),
    "setup": ("xaffect.commands:setup", "Prepare optional external tools (spleeter)."),
    "make-random-model": ("xaffect.commands:make_random_model",
                          "Save a model of KIND with seeded random weights under PATH."),
    "synthetic-subject": ("xaffect.commands:synthetic_subject",
                          "Write a small FreeSurfer-format subject into SUBJECTS_DIR."),
    "plot-synchrony": ("xaffect.commands:plot_synchrony",
                       "Plot the synchrony and targets stores of STUDY_FILE."),
    "report-html": ("xaffect.commands:report_html", "Write report.html and summary.json for a WORKSPACE."),
}

#: stage name -> short help, in the order `xaffect run` follows (checked against xaffect.study.STAGE_ORDER)
STAGE_HELP: dict[str, str] = {
    "stems": "decode each stimulus and separate it into voice and soundtrack",
    "features": "layer activations and acoustic descriptors of every element",
    "covariates": "visual covariates from the video frames",
    "regions": "EEG/fMRI recordings to region signals",
    "synchrony": "sliding-window inter-subject correlation per region",
    "targets": "continuous ratings on the clock, with the noise ceiling",
    "encode": "nested cross-validated ridge over feature sets, layers and elements",
    "analyses": "gradient alignment, lead-lag, renditions, clip labels, differential -> analysis.* stores",
    "report": "HTML report and summary.json",
}

_SCHEDULER_HELP = ("dask scheduler for every compute stage: threads (default), processes, synchronous, "
                   "local-cluster, or a dask.distributed address tcp://host:port")

# kept under its old name: stage modules and tests import it from here
_user_errors = user_errors


def _resolve(name: str) -> click.Command:
    """Import the command ``name`` from its ``"module:attr"`` in :data:`COMMANDS`."""
    target = COMMANDS[name][0]
    module_name, _, attr = target.partition(":")
    obj = getattr(importlib.import_module(module_name), attr)
    if isinstance(obj, (list, tuple)):
        obj = next((c for c in obj if c.name == name), None)
    if not isinstance(obj, click.Command):
        raise RuntimeError(f"xaffect.cli.COMMANDS[{name!r}]: {target} is not a click command named {name!r}")
    return obj


class LazyGroup(click.Group):
    """A click group whose commands in :data:`COMMANDS` are imported on first use.

    ``--help`` lists them from the static table, so it imports nothing.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        cmd = super().get_command(ctx, cmd_name)
        if cmd is None and cmd_name in COMMANDS:
            cmd = _resolve(cmd_name)
            self.add_command(cmd, cmd_name)
        return cmd

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        limit = formatter.width - 6 - max(len(n) for n in self.list_commands(ctx))
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.commands.get(name)
            if cmd is not None:
                if not cmd.hidden:
                    rows.append((name, cmd.get_short_help_str(limit)))
            else:
                rows.append((name, COMMANDS[name][1]))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _version(ctx: click.Context, _param, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from . import __version__

    click.echo(f"xaffect, version {__version__}")
    ctx.exit()


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-V", "--version", is_flag=True, expose_value=False, is_eager=True, callback=_version,
              help="Show the version and exit.")
def main() -> None:
    """Encoding models of affective responses to naturalistic sound.

    Stores in, stores out: every stage reads and writes labelled Zarr stores
    listed in a workspace's intake catalog.
    """


@main.command()
@click.argument("directory")
@click.option("--description", default="", help="One line describing the workspace.")
@user_errors
def init(directory: str, description: str) -> None:
    """Create a workspace (stores + catalog.yaml) in DIRECTORY."""
    from .store import Workspace

    ws = Workspace.init(directory, description=description)
    click.echo(f"workspace ready: {ws.url}/catalog.yaml")


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
@user_errors
def run(study: str, stages, scheduler: str | None, force: bool, quiet: bool) -> None:
    """Run every stage STUDY (a study.yaml) names, skipping current stores."""
    chosen = None
    if stages:
        bad = [s for s in stages if s not in STAGE_HELP]
        if bad:
            raise click.BadParameter(f"unknown stage {bad[0]!r} (known: {', '.join(STAGE_HELP)})",
                                     param_hint="--stage")
        chosen = [s for s in STAGE_HELP if s in stages]
    _run_stages(study, chosen, scheduler, force, quiet)


def _stage_command(stage: str) -> click.Command:
    @click.command(name=stage, help=f"Run the `{stage}` stage of STUDY (a study.yaml): {STAGE_HELP[stage]}.",
                   short_help=f"Stage: {STAGE_HELP[stage]}.")
    @click.argument("study", type=click.Path())
    @click.option("--scheduler", default=None, help=_SCHEDULER_HELP)
    @click.option("--force", is_flag=True, help="Recompute even if current.")
    @click.option("-q", "--quiet", is_flag=True, help="No progress output.")
    @user_errors
    def command(study: str, scheduler: str | None, force: bool, quiet: bool) -> None:
        _run_stages(study, [stage], scheduler, force, quiet)

    return command


for _stage in STAGE_HELP:
    main.add_command(_stage_command(_stage))

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
