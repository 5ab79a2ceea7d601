"""Shipped catalogs load with plain intake; the command validates configs up front."""

import subprocess
import sys
from pathlib import Path

import intake
import pytest
from click.testing import CliRunner

import xaffect
from xaffect.cli import main

CATALOGS = sorted((Path(__file__).parent.parent / "catalogs").glob("*.yaml"))


@pytest.mark.parametrize("path", [p for p in CATALOGS if "study" not in p.name], ids=lambda p: p.name)
def test_shipped_intake_catalogs_load(path):
    cat = intake.from_yaml_file(str(path))
    assert cat.entries, f"{path.name} has no entries"
    assert "root" in cat.user_parameters
    assert cat.metadata.get("description")


def test_liris_catalog_reads_a_file_in_that_layout(tmp_path):
    (tmp_path / "continuous-annotations").mkdir()
    (tmp_path / "continuous-annotations" / "After_The_Rain_Arousal.txt").write_text(
        "Time\tMean\tStd\n0\t0.1\t0.01\n1\t0.2\t0.02\n")
    cat = intake.from_yaml_file(str(Path(__file__).parent.parent / "catalogs" / "liris-accede.yaml"))
    df = cat(root=str(tmp_path))["arousal_example"].read()
    assert list(df["Mean"]) == [0.1, 0.2]


def test_version_and_help():
    r = CliRunner().invoke(main, ["--version"])
    assert r.exit_code == 0 and xaffect.__version__ in r.output
    r = CliRunner().invoke(main, ["--help"])
    assert r.exit_code == 0
    for cmd in ("init", "catalog", "run"):
        assert cmd in r.output


