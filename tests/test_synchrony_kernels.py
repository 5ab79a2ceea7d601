"""Array kernels of sliding-window ISC against brute force and references."""

import numpy as np
import pytest
from scipy.stats import false_discovery_control

from xaffect.synchrony import _kernels as K
from xaffect.synchrony import _stream

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


@pytest.mark.parametrize("method", ["loo", "pairwise"])
@pytest.mark.parametrize("hop", [50, 3])  # blocks of 50 samples (Gram path) or 1 sample (element-wise path)
def test_chunked_streaming_equals_brute_force_across_chunk_boundaries(x, monkeypatch, method, hop):
    """Tiny chunks: many windows straddle chunk boundaries; missing samples and float32 input too."""
    starts = np.arange(0, T - WIN + 1, hop)[:60] if hop == 3 else STARTS
    y = x.copy()
    y[2, 500:560, 1] = np.nan
    y[4, 130:135, :] = np.nan
    one_chunk = K.loo_isc(y, starts, WIN) if method == "loo" else K.pairwise_isc(y, starts, WIN)
    monkeypatch.setattr(_stream, "CHUNK_BYTES", 8 * S * R * 70)  # 70 samples a chunk: 30+ chunks
    assert _stream._chunk_len(y, 1) == 70
    for data in (y, y.astype(np.float32)):
        got = K.loo_isc(data, starts, WIN) if method == "loo" else K.pairwise_isc(data, starts, WIN)
        ref = np.asarray(data, dtype=np.float64)
        if method == "loo":
            want = np.stack([K.fisher_mean(K.loo_direct(ref[:, s:s + WIN]), axis=0) for s in starts])
        else:
            want = np.stack([[_pair_mean(ref[:, s:s + WIN, r]) for r in range(R)] for s in starts])
        np.testing.assert_allclose(got, want, atol=1e-10)
        if data.dtype == np.float64:
            np.testing.assert_allclose(got, one_chunk, atol=1e-12)
    if method == "loo":  # bootstrap draws in one pass equal draws one at a time
        counts = np.array([[2, 0, 1, 1, 2, 0], [1, 1, 1, 1, 1, 1], [0, 3, 0, 1, 1, 1]], dtype=float)
        many = K.loo_isc(x, starts, WIN, weights=counts)
        for d, c in enumerate(counts):
            np.testing.assert_allclose(many[d], K.loo_isc(x, starts, WIN, weights=c), atol=1e-12)


def test_circular_shifts_read_in_place_equal_the_rolled_data(x, monkeypatch):
    from xaffect.surrogates import circular_shift_each, draw_shift

    y = x.copy()
    y[1, 300:340, 2] = np.nan
    monkeypatch.setattr(_stream, "CHUNK_BYTES", 8 * S * R * 130)  # windows and the wrap point straddle chunks
    shifts = [draw_shift(np.random.default_rng(s), T) for s in range(S)]
    rolled = np.stack([np.roll(y[s], k, axis=0) for s, k in enumerate(shifts)])
    np.testing.assert_allclose(K.loo_isc(y, STARTS, WIN, shifts=shifts), K.loo_isc(rolled, STARTS, WIN), atol=1e-12)
    np.testing.assert_allclose(K.pairwise_r(y, STARTS, WIN, shifts=shifts), K.pairwise_r(rolled, STARTS, WIN),
                               atol=1e-12)
    # the same draws as the shared surrogate module's circular shift, bounded away from 0
    a, b = np.random.default_rng(7), np.random.default_rng(7)
    np.testing.assert_allclose(K.loo_isc(x, STARTS, WIN, shifts=[draw_shift(a, T) for _ in range(S)]),
                               K.loo_isc(circular_shift_each(x, b), STARTS, WIN), atol=1e-12)
    assert min(min(k, T - k) for k in shifts) >= 0.1 * T


def test_long_blocks_run_region_batch_by_region_batch(x, monkeypatch):
    counts = np.array([[2, 0, 1, 1, 2, 0], [1, 1, 1, 1, 1, 1]], dtype=float)
    want = (K.loo_isc(x, STARTS, WIN), K.pairwise_r(x, STARTS, WIN), K.loo_isc(x, STARTS, WIN, weights=counts))
    monkeypatch.setattr(_stream, "CHUNK_BYTES", 8 * (S + 1) * 50 * 3)  # one 50-sample block of 3 regions
    assert len(_stream._region_batches(x, STARTS, WIN)) == 2
    got = (K.loo_isc(x, STARTS, WIN), K.pairwise_r(x, STARTS, WIN), K.loo_isc(x, STARTS, WIN, weights=counts))
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, atol=1e-12)
    np.testing.assert_allclose(K.pairwise_isc(x, STARTS, WIN), K.fisher_mean(want[1], axis=0), atol=1e-12)


def _pair_mean(xw):
    """Fisher mean of the correlations of the complete subject pairs of one window (win, subject)."""
    ok = [s for s in range(xw.shape[0]) if not np.isnan(xw[s]).any()]
    rs = [np.corrcoef(xw[i], xw[j])[0, 1] for a, i in enumerate(ok) for j in ok[a + 1:]]
    return np.tanh(np.mean(np.arctanh(rs)))


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
