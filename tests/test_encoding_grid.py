"""The ridge grid: planted effects, agreement with a per-fold RidgeCV, covariates, delays, nulls, bad input."""

import warnings

import numpy as np
import pytest

from test_encoding_sim import ar1, feature_cube, target_array
from xaffect.encoding import RidgeCV, compare, fit_grid, make_delays
from xaffect.encoding._nested import zscore_train
from xaffect.errors import InputError

S, T = 6, 60
N = S * T


def _layers(rng, n_layers=2, units=8):
    return ar1(rng, (N, n_layers * units)).reshape(N, n_layers, units)


def test_planted_layer_is_recovered_and_matches_per_fold_ridgecv():
    rng = np.random.default_rng(0)
    F = _layers(rng)
    y = F[:, 1, :3].sum(1) + rng.standard_normal(N)
    Y = np.stack([y, ar1(rng, (N,))], 1)
    feats = {"deep": feature_cube(F[None], S, T)}
    ds = fit_grid(feats, target_array(Y, ["rating:a", "rating:b"], S, T), n_perm=99, progress=False)
    r = ds["r_mean"].sel(feature_set="deep", element="original")
    assert float(r.sel(layer=1, target="rating:a")) > 0.7
    assert abs(float(r.sel(layer=0, target="rating:a"))) < 0.2
    assert float(ds["p"].sel(feature_set="deep", element="original", layer=1, target="rating:a")) <= 0.01
    # reference: the estimator, fold by fold, with training-only z-scoring
    stims = np.repeat([f"s{i}" for i in range(S)], T)
    for k, s in enumerate(dict.fromkeys(stims)):
        tr, te = np.flatnonzero(stims != s), np.flatnonzero(stims == s)
        D = zscore_train(F[:, 1].astype(np.float32).astype(float), tr)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = RidgeCV().fit(D[tr], Y[tr], groups=stims[tr])
        np.testing.assert_allclose(ds["alpha"].values[0, 1, 0, :, k], m.best_alphas_, rtol=1e-5)
        P = m.predict(D[te])
        ref = [np.corrcoef(P[:, j], Y[te, j])[0, 1] for j in range(2)]
        np.testing.assert_allclose(ds["r"].values[0, 1, 0, :, k], ref, rtol=1e-4, atol=1e-5)


def test_covariate_proxy_loses_its_score_independent_feature_keeps_it():
    rng = np.random.default_rng(1)
    visual = ar1(rng, (N, 1), phi=0.8)
    proxy = visual + 0.3 * rng.standard_normal((N, 1))
    indep = ar1(rng, (N, 1), phi=0.8)
    y_vis = visual[:, 0] + 0.5 * rng.standard_normal(N)
    y_ind = indep[:, 0] + 0.5 * rng.standard_normal(N)
    feats = {"proxy": feature_cube(proxy[None, :, None], S, T), "indep": feature_cube(indep[None, :, None], S, T)}
    tg = target_array(np.stack([y_vis, y_ind], 1), ["rating:vis", "rating:ind"], S, T)
    cov = target_array(visual, ["luminance"], S, T).rename(target="descriptor")
    plain = fit_grid(feats, tg, progress=False)["r_mean"].squeeze()
    ctrl = fit_grid(feats, tg, covariates=cov, progress=False)["r_mean"].squeeze()
    assert float(plain.sel(feature_set="proxy", target="rating:vis")) > 0.7
    assert float(ctrl.sel(feature_set="proxy", target="rating:vis")) < 0.35
    assert float(ctrl.sel(feature_set="indep", target="rating:ind")) > 0.8
    assert abs(float(ctrl.sel(feature_set="indep", target="rating:ind"))
               - float(plain.sel(feature_set="indep", target="rating:ind"))) < 0.05


def test_delays_recover_a_lagged_response_and_never_cross_stimuli():
    rng = np.random.default_rng(2)
    x = ar1(rng, (N, 2), phi=0.2)
    stims = np.repeat(np.arange(S), T)
    lagged = make_delays(x, stims, [3])
    y = lagged[:, 0] + 0.3 * rng.standard_normal(N)
    # the first 3 samples of every stimulus are zero: nothing leaks across a boundary
    assert np.all(lagged[stims != np.roll(stims, 3)] == 0)
    np.testing.assert_array_equal(lagged[3:T], x[:T - 3])
    feats = {"f": feature_cube(x[None, :, None], S, T)}
    tg = target_array(y[:, None], ["rating:y"], S, T)
    r0 = float(fit_grid(feats, tg, progress=False)["r_mean"].squeeze())
    r3 = float(fit_grid(feats, tg, delays=[3.0], progress=False)["r_mean"].squeeze())
    r_fir = float(fit_grid(feats, tg, delays=[2.0, 3.0, 4.0], progress=False)["r_mean"].squeeze())
    assert r0 < 0.3 < 0.9 < r3 and r_fir > 0.9


