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
    prof = layer_profile(s, feature_set="hubert", element="voice", n_boot=300)
    assert set(prof["mean"].dims) == {"layer", "target"}
    assert -1 not in prof["layer"].values
    assert int(prof["best_layer"].sel(target="rating:arousal")) == 7
    assert (prof["lower"] <= prof["mean"]).all() and (prof["upper"] >= prof["mean"]).all()
    # corrected resampled t band: t * sd * sqrt(1/n + n_test/n_train), n_test/n_train = 1/(n-1)
    n = len(FOLDS)
    sub = s["r"].sel(feature_set="hubert", element="voice", target="rating:arousal", layer=3).values
    half = stats.t.ppf(0.975, n - 1) * sub.std(ddof=1) * np.sqrt(1 / n + 1 / (n - 1))
    np.testing.assert_allclose(float(prof["upper"].sel(layer=3, target="rating:arousal")), sub.mean() + half)
    a = prof.sel(target="rating:arousal")
    assert float(a["best_lower"]) <= 7 <= float(a["best_upper"]) and float(a["best_share"]) > 0.5
    # selection-honest score: each fold at the layer chosen on the other folds, never above the optimistic max
    assert float(a["best_r_cv"]) <= float(a["best_r"]) + 1e-12
    assert bool(a["significant"].sel(layer=7)) and not bool(prof["significant"].sel(target="isc:null-rh").any())
    bl = best_layer(s, feature_set="hubert", n_boot=200)
    assert bl.sel(target="rating:arousal").values.tolist() == [7, 7, 7]
    assert set(bl.coords) >= {"lower", "upper", "share", "r_cv"}


def test_centroid_layer_over_layers_that_beat_their_null():
    s = make_scores()
    c = centroid_layer(s, feature_set="hubert", element="voice", n_boot=300)
    m = s["r"].sel(feature_set="hubert", element="voice", target="rating:arousal").mean("fold")
    sig = s["p_fdr"].sel(feature_set="hubert", element="voice", target="rating:arousal") < 0.05
    m, sig = m.sel(layer=m.layer >= 0), sig.sel(layer=m.layer >= 0)
    assert 0 < int(sig.sum()) < 13
    w = np.where(sig, np.clip(m.values, 0, None), 0)
    a = c.sel(target="rating:arousal")
    np.testing.assert_allclose(float(a), (w * m.layer.values).sum() / w.sum())
    assert 6.5 < float(a) < 7.5 and float(a["lower"]) <= float(a) <= float(a["upper"])
    assert float(a["upper"]) - float(a["lower"]) < 1.0 and str(a["reason"].values) == ""
    # the flat null target: no layer beats its null, so no centroid (it used to read the middle layer)
    n = c.sel(target="isc:null-rh")
    assert np.isnan(float(n)) and "no layer beats its null" in str(n["reason"].values)
    assert int(n["n_layers_significant"]) == 0


def test_middle_vs_final_preset_band():
    s = make_scores()
    res = middle_vs_final(s, feature_set="hubert", element="voice")
    a = res.sel(target="rating:arousal")
    assert res.attrs["final_layer"] == 12
    # the seed's 7-14 of 24 layers, scaled to layers 0-12: 3.5..7 -> 4..7
    assert res.attrs["band"] == [4, 7] and int(a["band_start"]) == 4 and int(a["band_end"]) == 7
    assert float(a["band_p"]) < 1e-3 and float(a["band_difference"]) > 0.2
    # the data-picked band is still there, named exploratory
    assert int(a["exploratory_band_start"]) <= 5 and 9 <= int(a["exploratory_band_end"]) < 12
    assert int(res["exploratory_band_start"].sel(target="isc:null-rh")) == -1
    assert float(res["band_p"].sel(target="isc:null-rh")) > 0.01
    # a band fixed by hand, and final layers as a set
    res2 = middle_vs_final(s, feature_set="hubert", element="voice", band=(6, 8), final=[11, 12])
    assert res2.attrs["band"] == [6, 8] and res2.attrs["final_layers"] == [11, 12]
    with pytest.raises(InputError, match="final"):
        middle_vs_final(s, feature_set="hubert", element="voice", final=40)


