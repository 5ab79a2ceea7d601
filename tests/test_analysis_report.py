"""The HTML report and the report stage on a real workspace."""

import base64
import json
import re

import numpy as np
import pytest
import xarray as xr

from xaffect.analysis import plot_regions, split_region
from xaffect.analysis.report import region_values, write_report
from xaffect.errors import InputError, StoreError
from xaffect.store import Workspace
from xaffect.study import load_study

from test_analysis_profiles import FOLDS, make_scores


def _workspace(tmp_path):
    ws = Workspace.init(tmp_path / "ws")
    s = make_scores()
    ws.write("scores", s, stage="encode", params={"test": 1}, progress=False)
    # the stems store names this dim "stimuli"; the report accepts either
    ratio = xr.Dataset({"energy_ratio_stimulus": ("stimuli", np.logspace(-1, 1, len(FOLDS)))},
                       coords={"stimuli": FOLDS})
    ws.write("stems", xr.DataTree(ratio), stage="stems", params={}, progress=False)
    return ws


def test_write_report_self_contained(tmp_path):
    ws = _workspace(tmp_path)
    gt = {"planted": [{"target": "rating:arousal", "element": "voice", "feature_set": "hubert", "layer": 7}],
          "null_targets": ["isc:null-rh"]}
    path = write_report(ws, tmp_path / "out", ground_truth=gt)
    page = path.read_text()
    # self-contained: no external references, figures embedded and decodable as PNG
    assert not re.search(r'src="(?!data:)', page)
    imgs = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(imgs) >= 6
    assert all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in imgs)
    assert "with energy ratio" in page  # the energy-ratio relation was computed from the stems store
    for section in ("Planted vs recovered", "Significant targets", "Middle vs final", "Voice vs soundtrack",
                    "Deep vs classical", "Regions", "Provenance"):
        assert section in page
    assert "encode" in page and "stems" in page  # provenance rows of both stores
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert set(summary) >= {"planted", "null_targets"}
    byt = {e["target"]: e for e in summary["planted"]}
    assert set(byt["rating:arousal"]) == {"target", "element", "feature_set", "layer", "r", "p_fdr"}
    assert byt["rating:arousal"]["layer"] == 7 and "isc:null-rh" in summary["null_targets"]
    assert summary["comparison"]["all_recovered"]


def test_report_without_scores_is_a_clear_error(tmp_path):
    ws = Workspace.init(tmp_path / "ws")
    with pytest.raises(StoreError, match="no scores store"):
        write_report(ws, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_report_stage_skips_when_current(tmp_path):
    ws = _workspace(tmp_path)
    (tmp_path / "a.wav").write_bytes(b"")
    (tmp_path / "study.yaml").write_text(
        f"name: t\nworkspace: {ws.url}\nstimuli: [{{name: a, path: a.wav}}]\nstages: [report]\n")
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
    assert [t.get_text() for t in ax.get_yticklabels()] == ["insula", "precuneus"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["lh", "rh"]


def test_surface_plot_paints_the_right_region(tmp_path):
    from xaffect.analysis import plot_regions_surface
    from xaffect.datasets import synthetic_subject
    from xaffect.datasets.synthetic_subject import DK_NAMES

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
