"""Layer-profile analyses on hand-built scores with a known answer."""

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from xaffect.analysis import (best_layer, centroid_layer, compare_with_ground_truth, deep_vs_classical,
                              element_contrast, fdr_bh, layer_profile, middle_vs_final, recovered_effects)
from xaffect.errors import InputError

LAYERS = np.arange(-1, 13)
FOLDS = [f"stim{i}" for i in range(8)]


def make_scores(seed=0, noise=0.02):
    """Scores where rating:arousal peaks at hubert layer 7 on the voice, region:x follows
    lld on the soundtrack, and isc:null has nothing."""
    rng = np.random.default_rng(seed)
    fsets, elements = ["hubert", "lld"], ["original", "voice", "soundtrack"]
    targets = ["rating:arousal", "region:insula-lh", "isc:null-rh"]
    r = np.full((2, LAYERS.size, 3, 3, len(FOLDS)), np.nan)
    deep = LAYERS >= 0
    L = LAYERS[deep]
    peak = 0.5 * np.exp(-0.5 * ((L - 7) / 2.0) ** 2)  # peaked at 7, low at final 12
    for e, gain in enumerate([0.7, 1.0, 0.2]):
        r[0, deep, e, 0, :] = gain * peak[:, None] + rng.normal(0, noise, (L.size, len(FOLDS)))
        r[0, deep, e, 1, :] = 0.05 + rng.normal(0, noise, (L.size, len(FOLDS)))
        r[0, deep, e, 2, :] = rng.normal(0, noise, (L.size, len(FOLDS)))
    for e, gain in enumerate([0.3, 0.05, 0.6]):
        r[1, 0, e, 0, :] = 0.05 + rng.normal(0, noise, len(FOLDS))
        r[1, 0, e, 1, :] = gain + rng.normal(0, noise, len(FOLDS))
        r[1, 0, e, 2, :] = rng.normal(0, noise, len(FOLDS))
    mean = np.where(np.isfinite(r).any(-1), np.nan_to_num(r).mean(-1), np.nan)
    # a one-sample t-test across folds stands in for the permutation p
    p = stats.ttest_1samp(r, 0, axis=-1, alternative="greater").pvalue
    p[..., 2] = rng.uniform(0.1, 1.0, p[..., 2].shape)  # the null target: calibrated p-values
    p = np.where(np.isfinite(mean), p, np.nan)
    p_fdr = fdr_bh(p.ravel()).reshape(p.shape)
    dims = ("feature_set", "layer", "element", "target")
    return xr.Dataset({"r": (dims + ("fold",), r), "p": (dims, p), "p_fdr": (dims, p_fdr)},
                      coords={"feature_set": fsets, "layer": LAYERS, "element": elements,
                              "target": targets, "fold": FOLDS})


def test_fdr_matches_statsmodels_formula():
    p = np.array([0.01, 0.04, 0.03, 0.005, np.nan, 0.5])
    q = fdr_bh(p)
    ok = np.isfinite(p)
    # reference: brute-force BH, min over j >= i of p_(j) n / j
    ps = np.sort(p[ok])
    n = ps.size
    ref_sorted = np.array([min(1, min(ps[j] * n / (j + 1) for j in range(i, n))) for i in range(n)])
    np.testing.assert_allclose(np.sort(q[ok]), ref_sorted)
    assert np.isnan(q[4])


def test_layer_profile_and_best_layer():
    s = make_scores()
    prof = layer_profile(s, feature_set="hubert", element="voice")
    assert set(prof["mean"].dims) == {"layer", "target"}
    assert -1 not in prof["layer"].values
    assert int(prof["best_layer"].sel(target="rating:arousal")) == 7
    assert (prof["lower"] <= prof["mean"]).all() and (prof["upper"] >= prof["mean"]).all()
    # CI half-width = t * sd / sqrt(n)
    sub = s["r"].sel(feature_set="hubert", element="voice", target="rating:arousal", layer=3).values
    half = stats.t.ppf(0.975, len(FOLDS) - 1) * sub.std(ddof=1) / np.sqrt(len(FOLDS))
    np.testing.assert_allclose(float(prof["upper"].sel(layer=3, target="rating:arousal")), sub.mean() + half)
    bl = best_layer(s, feature_set="hubert")
    assert bl.sel(target="rating:arousal").values.tolist() == [7, 7, 7]


