"""Fail fast: every model a study names is resolved before the first stage runs;
a stimulus too short for the clock is named, not dropped."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import xarray as xr
import yaml

from xaffect.errors import InputError
from xaffect.features.stage import run_features
from xaffect.store import Workspace
from xaffect.study import check_study, load_study, run_study

TEMPLATE = Path(__file__).parents[1] / "catalogs" / "study-eeg-template.yaml"


def _template_with(tmp_path, extractors):
    cfg = yaml.safe_load(TEMPLATE.read_text())
    cfg["features"]["extractors"] = extractors
    cfg["workspace"] = str(tmp_path / "ws")
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(cfg))
    return load_study(tmp_path / "study.yaml", check_files=False)


def test_template_fails_in_its_first_seconds_with_how_to_provide_the_model(tmp_path):
    study = load_study(TEMPLATE, check_files=False)
    with pytest.raises(InputError, match=r"study-eeg-template.yaml: features.extractors\[hubert\].model: model "
                                         r"'facebook/hubert-base-ls960': cannot be found.*hf download.*"
                                         r"make-random-model.*checked before any stage ran"):
        check_study(study, stages=["stems", "features"], echo=lambda *a: None)


def test_random_init_of_a_hub_architecture_builds_offline(tmp_path):
    study = _template_with(tmp_path, [{"name": "hubert", "kind": "hf", "model": "facebook/hubert-base-ls960",
                                       "random_init": True, "seed": 0}])
    lines = check_study(study, stages=["features"], echo=lambda *a: None)
    assert lines == ["features.hubert-random: facebook/hubert-base-ls960 (13 layers, random weights)"]
    from xaffect.features.stage import resolve_extractor

    sm, prov, _ = resolve_extractor(study.section("features")["extractors"][0], study)
    assert "HubertConfig() defaults" in prov["config_source"] and prov["random_init"] is True
    assert sm.n_units == 768 and sm.hop == 320  # the base architecture


def test_nothing_runs_when_a_model_is_missing(tmp_path):
    sr = 16000
    sf.write(tmp_path / "a.wav", (0.1 * np.random.RandomState(0).randn(3 * sr)).astype(np.float32), sr)
    (tmp_path / "study.yaml").write_text(textwrap.dedent("""\
        workspace: ws
        stimuli: [{name: a, path: a.wav}]
        stages: [stems, features]
        stems: {backend: nnfilter}
        features:
          extractors:
            - {kind: lld}
            - {name: crepe, kind: torch, factory: 'xaffect.features.crepe:crepe_architecture',
               state_dict: models/crepe.pth, layers: [pool1], hop_seconds: 0.05, field_seconds: 0.064}
        """))
    study = load_study(tmp_path / "study.yaml")
    with pytest.raises(InputError, match=r"extractors\[crepe\]: state_dict .*models/crepe.pth: file does not exist"):
        run_study(study, progress=False, echo=lambda *a: None)
    assert not (tmp_path / "ws").exists()  # the stems stage never ran, nothing was written


def test_stimulus_shorter_than_one_clock_bin_is_named(tmp_path):
    ws = Workspace.init(tmp_path / "ws")
    groups = {"/": xr.Dataset()}
    for name, dur in {"long": 2.5, "blip": 0.4}.items():
        audio = np.zeros((3, int(dur * 16000)), np.float32) + 0.01
        groups[f"/{name}"] = xr.Dataset({"audio": (("element", "sample"), audio)},
                                        coords={"element": ["original", "voice", "soundtrack"]}, attrs={"sr": 16000})
    ws.write("stems", xr.DataTree.from_dict(groups), stage="stems", params={"t": 1}, progress=False)
    before = ws.names()
    for name in ("long", "blip"):
        sf.write(tmp_path / f"{name}.wav", np.zeros(100, np.float32), 16000)
    for kind in ("lld", "vggish, random_init: true, layers: [23]"):
        (tmp_path / "study.yaml").write_text(textwrap.dedent(f"""\
            workspace: ws
            stimuli: [{{name: long, path: long.wav}}, {{name: blip, path: blip.wav}}]
            features: {{extractors: [{{kind: {kind}}}]}}
            """))
        with pytest.raises(InputError, match=r"stimulus 'blip': 0.400 s is shorter than one clock bin at 1 Hz"):
            run_features(load_study(tmp_path / "study.yaml"), progress=False)
    assert Workspace(tmp_path / "ws").names() == before
