"""FIR delays that are not whole samples: whole path, interpolation error, planted 5 s at TR 2 s, nulls, bad input."""

import warnings

import numpy as np
import pytest
import xarray as xr
from scipy.special import gammainc

from test_encoding_sim import ar1, feature_cube, target_array
from xaffect.encoding import RidgeCV, fit_grid, make_delays
from xaffect.encoding._cv import delay_samples
from xaffect.encoding._nested import zscore_train
from xaffect.errors import ConfigError

TR = 2.0
S, T = 6, 60                       # 6 stimuli of 2 min at TR 2 s
N = S * T


def _old_make_delays(X, groups, lags):
    """make_delays as it was before fractional delays (whole lags only), for the bit-identity check."""
    if list(lags) == [0]:
        return X
    out = np.zeros((X.shape[0], X.shape[1] * len(lags)), dtype=X.dtype)
    b = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1], True])
    for a, e in zip(b[:-1], b[1:]):
        for j, lag in enumerate(lags):
            cols = slice(j * X.shape[1], (j + 1) * X.shape[1])
            if lag >= 0:
                if lag < e - a:
                    out[a + lag:e, cols] = X[a:e - lag]
            elif -lag < e - a:
                out[a:e + lag, cols] = X[a - lag:e]
    return out


def _hrf_events(rng, duration, n_units):
    """Callables f(t) (seconds): random boxcar events convolved with the SPM canonical HRF, exact at any t.

    The integral of gamma(6) - gamma(16)/6 is a difference of regularised
    incomplete gamma functions, so a boxcar's response is closed-form.
    """
    def step(t):
        t = np.clip(t, 0.0, None)
        return gammainc(6.0, t) - gammainc(16.0, t) / 6.0

    fs = []
    for _ in range(n_units):
        n = rng.poisson(duration / 3.0)
        on = np.sort(rng.uniform(0.0, duration, n))       # silence before the stimulus starts
        off, amp = on + rng.uniform(0.5, 4.0, n), rng.standard_normal(n)
        fs.append(lambda t, on=on, off=off, amp=amp: (amp * (step(t[:, None] - on) - step(t[:, None] - off))).sum(1))
    return fs


def _planted_hrf_study(seed, delay_s=5.0, noise=0.5, n_units=3):
    """Features at TR 2 s, a response to them exactly ``delay_s`` later (per stimulus) and its noiseless part."""
    rng = np.random.default_rng(seed)
    t = (np.arange(T) + 0.5) * TR
    X, y = [], []
    w = np.array([1.0, -0.7, 0.5])[:n_units]
    for _ in range(S):
        fs = _hrf_events(rng, T * TR, n_units)
        X.append(np.stack([f(t) for f in fs], 1))
        late = np.stack([f(t - delay_s) for f in fs], 1)   # zero before the start: no events there
        y.append(late @ w)
    X, clean = np.concatenate(X), np.concatenate(y)
    clean = clean / clean.std()
    return X, clean + noise * rng.standard_normal(N), clean


def test_whole_delays_are_bit_identical_to_the_shift_path_whatever_the_interpolation():
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(4), [30, 25, 41, 33])
    X = rng.standard_normal((groups.size, 5)).astype(np.float32)
    for lags in ([0], [3], [0, 1, 3], [-2, 0, 4], [2.0, 3.0]):
        ref = _old_make_delays(X, groups, [int(k) for k in lags])
        for method in ("cubic", "linear", "none"):
            got = make_delays(X, groups, lags, interpolation=method)
            assert got.dtype == ref.dtype
            np.testing.assert_array_equal(got, ref)
    assert delay_samples([4.0, 6.0], 1 / TR) == [2, 3] and all(type(k) is int for k in delay_samples([4, 6], 0.5))
    assert delay_samples([4.0, 5.0, 6.0], 1 / TR) == [2, 2.5, 3]
    # a grid with whole delays: every method gives the very same scores
    Xf, y, _ = _planted_hrf_study(1)
    feats = {"f": feature_cube(Xf[None, :, None], S, T, rate=1 / TR)}
    tg = target_array(y[:, None], ["rating:y"], S, T, rate=1 / TR)
    runs = [fit_grid(feats, tg, delays=[4.0, 6.0], delay_interpolation=m, n_perm=5, progress=False)
            for m in ("cubic", "linear", "none")]
    for ds in runs[1:]:
        for v in ("r", "alpha", "null"):
            np.testing.assert_array_equal(ds[v].values, runs[0][v].values)


