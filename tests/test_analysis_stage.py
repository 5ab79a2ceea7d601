"""The ``analyses`` stage end to end: second-seed analyses as catalog stores and report sections.

A small workspace with real stores on disk (scores whose region layers follow
the HCP gradient on Schaefer parcels, per-subject region signals with one
region leading a rating, a feature cube holding two renditions and labelled
clips, classical descriptors) runs through ``study.yaml`` -> ``run_study``;
the stores are read back with intake and xarray alone, a rerun is skipped,
bad keys fail in one line, and the report shows each section with its figure.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

from xaffect.analysis import fdr_bh
from xaffect.errors import ConfigError, InputError
from xaffect.store import Workspace
from xaffect.study import load_study, run_study

FOLDS = [f"s{k}" for k in range(4)]
SONGS = {"song_a": 60, "song_b": 60}
CLIPS = [f"clip{k:02d}" for k in range(24)]
CLIP_LEN, LAYERS, UNITS = 8, np.arange(8), 6
LEADER, LAG = "schaefer100_lh_010", 3


def _clock(lengths: dict[str, int]) -> dict:
    stim = np.concatenate([[s] * n for s, n in lengths.items()])
    onset = np.concatenate([np.arange(n) + 0.5 for n in lengths.values()])
    return {"stimulus": ("time", stim), "onset": ("time", onset)}


def _scores(parcel_gradient: xr.DataArray, rng) -> xr.Dataset:
    """r per (feature set, layer, element, target, fold): each region peaks at the layer its gradient rank says."""
    regions = [str(r) for r in parcel_gradient["region"].values]
    rank = np.argsort(np.argsort(parcel_gradient.values)) / (len(regions) - 1)
    peak = 1 + 5 * rank + rng.normal(0, 0.4, len(regions))
    layers = np.r_[-1, LAYERS]
    mu = np.full((2, layers.size, 1, len(regions)), np.nan)
    mu[0, 1:, 0] = 0.4 * np.exp(-0.5 * ((LAYERS[:, None] - peak[None]) / 1.2) ** 2)
    mu[1, 0, 0] = 0.1
    r = mu[..., None] + rng.normal(0, 0.03, mu.shape + (len(FOLDS),))
    null = rng.normal(0, 0.05, mu.shape + (99,))
    rm = r.mean(-1)
    p = np.where(np.isfinite(mu), (1 + (null >= rm[..., None]).sum(-1)) / 100, np.nan)
    fam = np.nanmax(null, axis=(1, 3), keepdims=True)
    p_fwer = np.where(np.isfinite(mu), (1 + (fam >= rm[..., None]).sum(-1)) / 100, np.nan)
    dims = ("feature_set", "layer", "element", "target")
    return xr.Dataset({"r": (dims + ("fold",), r), "null_mean": (dims, null.mean(-1)), "p": (dims, p),
                       "p_fdr": (dims, fdr_bh(p, axis=3)), "p_fwer": (dims, p_fwer)},
                      coords={"feature_set": ["vggish", "lld"], "layer": layers, "element": ["original"],
                              "target": [f"region:{x}" for x in regions], "fold": FOLDS},
                      attrs={"cv": "loso", "n_perm": 99, "null": "shift"})


def _ar1(rng, n, phi=0.7):
    from scipy.signal import lfilter

    return lfilter([1.0], [1.0, -phi], rng.standard_normal(n + 50))[50:]


def _regions_and_targets(regions: list[str], rng) -> tuple[xr.DataTree, xr.Dataset]:
    """3 subjects: a shared AR(1) signal per region (its weight: the region's reliability) + own noise;
    the enjoyment rating follows the leader region's shared signal LAG s later."""
    groups, ratings = {}, []
    weight = np.linspace(0.3, 1.5, len(regions))
    lead = regions.index(LEADER)
    for stim, n in SONGS.items():
        shared = np.stack([_ar1(rng, n + LAG) for _ in regions], axis=1)          # (n + LAG, region)
        sig = weight * shared[LAG:][None] + rng.standard_normal((3, n, len(regions)))
        groups[stim] = xr.Dataset({"signal": (("subject", "sample", "region"), sig)},
                                  coords={"subject": ["sub-01", "sub-02", "sub-03"], "region": regions},
                                  attrs={"sfreq": 1.0})
        enjoy = shared[:n, lead] + 0.5 * _ar1(rng, n)                                 # region at t - LAG
        ratings.append(np.c_[enjoy, _ar1(rng, n)])
    tree = xr.DataTree.from_dict({f"/{k}": v for k, v in groups.items()})
    tg = xr.Dataset({"rating": (("time", "scale"), np.concatenate(ratings))},
                    coords={"scale": ["enjoyment", "emotionality"], **_clock(SONGS)}, attrs={"clock_rate": 1.0})
    return tree, tg


def _features(rng) -> tuple[xr.Dataset, xr.Dataset, list[str]]:
    """song_b is a rendition of song_a in layers 0-3 (shared content + noise), unrelated in 4-7; clips of two
    classes differ in layer 5 only; the descriptors carry a weak trace of the class."""
    lengths = {**SONGS, **{c: CLIP_LEN for c in CLIPS}}
    n = sum(lengths.values())
    act = rng.standard_normal((1, n, LAYERS.size, UNITS))
    base = _ar1(rng, 60)[:, None] * rng.standard_normal(UNITS) + 0.3 * rng.standard_normal((60, UNITS))
    for stim in SONGS:
        k = list(lengths).index(stim)
        start = sum(list(lengths.values())[:k])
        act[0, start:start + 60, :4] = base[:, None, :] + 0.5 * rng.standard_normal((60, 4, UNITS))
    labels = np.array(["happy", "sad"] * (len(CLIPS) // 2))
    lld = rng.standard_normal((1, n, 4))
    for c, lab in zip(CLIPS, labels):
        k = list(lengths).index(c)
        start = sum(list(lengths.values())[:k])
        act[0, start:start + CLIP_LEN, 5, :2] += 1.5 if lab == "happy" else -1.5
        lld[0, start:start + CLIP_LEN, 0] += 0.3 if lab == "happy" else -0.3
    coords = _clock(lengths)
    deep = xr.Dataset({"activation": (("element", "time", "layer", "unit"), act.astype(np.float32))},
                      coords={"element": ["original"], "layer": LAYERS, **coords}, attrs={"clock_rate": 1.0})
    classical = xr.Dataset({"lld": (("element", "time", "descriptor"), lld.astype(np.float32))},
                           coords={"element": ["original"], "descriptor": list("abcd"), **coords},
                           attrs={"clock_rate": 1.0})
    return deep, classical, list(labels)


ANALYSES_YAML = """\
analyses:
  gradient: {noise_map: reliability, n_null: 199}
  leadlag: {ratings: [enjoyment], lags: [-6, 6], n_null: 199, n_boot: 199}
  renditions: {features: features.vggish, pairs: [[song_a, song_b], [song_b, song_a]], window: 10, n_null: 99}
  clips: {features: features.vggish, classical: features.lld, labels: clips.tsv, label: quadrant, n_splits: 4,
          n_permutations: 99}
"""


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    from xaffect.analysis.stage_inputs import hcp_parcel_gradient

    root = tmp_path_factory.mktemp("seed2")
    rng = np.random.default_rng(0)
    regions = [f"schaefer100_lh_{k:03d}" for k in range(1, 51)]
    g = hcp_parcel_gradient(regions, hemisphere="lh")["gradient"]
    ws = Workspace.init(root / "ws")
    ws.write("scores", _scores(g, rng), stage="encode", params={"test": 1}, progress=False)
    tree, tg = _regions_and_targets(regions, rng)
    ws.write("regions", tree, stage="regions", params={}, progress=False)
    ws.write("targets", tg, stage="targets", params={}, progress=False)
    deep, classical, labels = _features(rng)
    ws.write("features.vggish", deep, stage="features", params={}, progress=False)
    ws.write("features.lld", classical, stage="features", params={}, progress=False)
    (root / "clips.tsv").write_text("stimulus\tquadrant\n" + "".join(f"{c}\t{q}\n" for c, q in zip(CLIPS, labels)))
    stimuli = list(SONGS) + CLIPS
    for s in stimuli:
        (root / f"{s}.wav").write_bytes(b"")
    head = (f"name: seed2\nworkspace: ws\nstimuli: [{', '.join(f'{{name: {s}, path: {s}.wav}}' for s in stimuli)}]\n"
            "stages: [analyses, report]\nreport: {n_boot: 50}\n")
    (root / "head.yaml").write_text(head)
    (root / "study.yaml").write_text(head + ANALYSES_YAML)
    return root


def _versions(ws) -> dict[str, str]:
    return {n: ws.metadata(n)["xaffect"]["path"] for n in ws.names() if n.startswith("analysis.")}


def test_analyses_become_stores_and_report_sections(study_dir):
    study = load_study(study_dir / "study.yaml")
    done = run_study(study, progress=False, echo=lambda *a: None)
    ws = study.workspace
    stores = ["analysis.gradient", "analysis.leadlag", "analysis.renditions", "analysis.clips"]
    assert done["analyses"] == stores and set(stores) <= set(ws.names())

    # the planted effects are in the stores
    grad = ws.open("analysis.gradient").load()
    assert grad["r"] > 0.6 and grad["p"] < 0.05 and grad.attrs["null"] == "moran" and grad.sizes["region"] == 50
    assert "r_partial" in grad and "noise" in grad       # the reliability map, partialled out
    ll = ws.open("analysis.leadlag").load().sel(rating="enjoyment")
    assert float(ll["peak_lag"].sel(region=LEADER)) == LAG and float(ll["p_peak"].sel(region=LEADER)) < 0.05
    rend = ws.open("analysis.renditions").load().sel(pair="song_a vs song_b")
    assert (rend["p_fwer"].sel(layer=[0, 1, 2, 3]) < 0.05).all() and (rend["p_fwer"].sel(layer=[6, 7]) > 0.05).all()
    clips = ws.open("analysis.clips").load()
    assert int(clips["best_layer"]) == 5 and float(clips["p_best"]) < 0.05 and "contest_p" in clips
    prov = ws.provenance("analysis.clips")
    assert prov["stage"] == "analyses" and any(str(i["ref"]).endswith("clips.tsv") for i in prov["inputs"])

    # intake + xarray alone (no xaffect imported) open every store
    code = ("import sys, intake, xarray\ncat = intake.from_yaml_file(sys.argv[1])\n"
            "for n in sys.argv[2:]:\n    ds = cat[n].read(); assert len(ds.data_vars) > 2, n\n"
            "assert not any(m.startswith('xaffect') for m in sys.modules)\nprint('ok')")
    out = subprocess.run([sys.executable, "-c", code, str(study_dir / "ws" / "catalog.yaml"), *stores],
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "ok", out.stderr[-2000:]

    # the report: a section per analysis, each with its claim and an embedded figure
    page = (study_dir / "ws" / "report" / "report.html").read_text()
    summary = json.loads((study_dir / "ws" / "report" / "summary.json").read_text())
    for section, figure in (("Gradient alignment", "Gradient_alignment"), ("Lead–lag", "Lead-lag_enjoyment"),
                            ("Renditions", "Renditions_song_a_vs_song_b"), ("Clip labels", "Clip_labels_per_layer")):
        assert section in page and f"figures/{figure}.svg" in summary["report"]["figures"]
        assert (study_dir / "ws" / "report" / "figures" / f"{figure}.svg").is_file()
    assert "figures/Gradient_alignment_on_the_cortex.svg" in summary["report"]["figures"]  # the surface view
    for a, b in (("song_a", "song_b"), ("song_b", "song_a")):   # each pair's figure has its own title
        svg = (study_dir / "ws" / "report" / "figures" / f"Renditions_{a}_vs_{b}.svg").read_text()
        assert f"{a} vs {b}" in svg and f"{b} vs {a}" not in svg
    assert "Moran spectral randomisation" in page and "Freedman–Lane" in page
    assert f"region {LEADER} precedes rating enjoyment by {LAG} s" in page and "max over lags and 50 regions" in page
    assert "family-wise over layers" in page and clips.attrs["contest_test"].split(" (")[0] in page
    imgs = re.findall(r'<img class="figure-img[^>]*src="data:image/png;base64,', page)
    assert len(imgs) == len(summary["report"]["figures"])

    # a rerun is skipped (same versions, report not rewritten); a changed key recomputes that store only
    before, mtime = _versions(ws), (study_dir / "ws" / "report" / "report.html").stat().st_mtime_ns
    run_study(load_study(study_dir / "study.yaml"), progress=False, echo=lambda *a: None)
    assert _versions(ws) == before
    assert (study_dir / "ws" / "report" / "report.html").stat().st_mtime_ns == mtime
    (study_dir / "study.yaml").write_text((study_dir / "study.yaml").read_text().replace("window: 10", "window: 12"))
    run_study(load_study(study_dir / "study.yaml"), stages=["analyses"], progress=False, echo=lambda *a: None)
    after = _versions(ws)
    assert after["analysis.renditions"] != before["analysis.renditions"]
    assert {k: v for k, v in after.items() if k != "analysis.renditions"} == \
           {k: v for k, v in before.items() if k != "analysis.renditions"}


@pytest.mark.parametrize("section, error, match", [
    ("  gradient: {nul: spin}\n", ConfigError, r"bad\.yaml: analyses\.gradient\.nul: unknown key \(did you mean 'null'\?\)"),
    ("  gradeint: {}\n", ConfigError, r"analyses\.gradeint: unknown key \(did you mean 'gradient'\?\)"),
    ("  leadlag: {lags: [-6, 6], null: shuffle}\n", ConfigError, r"analyses\.leadlag\.null: 'shuffle' is not one of"),
    ("  clips: {labels: missing.tsv}\n", ConfigError, r"analyses\.clips\.labels: .*missing\.tsv does not exist"),
    ("  renditions: {window: 10}\n", ConfigError, r"analyses\.renditions\.pairs: missing required key"),
])
def test_bad_keys_fail_in_one_line_before_running(study_dir, section, error, match):
    (study_dir / "bad.yaml").write_text((study_dir / "head.yaml").read_text() + "analyses:\n" + section)
    with pytest.raises(error, match=match) as err:
        load_study(study_dir / "bad.yaml")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("section, error, match", [
    ("  renditions: {pairs: [[song_a, song_c]]}\n", ConfigError,
     r"analyses\.renditions\.pairs\[0\]: stimulus 'song_c' is not in 'features\.vggish'"),
    ("  leadlag: {regions: [vmPFC]}\n", ConfigError, r"analyses\.leadlag\.regions: 'vmPFC' is not in the store"),
    ("  clips: {labels: clips.tsv, label: valence}\n", InputError, r"clips\.tsv: no 'valence' column \(analyses\.clips\.label\)"),
    ("  gradient: {noise_map: reliability, noise_file: clips.tsv}\n", ConfigError,
     r"analyses\.gradient: give noise_map or noise_file, not both"),
])
def test_bad_inputs_fail_in_one_line_and_leave_stores(study_dir, section, error, match):
    ws = Workspace(study_dir / "ws")
    before = {n: ws.metadata(n)["xaffect"]["path"] for n in ws.names()}
    (study_dir / "bad.yaml").write_text((study_dir / "head.yaml").read_text() + "analyses:\n" + section)
    with pytest.raises(error, match=match) as err:
        run_study(load_study(study_dir / "bad.yaml"), stages=["analyses"], progress=False, echo=lambda *a: None)
    assert "\n" not in str(err.value)
    assert {n: ws.metadata(n)["xaffect"]["path"] for n in ws.names()} == before


def test_lab_gradient_file_with_spins_and_a_noise_file(study_dir, tmp_path):
    """A lab's own gradient and noise map (files hashed into the identity), spins of the parcel positions."""
    import shutil

    from xaffect.analysis.stage_inputs import hcp_parcel_gradient

    root = tmp_path / "copy"
    shutil.copytree(study_dir, root)
    regions = [f"schaefer100_lh_{k:03d}" for k in range(1, 51)]
    hcp = hcp_parcel_gradient(regions, hemisphere="lh")
    xyz = hcp["xyz"].values
    rows = "".join(f"{r}\t{g}\t{x}\t{y}\t{z}\n" for r, g, (x, y, z) in zip(regions, hcp["gradient"].values, xyz))
    (root / "g.tsv").write_text("region\tgradient\tx\ty\tz\n" + rows)
    (root / "noise.csv").write_text("region,noise\n" + "".join(f"{r},{k % 7}\n" for k, r in enumerate(regions)))
    (root / "study.yaml").write_text((root / "head.yaml").read_text() + "analyses:\n  gradient: {gradient_file: g.tsv, "
                                     "noise_file: noise.csv, null: spin, n_null: 99}\n")
    study = load_study(root / "study.yaml")
    run_study(study, stages=["analyses"], progress=False, echo=lambda *a: None)
    ds = study.workspace.open("analysis.gradient").load()
    assert ds.attrs["null"] == "spin" and ds.attrs["gradient"] == "gradient of g.tsv" and ds.attrs["noise"] == "noise.csv"
    assert ds["r"] > 0.6 and ds["p"] < 0.05 and ds.sizes["null_map"] == 99 and "r_partial" in ds
    refs = [i["ref"] for i in study.workspace.provenance("analysis.gradient")["inputs"]]
    assert any(r.endswith("g.tsv") for r in refs) and any(r.endswith("noise.csv") for r in refs)
    # a gradient file without positions cannot give a spatial null: one line naming the key
    (root / "g.tsv").write_text("region\tgradient\n" + "".join(f"{r}\t{k}\n" for k, r in enumerate(regions)))
    with pytest.raises(ConfigError, match=r"analyses\.gradient\.gradient_file: .*g\.tsv has no x, y, z columns") as err:
        run_study(load_study(root / "study.yaml"), stages=["analyses"], progress=False, echo=lambda *a: None)
    assert "\n" not in str(err.value)


def test_a_registered_analysis_gets_its_key_store_and_section(study_dir, tmp_path, monkeypatch):
    """The hook the differential analysis will use: one ANALYSES entry -> a config key, a store, a section."""
    import shutil

    from xaffect.analysis import layer_profile
    from xaffect.analysis.analyses_stage import ANALYSES, AnalysisSpec
    from xaffect.analysis.plots import plot_layer_profiles
    from xaffect.config import Field

    def build(study, cfg):
        return layer_profile(study.workspace.open("scores").load(), feature_set=cfg["feature_set"], n_boot=20)

    def section(w, ds, *, alpha):
        w.report.add_html("<p>profile claim</p>", title="Profile: claim", section="Profile")
        w.figure(plot_layer_profiles(ds, max_panels=2), "Profile", "two panels", "Profile")

    monkeypatch.setitem(ANALYSES, "profile", AnalysisSpec(
        config={"feature_set": Field(str, default="vggish", help="deep feature set")},
        inputs=lambda study, cfg: ["scores"], build=build, section=section, help="a layer profile"))
    root = tmp_path / "copy"
    shutil.copytree(study_dir, root)
    (root / "study.yaml").write_text((root / "head.yaml").read_text() + "analyses:\n  profile: {}\n")
    study = load_study(root / "study.yaml")
    assert run_study(study, stages=["analyses"], progress=False, echo=lambda *a: None)["analyses"] == \
        ["analysis.profile"]
    # the report's own writer adds the section (the full report is the first test's)
    import mne

    from xaffect.analysis.report import _Writer
    from xaffect.analysis.report_analyses import add_analysis_sections

    for sub in ("figures", "tables"):
        (tmp_path / "out" / sub).mkdir(parents=True)
    for name in [n for n in study.workspace.names() if n.startswith("analysis.") and n != "analysis.profile"]:
        study.workspace.remove(name)         # whatever other tests of this module left in the shared workspace
    w = _Writer(mne.Report(title="t", verbose="error"), tmp_path / "out")
    assert add_analysis_sections(w, study.workspace, study.workspace.names(), alpha=0.05) == ["analysis.profile"]
    w.report.save(tmp_path / "out" / "r.html", open_browser=False, verbose="error")
    assert w.figures[-1] == "figures/Profile.svg" and "profile claim" in (tmp_path / "out" / "r.html").read_text()
    with pytest.raises(ConfigError, match=r"analyses\.profile\.feature_st: unknown key \(did you mean 'feature_set'"):
        (root / "bad.yaml").write_text((root / "head.yaml").read_text() + "analyses:\n  profile: {feature_st: x}\n")
        load_study(root / "bad.yaml")


def test_differential_as_a_store_and_a_report_section(study_dir, tmp_path):
    """``analyses: differential`` compares two targets' layer profiles and best layers through the stage."""
    import shutil

    from xaffect.analysis.stage_inputs import hcp_parcel_gradient

    root = tmp_path / "diff"
    shutil.copytree(study_dir, root, ignore=shutil.ignore_patterns("report"))
    regions = [f"schaefer100_lh_{k:03d}" for k in range(1, 51)]
    g = hcp_parcel_gradient(regions, hemisphere="lh")["gradient"].values
    low, high = regions[int(np.argmin(g))], regions[int(np.argmax(g))]    # planted best layers ~1 and ~6
    (root / "study.yaml").write_text((root / "head.yaml").read_text() + "analyses:\n  differential: {a: [region:"
                                     f"{low}, region:{high}], b: [region:{high}, region:{low}], n_boot: 500}}\n")
    study = load_study(root / "study.yaml")
    run_study(study, progress=False, echo=lambda *a: None)
    res = study.workspace.open("analysis.differential").load()
    assert list(res["region"].values) == [low, high]
    assert (res["best_a"].values == res["best_b"].values[::-1]).all()
    assert res["best_a"].values[0] <= 2 and res["best_a"].values[1] >= 5
    # 4 held-out stimuli: 16 swaps, so the swap test's p is at its floor, 2/16, and the report says it cannot reach .05
    assert (res["p_best_differs"] == res["p_best_min"]).all() and float(res["p_best_min"][0]) == 2 / 16
    assert res.attrs["correction"] == "Holm"
    page = (root / "ws" / "report" / "report.html").read_text()
    assert "Differential encoding" in page and "cannot reach 0.05 here" in page
    # the crossover of out-of-fold chosen layers has no such floor: distant planted layers are significant
    assert (res["p_crossover"] < 0.05).all() and "<b>Crossover.</b>" in page
    with pytest.raises(ConfigError, match=r"analyses\.differential\.b: give as many targets as in a \(2\), got 1"):
        (root / "bad.yaml").write_text((root / "head.yaml").read_text() + "analyses:\n  differential: {a: "
                                       f"[region:{low}, region:{high}], b: [region:{high}]}}\n")
        run_study(load_study(root / "bad.yaml"), stages=["analyses"], progress=False, echo=lambda *a: None)
