"""The simulated study: files a user would bring, with the planted effects really in them."""

import json

import mne
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml

from xaffect.config import validate_section
from xaffect.datasets.simulate import element_descriptors, simulate_study, write_stimulus_video
from xaffect.errors import InputError
from xaffect.study import stage_specs

N_STIM, DUR, N_SUBJ = 3, 20.0, 3


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    path = simulate_study(out, seed=3, n_stimuli=N_STIM, duration=DUR, n_subjects=N_SUBJ, progress=False)
    return path


def _truth(root, name, element):
    x, sr = sf.read(root / "stimuli" / "truth" / f"{name}.{element}.wav", dtype="float32")
    return x, sr


def _corr(a, b):
    return float(np.corrcoef(a, b)[0, 1])


def test_layout_ground_truth_and_config(study):
    root = study.parent
    cfg = yaml.safe_load(study.read_text())
    names = [s["name"] for s in cfg["stimuli"]]
    assert len(names) == N_STIM and all((root / s["path"]).is_file() for s in cfg["stimuli"])
    assert cfg["stages"] == ["stems", "features", "covariates", "regions", "synchrony", "targets", "encode", "report"]
    assert len(list((root / "eeg").glob("*_eeg.fif"))) == N_SUBJ
    gt = json.loads((root / "ground_truth.json").read_text())
    assert set(gt) == {"planted", "null_targets"}
    for eff in gt["planted"]:
        assert set(eff) == {"target", "element", "feature_set", "layer"}
    planted = {e["target"] for e in gt["planted"]}
    assert not planted & set(gt["null_targets"])
    sim = json.loads((root / "simulation.json").read_text())
    for reg in sim["near_planted_regions"]:  # leakage neighbours of any plant: no isc null
        assert f"isc:{reg}" not in gt["null_targets"]
    for reg in sim["near_region_plants"]:  # ... of a region plant: no region null either
        assert f"region:{reg}" not in gt["null_targets"]
    assert "rating:valence" in gt["null_targets"]
    regions = {t.split(":")[1] for t in gt["null_targets"] if t.startswith("region:")}
    iscs = {t.split(":")[1] for t in gt["null_targets"] if t.startswith("isc:")}
    assert iscs and iscs <= regions
    assert len(iscs) + len(sim["near_planted_regions"]) == 68
    assert len(regions) + len(sim["near_region_plants"]) == 68
    # the stems stage reads the true stems, and the description says so
    assert cfg["stems"]["stems_dir"] == "stimuli/truth" and sim["true_stems"]
    assert "TRUE voice and soundtrack" in cfg["description"]
    for n in names:
        assert (root / "stimuli" / "truth" / f"{n}.voice.wav").is_file()
    # every section validates against the schema of the stage that reads it (where installed)
    specs = stage_specs([s for s in cfg["stages"]])
    for name, spec in specs.items():
        validate_section(cfg.get(name), spec.config, where=f"study.yaml: {name}", root=root)


def test_stimulus_audio_is_the_mix_at_the_planned_energy_ratio(study):
    from xaffect.stimuli.decode import load_audio

    root = study.parent
    sim = json.loads((root / "simulation.json").read_text())
    for name, db in sim["energy_ratio_db"].items():
        v, sr = _truth(root, name, "voice")
        m, _ = _truth(root, name, "soundtrack")
        assert 10 * np.log10(np.sum(v ** 2) / np.sum(m ** 2)) == pytest.approx(db, abs=0.05)
        mix, sr2 = load_audio(root / "stimuli" / f"{name}.mp4", sr=sr)
        assert sr2 == sr and abs(mix.size - v.size) < 0.1 * sr
        n = min(mix.size, v.size)
        got = element_descriptors(mix[:n], sr)["rms"]
        want = element_descriptors((v + m)[:n], sr)["rms"]
        assert _corr(got, want) > 0.98


def test_video_luminance_and_motion(tmp_path):
    import av

    sr = 16000
    x = np.zeros(sr * 6, dtype=np.float32)
    truth = write_stimulus_video(tmp_path / "v.mp4", x, sr, fps=10, seed=1)
    with av.open(str(tmp_path / "v.mp4")) as c:
        frames = [f.to_ndarray(format="gray").astype(float) for f in c.decode(video=0)]
    assert len(frames) == truth["luminance"].size
    lum = np.array([f.mean() for f in frames])
    assert _corr(lum, truth["luminance"]) > 0.95
    motion = np.array([np.abs((a - a.mean()) - (b - b.mean())).mean() for a, b in zip(frames[1:], frames[:-1])])
    assert _corr(motion, truth["speed"][1:]) > 0.5