def test_centroid_layer_brute_force():
    s = make_scores()
    c = centroid_layer(s, feature_set="hubert", element="voice")
    m = s["r"].sel(feature_set="hubert", element="voice", target="rating:arousal").mean("fold")
    m = m.sel(layer=m.layer >= 0)
    w = np.clip(m.values, 0, None)
    np.testing.assert_allclose(float(c.sel(target="rating:arousal")), (w * m.layer.values).sum() / w.sum())
    assert 6.5 < float(c.sel(target="rating:arousal")) < 7.5
    # a target never positive has no centroid
    s2 = s.copy(deep=True)
    s2["r"].loc[dict(target="isc:null-rh")] = -0.1
    assert np.isnan(float(centroid_layer(s2, feature_set="hubert", element="voice").sel(target="isc:null-rh")))


def test_middle_vs_final_finds_band_around_7():
    s = make_scores()
    res = middle_vs_final(s, feature_set="hubert", element="voice")
    a = res.sel(target="rating:arousal")
    assert res.attrs["final_layer"] == 12
    assert int(a["band_start"]) <= 5 and int(a["band_end"]) >= 9 and int(a["band_end"]) < 12
    assert float(a["band_p"]) < 1e-3
    # no band where layers are flat
    assert int(res["band_start"].sel(target="isc:null-rh")) == -1
    with pytest.raises(InputError, match="final"):
        middle_vs_final(s, feature_set="hubert", element="voice", final=40)


def test_element_contrast_and_energy_ratio():
    s = make_scores()
    # make the voice advantage grow with the voice/soundtrack energy ratio across folds
    ratio = np.logspace(-1, 1, len(FOLDS))
    s["r"].loc[dict(feature_set="hubert", element="voice", target="rating:arousal")] += 0.2 * np.log10(ratio)
    er = xr.DataArray(ratio, dims="stimulus", coords={"stimulus": FOLDS})
    res = element_contrast(s, feature_set="hubert", energy_ratio=er)
    assert res["preferred"].sel(target="rating:arousal").item() == "voice"
    assert int(res["layer"].sel(target="rating:arousal")) == 7
    assert float(res["p"].sel(target="rating:arousal")) < 1e-3
    assert float(res["energy_rho"].sel(target="rating:arousal")) > 0.8
    cl = element_contrast(s, feature_set="lld")
    assert cl["preferred"].sel(target="region:insula-lh").item() == "soundtrack"
    with pytest.raises(InputError, match="held-out stimulus"):
        element_contrast(s, feature_set="hubert", energy_ratio=er.isel(stimulus=slice(0, 3)))


def test_deep_vs_classical():
    s = make_scores()
    res = deep_vs_classical(s, element="soundtrack")
    assert res.attrs == {"deep": "hubert", "classical": "lld"}
    assert float(res["mean_difference"].sel(target="region:insula-lh")) < -0.4
    assert float(res["p"].sel(target="region:insula-lh")) < 1e-3


def test_recovered_effects_and_ground_truth():
    s = make_scores()
    rec = {e["target"]: e for e in recovered_effects(s)}
    assert rec["rating:arousal"] | {"r": 0, "p_fdr": 0} == {"target": "rating:arousal", "element": "voice",
                                                           "feature_set": "hubert", "layer": 7, "r": 0, "p_fdr": 0}
    assert rec["region:insula-lh"]["layer"] is None and rec["region:insula-lh"]["element"] == "soundtrack"
    assert "isc:null-rh" not in rec
    gt = {"planted": [{"target": "rating:arousal", "element": "voice", "feature_set": "hubert", "layer": 8},
                      {"target": "region:insula-lh", "element": "soundtrack", "feature_set": "lld", "layer": None}],
          "null_targets": ["isc:null-rh"]}
    cmp = compare_with_ground_truth(s, gt)
    assert cmp["all_recovered"] and cmp["null"]["fraction"] == 0
    gt["planted"][0]["layer"] = 10  # off by 3: not recovered
    gt["planted"][1]["element"] = "voice"
    cmp = compare_with_ground_truth(s, gt)
    assert [p["recovered"] for p in cmp["planted"]] == [False, False]
    assert not cmp["planted"][0]["layer_ok"] and not cmp["planted"][1]["element_ok"]


def test_bad_input_names_culprit():
    s = make_scores()
    with pytest.raises(InputError, match="'wav2vec'"):
        layer_profile(s, feature_set="wav2vec")
    with pytest.raises(InputError, match="classical"):
        layer_profile(s, feature_set="lld")
    with pytest.raises(InputError, match="'drums'"):
        layer_profile(s, feature_set="hubert", element="drums")
    with pytest.raises(InputError, match="'r'"):
        best_layer(xr.Dataset(), feature_set="hubert")