def test_null_calibration_and_corrections():
    rng = np.random.default_rng(3)
    F = _layers(rng, n_layers=1, units=4)
    Y = ar1(rng, (N, 600), phi=0.5)
    ds = fit_grid({"f": feature_cube(F[None], S, T)}, target_array(Y, [f"t{i}" for i in range(600)], S, T),
                  n_perm=100, null="shift", progress=False)
    p = ds["p"].values.ravel()
    assert 0.03 <= np.mean(p < 0.05) <= 0.07
    assert np.all(ds["p_fdr"].values >= ds["p"].values - 1e-12)
    assert np.mean(ds["p_fwer"].values < 0.05) < 0.01
    ph = fit_grid({"f": feature_cube(F[None], S, T)}, target_array(Y[:, :300], [f"t{i}" for i in range(300)], S, T),
                  n_perm=100, null="phase", progress=False)
    assert 0.02 <= np.mean(ph["p"].values < 0.05) <= 0.08


def test_compare_layers_and_elements():
    rng = np.random.default_rng(4)
    F = _layers(rng, n_layers=2, units=6)
    y = F[:, 1, :2].sum(1) + 0.5 * F[:, 0, 0] + rng.standard_normal(N)
    vals = np.stack([F, F[:, ::-1]])          # element "voice" has the layers swapped
    feats = {"deep": feature_cube(vals, S, T, elements=("voice", "soundtrack"))}
    ds = fit_grid(feats, target_array(y[:, None], ["rating:a"], S, T), progress=False)
    c = compare(ds, {"feature_set": "deep", "element": "voice", "layer": 1}, {"layer": 0}, target="rating:a")
    assert c["diff"] > 0.2 and c["p_t"] < 0.01 and c["ci_low"] > 0 and c["dz"] > 1 and c["n"] == S
    e = compare(ds, {"feature_set": "deep", "element": "voice", "layer": 1}, {"element": "soundtrack"},
                target="rating:a")
    assert e["diff"] > 0.2 and e["p_boot"] < 0.05
    with pytest.raises(InputError, match="layer=7"):
        compare(ds, {"feature_set": "deep", "element": "voice", "layer": 7}, {"layer": 0}, target="rating:a")


def test_bad_input_names_the_culprit():
    rng = np.random.default_rng(5)
    F = _layers(rng, n_layers=1, units=3)
    feats = {"deep": feature_cube(F[None], S, T)}
    Y = rng.standard_normal((N, 2))
    tg = target_array(Y, ["a", "b"], S, T)
    # different stimuli
    with pytest.raises(InputError, match="different stimuli"):
        fit_grid({"deep": feature_cube(F[None][:, :T * 5], 5, T)}, tg, progress=False)
    # different clocks (onsets)
    other = tg.assign_coords(onset=tg["onset"] * 2)
    with pytest.raises(InputError, match="different clocks"):
        fit_grid(feats, other, progress=False)
    # NaN in targets, named
    Yn = Y.copy()
    Yn[T * 2 + 5, 1] = np.nan
    with pytest.raises(InputError, match=r"target 'b' of stimulus 's2'"):
        fit_grid(feats, target_array(Yn, ["a", "b"], S, T), progress=False)
    # NaN in features, named
    Fn = F.copy()
    Fn[T * 4 + 1, 0, 2] = np.nan
    with pytest.raises(InputError, match=r"features 'deep' layer 0 element 'original'.*'s4'"):
        fit_grid({"deep": feature_cube(Fn[None], S, T)}, tg, progress=False)
    # one stimulus for leave-one-stimulus-out
    with pytest.raises(InputError, match="at least 2 stimuli"):
        fit_grid({"deep": feature_cube(F[None][:, :T], 1, T)}, target_array(Y[:T], ["a", "b"], 1, T),
                 progress=False)
    # constant target: defined behaviour (NaN scores, warning)
    Yc = Y.copy()
    Yc[:, 0] = 1.0
    with pytest.warns(UserWarning, match="constant"):
        ds = fit_grid(feats, target_array(Yc, ["a", "b"], S, T), progress=False)
    assert np.isnan(ds["r_mean"].sel(target="a")).all() and np.isfinite(ds["r_mean"].sel(target="b")).all()