def test_interpolation_error_on_a_sine_is_below_the_derived_bound():
    # f(t) = sin(w t + phi) sampled every h = 2 s, delayed by 5 s (2.5 samples) against the exact f(t - 5).
    # Piecewise-linear interpolation: |e| <= h^2 max|f''| / 8 = (h w)^2 / 8 (the classical bound).
    # Cubic spline, rows >= 3 samples from either end (end conditions decayed): Hall & Meyer (1976)
    # |e| <= 5/384 h^4 max|f''''| = 5/384 (h w)^4. Near the ends the not-a-knot spline is the cubic through
    # the first (last) four samples, whose error is <= max|f''''|/4! * max_s |s (s-1)(s-2)(s-3)| h^4 = (h w)^4 / 24.
    h, d, n = TR, 5.0, 60
    t = (np.arange(n) + 0.5) * h                            # bin centres; the stimulus starts at 0
    ok = t - d >= h / 2                                     # delayed time at or after the first sample
    interior = ok & (t - d >= 3.5 * h) & (t - d <= (n - 3.5) * h)
    worst = {"linear": 0.0, "cubic": 0.0}
    for f in (0.02, 0.05, 0.08, 0.1):
        w = 2 * np.pi * f
        for phi in (0.0, 0.7, 1.9, 4.0):
            x = np.sin(w * t + phi)[:, None]
            exact = np.sin(w * (t - d) + phi)
            got = {m: make_delays(x, np.zeros(n), [d / h], interpolation=m)[:, 0] for m in ("linear", "cubic")}
            lin, cub = np.abs(got["linear"] - exact), np.abs(got["cubic"] - exact)
            assert lin[ok].max() <= (h * w) ** 2 / 8 + 1e-12
            assert cub[interior].max() <= 5 / 384 * (h * w) ** 4
            assert cub[ok].max() <= (h * w) ** 4 / 24
            for m in ("linear", "cubic"):
                assert np.all(got[m][t - d < 0] == 0)       # before the stimulus's start: zero, as whole delays
                np.testing.assert_allclose(got[m][(t - d >= 0) & ~ok], x[0, 0], rtol=1e-12)   # first half bin
            if f <= 0.05:
                worst["linear"] = max(worst["linear"], lin[interior].max())
                worst["cubic"] = max(worst["cubic"], cub[interior].max())
    assert worst["cubic"] < worst["linear"] / 10           # why cubic is the default for the HRF band


def test_planted_5s_response_at_tr2_is_recovered_with_an_interpolated_delay():
    X, y, clean = _planted_hrf_study(2, noise=0.2)
    feats = {"f": feature_cube(X[None, :, None], S, T, rate=1 / TR)}
    tg = target_array(y[:, None], ["rating:y"], S, T, rate=1 / TR)
    stims = np.repeat(np.arange(S), T)
    r = {}
    for key, delays, method in (("4,6", [4.0, 6.0], "cubic"), ("4,5,6 linear", [4.0, 5.0, 6.0], "linear"),
                                ("4,5,6 cubic", [4.0, 5.0, 6.0], "cubic")):
        ds = fit_grid(feats, tg, delays=delays, delay_interpolation=method, progress=False)
        r[key] = ds["r"].values.ravel().astype(float)     # per held-out stimulus
    assert ds.attrs["delays"] == [4.0, 5.0, 6.0] and ds.attrs["delay_samples"] == [2.0, 2.5, 3.0]
    assert ds.attrs["delay_interpolation"] == "cubic" and "never another stimulus" in ds.attrs["delay_fill"]
    # against the oracle (r of the noiseless response in each held-out stimulus): the 5 s column closes most of
    # the gap that [4, 6] leaves (12 seeds: 51-94 % of it, 4-6 of 6 stimuli better; this seed 78 %, 6 of 6)
    oracle = np.array([np.corrcoef(y[stims == s], clean[stims == s])[0, 1] for s in range(S)])
    gap = {k: float(np.mean(oracle - v)) for k, v in r.items()}
    assert gap["4,6"] > 0.002 and gap["4,5,6 cubic"] < 0.5 * gap["4,6"], gap
    assert np.sum(r["4,5,6 cubic"] > r["4,6"]) >= 5
    # a linear 5 s column is the mean of the 4 s and 6 s ones: it adds nothing to them
    np.testing.assert_allclose(r["4,5,6 linear"], r["4,6"], atol=2e-3)
    # the delay-5 weights are the largest (a ridge on the whole data, standardised design)
    D = zscore_train(make_delays(X, stims, [2, 2.5, 3], interpolation="cubic"), np.arange(N))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        coef = RidgeCV().fit(D, y[:, None], groups=stims).coef_.reshape(-1)
    per_delay = np.abs(coef.reshape(3, -1)).sum(1)
    assert per_delay.argmax() == 1, per_delay


