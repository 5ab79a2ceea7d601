"""The HTML report and the report stage on a real workspace."""

import base64
import json
import platform
import re

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from xaffect.analysis import fdr_bh, plot_regions, split_region
from xaffect.analysis.report import HTML_ROWS, region_values, write_report
from xaffect.errors import InputError, StoreError
from xaffect.store import Workspace
from xaffect.study import load_study

from test_analysis_profiles import FOLDS, make_scores

LAYERS = np.arange(-1, 13)
PLANT, LEAK, OWN = "superiortemporal-lh", "middletemporal-lh", "insula-rh"
TARGETS = ["rating:arousal", f"region:{PLANT}", f"region:{LEAK}", f"region:{OWN}", "isc:null-rh"]
N_PERM = 199


def paper_scores(seed=0, noise=0.03):
    """Scores with a permutation null and its p, p_fdr and max-statistic p_fwer.

    rating:arousal peaks at hubert layer 7 on the voice; three regions carry flat
    effects (r .6, .5, .4) on the voice; isc:null-rh has nothing. Layers are named.
    """
    rng = np.random.default_rng(seed)
    fsets, elements = ["hubert", "lld"], ["original", "voice", "soundtrack"]
    nf, nl, ne, nt = 2, LAYERS.size, 3, len(TARGETS)
    mu = np.zeros((nf, nl, ne, nt))
    deep = LAYERS >= 0
    peak = 0.5 * np.exp(-0.5 * ((LAYERS[deep] - 7) / 2.0) ** 2)
    for e, gain in enumerate([0.7, 1.0, 0.2]):
        mu[0, deep, e, 0] = gain * peak
        for k, level in enumerate([0.6, 0.5, 0.4]):
            mu[0, deep, e, 1 + k] = level * gain
    mu[1, 1:] = np.nan  # lld has one "layer" (-1); hubert none there
    mu[0, 0] = np.nan
    mu[1, 0, :, 0] = [0.2, 0.05, 0.3]
    r = mu[..., None] + rng.normal(0, noise, mu.shape + (len(FOLDS),))
    null = rng.normal(0, 0.05, mu.shape + (N_PERM,)) + 0 * mu[..., None]
    r_mean = r.mean(-1)
    p = (1 + (null >= r_mean[..., None]).sum(-1)) / (N_PERM + 1)
    fam_max = np.nanmax(null, axis=(1, 3), keepdims=True)  # max over layers x targets per (fs, element)
    p_fwer = (1 + (fam_max >= r_mean[..., None]).sum(-1)) / (N_PERM + 1)
    p, p_fwer = np.where(np.isfinite(mu), p, np.nan), np.where(np.isfinite(mu), p_fwer, np.nan)
    dims = ("feature_set", "layer", "element", "target")
    ds = xr.Dataset({"r": (dims + ("fold",), r), "r_mean": (dims, r_mean), "null": (dims + ("perm",), null),
                     "null_mean": (dims, null.mean(-1)), "p": (dims, p),
                     "p_fdr": (dims, fdr_bh(p, axis=3)), "p_fwer": (dims, p_fwer)},
                    coords={"feature_set": fsets, "layer": LAYERS, "element": elements, "target": TARGETS,
                            "fold": FOLDS, "layer_name": ("layer", ["classical"] + [f"block{v:02d}" for v in
                                                                                   LAYERS[deep]])},
                    attrs={"cv": "loso", "n_perm": N_PERM, "null": "shift"})
    ds["p_fwer"].attrs["description"] = "max-statistic FWER across targets x layers"
    return ds


def _crosstalk():
    """The leak: middletemporal reads 0.9 of superiortemporal, which reads 0.3 of it back; insula reads neither."""
    regs = [PLANT, LEAK, OWN]
    c = np.array([[1.0, 0.3, 0.0], [0.9, 1.0, 0.0], [0.0, 0.0, 1.0]])
    return xr.Dataset({"crosstalk": (("subject", "region", "region_source"), np.stack([c, c]))},
                      coords={"subject": ["sub-01", "sub-02"], "region": regs, "region_source": regs})


def _workspace(tmp_path, scores=None):
    ws = Workspace.init(tmp_path / "ws")
    ws.write("scores", paper_scores() if scores is None else scores, stage="encode", params={"test": 1},
             progress=False)
    # the stems store names this dim "stimuli"; the report accepts either
    ratio = xr.Dataset({"energy_ratio_stimulus": ("stimuli", np.linspace(-10, 10, len(FOLDS)))},
                       coords={"stimuli": FOLDS})
    ratio["energy_ratio_stimulus"].attrs["units"] = "dB"
    ws.write("stems", xr.DataTree(ratio), stage="stems", params={}, progress=False)
    n = 4 * len(FOLDS)
    tg = xr.Dataset({"rating": (("time", "scale"), np.random.default_rng(1).normal(size=(n, 1))),
                     "rating_std": (("time", "scale"), np.full((n, 1), 0.1)),
                     "noise_ceiling": ("scale", [0.8])},
                    coords={"scale": ["arousal"], "stimulus": ("time", np.repeat(FOLDS, 4)),
                            "onset": ("time", np.tile(np.arange(4) + 0.5, len(FOLDS)))})
    ws.write("targets", tg, stage="targets", params={}, progress=False)
    ws.write("crosstalk", _crosstalk(), stage="regions", params={}, progress=False)
    return ws