def test_blocked_kfold_for_a_single_long_stimulus():
    rng = np.random.default_rng(6)
    x = ar1(rng, (600, 3), phi=0.3)
    y = x @ np.array([1.0, -1.0, 0.5]) + rng.standard_normal(600)
    ds = fit_grid({"f": feature_cube(x[None, :, None], 1, 600)}, target_array(y[:, None], ["rating:y"], 1, 600),
                  cv=5, delays=[0.0, 1.0], progress=False)
    assert list(ds["fold"].values) == [f"block{i}" for i in range(5)] and ds.attrs["gap"] == 1
    assert float(ds["r_mean"].squeeze()) > 0.7


def test_lagged_visual_confound_is_removed_with_lagged_covariates():
    # a picture drives the response 5 s later; the audio feature moves with the picture
    rng = np.random.default_rng(11)
    visual = ar1(rng, (N, 1), phi=0.3)
    audio = visual + 0.5 * rng.standard_normal((N, 1))
    stims = np.repeat(np.arange(S), T)
    y = make_delays(visual, stims, [5])[:, 0] + 0.5 * rng.standard_normal(N)
    feats = {"audio": feature_cube(audio[None, :, None], S, T)}
    tg = target_array(y[:, None], ["rating:y"], S, T)
    cov = target_array(visual, ["luminance"], S, T).rename(target="descriptor")
    plain = float(fit_grid(feats, tg, delays=[4.0, 5.0, 6.0], progress=False)["r_mean"].squeeze())
    ds = fit_grid(feats, tg, covariates=cov, delays=[4.0, 5.0, 6.0], progress=False)
    assert plain > 0.55                                      # the confound is real
    assert abs(float(ds["r_mean"].squeeze())) < 0.15         # and removed at its lag
    assert "same FIR delays" in ds.attrs["covariate_delays"]


def _fold_data(sizes, rng, n_features=4):
    groups = np.repeat(np.arange(len(sizes)), sizes)
    X = ar1(rng, (groups.size, n_features), phi=0.9)
    Y = np.cumsum(rng.standard_normal((groups.size, 3)), axis=0)
    return groups, X, Y


@pytest.mark.parametrize("n_features", [4, 60])                  # low-rank route and hat-matrix route
@pytest.mark.parametrize("sizes", [[40] * 6, [40, 35, 44, 40, 38, 41]])
def test_stimulus_null_replays_the_fold_on_permuted_data(sizes, n_features):
    from xaffect.encoding._nested import fit_outer_fold
    from xaffect.surrogates import make_surrogates

    groups, X, Y = _fold_data(sizes, np.random.default_rng(12), n_features)
    tr, te = np.flatnonzero(groups != 2), np.flatnonzero(groups == 2)
    out = fit_outer_fold(X, Y, tr, te, groups, alphas=[3.0], n_perm=6, null="stimulus", seed=4)
    for j in range(6):
        S_j = make_surrogates(Y, groups, 1, kind="stimulus", seed=4, start=j)[0]
        ref = fit_outer_fold(X, S_j, tr, te, groups, alphas=[3.0])["r"]
        np.testing.assert_allclose(out["r_null"][:, j], ref, atol=1e-9)


def test_inner_folds_carry_the_outer_gap():
    from xaffect.encoding._nested import _gapped_inner_folds

    n, gap = 100, 3
    labels = np.repeat(np.arange(5), 20)
    train = np.flatnonzero(labels != 2)
    folds = _gapped_inner_folds(labels[train], train, [0, 1, 3, 4], gap)
    for (itr, ite), g in zip(folds, [0, 1, 3, 4]):
        held = train[ite]
        assert set(held) == set(np.flatnonzero(labels == g))
        dist = np.abs(train[:, None] - held[None, :]).min(1)             # every training row to the held block
        np.testing.assert_array_equal(train[itr], train[dist > gap])
    rng = np.random.default_rng(13)
    x = ar1(rng, (n * 3, 2), phi=0.3)
    y = x[:, 0] + rng.standard_normal(n * 3)
    ds = fit_grid({"f": feature_cube(x[None, :, None], 1, n * 3)}, target_array(y[:, None], ["y"], 1, n * 3),
                  cv=4, delays=[0.0, 2.0], progress=False)
    assert ds.attrs["inner_gap"] == ds.attrs["gap"] == 2 and float(ds["r_mean"].squeeze()) > 0.5


