"""Ridge kernels: batched leave-one-group-out, float32 precision, the torch backend."""

import numpy as np
import pytest
import torch

from xaffect.encoding import _logo as L
from xaffect.encoding import _solvers as S
from xaffect.encoding._backend import Backend, resolve_backend
from xaffect.encoding._ridge import DEFAULT_ALPHAS

EPS32 = np.finfo(np.float32).eps


def _problem(n_groups=5, n_k=60, p=40, t=6, seed=0):
    rng = np.random.default_rng(seed)
    n = n_groups * n_k
    X = rng.standard_normal((n, p))
    X -= X.mean(0)
    Y = X @ (rng.standard_normal((p, t)) * 0.15) + rng.standard_normal((n, t))
    Y -= Y.mean(0)
    return X, Y, np.repeat(np.arange(n_groups), n_k)


def _refit_scores(X, Y, groups, alphas, scoring):
    """Reference: one ridge refit per left-out group, per alpha (intercept refitted)."""
    out = []
    for g in np.unique(groups):
        tr, te = groups != g, groups == g
        mx, my = X[tr].mean(0), Y[tr].mean(0)
        Xtr, Xte, Ytr = X[tr] - mx, X[te] - mx, Y[tr] - my
        row = []
        for a in alphas:
            B = np.linalg.solve(Xtr.T @ Xtr + a * np.eye(X.shape[1]), Xtr.T @ Ytr)
            row.append(S.score_columns(Y[te], (Xte @ B + my)[None], scoring)[0])
        out.append(row)
    return np.array(out)


