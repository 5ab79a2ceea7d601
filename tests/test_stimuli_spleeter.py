"""Spleeter backend, for real: its own environment, a genuine 2stems checkpoint
trained for a few steps by Spleeter itself on synthetic audio, separation
through xaffect's backend.

Needs the environment (`.ci/spleeter.sh` or `xaffect setup spleeter`) and
ffmpeg; run with ``pytest -m spleeter``. Training + separation take ~1-2 min.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from xaffect.errors import ConfigError
from xaffect.stimuli import separate
from xaffect.stimuli.spleeter import default_env, spleeter_command
from xaffect.stimuli.synth import make_mixture


def test_missing_environment_says_how_to_get_it(tmp_path):
    x = np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    with pytest.raises(ConfigError, match="xaffect setup spleeter"):
        separate(x, 16000, backend="spleeter", python=str(tmp_path / "nope" / "python"))


def _spleeter_python() -> str:
    py = os.environ.get("XAFFECT_SPLEETER_PYTHON") or str(default_env() / "bin" / "python")
    if not os.path.exists(py) or shutil.which("ffmpeg") is None:
        # the README's test command runs .ci/spleeter.sh before pytest: a missing env is a failure
        pytest.fail("Spleeter environment or ffmpeg missing: run .ci/spleeter.sh")
    return py


@pytest.fixture(scope="module")
def trained_2stems(tmp_path_factory):
    """A real Spleeter 2stems checkpoint: `spleeter train` for 2 steps on synthetic audio."""
    py = _spleeter_python()
    root = tmp_path_factory.mktemp("spleeter")
    data = root / "data"
    data.mkdir()
    rows = ["mix_path,vocals_path,accompaniment_path,duration"]
    for i in range(2):
        m = make_mixture(25.0, 44100, seed=i)
        for key, name in (("mixture", "mix"), ("voice", "vocals"), ("soundtrack", "accompaniment")):
            sf.write(data / f"{name}{i}.wav", np.stack([m[key], m[key]], axis=1), 44100)
        rows.append(f"mix{i}.wav,vocals{i}.wav,accompaniment{i}.wav,25.0")
    (root / "train.csv").write_text("\n".join(rows) + "\n")
    cfg = json.loads(subprocess.run(
        [py, "-c", "import importlib.resources as r; print(r.files('spleeter.resources')"
                   ".joinpath('2stems.json').read_text())"], capture_output=True, text=True, check=True).stdout)
    cfg.update(train_csv=str(root / "train.csv"), validation_csv=str(root / "train.csv"),
               model_dir=str(root / "model"), train_max_steps=2, save_checkpoints_steps=2,
               throttle_secs=1, training_cache=str(root / "cache_train"),
               validation_cache=str(root / "cache_val"), batch_size=1)
    params = root / "2stems.json"
    params.write_text(json.dumps(cfg))
    proc = subprocess.run(spleeter_command(py) + ["train", "-p", str(params), "-d", str(data)],
                          capture_output=True, text=True, cwd=root, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert any((root / "model").glob("*.index")), "spleeter train wrote no checkpoint"
    return params


@pytest.mark.spleeter
@pytest.mark.timeout(900)
def test_spleeter_separates_a_file_through_the_backend(trained_2stems):
    py = _spleeter_python()
    m = make_mixture(6.0, 16000, seed=3)
    out = separate(m["mixture"], 16000, backend="spleeter", params=str(trained_2stems), python=py)
    assert set(out) == {"voice", "soundtrack"}
    for y in out.values():
        assert y.shape == m["mixture"].shape and y.dtype == np.float32
        assert np.isfinite(y).all()
    # a 2-step model is no separator, but its stems are real network outputs:
    # not silent, not the mixture copied, and of the mixture's order of magnitude
    assert np.std(out["voice"]) > 0 and np.std(out["soundtrack"]) > 0
    assert not np.allclose(out["voice"], m["mixture"], atol=1e-3)
    total = out["voice"] + out["soundtrack"]
    assert 0.05 < np.std(total) / np.std(m["mixture"]) < 20


@pytest.mark.spleeter
def test_spleeter_missing_checkpoint_says_how_to_get_it(tmp_path):
    py = _spleeter_python()
    x = np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    with pytest.raises(ConfigError, match="no spleeter:2stems checkpoint"):
        separate(x, 16000, backend="spleeter", python=py, model_path=str(tmp_path))