def test_element_contrast_and_energy_ratio():
    s = make_scores()
    # make the voice advantage grow with the voice/soundtrack energy ratio across folds
    ratio = np.logspace(-1, 1, len(FOLDS))
    s["r"].loc[dict(feature_set="hubert", element="voice", target="rating:arousal")] += 0.2 * np.log10(ratio)
    er = xr.DataArray(10 * np.log10(ratio), dims="stimulus", coords={"stimulus": FOLDS}, attrs={"units": "dB"})
    res = element_contrast(s, feature_set="hubert", energy_ratio=er)
    assert res["preferred"].sel(target="rating:arousal").item() == "voice"
    assert int(res["layer"].sel(target="rating:arousal")) == 7
    assert float(res["p"].sel(target="rating:arousal")) < 1e-3
    assert float(res["energy_rho"].sel(target="rating:arousal")) > 0.8
    assert float(res["energy_p"].sel(target="rating:arousal")) < 0.01
    assert int(res["energy_n"].sel(target="rating:arousal")) == len(FOLDS)
    # read in the stored unit: dB as is (never log10 of dB), a linear ratio converted
    np.testing.assert_allclose(res["energy_ratio_db"].values, 10 * np.log10(ratio), rtol=1e-6)
    lin = element_contrast(s, feature_set="hubert", energy_ratio=er.copy(data=ratio).assign_attrs(units="1"))
    np.testing.assert_allclose(lin["energy_ratio_db"].values, 10 * np.log10(ratio))
    with pytest.raises(InputError, match="energy_ratio: units"):
        element_contrast(s, feature_set="hubert", energy_ratio=er.assign_attrs(units=None))
    cl = element_contrast(s, feature_set="lld")
    assert cl["preferred"].sel(target="region:insula-lh").item() == "soundtrack"
    with pytest.raises(InputError, match="held-out stimulus"):
        element_contrast(s, feature_set="hubert", energy_ratio=er.isel(stimulus=slice(0, 3)))


def test_deep_vs_classical():
    s = make_scores()
    res = deep_vs_classical(s, element="soundtrack")
    assert (res.attrs["deep"], res.attrs["classical"]) == ("hubert", "lld")
    assert "other folds" in res.attrs["selection"] and set(res["layer_selected"].dims) == {"target", "fold"}
    assert float(res["mean_difference"].sel(target="region:insula-lh")) < -0.4
    assert float(res["p"].sel(target="region:insula-lh")) < 1e-3
    assert float(res["ci_high"].sel(target="region:insula-lh")) < -0.3  # the corrected interval excludes 0


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


def test_profile_null_band_is_the_permutation_null_quantiles():
    s = make_scores()
    rng = np.random.default_rng(0)
    null = rng.normal(0, 0.05, s["p"].shape + (200,))
    null[0, 3, 1, 0, :5] = np.nan                 # a few missing surrogates are skipped
    s["null"] = (s["p"].dims + ("perm",), null)
    prof = layer_profile(s, feature_set="hubert", n_boot=50)
    ref = s["null"].sel(feature_set="hubert", layer=list(range(13)), drop=True).quantile([0.025, 0.975], "perm")
    np.testing.assert_allclose(prof["null_lower"].transpose(*ref.dims[1:]), ref.isel(quantile=0))
    np.testing.assert_allclose(prof["null_upper"].transpose(*ref.dims[1:]), ref.isel(quantile=1))
    # the planted peak sits far above its null band; the null target inside it
    a = prof.sel(target="rating:arousal", element="voice", layer=7)
    assert float(a["mean"]) > float(a["null_upper"])


def test_layer_profile_reuses_the_summary_bootstrap():
    """The report pays each feature set's best-layer bootstrap once: the profile built from the summary's
    ``best_*`` is the profile computed from scratch."""
    from xaffect.analysis.layers import layer_summary

    s = make_scores(seed=3)
    summ = layer_summary(s, feature_set="hubert", n_boot=200, seed=2)
    fresh = layer_profile(s, feature_set="hubert", n_boot=200, seed=2)
    reused = layer_profile(s, feature_set="hubert", n_boot=200, seed=2, best=summ)
    xr.testing.assert_identical(fresh, reused)
    assert "centroid" not in reused                              # only the best_* variables are taken