def test_fractional_delays_never_cross_a_stimulus_boundary():
    rng = np.random.default_rng(3)
    groups = np.repeat(np.arange(3), [20, 17, 25])
    X = rng.standard_normal((groups.size, 2))
    X[groups == 0] += 1e6                                   # a loud previous stimulus
    for method in ("cubic", "linear"):
        out = make_delays(X, groups, [2.5, -1.5], interpolation=method)
        for s, (a, b) in enumerate(((0, 20), (20, 37), (37, 62))):
            alone = make_delays(X[a:b], np.zeros(b - a), [2.5, -1.5], interpolation=method)
            np.testing.assert_array_equal(out[a:b], alone)  # a stimulus's rows depend on it alone
            assert np.all(out[a:a + 2, :2] == 0)            # t - 2.5 < -0.5: before the start, zero
            np.testing.assert_array_equal(out[a + 2, :2], X[a])  # t - 2.5 = -0.5: the start, the first bin
            assert np.all(out[a + 3:b, :2] != 0)
            assert np.all(out[b - 1:b, 2:] == 0)            # t + 1.5 > n - 0.5: past the end, zero
            np.testing.assert_allclose(out[b - 2, 2:], X[b - 1], rtol=1e-12)  # in the last half bin
        assert np.abs(out[20:, :]).max() < 100              # nothing of the loud stimulus leaks
    # linear at half a sample is the mean of the two whole neighbours
    lin = make_delays(X, groups, [2.5], interpolation="linear")
    whole = make_delays(X, groups, [2, 3])
    np.testing.assert_allclose(lin[23:37], (whole[23:37, :2] + whole[23:37, 2:]) / 2, rtol=1e-12)
    np.testing.assert_array_equal(lin[:2], 0)


@pytest.mark.parametrize("null", ["stimulus", "shift"])
def test_nulls_fast_paths_equal_their_replays_with_fractional_delays(null, monkeypatch):
    import xaffect.encoding._nested as nested
    from xaffect.surrogates import make_surrogates

    rng = np.random.default_rng(4)
    groups = np.repeat(np.arange(6), [40, 35, 44, 40, 38, 41])
    X = make_delays(ar1(rng, (groups.size, 12), phi=0.9), groups, [1.5, 2.5, 3.5], interpolation="cubic")
    Y = np.cumsum(rng.standard_normal((groups.size, 3)), axis=0)
    tr, te = np.flatnonzero(groups != 2), np.flatnonzero(groups == 2)
    kw = dict(alphas=[3.0, 300.0], n_perm=4, null=null, seed=4)
    fast = nested.fit_outer_fold(X, Y, tr, te, groups, **kw)
    for j in range(4):                                      # replay: the whole fold on surrogate data
        S_j = make_surrogates(Y, groups, 1, kind=null, seed=4, start=j)[0]
        for k in range(3):                                  # at the alpha the real data chose for that target
            ref = nested.fit_outer_fold(X, S_j[:, [k]], tr, te, groups, alphas=[fast["alpha"][k]])["r"]
            np.testing.assert_allclose(fast["r_null"][k, j], ref[0], atol=1e-9)
    import xaffect.encoding._nulls as nulls

    monkeypatch.setattr(nulls, "_loso_layout", lambda *a, **k: None)     # no fast path: every surrogate formed
    direct = nested.fit_outer_fold(X, Y, tr, te, groups, **kw)
    np.testing.assert_allclose(fast["r_null"], direct["r_null"], atol=1e-10)


@pytest.mark.parametrize("null", ["shift", "stimulus"])
def test_null_stays_calibrated_with_fractional_delays(null):
    # 5 seeds x 300 targets (benchmark run): shift .040-.060, phase .037-.060, stimulus .043-.073
    rng = np.random.default_rng(5)
    F = ar1(rng, (N, 3), phi=0.8)
    Y = ar1(rng, (N, 300), phi=0.5)
    ds = fit_grid({"f": feature_cube(F[None, :, None], S, T, rate=1 / TR)},
                  target_array(Y, [f"t{i}" for i in range(300)], S, T, rate=1 / TR),
                  delays=[4.0, 5.0, 6.0], n_perm=100, null=null, alphas=[1.0, 100.0], progress=False)
    assert ds.attrs["delay_samples"] == [2.0, 2.5, 3.0] and ds.attrs["null"] == null
    assert 0.02 <= np.mean(ds["p"].values < 0.05) <= 0.09


