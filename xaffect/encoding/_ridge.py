"""A scikit-learn-compatible ridge with per-target alpha from inner cross-validation."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.model_selection import KFold, LeaveOneGroupOut, check_cv

from ..errors import InputError
from ._solvers import decompose, fold_scores, score_columns, select_alphas, solve_coefs

__all__ = ["RidgeCV", "DEFAULT_ALPHAS"]

#: 10^-5 ... 10^5 in half-decade steps (21 values), the seeds' grid.
DEFAULT_ALPHAS = 10.0 ** np.arange(-5, 5.5, 0.5)


class RidgeCV(RegressorMixin, BaseEstimator):
    """Ridge regression with the alpha of each target chosen by cross-validation.

    One decomposition of each training design (eigendecomposition of
    ``X'X``, or of ``XX'`` when features outnumber samples) serves every
    alpha and every target; predictions for all alphas are formed in the
    reduced space.

    Parameters
    ----------
    alphas : array of shape (n_alphas,)
        Candidate penalties (default ``10 ** arange(-5, 5.5, 0.5)``).
    cv : int, scikit-learn splitter or iterable of (train, test), optional
        Inner folds. Default: leave one group out when ``groups`` are given
        to :meth:`fit`, else 5-fold ``KFold`` (unshuffled).
    fit_intercept : bool
        Fit an unpenalised intercept (centre ``X`` and ``Y`` on each training set).
    scoring : {"neg_mse", "r", "r2"}
        Inner-CV criterion, averaged over folds, maximised per target.

    Attributes
    ----------
    best_alphas_ : array of shape (n_targets,)
    coef_ : array of shape (n_features, n_targets)
    intercept_ : array of shape (n_targets,)
    cv_scores_ : array of shape (n_alphas, n_targets)
        Mean inner-CV score of each alpha.
    """

    def __init__(self, alphas=None, *, cv=None, fit_intercept=True, scoring="neg_mse"):
        self.alphas = alphas
        self.cv = cv
        self.fit_intercept = fit_intercept
        self.scoring = scoring

    def _alphas(self) -> np.ndarray:
        a = DEFAULT_ALPHAS if self.alphas is None else np.atleast_1d(np.asarray(self.alphas, dtype=float))
        if a.ndim != 1 or a.size == 0 or np.any(a <= 0) or not np.all(np.isfinite(a)):
            raise InputError(f"alphas: must be a non-empty list of positive numbers, got {self.alphas!r}")
        return a

    def fit(self, X, Y, groups=None):
        """Fit on ``X`` (n_samples, n_features) and ``Y`` (n_samples,) or (n_samples, n_targets).

        Returns
        -------
        self
        """
        if self.scoring not in ("neg_mse", "r", "r2"):
            raise InputError(f"scoring: must be 'neg_mse', 'r' or 'r2', got {self.scoring!r}")
        alphas = self._alphas()
        X = np.asarray(X, dtype=np.float64)
        Y = np.asarray(Y, dtype=np.float64)
        self._1d = Y.ndim == 1
        Y = Y[:, None] if self._1d else Y
        if X.ndim != 2 or X.shape[0] != Y.shape[0]:
            raise InputError(f"X has shape {X.shape} but Y has {Y.shape[0]} samples")
        for name, M in (("X", X), ("Y", Y)):
            bad = np.argwhere(~np.isfinite(M))
            if bad.size:
                raise InputError(f"{name}: {len(bad)} non-finite values (first at sample {bad[0][0]}, "
                                 f"column {bad[0][1]})")
        if self.cv is None and groups is not None:
            splitter = LeaveOneGroupOut()
        else:
            splitter = check_cv(KFold(5) if self.cv is None else self.cv)
        folds = list(splitter.split(X, Y, groups))
        scores = fold_scores(X, Y, folds, alphas, scoring=self.scoring, fit_intercept=self.fit_intercept)
        self.cv_scores_ = scores.mean(0)
        best = select_alphas(self.cv_scores_, alphas)
        self.best_alphas_ = alphas[best]
        edge = (best == 0) | (best == alphas.size - 1)
        if alphas.size > 1 and edge.any():
            warnings.warn(f"RidgeCV: the chosen alpha of {int(edge.sum())} of {edge.size} targets lies at the "
                          f"edge of the grid [{alphas[0]:g}, {alphas[-1]:g}]; consider widening alphas",
                          UserWarning, stacklevel=2)
        if self.fit_intercept:
            mx, my = X.mean(0), Y.mean(0)
        else:
            mx, my = np.zeros(X.shape[1]), np.zeros(Y.shape[1])
        self.coef_ = solve_coefs(decompose(X - mx), Y - my, self.best_alphas_)
        self.intercept_ = my - mx @ self.coef_
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X):
        """Predict, array of shape (n_samples, n_targets) (or (n_samples,) if fit on 1-D ``Y``)."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise InputError(f"X: expected {self.n_features_in_} features, got shape {X.shape}")
        P = X @ self.coef_ + self.intercept_
        return P[:, 0] if self._1d else P

    def score(self, X, Y, sample_weight=None):
        """Mean over targets of the R^2 of the predictions of ``X`` against ``Y``."""
        Y = np.asarray(Y, dtype=np.float64)
        P = self.predict(X)
        Y2, P2 = (Y[:, None], P[:, None]) if Y.ndim == 1 else (Y, P)
        return float(np.mean(score_columns(Y2, P2[None], "r2")[0]))