def test_ratings_follow_the_planted_feature(study):
    root = study.parent
    cfg = yaml.safe_load(study.read_text())
    rating = {"arousal": [], "valence": []}
    feature = []
    for s in cfg["stimuli"]:
        df = pd.read_csv(root / cfg["targets"]["files"][s["name"]])
        assert list(df.columns) == ["onset", "rating", "rater", "scale"]
        assert df["rater"].nunique() == 5
        df["bin"] = np.floor(df["onset"]).astype(int)
        for scale in rating:
            rating[scale].append(df[df.scale == scale].groupby("bin")["rating"].mean().values)
        m, sr = _truth(root, s["name"], "soundtrack")
        feature.append(element_descriptors(m, sr)["rms"])
    f = np.concatenate(feature)
    r_arousal = _corr(np.concatenate(rating["arousal"]), f)
    r_valence = _corr(np.concatenate(rating["valence"]), f)
    assert r_arousal > 0.8
    assert abs(r_valence) < r_arousal - 0.3


def test_eeg_carries_the_planted_region_signal(study):
    from xaffect.neural.source import region_labels, region_signals

    root = study.parent
    cfg = yaml.safe_load(study.read_text())
    gt = json.loads((root / "ground_truth.json").read_text())
    null_region = next(t.split(":")[1] for t in gt["null_targets"] if t.startswith("region:"))
    labels = {lab.name: lab for lab in region_labels(subjects_dir=root / "subjects", subject="xaffect-synth")}
    picks = ["superiortemporal-lh", null_region]
    feature = np.concatenate([element_descriptors(*_truth(root, s["name"], "voice"))["rms"] for s in cfg["stimuli"]])
    series = {p: [] for p in picks}
    for rec in cfg["regions"]["recordings"]:
        raw = mne.io.read_raw_fif(root / rec["path"], preload=True, verbose="error")
        assert [a["description"] for a in raw.annotations] == [f"stimulus/{s['name']}" for s in cfg["stimuli"]]
        raw.set_eeg_reference("average", projection=True, verbose="error")
        sig = region_signals(raw, subjects_dir=root / "subjects", subject="xaffect-synth",
                             labels=[labels[p] for p in picks]).compute()
        sfreq = raw.info["sfreq"]
        for p in picks:
            x = sig.sel(region=p).values
            binned = []
            for a in raw.annotations:
                i0 = int(round(a["onset"] * sfreq))
                seg = x[i0:i0 + int(DUR * sfreq)]
                binned.append(seg.reshape(int(DUR), -1).mean(1))
            series[p].append(np.concatenate(binned))
    # source sign is arbitrary but shared by subjects (one anatomy): average, then |r|
    r_planted = abs(_corr(np.mean(series[picks[0]], axis=0), feature))
    r_null = abs(_corr(np.mean(series[picks[1]], axis=0), feature))
    assert r_planted > 0.6
    assert r_null < r_planted - 0.3


def test_bad_input_writes_nothing(tmp_path):
    with pytest.raises(InputError, match="descriptor"):
        simulate_study(tmp_path / "a", plants=[{"target": "rating:x", "element": "voice", "descriptor": "mfcc"}])
    with pytest.raises(InputError, match="needs model"):
        simulate_study(tmp_path / "a", plants=[{"target": "rating:x", "element": "voice", "layer": 7}])
    with pytest.raises(InputError, match="Desikan"):
        simulate_study(tmp_path / "a", plants=[{"target": "region:amygdala", "element": "voice",
                                                "descriptor": "rms"}])
    with pytest.raises(InputError, match="element"):
        simulate_study(tmp_path / "a", plants=[{"target": "rating:x", "element": "drums", "descriptor": "rms"}])
    assert not (tmp_path / "a").exists()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "keep.txt").write_text("x")
    with pytest.raises(InputError, match="not empty"):
        simulate_study(tmp_path / "b")
    assert [p.name for p in (tmp_path / "b").iterdir()] == ["keep.txt"]


