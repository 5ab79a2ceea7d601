"""Ridge kernels on arrays: one decomposition per training set, all alphas and targets.

Every kernel works in float64 on plain numpy arrays. A training design is
decomposed once (:func:`decompose`): an eigendecomposition of ``X.T @ X``
(primal, when features do not outnumber samples) or of ``X @ X.T`` (dual,
otherwise). Both are written as a hat factor ``W`` with per-alpha weights
``g(alpha)`` so that the training hat matrix is ``W diag(g) W.T`` and every
prediction for every alpha is formed in the reduced space.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.linalg import cho_factor, cho_solve

__all__ = ["decompose", "predict_path", "solve_coefs", "score_columns", "select_alphas",
           "logo_scores", "fold_scores"]


class Decomposition:
    """Eigendecomposition of one (centred) training design.

    Attributes
    ----------
    kind : {"primal", "dual"}
    s : array of shape (rank,)
        Eigenvalues (clipped at 0).
    V : array of shape (n_features, rank) or (n_samples, rank)
        Eigenvectors of ``X.T X`` (primal) or ``X X.T`` (dual).
    X : array of shape (n_samples, n_features)
        The training design itself.
    """

    def __init__(self, X: np.ndarray):
        X = np.asarray(X, dtype=np.float64)
        self.X = X
        n, p = X.shape
        if p <= n:
            self.kind = "primal"
            s, V = np.linalg.eigh(X.T @ X)
        else:
            self.kind = "dual"
            s, V = np.linalg.eigh(X @ X.T)
        self.s = np.clip(s, 0.0, None)
        self.V = V
        self._W = None

    @property
    def W(self) -> np.ndarray:
        """Hat factor of shape (n_samples, rank): training hat = ``W diag(g) W.T``."""
        if self._W is None:
            self._W = self.X @ self.V if self.kind == "primal" else self.V
        return self._W

    def g(self, alphas: np.ndarray) -> np.ndarray:
        """Hat weights, array of shape (n_alphas, rank)."""
        a = np.asarray(alphas, dtype=np.float64)[:, None]
        if self.kind == "primal":
            return 1.0 / (self.s[None, :] + a)
        return self.s[None, :] / (self.s[None, :] + a)

    def test_factor(self, Xte: np.ndarray) -> np.ndarray:
        """``A`` of shape (n_test, rank) with test predictions ``A diag(h) W.T Y``.

        ``h = 1/(s+alpha)`` in both forms: primal ``A = Xte V``; dual
        ``A = Xte X.T V``.
        """
        Xte = np.asarray(Xte, dtype=np.float64)
        if self.kind == "primal":
            return Xte @ self.V
        return (Xte @ self.X.T) @ self.V

    def h(self, alphas: np.ndarray) -> np.ndarray:
        """Test weights ``1/(s+alpha)``, array of shape (n_alphas, rank)."""
        a = np.asarray(alphas, dtype=np.float64)[:, None]
        return 1.0 / (self.s[None, :] + a)


def decompose(X: np.ndarray) -> Decomposition:
    """Decompose a training design once for all alphas and targets.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)

    Returns
    -------
    Decomposition
    """
    return Decomposition(X)


def predict_path(dec: Decomposition, Y: np.ndarray, Xte: np.ndarray, alphas: Sequence[float]) -> np.ndarray:
    """Test predictions for every alpha from one decomposition.

    Parameters
    ----------
    dec : Decomposition
        Of the training design ``X`` (n_train, n_features).
    Y : array of shape (n_train, n_targets)
    Xte : array of shape (n_test, n_features)
    alphas : sequence of float, length n_alphas

    Returns
    -------
    array of shape (n_alphas, n_test, n_targets)
    """
    A = dec.test_factor(Xte)
    Z = dec.V.T @ (dec.X.T @ Y) if dec.kind == "primal" else dec.V.T @ Y
    h = dec.h(np.asarray(alphas))
    return np.einsum("ir,ar,rt->ait", A, h, Z, optimize=True)


def solve_coefs(dec: Decomposition, Y: np.ndarray, alpha_per_target: np.ndarray) -> np.ndarray:
    """Ridge coefficients with one alpha per target.

    Parameters
    ----------
    dec : Decomposition
        Of the training design (n_train, n_features).
    Y : array of shape (n_train, n_targets)
    alpha_per_target : array of shape (n_targets,)

    Returns
    -------
    array of shape (n_features, n_targets)
    """
    alpha_per_target = np.asarray(alpha_per_target, dtype=np.float64)
    h = 1.0 / (dec.s[:, None] + alpha_per_target[None, :])
    if dec.kind == "primal":
        return dec.V @ (h * (dec.V.T @ (dec.X.T @ Y)))
    return dec.X.T @ (dec.V @ (h * (dec.V.T @ Y)))


def score_columns(y_true: np.ndarray, y_pred: np.ndarray, scoring: str) -> np.ndarray:
    """Score each target column.

    Parameters
    ----------
    y_true : array of shape (n_samples, n_targets)
    y_pred : array of shape (..., n_samples, n_targets)
    scoring : {"neg_mse", "r", "r2"}

    Returns
    -------
    array of shape (..., n_targets)
    """
    if scoring == "neg_mse":
        return -np.mean((y_true - y_pred) ** 2, axis=-2)
    if scoring == "r2":
        ss = np.sum((y_true - y_true.mean(0)) ** 2, axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            return 1.0 - np.sum((y_true - y_pred) ** 2, axis=-2) / ss
    if scoring == "r":
        yt = y_true - y_true.mean(0)
        yp = y_pred - y_pred.mean(-2, keepdims=True)
        num = np.sum(yt * yp, axis=-2)
        den = np.sqrt(np.sum(yt ** 2, axis=0) * np.sum(yp ** 2, axis=-2))
        with np.errstate(divide="ignore", invalid="ignore"):
            out = num / den
        return np.where(den > 0, out, 0.0)
    raise ValueError(f"scoring: must be 'neg_mse', 'r' or 'r2', got {scoring!r}")


def select_alphas(cv_scores: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """Index of the best alpha per target (ties go to the larger alpha).

    Parameters
    ----------
    cv_scores : array of shape (n_alphas, n_targets)
        Mean inner-CV score.
    alphas : array of shape (n_alphas,)

    Returns
    -------
    array of int of shape (n_targets,)
    """
    s = np.nan_to_num(cv_scores, nan=-np.inf) + (np.log(alphas) * 1e-10)[:, None]
    return np.argmax(s, axis=0)


def fold_scores(X: np.ndarray, Y: np.ndarray, folds, alphas: np.ndarray, *, scoring: str = "neg_mse",
                fit_intercept: bool = True) -> np.ndarray:
    """Inner-CV scores by one decomposition per fold (any folds).

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
    Y : array of shape (n_samples, n_targets)
    folds : iterable of (train, test) index arrays
    alphas : array of shape (n_alphas,)

    Returns
    -------
    array of shape (n_folds, n_alphas, n_targets)
    """
    out = []
    for train, test in folds:
        Xtr, Xte, Ytr, Yte = X[train], X[test], Y[train], Y[test]
        if fit_intercept:
            mx, my = Xtr.mean(0), Ytr.mean(0)
            Xtr, Xte, Ytr, Yte = Xtr - mx, Xte - mx, Ytr - my, Yte - my
        dec = decompose(Xtr)
        A = dec.test_factor(Xte)
        Z = dec.V.T @ (dec.X.T @ Ytr) if dec.kind == "primal" else dec.V.T @ Ytr
        h = dec.h(np.asarray(alphas))
        # one alpha at a time: memory stays (n_test, n_targets)
        out.append(np.stack([score_columns(Yte, ((A * h[i]) @ Z)[None], scoring)[0] for i in range(h.shape[0])]))
    return np.stack(out)


def _spd_solve(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Solve ``A x = B`` for symmetric positive definite ``A`` (Cholesky; LU if that fails)."""
    try:
        return cho_solve(cho_factor(A, check_finite=False), B, check_finite=False)
    except np.linalg.LinAlgError:
        return np.linalg.solve(A, B)


