"""The features and covariates stages, end to end through a study, its workspace and catalog."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
import xarray as xr

from xaffect.errors import InputError
from xaffect.features import layer_activations, lld, make_random_model
from xaffect.features.stage import STAGES, run_covariates, run_features
from xaffect.store import Workspace, open_catalog
from xaffect.study import load_study

from test_features_visual import write_video

SR = 22050
ELEMENTS = ["original", "voice", "soundtrack"]
DURATIONS = {"s1": 4.2, "s2": 3.1}


def _stems(ws):
    rs = np.random.RandomState(0)
    groups = {"/": xr.Dataset()}
    for name, dur in DURATIONS.items():
        n = int(dur * SR)
        t = np.arange(n) / SR
        voice = 0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 0.5 * t))
        sound = 0.1 * rs.randn(n)
        audio = np.stack([voice + sound, voice, sound]).astype(np.float32)
        groups[f"/{name}"] = xr.Dataset({"audio": (("element", "sample"), audio)},
                                        coords={"element": ELEMENTS}, attrs={"sr": SR})
    ws.write("stems", xr.DataTree.from_dict(groups), stage="stems", params={"test": 1}, progress=False)


def _study(tmp_path, extractors, covariates="{enabled: true}"):
    for name, dur in DURATIONS.items():
        if not (tmp_path / f"{name}.mp4").exists():
            write_video(tmp_path / f"{name}.mp4", seconds=int(dur), cut_at=1.0)
    (tmp_path / "study.yaml").write_text(textwrap.dedent(f"""\
        name: t
        workspace: ws
        rate: 1.0
        stimuli:
          - {{name: s1, path: s1.mp4}}
          - {{name: s2, path: s2.mp4}}
        features:
          extractors: {extractors}
        covariates: {covariates}
        """))
    study = load_study(tmp_path / "study.yaml")
    if "stems" not in study.workspace:
        _stems(study.workspace)
    return study


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stage")
    make_random_model("wav2vec2", tmp / "models" / "w2v", seed=2)
    extractors = ("[{name: w2v, kind: hf, model: models/w2v, pca: 3, time_chunk: 2},"
                  " {name: w2v, kind: hf, model: models/w2v, random_init: true, seed: 1, layers: [0, 2], pca: null},"
                  " {name: vggish, kind: vggish, random_init: true, layers: [1, 2, 23], pca: 2},"
                  " {kind: lld}]")
    study = _study(tmp, extractors)
    names = run_features(study, progress=False)
    return tmp, study, names


def test_stage_contract():
    assert set(STAGES) == {"features", "covariates"}
    assert STAGES["features"].run is run_features and "extractors" in STAGES["features"].config


def test_stores_written_and_registered(done):
    tmp, study, names = done
    assert names == ["features.w2v", "features.w2v.pca3", "features.w2v-random", "features.vggish-random",
                     "features.vggish-random.pca2", "features.lld"]
    cat = open_catalog(tmp / "ws")
    cube = cat["features.w2v"].read()
    act = cube["activation"]
    assert act.dims == ("element", "time", "layer", "unit") and act.shape == (3, 7, 4, 32)
    assert act.dtype == np.float32
    assert act.encoding["chunks"] == (1, 2, 1, 32)  # one layer (and element) per chunk
    assert list(cube["stimulus"].values) == ["s1"] * 4 + ["s2"] * 3
    np.testing.assert_allclose(cube["onset"].values, [0.5, 1.5, 2.5, 3.5, 0.5, 1.5, 2.5])
    sel = act.sel(layer=1, element="voice")
    assert sel.data.npartitions == 4  # only the chunks of that layer and element
    # same numbers as the array API on the whole stimulus (resampled per block here: small differences)
    ws = study.workspace
    audio = ws.open("stems", group="s1")["audio"].sel(element="voice").values
    ref = layer_activations(audio, SR, tmp / "models" / "w2v")
    np.testing.assert_allclose(sel.values[:4], ref.sel(layer=1).values, rtol=0.02, atol=0.02)
    rnd = cat["features.w2v-random"].read()["activation"]
    assert list(rnd["layer"].values) == [0, 2] and not np.allclose(rnd.sel(layer=2).values, act.sel(layer=2).values)
    vg = cat["features.vggish-random"].read()
    assert list(vg["layer"].values) == [1, 2, 23]  # numbered as the seed numbers them
    assert list(vg["layer_name"].values) == ["L01 InputBatch", "L02 conv1", "L23 EmbeddingBatch"]
    assert list(act["layer_name"].values) == ["input", "block 1", "block 2", "block 3"]
    assert list(vg["n_units"].values) == [64, 4096, 128]
    ll = cat["features.lld"].read()["lld"]
    assert ll.dims == ("element", "time", "descriptor") and ll.shape == (3, 7, 12)
    np.testing.assert_allclose(ll.sel(element="voice").values[4:],
                               lld(ws.open("stems", group="s2")["audio"].sel(element="voice").values, SR).values,
                               rtol=1e-5, atol=1e-5)
    pca = cat["features.w2v.pca3"].read()
    assert pca["activation"].dims == ("element", "time", "layer", "component") and pca.sizes["component"] == 3
    assert pca["explained_variance_ratio"].dims == ("element", "layer", "component")


def test_provenance_and_identity_skip(done):
    tmp, study, names = done
    ws = study.workspace
    prov = ws.provenance("features.w2v-random")
    assert prov["model"]["random_init"] is True and prov["model"]["seed"] == 1
    assert prov["model"]["n_layers"] == 4 and prov["params"]["elements"] == ELEMENTS
    assert ws.provenance("features.w2v")["model"]["random_init"] is False
    before = {n: ws.store_url(n) for n in names}
    assert run_features(study, progress=False) == names
    assert {n: ws.store_url(n) for n in names} == before  # nothing recomputed


def test_bad_model_or_layers_write_nothing(tmp_path):
    study = _study(tmp_path, "[{name: x, kind: hf, model: models/missing}]")
    ws = study.workspace
    before = ws.names()
    with pytest.raises(InputError, match="missing.*local folder"):
        run_features(study, progress=False)
    make_random_model("hubert", tmp_path / "models" / "hub")
    study = _study(tmp_path, "[{name: x, kind: hf, model: models/hub, layers: [9]}]")
    with pytest.raises(InputError, match=r"layers: \[9\] out of range"):
        run_features(study, progress=False)
    study = _study(tmp_path, "[{name: x, kind: hf, model: models/hub, resample: false}]")
    with pytest.raises(InputError, match="stimulus 's1': stems at 22050 Hz"):
        run_features(study, progress=False)
    study = _study(tmp_path, "[{kind: lld, resample: false}]")
    with pytest.raises(InputError, match="stimulus 's1': stems at 22050 Hz.*16000"):
        run_features(study, progress=False)
    assert Workspace(tmp_path / "ws").names() == before


def test_covariates_on_the_features_clock(done):
    tmp, study, _ = done
    assert run_covariates(study, progress=False) == ["covariates"]
    cov = study.workspace.open("covariates")["visual"]
    assert cov.dims == ("time", "descriptor") and cov.shape == (7, 5)
    assert list(cov["stimulus"].values) == ["s1"] * 4 + ["s2"] * 3
    # s1.mp4 is 4 s of video; s2.mp4 is 3 s: a cut at 1 s in each
    np.testing.assert_array_equal(cov.sel(descriptor="cut_rate").values, [0, 1, 0, 0, 0, 1, 0])


def test_command_line(tmp_path):
    from click.testing import CliRunner

    from xaffect.cli import main

    runner = CliRunner()
    res = runner.invoke(main, ["make-random-model", "vggish", str(tmp_path / "vg"), "--seed", "3"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "vg" / "vggish.pt").is_file()
    _study(tmp_path, "[{kind: vggish, checkpoint: vg/vggish.pt, layers: [22, 23], pca: null, elements: [voice]}]",
           covariates="{enabled: false}")
    res = runner.invoke(main, ["features", str(tmp_path / "study.yaml"), "-q"])
    assert res.exit_code == 0, res.output
    ws = Workspace(tmp_path / "ws")
    assert "features.vggish" in ws.names() and "covariates" not in ws.names()
    assert ws.provenance("features.vggish")["model"]["checkpoint"].endswith("vggish.pt")
    assert list(ws.open("features.vggish")["element"].values) == ["voice"]


def test_extractor_ref_pickles_without_the_network_and_each_process_loads_it_once(done):
    """What the features stage's dask tasks carry to a worker: the recipe, never the weights."""
    import pickle

    import torch

    from xaffect.features import resolve

    tmp, study, _ = done
    spec = study.section("features")["extractors"][0]
    ext = resolve.resolve_extractor(spec, study)[0]
    ref = resolve.ExtractorRef(spec, study.root, loaded=ext)
    blob = pickle.dumps(ref)
    assert len(blob) < 4000 and b"torch._utils" not in blob and b"torch.nn" not in blob  # no tensor, no module
    assert pickle.loads(blob).get() is ext  # this process: the network the stage resolved
    saved = dict(resolve._LOADED)
    try:
        resolve._LOADED.clear()  # a fresh dask worker
        there = pickle.loads(blob).get()
        assert there is not ext and pickle.loads(blob).get() is there  # loaded once per process
        for (k, a), (_, b) in zip(ext.module.state_dict().items(), there.module.state_dict().items()):
            assert torch.equal(a, b), k
        # the stage resolving the model anew (its files may have changed) gives a new token: workers reload
        again = resolve.resolve_extractor(spec, resolve.ExtractorRef(spec, study.root))[0]
        assert resolve.ExtractorRef(spec, study.root, loaded=again).key != ref.key
    finally:
        resolve._LOADED.clear()
        resolve._LOADED.update(saved)
