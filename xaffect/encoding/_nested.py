"""One outer fold of nested cross-validated ridge: the unit of work of the grid.

For one cell (feature set, layer, element) and one held-out stimulus, all
targets share one decomposition of the training design: the inner
leave-one-group-out scores for every alpha, the refit at each target's alpha,
the held-out predictions and every null surrogate are formed from it.
"""

from __future__ import annotations

import numpy as np

from ._nulls import make_surrogates, shift_lags
from ._solvers import decompose, fold_scores, logo_scores, score_columns, select_alphas, solve_coefs
from ..store.clock import run_bounds

__all__ = ["fit_outer_fold", "zscore_train"]


def zscore_train(M: np.ndarray, train: np.ndarray) -> np.ndarray:
    """Standardise columns with the mean and std of the training rows only.

    Parameters
    ----------
    M : array of shape (n_samples, n_columns)
    train : index array

    Returns
    -------
    array of shape (n_samples, n_columns), float64; constant columns become 0.
    """
    M = np.asarray(M, dtype=np.float64)
    mu = M[train].mean(0)
    sd = M[train].std(0)
    sd[sd == 0] = 1.0
    out = (M - mu) / sd
    out[:, M[train].std(0) == 0] = 0.0
    return out


def _inner_method(n: int, p: int, sizes: np.ndarray, n_alphas: int, n_targets: int) -> str:
    """Cheaper inner-CV route by a flop count: hat-matrix LOGO or one decomposition per group."""
    r = min(n, p)
    logo = sum(n_alphas * (k * k * r + k * r * n_targets + k ** 3 / 3 + k * k * n_targets) for k in sizes)
    refit = sum(10 * min(n - k, p) ** 3 + (n - k) * p * min(n - k, p) + n_alphas * k * r * n_targets
                for k in sizes)
    return "logo" if logo <= refit else "refit"


def fit_outer_fold(X: np.ndarray, Y: np.ndarray, train: np.ndarray, test: np.ndarray, inner: np.ndarray, *,
                   alphas: np.ndarray, covariates: np.ndarray | None = None, scoring: str = "neg_mse",
                   n_perm: int = 0, null: str = "shift", seed: int = 0, perm_batch: int = 50,
                   method: str = "auto") -> dict[str, np.ndarray]:
    """Fit one outer fold of nested ridge for all targets at once.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        Features (already delayed) of all samples.
    Y : array of shape (n_samples, n_targets)
    train, test : index arrays
        Outer split; nothing of ``test`` is used to fit anything.
    inner : array of shape (n_samples,)
        Inner group label (stimulus or block); inner folds leave one
        training group out.
    alphas : array of shape (n_alphas,)
    covariates : array of shape (n_samples, n_covariates), optional
        Regressors used in training and set to their training mean at
        prediction; the features are first residualised on them (least
        squares on the training rows), so a feature that only proxies a
        covariate keeps nothing to predict with.
    scoring : {"neg_mse", "r", "r2"}
        Inner-CV criterion for the per-target alpha.
    n_perm : int
        Null surrogates of the training targets, pushed through the same
        decomposition at each target's alpha.
    null : {"shift", "phase"}
    seed : int
    method : {"auto", "logo", "refit"}
        Inner-CV route (identical results; "auto" picks the cheaper).

    Returns
    -------
    dict
        ``r``, ``r2``, ``alpha``, ``cv_score`` of shape (n_targets,),
        ``r_null`` of shape (n_targets, n_perm).
    """
    alphas = np.asarray(alphas, dtype=np.float64)
    D = zscore_train(X, train)
    n_feat = D.shape[1]
    if covariates is not None:
        Cz = zscore_train(covariates, train)
        # features are residualised on the covariates (fit on training rows):
        # what a feature shares with a covariate goes to the covariate, which
        # is then held at its training mean at prediction
        beta = np.linalg.lstsq(Cz[train], D[train], rcond=None)[0]
        D = zscore_train(D - Cz @ beta, train)
        D = np.concatenate([D, Cz], axis=1)
    Y = np.asarray(Y, dtype=np.float64)
    ymu = Y[train].mean(0)
    Yc = Y[train] - ymu
    Dtr = D[train]
    Dte = D[test].copy()
    Dte[:, n_feat:] = 0.0                 # covariates at their training mean
    groups = np.asarray(inner)[train]
    dec = decompose(Dtr)

    labels, sizes = np.unique(groups, return_counts=True)
    if labels.size < 2:
        raise ValueError("inner cross-validation needs at least 2 training groups")
    if method == "auto":
        method = _inner_method(Dtr.shape[0], Dtr.shape[1], sizes, alphas.size, Y.shape[1])
    if method == "logo":
        scores = logo_scores(dec, Yc, groups, alphas, scoring=scoring)
    else:
        folds = [(np.flatnonzero(groups != g), np.flatnonzero(groups == g)) for g in labels]
        scores = fold_scores(Dtr, Yc, folds, alphas, scoring=scoring)
    cv = scores.mean(0)                                   # (n_alphas, n_targets)
    best = select_alphas(cv, alphas)
    alpha_t = alphas[best]
    coef = solve_coefs(dec, Yc, alpha_t)
    pred = Dte @ coef + ymu
    Yte = Y[test]
    out = {
        "r": score_columns(Yte, pred[None], "r")[0],
        "r2": score_columns(Yte, pred[None], "r2")[0],
        "alpha": alpha_t,
        "cv_score": cv[best, np.arange(cv.shape[1])],
        "r_null": np.full((Y.shape[1], n_perm), np.nan),
    }
    if n_perm:
        out["r_null"] = _null_scores(dec, Dte, Y, ymu, train, test, np.asarray(inner), best, alphas,
                                     n_perm=n_perm, null=null, seed=seed, batch=perm_batch)
    return out


