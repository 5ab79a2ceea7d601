"""Null surrogates and corrections against references (scipy, brute force)."""

import numpy as np
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


def test_fft_shift_null_equals_direct_surrogates(monkeypatch):
    import xaffect.encoding._nested as nested

    rng = np.random.default_rng(3)
    groups = np.repeat(np.arange(5), 50)
    X = rng.standard_normal((250, 80))
    Y = rng.standard_normal((250, 7)) + X[:, :1]
    tr, te = np.flatnonzero(groups != 2), np.flatnonzero(groups == 2)
    kw = dict(alphas=10.0 ** np.arange(-2, 4.0), n_perm=30)
    fast = nested.fit_outer_fold(X, Y, tr, te, groups, **kw)["r_null"]
    monkeypatch.setattr(nested, "_shift_null_fft", lambda *a, **k: None)
    direct = nested.fit_outer_fold(X, Y, tr, te, groups, **kw)["r_null"]
    np.testing.assert_allclose(fast, direct, atol=1e-12)
