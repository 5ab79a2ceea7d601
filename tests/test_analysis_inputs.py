"""Bad input to the layer analyses: one clear error naming the argument; layer names carried through."""

import numpy as np
import pytest
import xarray as xr

from xaffect.analysis import (best_layer, centroid_layer, deep_vs_classical, element_contrast, layer_profile,
                              layer_summary, layer_vs_layer, middle_band, middle_vs_final)
from xaffect.errors import InputError

from test_analysis_profiles import make_scores


def test_scores_without_folds_or_with_one_fold():
    s = make_scores()
    no_fold = s.assign(r=s["r"].mean("fold"))
    for fn, kw in ((layer_profile, {"feature_set": "hubert"}), (deep_vs_classical, {}),
                   (middle_vs_final, {"feature_set": "hubert", "element": "voice"}),
                   (element_contrast, {"feature_set": "hubert"})):
        with pytest.raises(InputError, match="scores: r has no 'fold' dim"):
            fn(no_fold, **kw)
    one = s.isel(fold=[0])
    with pytest.raises(InputError, match=r"scores: 1 fold \(stim0\)"):
        best_layer(one, feature_set="hubert")
    with pytest.raises(InputError, match="scores: 1 fold"):
        deep_vs_classical(one)


def test_feature_set_with_one_layer_asked_for_a_profile():
    s = make_scores()
    s["r"].loc[dict(feature_set="hubert", layer=list(range(1, 13)))] = np.nan
    for fn in (layer_profile, best_layer, centroid_layer):
        with pytest.raises(InputError, match=r"feature_set: 'hubert' has 1 scored layer \(\[0\]\)"):
            fn(s, feature_set="hubert")


def test_band_outside_the_model_depth():
    s = make_scores()
    with pytest.raises(InputError, match=r"band: \(10, 20\) is outside the depth of 'hubert' \(layers 0..12\)"):
        middle_vs_final(s, feature_set="hubert", element="voice", band=(10, 20))
    with pytest.raises(InputError, match="band: .* overlaps the final"):
        middle_vs_final(s, feature_set="hubert", element="voice", band=(8, 12))
    with pytest.raises(InputError, match="band_fraction"):
        middle_vs_final(s, feature_set="hubert", element="voice", band_fraction=(0.5, 1.4))
    with pytest.raises(InputError, match="band: expected"):
        middle_vs_final(s, feature_set="hubert", element="voice", band="middle")
    # the seed's band scales with depth: 7-14 of 24, 4-7 of 12, 7-13 of VGGish's 1-23
    assert middle_band(range(25)) == (7, 14)
    assert middle_band(range(13)) == (4, 7)
    assert middle_band(range(1, 24)) == (7, 13)


def test_classical_or_deep_set_missing():
    s = make_scores()
    only_deep = s.sel(feature_set=["hubert"])
    with pytest.raises(InputError, match="classical: the scores have no classical feature set"):
        deep_vs_classical(only_deep)
    with pytest.raises(InputError, match="classical: 'hubert' is not a classical feature set"):
        deep_vs_classical(s, classical="hubert")
    with pytest.raises(InputError, match="classical: 'mfcc' is not in the scores"):
        deep_vs_classical(s, classical="mfcc")
    with pytest.raises(InputError, match="deep: 'lld' is classical"):
        deep_vs_classical(s, deep="lld")
    with pytest.raises(InputError, match="deep: the scores have no deep feature set"):
        deep_vs_classical(s.sel(feature_set=["lld"]))


def test_other_arguments_named():
    s = make_scores()
    with pytest.raises(InputError, match="a: layer 30 is not scored"):
        layer_vs_layer(s, feature_set="hubert", a=30, b=12)
    with pytest.raises(InputError, match="layer: 30 is not scored"):
        element_contrast(s, feature_set="hubert", layer=30)
    with pytest.raises(InputError, match="elements: 'drums'"):
        element_contrast(s, feature_set="hubert", elements=("voice", "drums"))
    with pytest.raises(InputError, match="p_var: the scores have no 'p_fwer'"):
        centroid_layer(s, feature_set="hubert", p_var="p_fwer")
    er = xr.DataArray(np.zeros(8), dims="time")
    with pytest.raises(InputError, match="energy_ratio: expected a 1-d DataArray over 'stimulus'"):
        element_contrast(s, feature_set="hubert", energy_ratio=er)


