"""A scikit-learn-compatible ridge with per-target alpha from inner cross-validation."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.model_selection import KFold, LeaveOneGroupOut, check_cv
from sklearn.utils.validation import check_is_fitted, validate_data

from ..errors import InputError
from ._solvers import decompose, fold_scores, select_alphas, solve_coefs

__all__ = ["RidgeCV", "DEFAULT_ALPHAS", "validate_fit_data", "validate_predict_data"]

#: 10^-5 ... 10^5 in half-decade steps (21 values), the seeds' grid.
DEFAULT_ALPHAS = 10.0 ** np.arange(-5, 5.5, 0.5)


def _first_nonfinite(name: str, M) -> str:
    """`` (first at sample i, column j of X)`` for the first NaN/inf of ``M``, else ``""``."""
    try:
        M = np.asarray(M, dtype=np.float64)
    except (TypeError, ValueError):
        return ""
    bad = np.argwhere(~np.isfinite(M.reshape(M.shape[0], -1) if M.ndim else M.reshape(1, 1)))
    return f" (first at sample {bad[0][0]}, column {bad[0][1]} of {name})" if bad.size else ""


def validate_fit_data(estimator: BaseEstimator, X, Y) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's checks of ``(X, Y)`` at ``fit`` (dense, finite, numeric, 2-d ``X``).

    Sets ``n_features_in_`` (and ``feature_names_in_`` for data frames). Errors
    keep scikit-learn's messages, as :class:`~xaffect.errors.InputError` (a
    ``ValueError``), with the position of the first non-finite value added.

    Returns
    -------
    X : array of shape (n_samples, n_features), float64
    Y : array of shape (n_samples, n_targets), float64
        1-d ``Y`` becomes one column; ``estimator._y_1d`` remembers it.
    """
    try:
        X, Y = validate_data(estimator, X, Y, multi_output=True, y_numeric=True, dtype=np.float64)
    except ValueError as exc:
        nonfinite = "NaN" in str(exc) or "infinity" in str(exc)
        where = (_first_nonfinite("X", X) or _first_nonfinite("Y", Y)) if nonfinite else ""
        raise InputError(f"{exc}{where}") from None
    estimator._y_1d = Y.ndim == 1
    return X, (Y[:, None] if Y.ndim == 1 else Y)


def validate_predict_data(estimator: BaseEstimator, X) -> np.ndarray:
    """``check_is_fitted`` and scikit-learn's checks of ``X`` at ``predict`` (feature count included)."""
    check_is_fitted(estimator, "coef_")
    try:
        return validate_data(estimator, X, reset=False, dtype=np.float64)
    except ValueError as exc:
        raise InputError(str(exc)) from None


class _RidgeBase(RegressorMixin, BaseEstimator):
    """What :class:`RidgeCV` and :class:`~xaffect.encoding.BandedRidgeCV` share: tags and prediction."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        tags.input_tags.sparse = False      # dense only: validate_data rejects sparse with scikit-learn's message
        return tags

    def predict(self, X):
        """Predict from ``X`` of shape (n_samples, n_features).

        Returns
        -------
        array of shape (n_samples, n_targets), or (n_samples,) if fitted on 1-d ``Y``
        """
        X = validate_predict_data(self, X)
        P = X @ self.coef_ + self.intercept_
        return P[:, 0] if self._y_1d else P


class RidgeCV(_RidgeBase):
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

        ``score`` is scikit-learn's: R^2 averaged uniformly over targets.

        Returns
        -------
        self
        """
        if self.scoring not in ("neg_mse", "r", "r2"):
            raise InputError(f"scoring: must be 'neg_mse', 'r' or 'r2', got {self.scoring!r}")
        alphas = self._alphas()
        X, Y = validate_fit_data(self, X, Y)
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
        return self
