"""Banded ridge: per-band penalties against scikit-learn, and planted unique variance."""

import warnings

import numpy as np
from sklearn.linear_model import Ridge

from xaffect.encoding import BandedRidgeCV, RidgeCV, band_unique_variance


def _data(seed=0, n=300, p_sig=4, p_noise=60):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, p_sig))
    B = rng.standard_normal((n, p_noise))
    Y = A @ rng.standard_normal((p_sig, 3)) + 1.5 * rng.standard_normal((n, 3))
    return np.hstack([A, B]), Y, [slice(0, p_sig), slice(p_sig, p_sig + p_noise)]


def test_per_band_penalty_equals_ridge_on_the_rescaled_design():
    X, Y, bands = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = BandedRidgeCV(bands, cv=5).fit(X, Y)
    for t in range(Y.shape[1]):
        la, lb = m.band_alphas_[:, t]
        # penalty la on band A and lb on band B == ridge(alpha=1) on columns scaled by 1/sqrt(l)
        scale = np.r_[np.full(4, 1 / np.sqrt(la)), np.full(60, 1 / np.sqrt(lb))]
        ref = Ridge(alpha=1.0).fit(X * scale, Y[:, t])
        np.testing.assert_allclose(m.coef_[:, t], ref.coef_ * scale, rtol=1e-5, atol=1e-8)
    # the noise band is penalised harder than the signal band
    assert np.all(m.band_alphas_[1] > m.band_alphas_[0])


def test_banded_beats_single_alpha_and_unique_variance_is_planted():
    X, Y, bands = _data(seed=1)
    train, test = np.arange(200), np.arange(200, 300)
    groups = np.repeat(np.arange(5), 60)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        single = RidgeCV().fit(X[train], Y[train], groups=groups[train]).score(X[test], Y[test])
        banded = BandedRidgeCV(bands).fit(X[train], Y[train], groups=groups[train]).score(X[test], Y[test])
        uv = band_unique_variance(X, Y, bands, train, test, groups=groups)
    assert banded > single
    assert np.all(uv["unique"][0] > 0.3)
    assert np.all(np.abs(uv["unique"][1]) < 0.05)
