"""End to end: the demo's quick simulated study, through every stage, recovers what was planted.

For two seeds, ``run_demo`` simulates a study (classical plants on a rating,
a region and a synchrony target; a deep plant on layer 5 of trained CREPE
applied to the mixture as heard), runs stems → features → covariates →
regions → synchrony → targets → encode → report, and the report's
comparison with ``ground_truth.json`` must find every planted effect (best
layer within ±1, the planted element preferred, significant under the
max-statistic family ``p_fwer``) and at most 10 % of the null targets
significant under that family. On seed 0 the README's Python snippets then
run verbatim on the demo's workspace.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xaffect.datasets.demo import demo_settings, run_demo

#: Exactly the quick demo (``xaffect demo --quick``): about 1.5 minutes per seed on 2 cores.
SETTINGS = demo_settings(quick=True)


@pytest.mark.parametrize("seed", [0, 2])
def test_quick_demo_recovers_every_planted_effect(tmp_path, seed):
    res = run_demo(tmp_path / "demo", seed=seed, quick=True, echo=lambda *a, **k: None, progress=False,
                   settings=SETTINGS)
    truth = json.loads((tmp_path / "demo" / "ground_truth.json").read_text())
    cmp = res["comparison"]
    assert [r["target"] for r in cmp["planted"]] == [p["target"] for p in truth["planted"]]
    kinds = {p["target"].split(":")[0] for p in truth["planted"]}
    assert kinds == {"rating", "region", "isc"}
    deep = [p for p in truth["planted"] if p["layer"] is not None]
    assert deep and deep[0]["feature_set"].startswith("crepe") and deep[0]["element"] == "original"
    for row in cmp["planted"]:
        assert row["layer_ok"], f"seed {seed}: {row['target']}: best layer {row['recovered_layer']}, planted {row['layer']}"
        assert row["element_ok"], f"seed {seed}: {row['target']}: {row['preferred_element']} preferred over {row['element']}"
        assert row["significant"], f"seed {seed}: {row['target']}: p_fdr {row['p_fdr']:.3g}"
        assert row["recovered"]
    assert cmp["null"]["n"] >= 10
    assert cmp["null"]["fraction"] <= 0.10, cmp["null"]
    # the report exists and says the true stems were used
    html = Path(res["report"]).read_text()
    assert "TRUE voice and soundtrack" in html
    assert json.loads((Path(res["report"]).parent / "summary.json").read_text())["comparison"] == cmp
    if seed == 0:  # the README's Python snippets, verbatim, on this demo (see tests/test_readme.py)
        from test_readme import run_readme_python

        run_readme_python(tmp_path / "demo")
