"""The stems stage: store round trip through the catalog, energy variables,
per-stimulus reuse, bad stimuli leave the workspace untouched, the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import yaml
from click.testing import CliRunner

from xaffect.errors import InputError
from xaffect.store import Workspace, open_catalog
from xaffect.store.clock import stimulus_slices
from xaffect.stimuli.energy import frame_power
from xaffect.stimuli.stage import ELEMENTS, STAGES, make_stems
from xaffect.stimuli.synth import make_mixture
from xaffect.study import load_study

SR = 16000


def _write(path, x, sr=SR):
    sf.write(path, x, sr)
    return path


@pytest.fixture
def study_dir(tmp_path):
    stim = tmp_path / "stimuli"
    stim.mkdir()
    a = make_mixture(5.0, 22050, seed=0, snr_db=6.0)  # voice-dominant
    b = make_mixture(4.0, 22050, seed=1, snr_db=-6.0)  # soundtrack-dominant
    _write(stim / "a.wav", np.stack([a["mixture"], a["mixture"]], 1), 22050)
    _write(stim / "b.flac", b["mixture"], 22050)
    cfg = {"name": "t", "workspace": "ws", "rate": 1.0,
           "stimuli": [{"name": "a", "path": "stimuli/a.wav"}, {"name": "b", "path": "stimuli/b.flac"}],
           "stems": {"backend": "nnfilter", "sr": SR, "backend_options": {"block": 4.0}}}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(cfg))
    return tmp_path


def test_stage_round_trip_through_catalog(study_dir):
    study = load_study(study_dir / "study.yaml")
    assert STAGES["stems"].run(study, progress=False) == ["stems"]
    cat = open_catalog(study_dir / "ws")
    assert "stems" in list(cat.entries)
    tree = study.workspace.open("stems")
    assert sorted(g.lstrip("/") for g in tree.groups if g != "/") == ["a", "b"]
    ga = tree["a"].to_dataset()  # element labels inherited from the root group
    assert ga["audio"].dims == ("element", "sample") and ga["audio"].dtype == np.float32
    assert list(ga["element"].values) == list(ELEMENTS)
    assert ga.attrs["sr"] == SR and ga["audio"].sizes["sample"] == 5 * SR
    audio = ga["audio"].values
    np.testing.assert_allclose(audio[1] + audio[2], audio[0], atol=1e-5)  # nnfilter: exact split
    # the group read through intake equals the workspace's view
    via_intake = cat["stems/a"].read()
    np.testing.assert_array_equal(via_intake["audio"].values, audio)
    prov = study.workspace.provenance("stems")
    assert prov["stage"] == "stems" and prov["params"]["backend"] == "nnfilter"
    assert prov["params"]["options"] == {"block": 4.0}
    assert {i["ref"] for i in prov["inputs"]} == {str(study_dir / "stimuli/a.wav"), str(study_dir / "stimuli/b.flac")}


def test_energy_variables(study_dir):
    study = load_study(study_dir / "study.yaml")
    STAGES["stems"].run(study, progress=False)
    root = study.workspace.open("stems")["/"].to_dataset()
    assert root["energy"].dims == ("element", "time") and root["energy_ratio"].dims == ("time",)
    sl = stimulus_slices(root)
    assert sl == {"a": slice(0, 5), "b": slice(5, 9)}
    np.testing.assert_allclose(root["onset"].values, [0.5, 1.5, 2.5, 3.5, 4.5, 0.5, 1.5, 2.5, 3.5])
    # brute force: mean square of each second's samples
    for name in ("a", "b"):
        audio = study.workspace.open("stems")[name]["audio"].values.astype(np.float64)
        n = audio.shape[1] // SR
        brute = (audio[:, : n * SR].reshape(3, n, SR) ** 2).mean(-1)
        np.testing.assert_allclose(root["energy"].values[:, sl[name]], brute, rtol=1e-4)
        ratio = 10 * np.log10(brute[1] / brute[2])
        np.testing.assert_allclose(root["energy_ratio"].values[sl[name]], ratio, rtol=1e-3, atol=1e-3)
    # planted: a is voice-dominant (+6 dB), b soundtrack-dominant (-6 dB)
    r = dict(zip(root["stimuli"].values, root["energy_ratio_stimulus"].values))
    assert r["a"] > r["b"] + 3.0


def test_frame_power_on_clock_matches_brute_force():
    x = np.random.default_rng(0).standard_normal((2, 3 * SR + 77))
    p, t = frame_power(x, SR, hop=0.01)
    assert p.shape == (2, 300) and np.isclose(t[0], 0.005)
    np.testing.assert_allclose(p[:, 0], (x[:, :160] ** 2).mean(1))


def test_rerun_skips_and_reuses_current_stimuli(study_dir):
    study = load_study(study_dir / "study.yaml")
    ws = study.workspace
    STAGES["stems"].run(study, progress=False)
    path1 = ws.metadata("stems")["xaffect"]["path"]
    stamp_a = ws.open("stems", group="a").attrs["separated"]
    STAGES["stems"].run(study, progress=False)
    assert ws.metadata("stems")["xaffect"]["path"] == path1  # current: nothing rewritten
    # a third stimulus: a and b are reused, only c is separated
    c = make_mixture(3.0, SR, seed=7)
    _write(study_dir / "stimuli" / "c.wav", c["mixture"])
    cfg = yaml.safe_load((study_dir / "study.yaml").read_text())
    cfg["stimuli"].append({"name": "c", "path": "stimuli/c.wav"})
    (study_dir / "study.yaml").write_text(yaml.safe_dump(cfg))
    study = load_study(study_dir / "study.yaml")
    STAGES["stems"].run(study, progress=False)
    assert ws.metadata("stems")["xaffect"]["path"] != path1
    assert ws.open("stems", group="a").attrs["separated"] == stamp_a
    assert ws.open("stems", group="c")["audio"].sizes["sample"] == 3 * SR
    # changed settings invalidate every stimulus
    cfg["stems"]["backend_options"] = {"block": 3.0}
    (study_dir / "study.yaml").write_text(yaml.safe_dump(cfg))
    STAGES["stems"].run(load_study(study_dir / "study.yaml"), progress=False)
    assert ws.open("stems", group="a").attrs["separated"] != stamp_a


@pytest.mark.parametrize("bad", ["corrupt", "silent", "no_audio"])
def test_bad_stimulus_names_file_and_writes_nothing(study_dir, bad):
    study = load_study(study_dir / "study.yaml")
    ws = study.workspace
    STAGES["stems"].run(study, progress=False)
    before = ws.metadata("stems")["xaffect"]["path"]
    path = study_dir / "stimuli" / "bad.mkv"
    if bad == "corrupt":
        path.write_bytes(b"\x1a\x45\xdf\xa3" + np.random.default_rng(1).bytes(3000))
    elif bad == "silent":
        path = path.with_suffix(".wav")
        _write(path, np.zeros(SR * 2, np.float32))
    else:
        from test_stimuli_decode import write_media

        write_media(path, None, codec="aac", video="mpeg4")
    cfg = yaml.safe_load((study_dir / "study.yaml").read_text())
    cfg["stimuli"].append({"name": "bad", "path": f"stimuli/{path.name}"})
    (study_dir / "study.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(InputError, match=path.name):
        STAGES["stems"].run(load_study(study_dir / "study.yaml"), progress=False)
    assert ws.metadata("stems")["xaffect"]["path"] == before  # untouched
    assert sorted(g.lstrip("/") for g in ws.open("stems").groups if g != "/") == ["a", "b"]


def test_bad_stimulus_in_fresh_workspace_registers_nothing(tmp_path):
    ws = Workspace.init(tmp_path / "ws")
    good = _write(tmp_path / "good.wav", make_mixture(2.0, SR)["mixture"])
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty.mp3"):
        make_stems(ws, {"good": good, "empty": empty}, progress=False)
    assert ws.names() == []


def test_cli_stems_command(study_dir):
    from xaffect.cli import main

    res = CliRunner().invoke(main, ["stems", str(study_dir / "study.yaml"), "-q"])
    assert res.exit_code == 0, res.output
    assert "stems" in Workspace(study_dir / "ws").names()
    res = CliRunner().invoke(main, ["setup", "spleeter", "--help"])
    assert res.exit_code == 0 and "Spleeter" in res.output


def test_stems_dir_reads_pre_separated_stems(tmp_path):
    """Pre-separated stems replace the backend: resampled, length-checked, part of the identity."""
    stim, truth = tmp_path / "stimuli", tmp_path / "truth"
    stim.mkdir()
    truth.mkdir()
    mixes = {"a": make_mixture(4.0, 22050, seed=0, snr_db=6.0), "b": make_mixture(3.0, 22050, seed=1, snr_db=-6.0)}
    for n, m in mixes.items():
        _write(stim / f"{n}.wav", m["mixture"], 22050)
        _write(truth / f"{n}.voice.wav", m["voice"], 22050)
        # the soundtrack 50 ms longer (an encoder's padding): trimmed to the stimulus
        _write(truth / f"{n}.soundtrack.wav", np.r_[m["soundtrack"], np.zeros(1102, np.float32)], 22050)
    cfg = {"name": "t", "workspace": "ws", "rate": 1.0,
           "stimuli": [{"name": n, "path": f"stimuli/{n}.wav"} for n in mixes],
           "stems": {"backend": "nnfilter", "sr": SR, "stems_dir": "truth"}}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(cfg))
    study = load_study(tmp_path / "study.yaml")
    assert STAGES["stems"].run(study, progress=False) == ["stems"]
    ws = study.workspace
    for n, m in mixes.items():
        audio = ws.open("stems", group=n)["audio"].values
        assert audio.shape == (3, mixes[n]["mixture"].size * SR // 22050)
        # the stored stems are the given ones (resampled), not a separation: voice + soundtrack = original
        np.testing.assert_allclose(audio[1] + audio[2], audio[0], atol=2e-3)
        want, _ = __import__("xaffect.stimuli", fromlist=["load_audio"]).load_audio(truth / f"{n}.voice.wav", sr=SR)
        np.testing.assert_allclose(audio[1], want[:audio.shape[1]], atol=1e-6)
    prov = ws.provenance("stems")
    assert prov["params"]["stems_dir"] == str(truth)
    refs = {i["ref"] for i in prov["inputs"]}
    assert str(truth / "a.voice.wav") in refs and str(truth / "b.soundtrack.wav") in refs
    assert ws.open("stems")["/"].attrs["backend"] == "precomputed"
    # a changed stem file makes the store stale and is re-read
    path1 = ws.metadata("stems")["xaffect"]["path"]
    STAGES["stems"].run(load_study(tmp_path / "study.yaml"), progress=False)
    assert ws.metadata("stems")["xaffect"]["path"] == path1
    _write(truth / "a.voice.wav", 0.5 * mixes["a"]["voice"], 22050)
    STAGES["stems"].run(load_study(tmp_path / "study.yaml"), progress=False)
    assert ws.metadata("stems")["xaffect"]["path"] != path1
    path2 = ws.metadata("stems")["xaffect"]["path"]
    # a missing stem or one of the wrong length: an error naming the file, nothing written
    (truth / "b.soundtrack.wav").unlink()
    with pytest.raises(InputError, match="b.soundtrack.wav"):
        STAGES["stems"].run(load_study(tmp_path / "study.yaml"), progress=False)
    _write(truth / "b.soundtrack.wav", mixes["b"]["soundtrack"][:22050], 22050)  # 1 s instead of 3
    with pytest.raises(InputError, match="b.soundtrack.wav"):
        STAGES["stems"].run(load_study(tmp_path / "study.yaml"), progress=False, force=True)
    assert ws.metadata("stems")["xaffect"]["path"] == path2


def test_auto_backend_records_which_ran_and_low_rate_recording_is_refused(tmp_path, monkeypatch):
    """Default ``auto`` resolves to masknet here and the store says so; a recording at a rate the
    separator cannot take names its file and leaves the store as it was."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no pretrained Demucs cached
    monkeypatch.setenv("XAFFECT_SPLEETER_MODELS", str(tmp_path / "none"))  # no Spleeter checkpoint
    ws = Workspace.init(tmp_path / "ws")
    good = _write(tmp_path / "good.wav", make_mixture(2.0, SR, seed=4)["mixture"])
    make_stems(ws, {"good": good}, progress=False)
    prov = ws.provenance("stems")
    assert prov["params"]["backend"] == "masknet" and prov["params"]["requested_backend"] == "auto"
    assert prov["params"]["model"]["name"] == "masknet" and prov["params"]["model"]["hash"]
    root = ws.open("stems")["/"]
    assert root.attrs["backend"] == "masknet" and root.attrs["requested_backend"] == "auto"
    audio = ws.open("stems", group="good")["audio"].values
    np.testing.assert_allclose(audio[1] + audio[2], audio[0], atol=1e-5)
    before = ws.metadata("stems")["xaffect"]["path"]
    low = _write(tmp_path / "phone4k.wav", make_mixture(2.0, 4000, seed=5)["mixture"], 4000)
    with pytest.raises(InputError, match=r"phone4k\.wav.*4000 Hz"):
        make_stems(ws, {"good": good, "phone": low}, progress=False)
    assert ws.metadata("stems")["xaffect"]["path"] == before
    assert [g.lstrip("/") for g in ws.open("stems").groups if g != "/"] == ["good"]


