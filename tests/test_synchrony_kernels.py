"""Array kernels of sliding-window ISC against brute force and references."""

import numpy as np
import pytest
from scipy.stats import false_discovery_control

from xaffect.synchrony import _kernels as K

S, T, R, WIN = 6, 2400, 4, 200
STARTS = np.arange(0, T - WIN + 1, 50)


@pytest.fixture(scope="module")
def x():
    rng = np.random.default_rng(0)
    shared = rng.standard_normal((T, R))
    return 0.6 * shared[None] + rng.standard_normal((S, T, R)) + 3.0  # a DC offset tests the centring


def _brute_loo(x, min_subjects=3):
    """Per window: each usable subject vs the mean of the other usable ones (np.corrcoef)."""
    out = np.full((STARTS.size, x.shape[2]), np.nan)
    for w, s0 in enumerate(STARTS):
        xw = x[:, s0:s0 + WIN]
        for r in range(x.shape[2]):
            ok = [s for s in range(x.shape[0]) if not np.isnan(xw[s, :, r]).any()]
            if len(ok) < min_subjects:
                continue
            rs = []
            for s in ok:
                others = np.mean([xw[t, :, r] for t in ok if t != s], axis=0)
                if np.ptp(xw[s, :, r]) == 0 or np.ptp(others) == 0:
                    continue
                rs.append(np.corrcoef(xw[s, :, r], others)[0, 1])
            out[w, r] = np.tanh(np.mean(np.arctanh(rs))) if rs else np.nan
    return out


def _brute_pairwise(x):
    out = np.empty((STARTS.size, x.shape[2]))
    for w, s0 in enumerate(STARTS):
        xw = x[:, s0:s0 + WIN]
        for r in range(x.shape[2]):
            rs = [np.corrcoef(xw[i, :, r], xw[j, :, r])[0, 1]
                  for i in range(x.shape[0]) for j in range(i + 1, x.shape[0])
                  if not (np.isnan(xw[i, :, r]).any() or np.isnan(xw[j, :, r]).any())]
            out[w, r] = np.tanh(np.mean(np.arctanh(rs)))
    return out


def test_loo_matches_brute_force(x):
    np.testing.assert_allclose(K.loo_isc(x, STARTS, WIN), _brute_loo(x), atol=1e-10)


def test_pairwise_matches_brute_force(x):
    np.testing.assert_allclose(K.pairwise_isc(x, STARTS, WIN), _brute_pairwise(x), atol=1e-10)


def test_missing_samples_leave_the_subject_out_of_those_windows(x):
    y = x.copy()
    y[2, 500:560, 1] = np.nan
    y[4, 1500:1510, :] = np.nan
    got = K.loo_isc(y, STARTS, WIN)
    np.testing.assert_allclose(got, _brute_loo(y), atol=1e-10)
    # windows without missing samples are unchanged
    clean = ~np.isnan(y[:, :, 1]).any(axis=0)
    full = np.array([clean[s:s + WIN].all() for s in STARTS])
    np.testing.assert_allclose(got[full, 1], K.loo_isc(x, STARTS, WIN)[full, 1], atol=1e-12)
    np.testing.assert_allclose(K.pairwise_isc(y, STARTS, WIN), _brute_pairwise(y), atol=1e-10)


def test_too_few_usable_subjects_gives_nan(x):
    y = x[:4].copy()
    y[0, 0:300, 0] = np.nan
    y[1, 0:300, 0] = np.nan  # two usable subjects left in the first windows of region 0
    got = K.loo_isc(y, STARTS, WIN)
    assert np.isnan(got[0, 0]) and np.isfinite(got[0, 1]) and np.isfinite(got[-1, 0])


def test_constant_window_gives_nan_for_that_subject(x):
    y = x.copy()
    y[3, 0:400, 0] = 7.0
    got = K.loo_isc(y, STARTS, WIN)
    np.testing.assert_allclose(got, _brute_loo(y), atol=1e-10)
    y[:, 0:400, 0] = 1.5  # every subject constant: no correlation defined
    got = K.loo_isc(y, STARTS, WIN)
    assert np.isnan(got[:5, 0]).all() and np.isfinite(got[:5, 1]).all()