def test_init_and_catalog_ls(tmp_path):
    r = CliRunner().invoke(main, ["init", str(tmp_path / "ws")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "ws" / "catalog.yaml").exists()
    r = CliRunner().invoke(main, ["catalog", "ls", str(tmp_path / "ws")])
    assert r.exit_code == 0 and "no stores" in r.output


def _run_cli(*args):
    return subprocess.run([sys.executable, "-m", "xaffect.cli", *args], capture_output=True, text=True)


@pytest.mark.parametrize("body, message", [
    ("stimuli:\n  - {name: a, path: missing.wav}\n", "stimuli[0].path: "),
    ("stimuli:\n  - {name: a, path: stim.wav}\nrate: fast\n", "rate: expected a number"),
    ("stimuli:\n  - {name: a, path: stim.wav}\nrat: 2\n", "did you mean 'rate'"),
    ("stimuli:\n  - {name: a, path: stim.wav}\n  - {name: a, path: stim.wav}\n", "appears twice"),
    ("stimuli: [\n", "not valid YAML"),
    ("stimuli:\n  - {name: a, path: stim.wav}\nstages: [stemz]\n", "unknown stage 'stemz'"),
])
def test_bad_config_is_one_line_and_exit_2(tmp_path, body, message):
    (tmp_path / "stim.wav").write_bytes(b"RIFF")
    study = tmp_path / "study.yaml"
    study.write_text(body)
    r = _run_cli("run", str(study))
    assert r.returncode == 2, r.stderr
    lines = [l for l in r.stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1, r.stderr
    assert message in lines[0] and "Traceback" not in r.stderr


def test_bad_paths_exit_2(tmp_path):
    r = _run_cli("run", str(tmp_path / "nope.yaml"))
    assert r.returncode == 2 and "does not exist" in r.stderr and "Traceback" not in r.stderr
    r = _run_cli("catalog", "ls", str(tmp_path / "not-a-workspace"))
    assert r.returncode == 2 and "not an xaffect workspace" in r.stderr
    r = _run_cli("run", str(tmp_path / "nope.yaml"), "--scheduler", "bogus")
    assert r.returncode == 2


@pytest.mark.parametrize("path", [p for p in CATALOGS if "study" in p.name], ids=lambda p: p.name)
def test_study_templates_validate(path):
    from xaffect.study import load_study

    study = load_study(path, check_files=False)
    assert study.stimuli and study.stages
    assert "encode" in study.config


# --------------------------------------------------------------- a command that answers at once
HEAVY_MODULES = ("scipy.signal", "pandas", "matplotlib", "torch", "mne", "xarray", "dask", "zarr", "sklearn",
                 "transformers", "librosa", "intake")

_PROBE = """
import sys
from click.testing import CliRunner
from xaffect.cli import main
r = CliRunner().invoke(main, sys.argv[1:])
assert r.exit_code == 0, r.output
heavy = [m for m in {heavy!r} if m in sys.modules]
print("HEAVY=" + ",".join(heavy))
"""


def _help_imports(*args):
    r = subprocess.run([sys.executable, "-c", _PROBE.format(heavy=HEAVY_MODULES), *args],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return [m for m in r.stdout.strip().rpartition("HEAVY=")[2].split(",") if m]


def test_help_imports_no_heavy_module():
    from xaffect.cli import COMMANDS, STAGE_HELP

    assert _help_imports("--help") == []
    assert _help_imports("-V") == []
    # every command's own --help, in one process (a fresh subprocess per command would cost ~1 s each)
    probe = ("import sys\nfrom click.testing import CliRunner\nfrom xaffect.cli import main\n"
             "for cmd in sys.argv[1:]:\n"
             "    r = CliRunner().invoke(main, cmd.split() + ['--help'])\n"
             "    assert r.exit_code == 0 and 'Usage:' in r.output, (cmd, r.output)\n"
             f"print('HEAVY=' + ','.join(m for m in {HEAVY_MODULES!r} if m in sys.modules))\n")
    names = [*COMMANDS, *STAGE_HELP, "init", "run", "setup spleeter", "catalog ls", "catalog show"]
    r = subprocess.run([sys.executable, "-c", probe, *names], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().rpartition("HEAVY=")[2] == "", r.stdout


def test_import_xaffect_is_light_and_lazy():
    r = subprocess.run([sys.executable, "-c", "import sys, xaffect\n"
                        f"print('HEAVY=' + ','.join(m for m in {HEAVY_MODULES!r} if m in sys.modules))"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "HEAVY="
    # names and sub-packages resolve on first access, to the real objects
    import xaffect.store

    assert xaffect.Workspace is xaffect.store.Workspace and xaffect.use_scheduler is xaffect.store.use_scheduler
    assert xaffect.encoding is sys.modules["xaffect.encoding"] and "Workspace" in dir(xaffect)
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        xaffect.nonsense  # noqa: B018


def test_command_table_matches_the_implementations():
    """Every lazily listed command resolves; each front end declares what its implementation does."""
    import click

    from xaffect import commands
    from xaffect.cli import COMMANDS, STAGE_HELP, _resolve
    from xaffect.features.models import RANDOM_MODEL_KINDS
    from xaffect.study import STAGE_ORDER

    assert tuple(STAGE_HELP) == STAGE_ORDER
    assert commands.RANDOM_MODEL_KINDS == RANDOM_MODEL_KINDS
    for name in COMMANDS:
        assert _resolve(name).name == name

    def signature(cmd):
        return [(p.name, tuple(p.opts), p.default, p.required, getattr(p, "is_flag", False),
                 p.type.to_info_dict()) for p in cmd.params]

    for name in commands.FRONTS:
        front = commands.setup.commands["spleeter"] if name == "spleeter" else _resolve(name)
        impl = commands.implementation(name)
        assert isinstance(impl, click.Command) and impl is not front
        assert signature(front) == signature(impl), (
            f"xaffect/commands.py: the front end of {name!r} must declare the same arguments and options as "
            f"{commands.FRONTS[name]} (add the new one there too)")


def test_front_end_runs_its_implementation(tmp_path):
    """A front end forwards its arguments: synthetic-subject writes the FreeSurfer subject."""
    r = CliRunner().invoke(main, ["synthetic-subject", str(tmp_path / "subjects"), "--subject", "s-cli"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "subjects" / "s-cli" / "label" / "lh.aparc.annot").is_file()
    r = CliRunner().invoke(main, ["synthetic-subject", str(tmp_path / "subjects"), "--subject", "s-cli"])
    assert r.exit_code == 0, r.output          # an existing subject is kept (no --overwrite)


def test_imports_flow_one_way():
    """Nothing imports the command line, and only datasets/ imports datasets/ (simulations sit on top)."""
    import ast

    root = Path(xaffect.__file__).parent
    wrong = []
    for f in sorted(root.rglob("*.py")):
        mod = ".".join(("xaffect", *f.relative_to(root).with_suffix("").parts))
        package = mod if f.name == "__init__.py" else mod.rpartition(".")[0]
        package = package.removesuffix(".__init__")
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom):
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1]) if node.level else ""
                target = ".".join(p for p in (base, node.module or "") if p)
                targets = [target, *(f"{target}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for t in targets:
                if t.startswith("xaffect.cli") and mod != "xaffect.cli" \
                        or t.startswith("xaffect.datasets") and not mod.startswith("xaffect.datasets"):
                    wrong.append(f"{mod} imports {t}")
    assert wrong == []
