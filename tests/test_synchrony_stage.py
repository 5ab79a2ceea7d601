"""The ``synchrony`` and ``targets`` stages: store in, store out, through a study."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml

from xaffect.errors import ConfigError, InputError
from xaffect.store.clock import check_same_clock, concat_stimuli, on_clock, window_mean
from xaffect.study import load_study
from xaffect.synchrony import plot_isc, plot_ratings
from xaffect.synchrony.stage import STAGES, run_synchrony, run_targets

SFREQ = 20.0
DURATIONS = {"clip-a": 40.0, "clip-b": 30.5}
REGIONS = ["superiortemporal-lh", "superiortemporal-rh", "lingual-lh"]


def _regions_tree(seed=0, n_sub=5):
    rng = np.random.default_rng(seed)
    groups = {}
    for name, dur in DURATIONS.items():
        T = int(dur * SFREQ)
        x = rng.standard_normal((n_sub, T, len(REGIONS)))
        x[:, :, 0] += 1.2 * rng.standard_normal(T)  # left superior temporal: shared by everyone
        groups[name] = xr.Dataset(
            {"signal": (("subject", "sample", "region"), x.astype(np.float32))},
            coords={"subject": [f"sub-{i:02d}" for i in range(n_sub)], "region": REGIONS},
            attrs={"sfreq": SFREQ})
    return xr.DataTree.from_dict(groups)


def _study(tmp_path, synchrony=None, targets=None, rate=1.0):
    stimuli = []
    for name in DURATIONS:
        p = tmp_path / f"{name}.wav"
        p.write_bytes(b"")
        stimuli.append({"name": name, "path": p.name})
    cfg = {"name": "t", "workspace": "ws", "rate": rate, "stimuli": stimuli, "stages": ["synchrony", "targets"],
           "synchrony": synchrony or {"n_null": 19, "n_boot": 19, "window": 10, "step": 2},
           "targets": targets or {"table": "ratings.csv"}}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _ratings_csv(tmp_path, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for name, dur in DURATIONS.items():
        t = np.arange(0, dur, 0.5)
        truth = np.cos(t / 3.0)
        for r in range(3):
            rows += [{"stimulus": name, "rater": f"r{r}", "onset": a, "rating": b, "scale": "arousal"}
                     for a, b in zip(t, truth + 0.3 * rng.standard_normal(t.size))]
    pd.DataFrame(rows).to_csv(tmp_path / "ratings.csv", index=False)


def test_synchrony_stage_writes_the_store_on_the_window_clock(tmp_path):
    _ratings_csv(tmp_path)
    study = load_study(_study(tmp_path))
    ws = study.workspace
    ws.write("regions", _regions_tree(), stage="regions", params={"test": 1})
    assert run_synchrony(study, progress=False) == ["synchrony"]
    ds = ws.open("synchrony")
    assert ds["isc"].dims == ("time", "region")
    assert ds.attrs["window"] == 10.0 and ds.attrs["step"] == 2.0 and ds.attrs["clock_rate"] == 1.0
    assert list(ds["region"].values) == REGIONS
    assert list(pd.unique(ds["stimulus"].values)) == ["clip-a", "clip-b"]
    # the planted region is synchronised, the others not
    assert float(ds["isc"].sel(region="superiortemporal-lh").mean()) > 0.4
    assert abs(float(ds["isc"].sel(region=REGIONS[1:]).mean())) < 0.1
    assert float(ds["summary_p"].sel(region="superiortemporal-lh")) <= 0.05
    for v in ("p", "p_fdr", "null_mean", "null_std", "summary", "summary_ci", "summary_null", "p_max", "p_cluster",
              "cluster_id", "cluster_mass"):
        assert v in ds
    # every p-value names its family; the family-wise ones cover windows x regions
    assert ds["p_cluster"].attrs["family"] == ds["p_max"].attrs["family"] == "windows×regions"
    assert all("family" in ds[v].attrs for v in ("p", "p_fdr", "summary_p", "summary_p_fdr", "bootstrap_p"))
    assert float(ds["p_cluster"].sel(region="superiortemporal-lh").max()) <= 0.05
    assert not (ds["p_max"].sel(region=REGIONS[1:]) < 0.05).any()
    # features on the same clock averaged over the same windows line up exactly
    feats = concat_stimuli({n: on_clock(xr.DataArray(np.zeros((int(d * 50), 2)), dims=("frame", "u")), rate=1.0,
                                        duration=d, times=(np.arange(int(d * 50)) + 0.5) / 50)
                            for n, d in DURATIONS.items()})
    check_same_clock(window_mean(feats, window=10, step=2), ds)
    prov = ws.provenance("synchrony")
    assert prov["params"]["window"] == 10.0 and prov["inputs"][0]["ref"] == "store:regions"
    # identity skip: nothing recomputed; new regions -> recomputed
    ident = ws.metadata("synchrony")["xaffect"]["identity"]
    path = ws.metadata("synchrony")["xaffect"]["path"]
    run_synchrony(study, progress=False)
    assert ws.metadata("synchrony")["xaffect"]["path"] == path
    ws.write("regions", _regions_tree(seed=1), stage="regions", params={"test": 2})
    run_synchrony(study, progress=False)
    assert ws.metadata("synchrony")["xaffect"]["identity"] != ident
    fig = plot_isc(ds)
    fig.savefig(tmp_path / "isc.png")
    assert (tmp_path / "isc.png").stat().st_size > 1000


def test_synchrony_stage_bad_config_and_input(tmp_path):
    _ratings_csv(tmp_path)
    study = load_study(_study(tmp_path, synchrony={"window": 2.5, "step": 1}))
    with pytest.raises(ConfigError, match="window"):
        run_synchrony(study, progress=False)
    with pytest.raises(ConfigError, match="did you mean 'window'"):
        load_study(_study(tmp_path, synchrony={"windw": 10}))
    with pytest.raises(ConfigError, match="synchrony.cluster_alpha"):
        run_synchrony(load_study(_study(tmp_path, synchrony={"cluster_alpha": 0.9})), progress=False)
    study = load_study(_study(tmp_path, synchrony={"window": 35, "n_null": 0, "n_boot": 0}))
    study.workspace.write("regions", _regions_tree(), stage="regions", params={})
    names_before = study.workspace.names()
    with pytest.raises(InputError, match="clip-b.*longer than the stimulus"):
        run_synchrony(study, progress=False)
    assert study.workspace.names() == names_before  # nothing written


def test_targets_stage_generic_table_and_liris(tmp_path):
    _ratings_csv(tmp_path)
    study = load_study(_study(tmp_path))
    assert run_targets(study, progress=False) == ["targets"]
    ds = study.workspace.open("targets")
    assert ds["rating"].dims == ("time", "scale") and ds["rating_rater"].dims == ("rater", "time", "scale")
    # durations from the ratings (last onset + 0.5 s): 40 + 30 one-second bins (30.5 s -> 30 complete bins)
    assert ds.sizes["time"] == 70 and ds.attrs["clock_rate"] == 1.0
    nc = float(ds["noise_ceiling"].sel(scale="arousal"))
    assert 0.5 < nc < 1.0
    path = study.workspace.metadata("targets")["xaffect"]["path"]
    run_targets(study, progress=False)  # current: not rewritten
    assert study.workspace.metadata("targets")["xaffect"]["path"] == path
    plot_ratings(ds).savefig(tmp_path / "ratings.png")
    # LIRIS-ACCEDE folder with a movie-name mapping
    liris = tmp_path / "liris"
    liris.mkdir()
    for movie, dur in (("MovieA", 40), ("MovieB", 30)):
        for scale in ("Arousal", "Valence"):
            rows = "\n".join(f"{t}\t{np.sin(t / 5):.4f}\t0.1" for t in range(dur))
            (liris / f"{movie}_{scale}.txt").write_text("Time\tMean\tStd\n" + rows + "\n")
    study = load_study(_study(tmp_path, targets={"liris": "liris", "movies": {"clip-a": "MovieA", "clip-b": "MovieB"}}))
    run_targets(study, force=True, progress=False)
    ds = study.workspace.open("targets")
    assert list(ds["scale"].values) == ["arousal", "valence"] and "rating_rater" not in ds
    assert np.isnan(ds["noise_ceiling"]).all()
    with pytest.raises(ConfigError, match="exactly one"):
        run_targets(load_study(_study(tmp_path, targets={"scale": "x"})), progress=False)


def test_stage_specs_are_declared():
    assert set(STAGES) == {"synchrony", "targets"}
    assert STAGES["synchrony"].config["method"].choices == ("loo", "pairwise")


def test_command_line_runs_the_stages_and_plots(tmp_path):
    from click.testing import CliRunner

    from xaffect.cli import main

    _ratings_csv(tmp_path)
    path = _study(tmp_path, synchrony={"n_null": 0, "n_boot": 0, "window": 10, "step": 5})
    runner = CliRunner()
    res = runner.invoke(main, ["synchrony", str(path), "-q"])
    assert res.exit_code == 2 and "regions" in res.output  # no regions store yet: one line, no traceback
    load_study(path).workspace.write("regions", _regions_tree(), stage="regions", params={})
    res = runner.invoke(main, ["run", str(path), "-q"])
    assert res.exit_code == 0, res.output
    assert {"synchrony", "targets"} <= set(load_study(path).workspace.names())
    res = runner.invoke(main, ["plot-synchrony", str(path), "--out", str(tmp_path / "figs")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "figs" / "synchrony.png").exists() and (tmp_path / "figs" / "targets.png").exists()


def test_targets_stage_refuses_onsets_in_milliseconds_and_keeps_the_store(tmp_path):
    _ratings_csv(tmp_path)
    study = load_study(_study(tmp_path))
    ws = study.workspace
    sr = 100.0
    ws.write("stems", xr.DataTree.from_dict({
        name: xr.Dataset({"audio": (("element", "sample"), np.zeros((1, int(dur * sr)), np.float32))},
                         coords={"element": ["original"]}, attrs={"sr": sr})
        for name, dur in DURATIONS.items()}), stage="stems", params={})
    run_targets(study, progress=False)
    before = ws.metadata("targets")["xaffect"]["path"]
    table = pd.read_csv(tmp_path / "ratings.csv")
    table["onset"] *= 1000.0
    table.to_csv(tmp_path / "ratings.csv", index=False)
    with pytest.raises(InputError, match=r"ratings\.csv: .*'clip-a'.*milliseconds"):
        run_targets(study, force=True, progress=False)
    assert ws.metadata("targets")["xaffect"]["path"] == before
    assert ws.open("targets").sizes["time"] == 70
