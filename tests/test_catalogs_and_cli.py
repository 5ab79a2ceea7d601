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