def logo_scores(dec: Decomposition, Yc: np.ndarray, groups: np.ndarray, alphas: np.ndarray, *,
                scoring: str = "neg_mse", intercept: bool = True) -> np.ndarray:
    """Leave-one-group-out scores from the decomposition of the whole training set.

    Exact for ridge with an unpenalised intercept: with the training hat
    matrix ``H = 11'/n + W diag(g) W'``, the residuals of the fit without
    group ``k`` are ``(I - H_kk)^-1 e_k`` where ``e`` are the full-fit
    residuals -- so no group needs its own decomposition.

    Parameters
    ----------
    dec : Decomposition
        Of the centred training design (n_samples, n_features).
    Yc : array of shape (n_samples, n_targets)
        Centred targets (raw if ``intercept`` is False).
    groups : array of shape (n_samples,)
        Group label of each sample; one fold per group.
    alphas : array of shape (n_alphas,)

    Returns
    -------
    array of shape (n_groups, n_alphas, n_targets)
    """
    W = dec.W
    n = W.shape[0]
    G = dec.g(alphas)                       # (n_alphas, rank)
    WtY = W.T @ Yc                          # (rank, n_targets)
    labels = list(dict.fromkeys(np.asarray(groups).tolist()))
    out = np.empty((len(labels), len(alphas), Yc.shape[1]))
    for gi, lab in enumerate(labels):
        idx = np.flatnonzero(np.asarray(groups) == lab)
        Wk = W[idx]                          # (n_k, rank)
        Yk = Yc[idx]
        eye = np.eye(idx.size)
        for ai in range(len(alphas)):
            Hk = (Wk * G[ai]) @ Wk.T
            if intercept:
                Hk = Hk + 1.0 / n
            Ek = Yk - Wk @ (G[ai][:, None] * WtY)   # full-fit residuals (intercept 0 on centred Y)
            pred = Yk - _spd_solve(eye - Hk, Ek)
            out[gi, ai] = score_columns(Yk, pred[None], scoring)[0]
    return out