def test_write_report_for_a_paper(tmp_path):
    ws = _workspace(tmp_path)
    gt = {"planted": [{"target": "rating:arousal", "element": "voice", "feature_set": "hubert", "layer": 7}],
          "null_targets": ["isc:null-rh"]}
    out = tmp_path / "out"
    path = write_report(ws, out, ground_truth=gt, n_boot=200, argv=["xaffect", "report-html", "WS"])
    page = path.read_text()
    # stands alone: figures embedded as PNG, nothing loaded from elsewhere
    assert not re.search(r'<(?:img|script|link)[^>]+(?:src|href)="(?!data:)[a-z]+://', page)
    imgs = re.findall(r'<img class="figure-img[^>]*src="data:image/png;base64,([^"]+)"', page, flags=re.S)
    assert all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in imgs)
    summary = json.loads((out / "summary.json").read_text())
    figs, tables = summary["report"]["figures"], summary["report"]["tables"]
    assert len(imgs) == len(figs) >= 6  # every figure in the page is also an SVG beside it
    for f in figs:
        assert (out / f).read_text().lstrip().startswith(("<?xml", "<svg")) and f.endswith(".svg")
    for section in ("Planted vs recovered", "Summary", "Layer profiles", "Middle vs final", "Voice vs soundtrack",
                    "Deep vs classical", "Regions", "Provenance"):
        assert section in page
    # captions: n and the test
    assert f"n = {len(FOLDS)} stimuli in {len(FOLDS)} cross-validation folds (loso)" in page
    assert "max-statistic FWER across targets x layers" in page and f"{N_PERM} &#39;shift&#39; surrogates" in page
    # long tables: at most HTML_ROWS rows each in the page, all rows in the CSV
    for t in tables:
        assert (out / t).is_file() and f"href='{t}'" in page
    assert page.count("<tr") <= HTML_ROWS * (len(tables) + 1) + 40
    # the summary table: best layer with its interval and name, centroid with its interval, p, r / ceiling
    table = pd.read_csv(out / "tables" / "Summary_best_and_centroid_layer_per_target.csv")
    row = table.set_index("target").loc["rating:arousal"]
    assert row["element"] == "voice" and row["feature set"] == "hubert"
    layer, lo, hi = re.match(r"(\d+) \(block07\) \[(\d+), (\d+)\]", row["best layer [CI]"]).groups()
    assert int(layer) == 7 and int(lo) <= 7 <= int(hi)
    cent, clo, chi = map(float, re.match(r"([\d.]+) \[([\d.]+), ([\d.]+)\]", row["centroid [CI]"]).groups())
    assert 5 < cent < 9 and clo <= cent <= chi
    assert row["p"] < 0.05 and row["r / ceiling"] == pytest.approx(row["r"] / 0.8, rel=1e-6)
    assert table.set_index("target").loc["isc:null-rh", "p"] > 0.05
    # leakage: the leaky neighbour is flagged, the planted region and the independent one are not
    regions = pd.read_csv(out / "tables" / "Regions_region_table.csv").set_index("region")
    assert regions.loc[LEAK, "leakage_from"] == PLANT
    assert regions[["leakage_from"]].fillna("").loc[[PLANT, OWN], "leakage_from"].tolist() == ["", ""]
    assert regions["significant"].all()
    assert table.set_index("target").loc[f"region:{LEAK}", "leakage"] == f"leakage from {PLANT}"
    # provenance in full: the command line, the host, versions, every store's whole identity
    assert "xaffect report-html WS" in page and platform.node() in page and "version: mne" in page
    for name in ("scores", "stems", "targets", "crosstalk"):
        assert ws.provenance(name)["identity"] in page
    byt = {e["target"]: e for e in summary["planted"]}
    assert byt["rating:arousal"]["layer"] == 7 and "isc:null-rh" in summary["null_targets"]
    assert summary["comparison"]["all_recovered"]


def test_report_without_scores_is_a_clear_error(tmp_path):
    ws = Workspace.init(tmp_path / "ws")
    with pytest.raises(StoreError, match="no scores store") as err:
        write_report(ws, tmp_path / "out")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out").exists()


