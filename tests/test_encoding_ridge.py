"""RidgeCV and the solver kernels against himalaya, scikit-learn and brute force."""

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold

from xaffect.encoding import RidgeCV
from xaffect.encoding._solvers import decompose, fold_scores, logo_scores
from xaffect.errors import InputError

ALPHAS = 10.0 ** np.arange(-5, 5.5, 0.5)


def _data(n=240, p=30, t=12, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    B = rng.standard_normal((p, t)) * (rng.random(t) * 2)[None]
    Y = X @ B + rng.standard_normal((n, t)) * (1 + 10 * rng.random(t))
    return X, Y


@pytest.mark.parametrize("shape", [(240, 30), (60, 150)])
def test_matches_himalaya(shape):
    import himalaya.ridge as himalaya
    X, Y = _data(n=shape[0], p=shape[1])
    X, Y = X - X.mean(0), Y - Y.mean(0)
    folds = list(KFold(4).split(X))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = RidgeCV(ALPHAS, cv=folds, fit_intercept=False).fit(X, Y)
        ref = himalaya.RidgeCV(alphas=ALPHAS, cv=folds, fit_intercept=False,
                               solver_params=dict(warn=False)).fit(X, Y)
    np.testing.assert_allclose(ours.best_alphas_, np.asarray(ref.best_alphas_), rtol=1e-9)  # same grid point
    P, R = ours.predict(X), np.asarray(ref.predict(X))
    assert np.max(np.abs(P - R)) / np.max(np.abs(R)) < 1e-4


def test_matches_sklearn_ridge_at_chosen_alpha():
    X, Y = _data(seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = RidgeCV(ALPHAS, cv=5).fit(X, Y)
    for t in range(Y.shape[1]):
        ref = Ridge(alpha=m.best_alphas_[t]).fit(X, Y[:, t])
        np.testing.assert_allclose(m.coef_[:, t], ref.coef_, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(m.intercept_[t], ref.intercept_, rtol=1e-6, atol=1e-9)


def test_cv_scores_match_brute_force_refits():
    X, Y = _data(n=90, p=8, t=3, seed=2)
    folds = list(KFold(3).split(X))
    m = RidgeCV(ALPHAS[::4], cv=folds, scoring="neg_mse").fit(X, Y)
    brute = np.zeros((ALPHAS[::4].size, 3))
    for i, a in enumerate(ALPHAS[::4]):
        for tr, te in folds:
            pr = Ridge(alpha=a).fit(X[tr], Y[tr]).predict(X[te])
            brute[i] += -np.mean((Y[te] - pr) ** 2, axis=0) / len(folds)
    np.testing.assert_allclose(m.cv_scores_, brute, rtol=1e-7)


def _logo_roundoff_bound(Xc, dec, folds, alphas):
    """Float64 round-off bound on the leave-one-group-out identity, per (group, alpha).

    Forming the Gram matrix (inner length ``max(n, p)``), its eigendecomposition
    (size ``min(n, p)``) and the hat products perturb the hat matrix by about
    ``eps (n + p) ||X||_F^2 / s_min`` relative to its entries (``s_min``: the
    smallest non-zero eigenvalue of the centred Gram matrix); solving with
    ``I - H_kk`` multiplies that by ``1 / sigma_min(I - H_kk)``. With a small
    alpha and more features than samples the full fit nearly interpolates, so
    ``I - H_kk`` is a difference of nearly equal matrices (kappa ~ 1e5 here)
    and the achievable agreement depends on the BLAS kernel's summation order.

    Returns
    -------
    array of shape (n_groups, n_alphas)
        Bound on the relative error of the held-out residuals.
    """
    s = np.linalg.svd(Xc, compute_uv=False) ** 2
    kappa_gram = np.sum(Xc ** 2) / s[s > s.max() * 1e-10].min()
    W, G, n = dec.W, dec.g(alphas), Xc.shape[0]
    kappa_loo = np.empty((len(folds), len(alphas)))
    for gi, (_, test) in enumerate(folds):
        Wk = W[test]
        for ai in range(len(alphas)):
            I_minus_Hkk = np.eye(test.size) - (Wk * G[ai]) @ Wk.T - 1.0 / n
            kappa_loo[gi, ai] = 1.0 / np.linalg.svd(I_minus_Hkk, compute_uv=False).min()
    return np.finfo(np.float64).eps * sum(Xc.shape) * kappa_gram * kappa_loo


@pytest.mark.parametrize("scoring", ["neg_mse", "r", "r2"])
@pytest.mark.parametrize("shape", [(200, 12), (80, 200)])
def test_logo_identity_equals_refit_per_group(scoring, shape):
    X, Y = _data(n=shape[0], p=shape[1], t=5, seed=3)
    groups = np.repeat(np.arange(5), shape[0] // 5)
    folds = [(np.flatnonzero(groups != g), np.flatnonzero(groups == g)) for g in range(5)]
    ref = fold_scores(X, Y, folds, ALPHAS[4:], scoring=scoring)
    dec = decompose(X - X.mean(0))
    got = logo_scores(dec, Y - Y.mean(0), groups, ALPHAS[4:], scoring=scoring)
    # a relative residual error d moves -MSE by ~2d|MSE|, R^2 by ~2d(1 - R^2) and r by ~2d
    scale = {"neg_mse": np.abs(ref), "r2": np.abs(1.0 - ref), "r": np.ones_like(ref)}[scoring]
    bound = 2.0 * _logo_roundoff_bound(X - X.mean(0), dec, folds, ALPHAS[4:])[..., None] * scale
    assert bound.max() < 1e-3 * np.abs(ref).max()       # the bound itself is tight enough to mean something
    excess = np.abs(got - ref) / bound
    assert excess.max() <= 1.0, f"worst error {excess.max():.2g} x the round-off bound"


def test_groups_default_to_leave_one_group_out_and_sklearn_api():
    X, Y = _data(seed=4)
    groups = np.repeat(np.arange(4), 60)
    m = RidgeCV(ALPHAS).fit(X, Y, groups=groups)
    ref = RidgeCV(ALPHAS, cv=[(np.flatnonzero(groups != g), np.flatnonzero(groups == g))
                                    for g in range(4)]).fit(X, Y)
    np.testing.assert_array_equal(m.best_alphas_, ref.best_alphas_)
    c = clone(m).set_params(scoring="r")
    assert c.get_params()["scoring"] == "r" and np.array_equal(c.get_params()["alphas"], m.alphas)
    assert m.score(X, Y) > 0.1
    assert m.predict(X[:, :]).shape == Y.shape


def test_edge_alpha_warns_and_bad_input():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((100, 5))
    y = X[:, 0] * 10 + 0.01 * rng.standard_normal(100)
    with pytest.warns(UserWarning, match="edge of the grid"):
        RidgeCV([1.0, 10.0, 100.0], cv=4).fit(X, y)
    X[3, 2] = np.nan
    with pytest.raises(InputError, match="sample 3, column 2"):
        RidgeCV(cv=4).fit(X, y)
    with pytest.raises(InputError, match="alphas"):
        RidgeCV([-1.0], cv=4).fit(np.ones((10, 2)), np.ones(10))
