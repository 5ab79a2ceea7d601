"""The encode stage end to end on small stores written with Workspace.write."""

import numpy as np
import pytest
import xarray as xr
import yaml

from test_encoding_sim import ar1, clock_coords
from xaffect.errors import ConfigError, InputError
from xaffect.store import use_scheduler, window_mean
from xaffect.study import load_study

S, T = 4, 40


def _write_stores(ws, rng, with_regions=True):
    n = S * T
    drive = ar1(rng, (n,), phi=0.6)
    acts = rng.standard_normal((2, n, 3, 5)).astype(np.float32)
    acts[0, :, 2, 0] += 2 * drive                       # layer 2 of 'original' carries the drive
    coords = clock_coords(S, T)
    deep = xr.Dataset({"activation": (("element", "time", "layer", "unit"), acts)},
                      coords=dict(element=["original", "voice"], layer=[0, 1, 2], **coords),
                      attrs={"clock_rate": 1.0}).chunk({"layer": 1})
    ws.write("features.deep", deep, stage="features", params={}, progress=False)
    lld = rng.standard_normal((2, n, 2)).astype(np.float32)
    mfcc = xr.Dataset({"lld": (("element", "time", "descriptor"), lld)},
                      coords=dict(element=["original", "voice"], descriptor=["rms", "flux"], **coords),
                      attrs={"clock_rate": 1.0})
    ws.write("features.mfcc", mfcc, stage="features", params={}, progress=False)
    rating = np.stack([drive + 0.5 * rng.standard_normal(n), rng.standard_normal(n)], 1)
    ws.write("targets", xr.Dataset({"rating": (("time", "scale"), rating)},
                                   coords=dict(scale=["arousal", "valence"], **coords), attrs={"clock_rate": 1.0}),
             stage="targets", params={}, progress=False)
    drv = xr.DataArray(drive[:, None], dims=("time", "region"), coords=dict(region=["stg-lh"], **coords),
                       attrs={"clock_rate": 1.0})
    isc = window_mean(drv, window=4.0, step=2.0)
    isc = isc.copy(data=isc.values + 0.2 * rng.standard_normal(isc.shape))
    ws.write("synchrony", xr.Dataset({"isc": isc}, attrs={"window": 4.0, "step": 2.0, "clock_rate": 1.0}),
             stage="synchrony", params={}, progress=False)
    if with_regions:
        groups = {}
        sf = 10.0
        for i in range(S):
            d = np.repeat(drive[i * T:(i + 1) * T], int(sf))
            sig = np.stack([d[None] + rng.standard_normal((3, d.size)), rng.standard_normal((3, d.size))], -1)
            groups[f"s{i}"] = xr.Dataset({"signal": (("subject", "sample", "region"), sig.astype(np.float32))},
                                         coords=dict(subject=["a", "b", "c"], region=["stg-lh", "v1-rh"]),
                                         attrs={"sfreq": sf})
        ws.write("regions", xr.DataTree.from_dict(groups), stage="regions", params={}, progress=False)


def _study(tmp_path, encode):
    for i in range(S):
        (tmp_path / f"s{i}.wav").write_bytes(b"")
    cfg = {"name": "t", "workspace": "ws", "stimuli": [{"name": f"s{i}", "path": f"s{i}.wav"} for i in range(S)],
           "stages": ["encode"], "encode": encode}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(cfg))
    return load_study(tmp_path / "study.yaml")


def test_encode_stage_writes_scores_and_skips_when_current(tmp_path):
    from xaffect.encoding.stage import run_encode

    study = _study(tmp_path, {"n_perm": 40, "alphas": [0.1, 1.0, 10.0, 100.0, 1000.0]})
    ws = study.workspace
    _write_stores(ws, np.random.default_rng(0))
    assert run_encode(study, progress=False) == ["scores"]
    sc = ws.open("scores")
    assert set(sc["feature_set"].values) == {"deep", "mfcc"}
    assert list(sc["layer"].values) == [-1, 0, 1, 2]
    assert set(sc["target"].values) == {"rating:arousal", "rating:valence", "isc:stg-lh", "region:stg-lh",
                                        "region:v1-rh"}
    assert sc["r"].dims == ("feature_set", "layer", "element", "target", "fold")
    assert list(sc["fold"].values) == [f"s{i}" for i in range(S)]
    r = sc["r_mean"].sel(feature_set="deep", element="original")
    for t in ("rating:arousal", "isc:stg-lh", "region:stg-lh"):
        assert float(r.sel(layer=2, target=t)) > 0.5, t
        assert float(r.sel(layer=2, target=t)) > float(r.sel(layer=0, target=t)) + 0.3, t
    assert np.isnan(sc["r"].sel(feature_set="mfcc", layer=0)).all()
    assert np.isfinite(sc["r"].sel(feature_set="mfcc", layer=-1)).all()
    assert float(sc["p"].sel(feature_set="deep", element="original", layer=2, target="rating:arousal")) < 0.05
    assert "p_fdr" in sc and "p_fwer" in sc and sc["null"].sizes["perm"] == 40
    prov = ws.provenance("scores")
    assert prov["stage"] == "encode"
    ident = ws.metadata("scores")["xaffect"]["identity"]
    path = ws.metadata("scores")["xaffect"]["path"]
    assert run_encode(study, progress=False) == ["scores"]
    from click.testing import CliRunner

    from xaffect.cli import main

    res = CliRunner().invoke(main, ["encode", str(tmp_path / "study.yaml"), "--scheduler", "synchronous", "-q"])
    assert res.exit_code == 0, res.output
    assert ws.metadata("scores")["xaffect"]["path"] == path and ws.metadata("scores")["xaffect"]["identity"] == ident