def test_null_choice_and_bad_input_for_the_new_options():
    from xaffect.errors import ConfigError

    rng = np.random.default_rng(14)
    F = _layers(rng, n_layers=1, units=3)
    feats = {"deep": feature_cube(F[None], S, T)}
    Y = rng.standard_normal((N, 2))
    tg = target_array(Y, ["a", "b"], S, T)
    ds = fit_grid(feats, tg, n_perm=9, progress=False)
    assert ds.attrs["null"] == "stimulus" and ds.attrs["null_requested"] == "auto"
    assert ds["p_fwer"].attrs["family"] == "feature_set x layer x element x target"
    assert ds["p"].attrs["family"] == "single test"
    few = {"deep": feature_cube(F[None][:, :T * 3], 3, T)}
    with pytest.raises(ConfigError, match=r"null='stimulus': only 3 stimuli"):
        fit_grid(few, target_array(Y[:T * 3], ["a", "b"], 3, T), n_perm=9, null="stimulus", progress=False)
    with pytest.warns(UserWarning, match="auto -> circular shift because only 3 stimuli"):
        ds3 = fit_grid(few, target_array(Y[:T * 3], ["a", "b"], 3, T), n_perm=9, progress=False)
    assert ds3.attrs["null"] == "shift" and "not calibrated" in ds3.attrs["null_note"]
    with pytest.raises(ConfigError, match=r"delays: 1.5 s is not a whole number of samples"):
        fit_grid(feats, tg, delays=[1.5], delay_interpolation="none", progress=False)
    with pytest.raises(ConfigError, match=r"delays: 59 s .* stimulus 's0' \(60 samples\)"):
        fit_grid(feats, tg, delays=[0.0, 59.0], progress=False)
    with pytest.raises(ConfigError, match="detrend: must be"):
        fit_grid(feats, tg, detrend="quadratic", progress=False)
    Yc = Y.copy()
    Yc[T:2 * T, 1] = 3.0
    with pytest.warns(UserWarning, match=r"constant within a stimulus.*b@s1"):
        dc = fit_grid(feats, target_array(Yc, ["a", "b"], S, T), progress=False)
    assert dc.attrs["constant_within_stimulus"] == ["b@s1"]
    assert np.isnan(dc["r"].sel(target="b", fold="s1")).all() and np.isfinite(dc["r_mean"].sel(target="b")).all()


def test_detrend_removes_within_stimulus_drift_and_is_recorded():
    from xaffect.encoding._cv import detrend_within

    stims = np.repeat(["a", "b"], [50, 70])
    t = np.r_[np.arange(50), np.arange(70)].astype(float)
    X = np.stack([2 + 0.3 * t, np.r_[np.zeros(50), 5 + np.cos(np.arange(70) / 70 * np.pi)]], 1)
    lin = detrend_within(X, stims, "linear", rate=1.0)
    np.testing.assert_allclose(lin[:, 0], 0, atol=1e-9)
    cos = detrend_within(X, stims, "cosine", rate=1.0, high_pass=0.02)
    assert np.abs(cos[50:, 1]).max() < 0.05 * np.abs(X[50:, 1] - X[50:, 1].mean()).max()
    rng = np.random.default_rng(15)
    F = _layers(rng, n_layers=1, units=2)
    ds = fit_grid({"f": feature_cube(F[None], S, T)}, target_array(rng.standard_normal((N, 1)), ["a"], S, T),
                  detrend="linear", progress=False)
    assert ds.attrs["detrend"] == "linear"


def test_narrower_layers_padded_with_nan_are_fitted_on_their_own_units():
    # a VGGish-like cube: layer 1 has 5 units, NaN-padded to the 8 of layer 0
    rng = np.random.default_rng(4)
    F = _layers(rng)
    y = F[:, 1, :3].sum(1) + rng.standard_normal(N)
    tg = target_array(np.stack([y, ar1(rng, (N,))], 1), ["a", "b"], S, T)
    padded = F.copy()
    padded[:, 1, 5:] = np.nan
    got = fit_grid({"deep": feature_cube(padded[None], S, T)}, tg, progress=False)
    ref = fit_grid({"deep": feature_cube(F[None][:, :, 1:, :5], S, T, layers=[1])}, tg, progress=False)
    np.testing.assert_allclose(got["r"].sel(layer=1).values, ref["r"].sel(layer=1).values, atol=1e-12)
    assert np.isfinite(got["r"].sel(layer=0).values).all()