def test_covariates_and_pca_in_folds_get_the_fractional_delays():
    X, _, _ = _planted_hrf_study(6, n_units=1)
    rng = np.random.default_rng(6)
    visual = X                                              # a picture whose effect arrives 5 s later
    audio = visual + 0.5 * visual.std() * rng.standard_normal(visual.shape)
    stims = np.repeat(np.arange(S), T)
    y = make_delays(visual, stims, [2.5], interpolation="cubic")[:, 0]
    y = y / y.std() + 0.3 * rng.standard_normal(N)
    feats = {"audio": feature_cube(audio[None, :, None], S, T, rate=1 / TR)}
    tg = target_array(y[:, None], ["rating:y"], S, T, rate=1 / TR)
    cov = target_array(visual, ["luminance"], S, T, rate=1 / TR).rename(target="descriptor")
    plain = float(fit_grid(feats, tg, delays=[4.0, 5.0, 6.0], progress=False)["r_mean"].squeeze())
    ctrl = float(fit_grid(feats, tg, covariates=cov, delays=[4.0, 5.0, 6.0], progress=False)["r_mean"].squeeze())
    assert plain > 0.6 and abs(ctrl) < 0.2
    # PCA refitted inside the folds, then delayed by interpolation: the planted unit is found
    wide = np.concatenate([visual, rng.standard_normal((N, 3)) * 0.1], 1)
    ds = fit_grid({"w": feature_cube(wide[None, :, None], S, T, rate=1 / TR)}, tg, delays=[5.0], pca={"w": 2},
                  progress=False)
    assert ds.attrs["pca_in_fold"] == ["w:2"] and float(ds["r_mean"].squeeze()) > 0.8


def _uneven(values, sizes, names, rate):
    stim = np.repeat([f"s{i}" for i in range(len(sizes))], sizes)
    onset = np.concatenate([(np.arange(k) + 0.5) / rate for k in sizes])
    return xr.DataArray(values, dims=("time", "target"), attrs={"clock_rate": rate},
                        coords=dict(target=names, time=np.arange(len(stim)), stimulus=("time", stim),
                                    onset=("time", onset)))


def test_bad_delays_name_the_key_and_the_stimulus():
    rng = np.random.default_rng(7)
    sizes = [30, 30, 12, 30, 30]
    n = sum(sizes)
    tg = _uneven(rng.standard_normal((n, 1)), sizes, ["y"], 1 / TR)
    feat = _uneven(rng.standard_normal((n, 2)), sizes, ["a", "b"], 1 / TR).rename(target="unit")
    feats = {"f": feat.expand_dims(element=["original"], layer=[0]).transpose("element", "time", "layer", "unit")}
    cases = [([4.0, 23.0], r"delays: 23 s \(11.5 samples at 0.5 Hz\) leaves stimulus 's2' \(12 samples\) fewer "
                           r"than 2 delayed samples \(the delay reaches back before its start\)"),
             ([-61.0], r"delays: -61 s .* stimulus 's0' \(30 samples\) .* negative and reaches past its end"),
             ([4.0, float("nan")], r"delays: entry 1 is nan"),
             ([], r"delays: empty list"),
             ([5.0], None)]
    for delays, msg in cases:
        if msg is None:
            with pytest.raises(ConfigError, match=r"delays: 5.0 s is not a whole number of samples at 0.5 Hz "
                                                  r"\(set delay_interpolation"):
                fit_grid(feats, tg, delays=delays, delay_interpolation="none", progress=False)
            continue
        with pytest.raises(ConfigError, match=msg) as err:
            fit_grid(feats, tg, delays=delays, progress=False)
        assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match=r"delay_interpolation: must be one of"):
        fit_grid(feats, tg, delays=[5.0], delay_interpolation="sinc", progress=False)
    ds = fit_grid(feats, tg, delays=[-3.0, 5.0], progress=False)          # fine: 2.5 samples < 12
    assert ds.attrs["delay_samples"] == [-1.5, 2.5]