def test_encode_stage_config_and_missing_inputs(tmp_path):
    from xaffect.encoding.stage import run_encode

    with pytest.raises(ConfigError, match="encode.nperm"):
        _study(tmp_path, {"nperm": 3})
    study = _study(tmp_path, {"n_perm": 0, "targets": ["ratings", "regions"], "feature_sets": ["features.deep"]})
    _write_stores(study.workspace, np.random.default_rng(1), with_regions=False)
    with pytest.raises(InputError, match="no 'regions' store"):
        run_encode(study, progress=False)
    assert "scores" not in study.workspace


def test_grid_runs_unchanged_on_a_distributed_cluster(tmp_path):
    from xaffect.encoding.stage import run_encode

    study = _study(tmp_path, {"n_perm": 10, "targets": ["ratings"], "alphas": [1.0, 100.0]})
    _write_stores(study.workspace, np.random.default_rng(2), with_regions=False)
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client, use_scheduler(client):
        run_encode(study, progress=False)
    dist = study.workspace.open("scores").load()
    with use_scheduler("synchronous"):
        run_encode(study, progress=False, force=True)
    local = study.workspace.open("scores").load()
    xr.testing.assert_allclose(dist["r"], local["r"])
    xr.testing.assert_allclose(dist["p"], local["p"])


def test_reduced_sets_refit_pca_inside_the_folds_by_default(tmp_path):
    from xaffect.encoding.stage import run_encode
    from xaffect.features import reduce_layers

    study = _study(tmp_path, {"n_perm": 0, "targets": ["ratings"], "feature_sets": ["features.deep.pca2"],
                              "alphas": [1.0, 100.0], "elements": ["original"]})
    ws = study.workspace
    _write_stores(ws, np.random.default_rng(3), with_regions=False)
    red = reduce_layers(ws.open("features.deep")["activation"], n_components=2, progress=False)
    ws.write("features.deep.pca2", red, stage="features", params={"n_components": 2}, progress=False)
    run_encode(study, progress=False)
    train = ws.open("scores").load()
    assert train.attrs["pca_fit"] == "train" and list(train.attrs["pca_in_fold"]) == ["deep.pca2:2"]
    prov = ws.provenance("scores")
    assert prov["params"]["pca_fit"] == "train"
    assert "store:features.deep" in [i["ref"] for i in prov["inputs"]]      # the full store is a recorded input
    r = train["r_mean"].sel(feature_set="deep.pca2", element="original", target="rating:arousal")
    assert float(r.sel(layer=2)) > 0.5 > float(r.sel(layer=0)) + 0.3       # the planted layer, PCA in the folds
    study.config["encode"]["pca_fit"] = "all"
    study2 = _study(tmp_path, dict(study.config["encode"]))
    run_encode(study2, progress=False)
    everything = ws.open("scores").load()
    assert everything.attrs["pca_fit"] == "as given" and everything.attrs["pca_in_fold"] == []
    assert not np.allclose(everything["r"].values, train["r"].values, equal_nan=True)
    ws.remove("features.deep")
    with pytest.raises(InputError, match=r"pca_fit: 'train' refits 'features.deep.pca2'.*'features.deep'"):
        run_encode(_study(tmp_path, dict(study.config["encode"], pca_fit="train")), progress=False)


def test_fractional_delays_are_interpolated_and_recorded_in_the_scores(tmp_path):
    from xaffect.encoding.stage import run_encode

    with pytest.raises(ConfigError, match="encode.delay_interpolation"):
        _study(tmp_path, {"delay_interpolation": "sinc"})
    study = _study(tmp_path, {"n_perm": 0, "targets": ["ratings", "synchrony"], "feature_sets": ["features.deep"],
                              "alphas": [1.0, 100.0], "elements": ["original"], "delays": [0.0, 1.0, 1.5]})
    _write_stores(study.workspace, np.random.default_rng(4), with_regions=False)
    run_encode(study, progress=False)
    sc = study.workspace.open("scores")
    assert sc.attrs["delays"] == [0.0, 1.0, 1.5] and sc.attrs["delay_interpolation"] == "cubic"
    # ratings on the 1 Hz clock, synchrony on its 2 s window clock: each kind's delays in (fractional) samples
    assert sc.attrs["delay_samples_by_kind"] == {"ratings": [0.0, 1.0, 1.5], "synchrony": [0.0, 0.5, 0.75]}
    assert "never another stimulus" in sc.attrs["delay_fill"]
    assert float(sc["r_mean"].sel(feature_set="deep", layer=2, element="original", target="rating:arousal")) > 0.5
    assert study.workspace.provenance("scores")["params"]["delay_interpolation"] == "cubic"
    refused = _study(tmp_path, dict(study.config["encode"], delay_interpolation="none"))
    with pytest.raises(ConfigError, match=r"delays: 1.5 s is not a whole number of samples at 1.0 Hz"):
        run_encode(refused, progress=False, force=True)
    assert study.workspace.open("scores").attrs["delay_samples_by_kind"]["ratings"] == [0.0, 1.0, 1.5]  # untouched
