"""Null surrogates and corrections against references (scipy, brute force)."""

import numpy as np
import pytest
from scipy import stats

from xaffect.encoding import circular_shift, fdr_bh, fwer_maxstat, permutation_p, phase_randomise
from xaffect.encoding._cv import blocked_kfold, leave_one_stimulus_out


def test_fdr_matches_scipy():
    rng = np.random.default_rng(0)
    p = rng.random((3, 40)) ** 2
    ref = np.stack([stats.false_discovery_control(row, method="bh") for row in p])
    np.testing.assert_allclose(fdr_bh(p, axis=1), ref, rtol=1e-12)
    q = p.copy()
    q[0, 3] = np.nan
    got = fdr_bh(q, axis=1)
    assert np.isnan(got[0, 3])
    np.testing.assert_allclose(np.delete(got[0], 3), stats.false_discovery_control(np.delete(q[0], 3)), rtol=1e-12)


def test_permutation_and_maxstat_p_brute_force():
    rng = np.random.default_rng(1)
    obs = rng.standard_normal((4, 5))
    null = rng.standard_normal((4, 5, 99))
    p = permutation_p(obs, null)
    for i in range(4):
        for j in range(5):
            assert p[i, j] == (1 + np.sum(null[i, j] >= obs[i, j])) / 100
    fw = fwer_maxstat(obs, null, family_axes=(0, 1))
    mx = null.max(axis=(0, 1))
    for i in range(4):
        for j in range(5):
            assert fw[i, j] == (1 + np.sum(mx >= obs[i, j])) / 100
    assert np.all(fw >= p)


def test_surrogates_stay_within_stimulus():
    rng = np.random.default_rng(2)
    groups = np.repeat([0, 1, 2], [30, 50, 41])
    Y = rng.standard_normal((121, 3))
    sh = circular_shift(Y, groups, np.random.default_rng(0))
    ph = phase_randomise(Y, groups, np.random.default_rng(0))
    for g in range(3):
        m = groups == g
        np.testing.assert_allclose(np.sort(sh[m], 0), np.sort(Y[m], 0))        # same values, same stimulus
        assert not np.allclose(sh[m], Y[m])
        np.testing.assert_allclose(np.abs(np.fft.rfft(ph[m], axis=0)), np.abs(np.fft.rfft(Y[m], axis=0)),
                                   rtol=1e-8, atol=1e-8)                        # power spectrum kept
        assert not np.allclose(ph[m], Y[m])


def test_folds():
    groups = np.repeat(["a", "b", "c"], 4)
    folds = leave_one_stimulus_out(groups)
    assert [list(te) for _, te in folds] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    bk = blocked_kfold(20, 4, gap=2)
    tr, te = bk[1]
    assert list(te) == [5, 6, 7, 8, 9] and not set(range(3, 12)) & set(tr)


@pytest.mark.parametrize("null", ["shift", "stimulus"])
@pytest.mark.parametrize("n_features", [6, 80])                  # low-rank route and hat-matrix route
def test_fast_nulls_equal_the_direct_surrogates(monkeypatch, null, n_features):
    """Every fast route (FFT / sufficient statistics) equals forming each surrogate and pushing it through."""
    import xaffect.encoding._nested as nested
    import xaffect.encoding._nulls as nulls

    rng = np.random.default_rng(3)
    sizes = [50, 46, 53, 50, 48, 51]
    groups = np.repeat(np.arange(len(sizes)), sizes)
    X = rng.standard_normal((groups.size, n_features))
    Y = np.cumsum(rng.standard_normal((groups.size, 7)), axis=0)
    Y[:, :3] = X[:, :3] @ rng.standard_normal((3, 3)) * 3 + rng.standard_normal((groups.size, 3))  # small alphas
    tr, te = np.flatnonzero(groups != 2), np.flatnonzero(groups == 2)
    kw = dict(alphas=10.0 ** np.arange(-2, 4.0), n_perm=40, null=null, seed=5)
    fast = nested.fit_outer_fold(X, Y, tr, te, groups, **kw)
    assert len(np.unique(fast["alpha"])) > 1                      # several alpha groups exercised
    assert nulls._loso_layout(groups, tr, te) is not None         # the fast route was taken
    other = None
    if null == "stimulus":                                         # the other way of forming the blocks
        cheaper = nulls._rank_space_cheaper
        monkeypatch.setattr(nulls, "_rank_space_cheaper", lambda *a: not cheaper(*a))
        other = nested.fit_outer_fold(X, Y, tr, te, groups, **kw)["r_null"]
    monkeypatch.setattr(nulls, "_loso_layout", lambda *a, **k: None)
    direct = nested.fit_outer_fold(X, Y, tr, te, groups, **kw)["r_null"]
    np.testing.assert_allclose(fast["r_null"], direct, rtol=0, atol=1e-10)
    if other is not None:
        np.testing.assert_allclose(other, direct, rtol=0, atol=1e-10)
    assert np.isfinite(direct).all() and direct.std() > 0.05


