"""The simulated fMRI study's inputs and kernels, and the demo's rating-difference test (fast: no network runs).

* Bad parameters of :func:`simulate_fmri_study` fail in their first line, naming the parameter,
  before anything is written.
* The HRF kernel on the TR clock is nilearn's Glover HRF: unit norm, peak 4-6 s.
* :func:`rating_difference` (the crossover of out-of-fold chosen layers): ~5 % significant when both
  ratings follow the same layer profile (fold effects shared across layers and targets, layers
  correlated), and significant when they peak at different layers.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from xaffect.datasets.demo_fmri import rating_difference
from xaffect.datasets.simulate_fmri import glover_hrf_on_tr, simulate_fmri_study
from xaffect.errors import InputError


@pytest.mark.parametrize("kwargs, key", [
    ({"n_subjects": 1}, "n_subjects"),
    ({"n_stimuli": 2}, "n_stimuli"),
    ({"t_r": 0.0}, "t_r"),
    ({"duration": 61.0}, "duration"),          # not a whole number of 2-s TRs
    ({"duration": 20.0}, "duration"),          # fewer than 20 TRs
    ({"delays": [4.0, 200.0]}, "delays"),
    ({"delays": []}, "delays"),
    ({"n_parcels": 150}, "n_parcels"),
    ({"null_share": 1.5}, "null_share"),
    ({"rest": 3.0}, "rest"),
    ({"rating_layers": {"emotionality": 9}}, "rating_layers.emotionality"),
])
def test_bad_parameters_are_refused_before_anything_is_written(tmp_path, kwargs, key):
    out = tmp_path / "study"
    with pytest.raises(InputError, match=key.replace(".", r"\.")):
        simulate_fmri_study(out, quick=True, progress=False, **kwargs)
    assert not out.exists() or not any(out.iterdir())


def test_a_non_empty_folder_is_kept(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty"):
        simulate_fmri_study(tmp_path, quick=True, progress=False)
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_hrf_on_the_tr_clock_is_glovers():
    h = glover_hrf_on_tr(2.0)
    assert np.isclose(np.linalg.norm(h), 1.0)
    assert int(np.argmax(h)) * 2.0 in (4.0, 6.0)
    assert h[0] < 0.05 and h[-1] ** 2 < 1e-3 and h.min() < 0          # starts flat, undershoot, decays


def _scores(rng, peaks, *, n_layers=7, n_folds=5, noise=0.05):
    """r (feature_set, layer, element, target, fold) with a smooth profile per target.

    Each fold has its own difficulty (shared by layers and targets) and each
    (target, fold) a noise that is smooth across layers, as layer scores are.
    """
    layers = np.arange(1, n_layers + 1)
    r = np.empty((1, n_layers, 1, len(peaks), n_folds))
    fold = 0.1 * rng.standard_normal(n_folds)
    for i, peak in enumerate(peaks):
        mu = 0.3 * np.exp(-0.5 * ((layers - peak) / 1.5) ** 2)
        e = rng.standard_normal((n_layers, n_folds))
        e = (e + np.roll(e, 1, axis=0)) / np.sqrt(2)                  # neighbouring layers correlated
        r[0, :, 0, i] = mu[:, None] + fold[None, :] + noise * e
    return xr.Dataset({"r": (("feature_set", "layer", "element", "target", "fold"), r)},
                      coords={"feature_set": ["deep"], "layer": layers, "element": ["original"],
                              "target": ["rating:emotionality", "rating:enjoyment"],
                              "fold": [f"piece{k}" for k in range(n_folds)]})


def test_rating_difference_is_calibrated_when_both_follow_the_same_layers():
    rng = np.random.default_rng(0)
    p = np.array([rating_difference(_scores(rng, (4, 4)), feature_set="deep")["p"] for _ in range(400)])
    assert np.mean(p < 0.05) <= 0.08, np.mean(p < 0.05)


def test_rating_difference_finds_different_layers():
    rng = np.random.default_rng(1)
    res = [rating_difference(_scores(rng, (2, 6)), feature_set="deep") for _ in range(50)]
    assert np.mean([r["p"] < 0.05 for r in res]) >= 0.8
    assert res[0]["layers_first"] == [2] * 5 and res[0]["layers_second"] == [6] * 5