def test_report_without_the_family_p_is_a_clear_error(tmp_path):
    ws = _workspace(tmp_path, scores=make_scores())  # p and p_fdr only
    with pytest.raises(InputError, match="p_var: scores store 'scores' has no 'p_fwer'") as err:
        write_report(ws, tmp_path / "out")
    assert "\n" not in str(err.value) and "p_fdr" in str(err.value)
    assert not (tmp_path / "out").exists()
    with pytest.raises(InputError, match="alpha"):
        write_report(ws, tmp_path / "out", alpha=1.5)


def test_report_stage_skips_when_current(tmp_path):
    ws = _workspace(tmp_path)
    (tmp_path / "a.wav").write_bytes(b"")
    (tmp_path / "study.yaml").write_text(
        f"name: t\nworkspace: {ws.url}\nstimuli: [{{name: a, path: a.wav}}]\nstages: [report]\n"
        "report: {n_boot: 100}\n")
    study = load_study(tmp_path / "study.yaml")
    from xaffect.analysis.stage import STAGES

    read = STAGES["report"].run(study, progress=False)
    assert "scores" in read
    html_path = tmp_path / "ws" / "report" / "report.html"
    m1 = html_path.stat().st_mtime_ns
    STAGES["report"].run(study, progress=False)
    assert html_path.stat().st_mtime_ns == m1  # current: not rewritten
    STAGES["report"].run(study, force=True, progress=False)
    assert html_path.stat().st_mtime_ns != m1


def test_region_map():
    assert split_region("superiortemporal-lh") == ("superiortemporal", "lh")
    assert split_region("rh.insula") == ("insula", "rh")
    s = make_scores()
    v = region_values(s, kind="region")
    assert v["region"].values.tolist() == ["insula-lh"]
    fig = plot_regions(xr.DataArray([0.1, 0.2, 0.3], dims="region",
                                    coords={"region": ["insula-lh", "insula-rh", "precuneus-lh"]}))
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["insula", "precuneus"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["lh", "rh"]


def test_surface_plot_paints_the_right_region(tmp_path):
    from xaffect.analysis import plot_regions_surface
    from xaffect.datasets import synthetic_subject
    from xaffect.neural.synthetic_subject import DK_NAMES

    synthetic_subject(tmp_path, "s", grade=3)
    regs = [f"{r}-{h}" for r in DK_NAMES for h in ("lh", "rh")]
    v = xr.DataArray(np.zeros(len(regs)), dims="region", coords={"region": regs})
    v.loc["superiortemporal-lh"] = 1.0
    fig = plot_regions_surface(v, subjects_dir=str(tmp_path), subject="s", cmap="viridis")
    import matplotlib

    top = np.array(matplotlib.colormaps["viridis"](1.0))

    def n_top(ax):
        fc = ax.collections[0].get_facecolors()
        return int(np.all(np.isclose(fc, top), axis=1).sum())

    lh_lat, lh_med, rh_lat, rh_med = fig.axes[:4]
    assert n_top(lh_lat) > 5 and n_top(rh_lat) == 0 and n_top(rh_med) == 0
    assert n_top(lh_lat) > n_top(lh_med)
    with pytest.raises(InputError, match="missing"):
        plot_regions_surface(v, subjects_dir=str(tmp_path), subject="nobody")


def test_layer_profiles_small_multiples_legend_outside():
    from xaffect.analysis import layer_profile
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from xaffect.analysis.plots import plot_layer_profiles

    prof = layer_profile(paper_scores(), feature_set="hubert", p_var="p_fwer", n_boot=100)
    fig = plot_layer_profiles(prof, max_panels=4)
    FigureCanvasAgg(fig).draw()  # lay out (constrained layout) and render
    panels = [ax for ax in fig.axes if ax.get_visible()]
    titles = [ax.get_title() for ax in panels]
    assert titles[0] == f"region:{PLANT}" and "isc:null-rh" not in titles  # the best-predicted targets
    arousal = panels[titles.index("rating:arousal")]
    legend = fig.legends[0].get_window_extent()
    assert all(legend.x0 >= ax.get_window_extent().x1 for ax in panels)  # outside every panel
    colours = {line.get_label(): line.get_color() for line in arousal.lines if line.get_label() in
               ("original", "voice", "soundtrack")}
    assert len(set(colours.values())) == 3
    assert [t.get_text() for t in panels[-1].get_xticklabels()][7] == "block07"  # the layers' names
    assert arousal.collections  # the null band and the intervals are drawn
    sig = prof["significant"].sel(target="rating:arousal", element="voice").values
    filled = next(line for line in arousal.lines if line.get_label() == "voice: significant")
    assert len(filled.get_xdata()) == int(sig.sum()) > 0
