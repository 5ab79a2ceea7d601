"""End to end: ``xaffect demo --fmri --quick`` through the command line recovers what was planted.

The quick simulated music fMRI study (BIDS layout with JSON sidecars, events and fMRIPrep confounds;
Schaefer parcels on a small voxel grid; a planted best layer of trained CREPE per parcel that follows
the HCP principal gradient; emotionality and enjoyment driven by different layers) runs through
stems → features → regions (bids) → targets → encode (FIR delays) → report in a subprocess. The
printed planted-vs-recovered table must mark every row recovered (layer map vs planted under a Moran
null, its alignment with G1, each rating's best layer within ±1 and significant, the two ratings'
different layers), the null parcels and the null rating must stay at their rate (≤ 10 % significant
under the max-statistic family), the exit code must be 0 and the wall time printed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROWS = ("layer map", "gradient alignment (G1)", "rating:emotionality", "rating:enjoyment",
        "emotionality vs enjoyment", "null parcels and ratings")


def test_fmri_demo_quick_recovers_the_planted_map_gradient_and_ratings(tmp_path):
    out = tmp_path / "fmri-demo"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, "-m", "xaffect.cli", "demo", "--fmri", "--quick", "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=900)
    text = proc.stdout
    assert proc.returncode == 0, text[-3000:] + proc.stderr[-3000:]
    lines = text.splitlines()
    for what in ROWS:
        row = [ln for ln in lines if ln[3:].startswith(what)]
        assert row and row[0].lstrip().startswith("✓"), f"{what}: {row or 'no row'}\n{text[-2000:]}"
    assert any(ln.startswith("wall time ") for ln in lines)
    summary = json.loads((out / "summary.json").read_text())
    truth = json.loads((out / "ground_truth.json").read_text())
    null = summary["comparison"]["null"]
    assert null["n"] == len(truth["null_targets"]) >= 10
    assert null["fraction"] <= 0.10, null
    lm = summary["layer_map"]
    assert lm["map"]["spearman"] > 0.3 and lm["map"]["p_moran"] < 0.05
    assert lm["gradient"]["planted_spearman"] > 0.5 and lm["gradient"]["recovered_spearman"] > 0
    diff = summary["rating_difference"]
    assert diff["p"] < 0.05 and diff["mean"] > 0
    # the BIDS reader read RepetitionTime from the sidecars: the regions store is on the 1/TR clock
    assert (out / "bids" / "sub-01" / "func" / "sub-01_task-music_run-1_bold.json").is_file()
    assert "RepetitionTime" in (out / "bids" / "sub-01" / "func" / "sub-01_task-music_run-1_bold.json").read_text()
