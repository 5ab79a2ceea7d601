"""Light front ends of the commands whose code lives in numpy-heavy modules.

Only click is imported here. Each command below declares the same
arguments and options as the command it stands for (``tests/
test_catalogs_and_cli.py`` checks they agree) and, when it runs, imports that
module and calls its callback. So ``xaffect report-html --help`` answers without
importing the simulation, MNE, torch or xarray.
"""

from __future__ import annotations

import importlib

import click

__all__ = ["FRONTS", "setup", "make_random_model", "synthetic_subject", "plot_synchrony", "report_html"]

#: front-end command name -> "module:attr" of the click command that does the work
FRONTS: dict[str, str] = {
    "spleeter": "xaffect.stimuli.stage:_setup_spleeter",
    "make-random-model": "xaffect.features.stage:CLI_COMMANDS",
    "synthetic-subject": "xaffect.neural.stage:CLI_COMMANDS",
    "plot-synchrony": "xaffect.synchrony.stage:plot_command",
    "report-html": "xaffect.analysis.stage:report_command",
}


def implementation(name: str) -> click.Command:
    """The click command in a heavy module that front end ``name`` stands for."""
    module_name, _, attr = FRONTS[name].partition(":")
    obj = getattr(importlib.import_module(module_name), attr)
    if isinstance(obj, (list, tuple)):
        obj = next(c for c in obj if c.name == name)
    return obj


def _forward(name: str):
    def callback(**kwargs):
        return click.get_current_context().invoke(implementation(name).callback, **kwargs)

    return callback


@click.group("setup", help="Prepare optional external tools.")
def setup() -> None:
    pass


@setup.command("spleeter", help="Create the separate Spleeter environment (Python 3.11 venv).")
@click.option("--env", "env", type=click.Path(), default=None,
              help="where to create it (default $XAFFECT_SPLEETER_ENV or ~/.cache/xaffect/spleeter-env)")
@click.option("--python", "python", type=str, default=None, help="base interpreter (Python 3.9-3.11)")
def setup_spleeter(**kwargs) -> None:
    _forward("spleeter")(**kwargs)


# the kinds are listed here so that --help does not import torch (checked against RANDOM_MODEL_KINDS in the tests)
RANDOM_MODEL_KINDS = ("wav2vec2", "hubert", "wavlm", "data2vec-audio", "whisper", "vggish")


@click.command("make-random-model",
               help="Save a model of KIND with seeded random weights under PATH (loadable as `model: PATH`).")
@click.argument("kind", type=click.Choice(RANDOM_MODEL_KINDS))
@click.argument("path", type=click.Path())
@click.option("--seed", default=0, show_default=True, help="Seed of the random weights.")
@click.option("--size", type=click.Choice(["tiny", "base"]), default="tiny", show_default=True,
              help="base: the published base architecture; tiny: a few small blocks.")
def make_random_model(**kwargs) -> None:
    _forward("make-random-model")(**kwargs)


@click.command("synthetic-subject",
               help="Write a small FreeSurfer-format subject (68 Desikan–Killiany labels) into SUBJECTS_DIR.")
@click.argument("subjects_dir", type=click.Path(file_okay=False))
@click.option("--subject", default="xaffect-synth", show_default=True)
@click.option("--overwrite", is_flag=True)
def synthetic_subject(**kwargs) -> None:
    _forward("synthetic-subject")(**kwargs)


@click.command("plot-synchrony",
               help="Plot the synchrony (region x time ISC) and targets (rating traces) stores of STUDY_FILE.")
@click.argument("study_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=".", help="Folder for the PNG files.")
@click.option("--band", default=None, help="Band to show (band-envelope ISC).")
def plot_synchrony(**kwargs) -> None:
    _forward("plot-synchrony")(**kwargs)


@click.command("report-html", help="Write report.html and summary.json for a WORKSPACE folder's scores.")
@click.argument("workspace")
@click.option("--out", "out", default=None, help="output folder (default: WORKSPACE/report)")
@click.option("--ground-truth", "ground_truth", default=None, type=click.Path(exists=True, dir_okay=False),
              help="ground_truth.json to compare with")
@click.option("--alpha", default=0.05, show_default=True, type=float, help="significance level")
@click.option("--p-var", "p_var", default="p_fwer", show_default=True, help="p-values of the claims")
def report_html(**kwargs) -> None:
    _forward("report-html")(**kwargs)
