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