def test_layer_names_ride_along_and_absent_names_are_fine():
    s = make_scores()
    names = ["classical"] + [f"L{i + 1:02d} block{i}" for i in range(13)]
    named = s.assign_coords(layer_name=("layer", names))
    prof = layer_profile(named, feature_set="hubert", element="voice", n_boot=100)
    assert prof["layer_name"].sel(layer=7).item() == "L08 block7"
    assert prof["best_layer_name"].sel(target="rating:arousal").item() == "L08 block7"
    bl = best_layer(named, feature_set="hubert", element="voice", n_boot=100)
    assert bl["layer_name"].sel(target="rating:arousal").item() == "L08 block7"
    dvc = deep_vs_classical(named, element="voice")
    assert dvc["best_layer_name"].sel(target="rating:arousal").item() == "L08 block7"
    a = dvc.sel(target="region:insula-lh")
    assert float(a["ci_low"]) < float(a["mean_difference"]) < float(a["ci_high"])
    mvf = middle_vs_final(named, feature_set="hubert", element="voice")
    assert mvf["layer_name"].sel(layer=12).item() == "L13 block12"
    summ = layer_summary(named, feature_set="hubert", element="voice", n_boot=100)
    a = summ.sel(target="rating:arousal")
    assert int(a["best_layer"]) == 7 and 6.5 < float(a["centroid"]) < 7.5 and float(a["p_best"]) < 0.05
    assert str(summ["centroid_reason"].sel(target="isc:null-rh").values).startswith("no layer beats its null")
    assert "best_layer_name" not in layer_summary(s, feature_set="hubert", element="voice", n_boot=50)


def test_declared_family_replaces_the_store_p():
    from xaffect.stats import fdr_bh

    s = make_scores()
    s["r_mean"] = s["r"].mean("fold")
    c = centroid_layer(s, feature_set="hubert", element="voice", family=("layer",), method="none", n_boot=50)
    c_fdr = centroid_layer(s, feature_set="hubert", element="voice", family=("layer",), n_boot=50)
    p = s["p"].sel(feature_set="hubert", element="voice", target="rating:arousal", layer=list(range(13)))
    assert int(c["n_layers_significant"].sel(target="rating:arousal")) == int((p < 0.05).sum())
    assert int(c_fdr["n_layers_significant"].sel(target="rating:arousal")) == int((fdr_bh(p.values) < 0.05).sum())
    assert "over layer" in c_fdr.attrs["p_var"]
    with pytest.raises(InputError, match="family: .*'null'"):
        centroid_layer(s, feature_set="hubert", element="voice", family=("layer",), method="fwer")
    from xaffect.analysis import recovered_effects
    rec = recovered_effects(s, family=("feature_set", "layer", "element"), method="fdr")
    assert {e["target"] for e in rec} == {"rating:arousal", "region:insula-lh"}


def test_levels_and_resamples_named():
    s = make_scores()
    with pytest.raises(InputError, match=r"ci: must be in \(0, 1\), got 95"):
        layer_profile(s, feature_set="hubert", ci=95)
    with pytest.raises(InputError, match="alpha: must be in"):
        centroid_layer(s, feature_set="hubert", alpha=0)
    with pytest.raises(InputError, match="n_boot: expected an integer >= 1"):
        best_layer(s, feature_set="hubert", n_boot=0)
    with pytest.raises(InputError, match="alternative: must be"):
        deep_vs_classical(s, alternative="bigger")
    with pytest.raises(InputError, match="alpha: must be in"):
        middle_vs_final(s, feature_set="hubert", element="voice", alpha=5)