def _null_scores(dec, Dte, Y, ymu, train, test, inner, best, alphas, *, n_perm, null, seed, batch):
    """Held-out r of models fit to surrogate targets, shape (n_targets, n_perm).

    Surrogate ``j`` shifts (or phase-randomises) every stimulus of the *whole*
    target matrix with draws that depend only on ``(seed, j)``, so it is the
    same surrogate in every fold and every cell: the null replays the whole
    cross-validation on a surrogate data set (training and held-out parts
    alike), which keeps the dependence between folds that the fold-mean r
    has. Each surrogate is pushed through this fold's decomposition at each
    target's chosen alpha -- no refit.
    """
    A = dec.test_factor(Dte)                              # (n_test, rank)
    W = dec.W                                             # (n_train, rank)
    n_te, rank = A.shape
    n_tr = W.shape[0]
    # route by flop count: a (n_test, n_train) hat per alpha, or the reduced space W'S
    reduced = rank * (n_tr + n_te) < n_te * n_tr
    out = np.empty((Y.shape[1], n_perm))
    groups_a = {ai: np.flatnonzero(best == ai) for ai in np.unique(best)}
    hats = {}
    if not reduced:
        for ai in groups_a:
            hats[ai] = (A * (1.0 / (dec.s + alphas[ai]))) @ W.T          # (n_test, n_train)
    if null == "shift" and not reduced:
        fast = _shift_null_fft(hats, groups_a, Y, ymu, train, test, inner, n_perm=n_perm, seed=seed)
        if fast is not None:
            return fast
    for start in range(0, n_perm, batch):
        nb = min(batch, n_perm - start)
        S = make_surrogates(Y, inner, nb, kind=null, seed=seed, start=start)   # (nb, n_samples, T)
        Str = S[:, train] - ymu
        Ste = S[:, test]
        if reduced:
            Z = np.einsum("jr,bjt->brt", W, Str, optimize=True)                # (nb, rank, T)
        for ai, idx in groups_a.items():
            if reduced:
                P = np.einsum("ir,brt->bit", A * (1.0 / (dec.s + alphas[ai])), Z[:, :, idx], optimize=True)
            else:
                Sk = Str[:, :, idx].transpose(1, 0, 2).reshape(n_tr, -1)        # (n_train, nb*k)
                P = (hats[ai] @ Sk).reshape(n_te, nb, idx.size).transpose(1, 0, 2)   # (nb, n_test, k)
            out[idx, start:start + nb] = _r_batch(Ste[:, :, idx], P).T
    return out


def _shift_null_fft(hats, groups_a, Y, ymu, train, test, inner, *, n_perm, seed):
    """Circular-shift nulls for every lag at once by FFT cross-correlation.

    For a training stimulus ``s`` (rows ``c_s``), ``H[:, c_s] @ roll(Y_s, k)``
    for all lags ``k`` is a circular cross-correlation along time, so every
    surrogate's held-out prediction is a sum over training stimuli of one
    precomputed slice each. Returns None when a training stimulus is only
    partly in ``train`` (blocked folds with a gap), where the direct route is used.
    """
    runs = run_bounds(inner)
    spans = list(zip(runs[:-1], runs[1:]))
    lags = shift_lags(inner, n_perm, seed=seed)                        # (n_perm, n_runs)
    in_train = np.zeros(inner.size, bool)
    in_train[train] = True
    pos = np.full(inner.size, -1)
    pos[train] = np.arange(train.size)
    test_set = set(test.tolist())
    out = np.empty((Y.shape[1], n_perm))
    test_run = [r for r, (a, b) in enumerate(spans) if a in test_set]
    if len(test_run) != 1 or (spans[test_run[0]][1] - spans[test_run[0]][0]) != test.size:
        return None
    ta, tb = spans[test_run[0]]
    tr_runs = [r for r, (a, b) in enumerate(spans) if r != test_run[0]]
    for r in tr_runs:
        a, b = spans[r]
        if not in_train[a:b].all():
            return None
    n_te = tb - ta
    k_te = lags[:, test_run[0]]
    te_idx = (np.arange(n_te)[None, :] - k_te[:, None]) % n_te            # rolled[m] = y[m - k]
    for ai, idx in groups_a.items():
        H = hats[ai]
        P = np.zeros((n_perm, n_te, idx.size))
        for r in tr_runs:
            a, b = spans[r]
            cols = pos[a:b]
            n_s = b - a
            Ys = Y[a:b][:, idx] - ymu[idx]
            FH = np.fft.rfft(H[:, cols], axis=1)                            # (n_te, f)
            FY = np.fft.rfft(Ys, axis=0)                                    # (f, k)
            # C[:, k, t] = sum_m H[:, m] Ys[(m - k) mod n_s, t]
            C = np.fft.irfft(FH[:, :, None] * np.conj(FY)[None, :, :], n=n_s, axis=1)   # (n_te, n_s, k)
            P += C[:, lags[:, r], :].transpose(1, 0, 2)
        Yte = Y[ta:tb][:, idx][te_idx]                                      # (n_perm, n_te, k)
        out[idx] = _r_batch(Yte, P).T
    return out


def _r_batch(Yt: np.ndarray, P: np.ndarray) -> np.ndarray:
    """Pearson r per (surrogate, target) of arrays of shape (nb, n_test, k)."""
    Yt = Yt - Yt.mean(1, keepdims=True)
    P = P - P.mean(1, keepdims=True)
    den = np.sqrt((Yt ** 2).sum(1) * (P ** 2).sum(1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, (Yt * P).sum(1) / den, 0.0)