def test_bootstrap_weights_equal_duplicated_subjects_without_self_pairs(x):
    counts = np.array([2, 0, 1, 1, 2, 0], dtype=float)
    got = K.loo_isc(x, STARTS, WIN, weights=counts)
    idx = np.repeat(np.arange(S), counts.astype(int))
    xs = x[idx]
    want = np.empty_like(got)
    for w, s0 in enumerate(STARTS):
        xw = xs[:, s0:s0 + WIN]
        rs = [[np.corrcoef(xw[k, :, r], xw[idx != idx[k]].mean(0)[:, r])[0, 1] for r in range(R)]
              for k in range(idx.size)]
        want[w] = np.tanh(np.mean(np.arctanh(rs), axis=0))
    np.testing.assert_allclose(got, want, atol=1e-10)
    # pairwise: pair weights c_i c_j, copies of one subject never paired
    pr = K.pairwise_r(x, STARTS, WIN)
    got_p = K.fisher_mean(pr, axis=0, weights=K.pair_weights(counts))
    want_p = np.empty_like(got_p)
    for w, s0 in enumerate(STARTS):
        xw = xs[:, s0:s0 + WIN]
        rs = [[np.corrcoef(xw[a, :, r], xw[b, :, r])[0, 1] for r in range(R)]
              for a in range(idx.size) for b in range(a + 1, idx.size) if idx[a] != idx[b]]
        want_p[w] = np.tanh(np.mean(np.arctanh(rs), axis=0))
    np.testing.assert_allclose(got_p, want_p, atol=1e-10)


def test_fdr_matches_scipy():
    rng = np.random.default_rng(3)
    p = rng.uniform(size=(7, 30)) ** 2
    np.testing.assert_allclose(K.fdr_bh(p, axis=1), np.stack([false_discovery_control(r) for r in p]), atol=1e-12)
    p[0, :5] = np.nan
    np.testing.assert_allclose(K.fdr_bh(p, axis=1)[0, 5:], false_discovery_control(p[0, 5:]), atol=1e-12)
    assert np.isnan(K.fdr_bh(p, axis=1)[0, :5]).all()


def test_surrogates_keep_what_they_should(x):
    rng = np.random.default_rng(5)
    ph = K.phase_randomize(x, rng)
    amp = np.abs(np.fft.rfft(x - x.mean(1, keepdims=True), axis=1))
    np.testing.assert_allclose(np.abs(np.fft.rfft(ph - ph.mean(1, keepdims=True), axis=1)), amp, atol=1e-8)
    np.testing.assert_allclose(ph.mean(1), x.mean(1), atol=1e-10)
    # same phases for every region of a subject: cross-region correlation kept
    c0 = np.corrcoef(x[0, :, 0], x[0, :, 1])[0, 1]
    assert abs(np.corrcoef(ph[0, :, 0], ph[0, :, 1])[0, 1] - c0) < 0.15
    sh = K.circular_shift(x, rng)
    for s in range(S):
        lag = next(k for k in range(T) if np.allclose(np.roll(x[s], k, axis=0)[:5], sh[s, :5]))
        np.testing.assert_array_equal(np.roll(x[s], lag, axis=0), sh[s])


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=25, deadline=None)
@given(n_sub=st.integers(3, 6), win=st.integers(3, 40), hop=st.integers(1, 25), extra=st.integers(0, 30),
       seed=st.integers(0, 2**16))
def test_running_sums_equal_direct_windows_for_any_window_and_step(n_sub, win, hop, extra, seed):
    rng = np.random.default_rng(seed)
    T = win + 3 * hop + extra
    x = rng.standard_normal((n_sub, T, 2)) + rng.uniform(-50, 50)
    starts = np.arange(0, T - win + 1, hop)
    want = np.stack([K.fisher_mean(K.loo_direct(x[:, s:s + win]), axis=0) for s in starts])
    np.testing.assert_allclose(K.loo_isc(x, starts, win), want, atol=1e-8)