def test_stems_quality_against_true_stems(tmp_path):
    """The demo's separation score: SI-SDR of the stored stems against true stems on disk, with a
    planted codec delay found and undone; a missing true stem names its file."""
    from xaffect.stimuli.quality import stems_quality

    ws = Workspace.init(tmp_path / "ws")
    truth = tmp_path / "truth"
    truth.mkdir()
    m = make_mixture(6.0, SR, seed=8, snr_db=0.0)
    delayed = np.concatenate([np.zeros(700, np.float32), m["mixture"]])  # as an encoder's priming would
    stim = _write(tmp_path / "clip.wav", delayed)
    _write(truth / "clip.voice.wav", m["voice"])
    _write(truth / "clip.soundtrack.wav", m["soundtrack"])
    make_stems(ws, {"clip": stim}, backend="masknet", progress=False)
    q = stems_quality(ws, truth)
    row = q["stimuli"]["clip"]
    assert q["backend"] == "masknet" and row["lag_samples"] == 700
    assert abs(row["mixture_voice"]) < 1.0  # 0 dB mixture, aligned
    assert q["median"]["gain_voice"] == pytest.approx(row["si_sdr_voice"] - row["mixture_voice"])
    (truth / "clip.soundtrack.wav").unlink()
    with pytest.raises(InputError, match="clip.soundtrack.wav"):
        stems_quality(ws, truth)


def test_stored_rate_below_separator_minimum_is_a_config_error(tmp_path):
    from xaffect.errors import ConfigError

    ws = Workspace.init(tmp_path / "ws")
    good = _write(tmp_path / "good.wav", make_mixture(1.0, SR, seed=4)["mixture"])
    with pytest.raises(ConfigError, match="stems.sr: 4000 Hz"):
        make_stems(ws, {"good": good}, backend="masknet", sr=4000, progress=False)
    assert ws.names() == []