def test_deep_plant_follows_a_trained_network_layer(tmp_path):
    """The demo's deep plant: trained CREPE (kind: torch), whose layers differ (specificity >= 0.2)."""
    import warnings

    from xaffect.datasets.simulate import _deep_activations
    from xaffect.features import crepe_extractor_spec

    spec = crepe_extractor_spec("crepe", hop_seconds=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no low-specificity warning for a trained network
        path = simulate_study(tmp_path / "s", seed=1, n_stimuli=3, duration=20, n_subjects=2, model=spec,
                              deep_feature_set="crepe", progress=False,
                              plants=[{"target": "rating:arousal", "element": "voice", "layer": 4}])
    root = path.parent
    gt = json.loads((root / "ground_truth.json").read_text())
    assert gt["planted"] == [{"target": "rating:arousal", "element": "voice", "feature_set": "crepe", "layer": 4}]
    cfg = yaml.safe_load(path.read_text())
    assert cfg["features"]["extractors"][1]["kind"] == "torch" and cfg["features"]["extractors"][1]["name"] == "crepe"
    voices, ratings = {}, []
    for s in cfg["stimuli"]:
        voices[s["name"]], sr = _truth(root, s["name"], "voice")
        df = pd.read_csv(root / cfg["targets"]["files"][s["name"]])
        df = df[df.scale == "arousal"]
        ratings.append(df.groupby(np.floor(df["onset"]).astype(int))["rating"].mean().values)
    acts, coords = _deep_activations(spec, voices, sr, 1.0)
    assert coords == list(range(1, 8))
    a = np.concatenate(list(acts.values()))  # (time, layer, unit), NaN-padded
    y = np.concatenate(ratings)

    def explained(layer):  # R² of the mean rating on the top 12 PCs of a layer
        x = a[:, coords.index(layer)]
        x = x[:, np.isfinite(x).all(0)]
        u = np.linalg.svd(x - x.mean(0), full_matrices=False)[0][:, :12]
        z = np.c_[np.ones(len(y)), u]
        return 1 - np.var(y - z @ np.linalg.lstsq(z, y, rcond=None)[0]) / np.var(y)

    assert explained(4) > 0.7
    assert explained(4) > max(explained(l) for l in (1, 2, 6, 7)) + 0.1  # the layer, not the network
    spec_fig = json.loads((root / "simulation.json").read_text())["deep_layer_specificity"]["rating:arousal"]
    assert spec_fig >= 0.2


def test_random_layers_that_do_not_differ_are_reported(tmp_path):
    from xaffect.datasets.simulate import _deep_series
    from xaffect.features.models import make_random_model

    model = make_random_model("hubert", tmp_path / "hubert", seed=0, size="tiny")
    rng = np.random.default_rng(0)
    audios = {f"c{i}": (0.1 * rng.standard_normal(16000 * 12)).astype(np.float32) for i in range(3)}
    series, specificity = _deep_series(model, 2, audios, 16000, 1.0)
    assert set(series) == set(audios) and all(len(v) == 12 for v in series.values())
    assert 0 <= specificity < 0.05  # a tiny random model's layers span the same space
    with pytest.raises(InputError, match="layer 9 is not a layer of"):
        _deep_series(model, 9, audios, 16000, 1.0)


def test_specific_component_finds_the_layer_unique_direction():
    from xaffect.datasets.simulate import _specific_component

    rng = np.random.default_rng(0)
    n, n_layers, units = 300, 8, 40
    shared = rng.standard_normal((n, 5))
    unique = rng.standard_normal(n)
    acts = np.stack([shared @ rng.standard_normal((5, units)) + 0.01 * rng.standard_normal((n, units))
                     for _ in range(n_layers)], axis=1)
    acts[:, 4] += np.outer(unique, rng.standard_normal(units)) * 1.5  # only layers 3-5 carry it
    acts[:, 3] += np.outer(unique, rng.standard_normal(units)) * 0.3
    acts[:, 5] += np.outer(unique, rng.standard_normal(units)) * 0.3
    comp, spec = _specific_component(acts, 4, n_components=8)
    assert abs(_corr(comp, unique)) > 0.9  # a principal component mixes it with the shared part
    assert spec > 0.9


def test_crosstalk_matches_the_real_estimate(tmp_path):
    """Cross-talk used for null targets equals what MNE's region estimate of a one-region source gives."""
    from xaffect.datasets import synthetic_subject
    from xaffect.datasets.simulate import _EEG_CHANNELS, _crosstalk
    from xaffect.neural.source import forward_model, region_labels, region_signals, simulate_raw
    import xarray as xr

    synthetic_subject(tmp_path, "s", grade=4)
    info = mne.create_info(list(_EEG_CHANNELS), 100.0, "eeg")
    info.set_montage(mne.channels.make_standard_montage("standard_1020"), verbose="error")
    fwd = forward_model(info, subjects_dir=tmp_path, subject="s", spacing="oct4")
    labels = region_labels(subjects_dir=tmp_path, subject="s")
    cross = _crosstalk(info, fwd, labels, subjects_dir=tmp_path, subject="s")
    names = [lab.name for lab in labels]
    j = names.index("insula-rh")
    sig = np.zeros((300, len(names)))
    sig[:, j] = np.random.default_rng(0).standard_normal(300)
    raw = simulate_raw(xr.DataArray(sig, dims=("time", "region"), coords={"region": names}), info, fwd, labels,
                       noise=0.0)
    raw.set_eeg_reference("average", projection=True, verbose="error")
    est = region_signals(raw, subjects_dir=tmp_path, subject="s", labels=labels).compute()
    got = est.transpose("time", "region").values
    want = np.outer(sig[:, j], cross[:, j])
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3 * np.abs(want).max())