@pytest.mark.parametrize("n_features", [4, 60])                  # low-rank route and hat-matrix route
def test_shift_null_replays_the_fold_on_shifted_data(n_features):
    from xaffect.encoding._nested import fit_outer_fold
    from xaffect.surrogates import make_surrogates

    rng = np.random.default_rng(12)
    sizes = [40, 35, 44, 40, 38, 41]
    groups = np.repeat(np.arange(len(sizes)), sizes)
    X = rng.standard_normal((groups.size, n_features))
    Y = np.cumsum(rng.standard_normal((groups.size, 3)), axis=0)
    tr, te = np.flatnonzero(groups != 2), np.flatnonzero(groups == 2)
    out = fit_outer_fold(X, Y, tr, te, groups, alphas=[3.0], n_perm=6, null="shift", seed=4)
    for j in range(6):
        S_j = make_surrogates(Y, groups, 1, kind="shift", seed=4, start=j)[0]
        ref = fit_outer_fold(X, S_j, tr, te, groups, alphas=[3.0])["r"]
        np.testing.assert_allclose(out["r_null"][:, j], ref, atol=1e-9)


def test_shared_surrogates_shift_bounded_away_from_zero():
    from xaffect.surrogates import MIN_SHIFT_FRACTION, circular_shift_each, draw_shift, shift_draws

    rng = np.random.default_rng(3)
    lags = np.array([draw_shift(rng, 50) for _ in range(2000)])
    lo = int(np.ceil(MIN_SHIFT_FRACTION * 50))
    assert lags.min() == lo and lags.max() == 50 - lo                    # whole allowed range reached, no 0
    x = np.cumsum(rng.standard_normal((6, 40, 2)), axis=1)
    for _ in range(50):
        sh = circular_shift_each(x, rng)
        for s in range(6):
            k = [k for k in range(40) if np.allclose(np.roll(x[s], k, axis=0), sh[s])]
            assert len(k) == 1 and 4 <= k[0] <= 36
    d = shift_draws(np.repeat([0, 1], [30, 20]), 200, seed=1)
    assert d.shape == (200, 2) and (d[:, 0] >= 3).all() and (d[:, 1] >= 2).all()


def test_shared_phase_randomisation_each_keeps_spectrum_and_nans():
    from xaffect.surrogates import phase_randomise_each

    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 64, 2))
    ph = phase_randomise_each(x, np.random.default_rng(0))
    np.testing.assert_allclose(np.abs(np.fft.rfft(ph, axis=1)), np.abs(np.fft.rfft(x, axis=1)), atol=1e-9)
    assert not np.allclose(ph[0], ph[1]) and not np.allclose(ph, x)
    x[1, 5] = np.nan
    ph = phase_randomise_each(x, np.random.default_rng(0))
    assert np.isnan(ph[1, 5]).all() and np.isfinite(np.delete(ph[1], 5, axis=0)).all()


def test_stimulus_permutation_pairs_whole_series_and_refuses_too_few_stimuli():
    import pytest

    from xaffect.errors import InputError
    from xaffect.surrogates import make_surrogates, match_length, permutation_draws

    sizes = [30, 34, 30, 28, 30]
    groups = np.repeat(np.arange(5), sizes)
    Y = np.cumsum(np.random.default_rng(5).standard_normal((sum(sizes), 2)), axis=0)
    S = make_surrogates(Y, groups, 20, kind="stimulus", seed=3)
    draws = permutation_draws(groups, 20, seed=3)
    b = np.r_[0, np.cumsum(sizes)]
    for j in range(20):
        assert sorted(draws[j]) == list(range(5))
        for r in range(5):
            d = draws[j, r]
            np.testing.assert_array_equal(S[j, b[r]:b[r + 1]], match_length(Y[b[d]:b[d + 1]], sizes[r]))
    ext = match_length(np.arange(4.0)[:, None], 7)[:, 0]
    np.testing.assert_array_equal(ext, [0, 1, 2, 3, 3, 2, 1])              # mirror, continuous
    with pytest.raises(InputError, match=r"at least 5 stimuli.*\['a', 'b', 'c', 'd'\]"):
        make_surrogates(Y[:120], np.repeat(list("abcd"), 30), 3, kind="stimulus")