@pytest.mark.parametrize("scoring", ["r", "neg_mse"])
@pytest.mark.parametrize("p", [40, 400])          # primal and dual decompositions
def test_batched_logo_equals_refit(scoring, p):
    X, Y, groups = _problem(p=p)
    alphas = DEFAULT_ALPHAS[::3]
    got = S.logo_scores(S.decompose(X), Y, groups, alphas, scoring=scoring)
    ref = _refit_scores(X, Y, groups, alphas, scoring)
    # float64 round-off of two different exact routes: ~ eps64 * cond, cond of
    # (X'X + alpha) at the smallest alpha is <= s_max / alpha ~ 1e8 here
    assert np.allclose(got, ref, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("route", ["solve", "factor"])
@pytest.mark.parametrize("scoring", ["r", "r2", "neg_mse"])
@pytest.mark.parametrize("p", [40, 400])
def test_float32_scores_within_roundoff_of_float64(p, scoring, route):
    X, Y, groups = _problem(p=p, t=20)
    alphas = DEFAULT_ALPHAS
    ref = S.logo_scores(S.decompose(X), Y, groups, alphas, scoring=scoring)
    got = S.logo_scores(S.decompose(X.astype(np.float32)), Y.astype(np.float32), groups, alphas,
                        scoring=scoring, route=route)
    assert got.dtype == np.float32
    # GEMM round-off ~ eps32 * sqrt(rank) relative (random-walk accumulation),
    # amplified by cond(I - H_kk) <= 1 / (1 - max leverage) <= 10 for these
    # designs, times a margin of 5: scores of O(1) agree to ~50 eps32 sqrt(rank)
    # at every alpha (the kernel avoids the cancellations that would otherwise
    # cost digits at the grid's ends; see logo_scores). The factor route adds
    # the float32 rounding of (I - H_kk)^-1 and its product, <= eps32 sqrt(n_k)
    # cond(I - H_kk) with n_k = 60 <= rank here: inside the same bound. neg_mse
    # is an O(var Y) = O(1) score here too.
    bound = EPS32 * np.sqrt(min(p, X.shape[0])) * 50
    assert np.abs(got - ref).max() < bound
    # alphas: the same wherever the float64 CV curve separates the winner
    cv64, cv32 = ref.mean(0), got.mean(0)
    best64, best32 = cv64.argmax(0), cv32.argmax(0)
    top2 = np.sort(cv64, axis=0)[-2:]
    clear = (top2[1] - top2[0]) > 10 * bound
    assert np.all(best64[clear] == best32[clear])


@pytest.mark.parametrize(("dtype", "route"), [(torch.float64, "auto"), (torch.float32, "auto"),
                                             (torch.float32, "factor")])
def test_torch_backend_matches_numpy(dtype, route):
    X, Y, groups = _problem(p=120)
    ref = S.logo_scores(S.decompose(X), Y, groups, DEFAULT_ALPHAS, scoring="r")
    dec = S.decompose(torch.as_tensor(X, dtype=dtype))
    got = S.logo_scores(dec, torch.as_tensor(Y, dtype=dtype), groups, DEFAULT_ALPHAS, scoring="r", route=route)
    assert isinstance(got, torch.Tensor) and got.dtype == dtype
    tol = 1e-10 if dtype == torch.float64 else EPS32 * np.sqrt(120) * 50
    assert np.abs(S.to_numpy(got) - ref).max() < tol
    if dtype == torch.float32:
        # the same route on numpy float32: the two libraries' float32 GEMMs
        # differ by their own round-off only (same bound, no float64 reference)
        np32 = S.logo_scores(S.decompose(X.astype(np.float32)), Y.astype(np.float32), groups, DEFAULT_ALPHAS,
                             scoring="r", route=route)
        assert np.abs(S.to_numpy(got) - np32).max() < tol
    coef = S.solve_coefs(dec, torch.as_tensor(Y, dtype=dtype), np.full(Y.shape[1], 10.0))
    ref_coef = np.linalg.solve(X.T @ X + 10 * np.eye(X.shape[1]), X.T @ Y)
    assert np.allclose(S.to_numpy(coef), ref_coef, rtol=1e-3 if dtype == torch.float32 else 1e-9, atol=1e-5)


def test_factor_route_falls_back_to_the_float64_solve_where_ill_conditioned(monkeypatch):
    # dual design (p > n) at small alpha: I - H_kk is nearly singular, so its
    # 1-norm condition number exceeds KAPPA_MAX and those alphas take the solve
    X, Y, groups = _problem(p=400, t=5)
    X32, Y32 = X.astype(np.float32), Y.astype(np.float32)
    dec = S.decompose(X32)
    solve = S.logo_scores(dec, Y32, groups, DEFAULT_ALPHAS, scoring="r2", route="solve")
    monkeypatch.setattr(L, "KAPPA_MAX", 0.0)           # nothing is well conditioned enough
    np.testing.assert_array_equal(S.logo_scores(dec, Y32, groups, DEFAULT_ALPHAS, scoring="r2", route="factor"),
                                  solve)
    monkeypatch.setattr(L, "KAPPA_MAX", np.inf)        # everything applied as a float32 factor
    forced = S.logo_scores(dec, Y32, groups, DEFAULT_ALPHAS, scoring="r2", route="factor")
    assert not np.array_equal(forced, solve)
    assert np.abs(forced - solve).max() < EPS32 * np.sqrt(400) * 50


def test_logo_routes_refuse_unknown_names():
    X, Y, groups = _problem(t=2)
    with pytest.raises(ValueError, match="route"):
        S.logo_scores(S.decompose(X), Y, groups, [1.0], route="lu")
    with pytest.raises(ValueError, match="scoring"):
        S.logo_scores(S.decompose(X), Y, groups, [1.0], scoring="mae")


def test_many_targets_take_the_factor_route_and_agree_with_float64():
    # enough targets that "auto" picks the float32 factor (n_k = 60, rank 40:
    # T > 1.33 n_k + rank); same alphas as float64 wherever the CV curve separates them
    X, Y, groups = _problem(p=40, t=200)
    X32, Y32 = X.astype(np.float32), Y.astype(np.float32)
    assert L._inverse_route_pays(60, 40, 200, True) and not L._inverse_route_pays(60, 40, 200, False)
    ref = S.logo_scores(S.decompose(X), Y, groups, DEFAULT_ALPHAS, scoring="r2")
    got = S.logo_scores(S.decompose(X32), Y32, groups, DEFAULT_ALPHAS, scoring="r2")
    bound = EPS32 * np.sqrt(40) * 50
    assert np.abs(got - ref).max() < bound
    cv64, cv32 = ref.mean(0), got.mean(0)
    top2 = np.sort(cv64, axis=0)[-2:]
    clear = (top2[1] - top2[0]) > 10 * bound
    assert clear.mean() > 0.5
    assert np.all(cv64.argmax(0)[clear] == cv32.argmax(0)[clear])


def test_resolve_backend_refuses_silent_changes():
    assert resolve_backend("numpy", dtype="float32") == Backend("numpy", "cpu", "float32")
    with pytest.raises(ValueError, match="float16"):
        resolve_backend("numpy", dtype="float16")
    with pytest.raises(ValueError, match="backend"):
        resolve_backend("jax")
    with pytest.raises(ValueError, match="device"):
        resolve_backend("numpy", device="cuda")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA device"):
            resolve_backend("torch", device="cuda")
    b = resolve_backend("torch", device="cpu", dtype="float32")
    t = b.asarray(np.ones((2, 3)))
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32
    assert b.describe()["backend"] == "torch" and "torch" in b.describe()


def test_grid_backends_precisions_and_target_batches_agree_and_are_recorded():
    from test_encoding_sim import ar1, feature_cube, target_array
    from xaffect.encoding import fit_grid

    S, T = 6, 60
    rng = np.random.default_rng(3)
    F = ar1(rng, (S * T, 2 * 8)).reshape(S * T, 2, 8)
    Y = np.stack([F[:, 1, :3].sum(1) + rng.standard_normal(S * T)] + [ar1(rng, (S * T,)) for _ in range(4)], 1)
    feats = {"deep": feature_cube(F[None], S, T)}
    tg = target_array(Y, [f"rating:t{i}" for i in range(5)], S, T)
    ref = fit_grid(feats, tg, n_perm=19, null="shift", progress=False)
    assert ref.attrs["compute_backend"]["dtype"] == "float64"
    for kw in (dict(n_targets_batch=2), dict(dtype="float32"), dict(backend="torch", dtype="float32"),
               dict(backend="torch", n_targets_batch=3)):
        ds = fit_grid(feats, tg, n_perm=19, null="shift", progress=False, **kw)
        assert ds.attrs["compute_backend"]["backend"] == kw.get("backend", "numpy")
        assert ds.attrs["compute_backend"]["dtype"] == kw.get("dtype", "float64")
        exact = kw.get("dtype", "float64") == "float64"
        tol = 1e-9 if exact else 1e-4       # float32: r of O(1) within ~50 eps32 sqrt(rank) plus the refit's round-off
        np.testing.assert_allclose(ds["r"].values, ref["r"].values, atol=tol)
        np.testing.assert_allclose(ds["null"].values, ref["null"].values, atol=tol)
        if exact:
            np.testing.assert_array_equal(ds["alpha"].values, ref["alpha"].values)
    with pytest.raises(ValueError, match="float16"):
        fit_grid(feats, tg, dtype="float16", progress=False)
