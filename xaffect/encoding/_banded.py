"""Banded ridge: one penalty per feature band, and the variance each band uniquely explains.

For joint models such as classical descriptors + one deep layer, each band
``b`` gets its own penalty ``alpha / w_b``. Scaling band ``b`` by
``sqrt(w_b)`` turns that into ordinary ridge with penalty ``alpha``, so each
candidate weighting ``w`` on the simplex costs one decomposition, reused for
every ``alpha`` and every target (the same route as :class:`RidgeCV`);
``(w, alpha)`` is chosen per target by inner cross-validation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.model_selection import KFold, LeaveOneGroupOut, check_cv

from ..errors import InputError
from ._ridge import RidgeCV, _RidgeBase, validate_fit_data
from ._solvers import decompose, fold_scores, score_columns, select_alphas, solve_coefs

__all__ = ["BandedRidgeCV", "band_unique_variance", "band_weights_grid"]


def band_weights_grid(n_bands: int, n_points: int = 9, *, n_random: int = 20, seed: int = 0) -> np.ndarray:
    """Candidate band weightings on the simplex, array of shape (n_candidates, n_bands).

    Two bands: ``n_points`` log-spaced ratios from 1e-3 to 1e3. More bands:
    the equal weighting, each band alone-heavy corner, and ``n_random``
    Dirichlet draws.
    """
    if n_bands == 1:
        return np.ones((1, 1))
    if n_bands == 2:
        ratio = np.logspace(-3, 3, n_points)
        w = np.stack([ratio, np.ones_like(ratio)], 1)
        return w / w.sum(1, keepdims=True)
    rng = np.random.default_rng(seed)
    corners = np.full((n_bands, n_bands), 0.1 / (n_bands - 1)) + np.eye(n_bands) * (0.9 - 0.1 / (n_bands - 1))
    return np.vstack([np.full((1, n_bands), 1.0 / n_bands), corners, rng.dirichlet(np.ones(n_bands), n_random)])


class BandedRidgeCV(_RidgeBase):
    """Ridge with one penalty per feature band, chosen per target by cross-validation.

    Parameters
    ----------
    bands : sequence of slices or index arrays, optional
        Columns of each band; together they must use every column once.
        ``None`` (default): one band of all columns, i.e. :class:`RidgeCV`.
    alphas : array of shape (n_alphas,)
        Overall penalties (default ``10 ** arange(-5, 5.5, 0.5)``).
    weights : array of shape (n_candidates, n_bands), optional
        Band weightings to try (default :func:`band_weights_grid`).
    cv : int, splitter or iterable of (train, test), optional
        As in :class:`RidgeCV`.
    fit_intercept : bool
    scoring : {"neg_mse", "r", "r2"}

    Attributes
    ----------
    band_alphas_ : array of shape (n_bands, n_targets)
        Effective penalty of each band, ``alpha / w_b``.
    coef_ : array of shape (n_features, n_targets)
    intercept_ : array of shape (n_targets,)
    cv_scores_ : array of shape (n_candidates, n_alphas, n_targets)
    """

    def __init__(self, bands=None, alphas=None, *, weights=None, cv=None, fit_intercept=True, scoring="neg_mse"):
        self.bands = bands
        self.alphas = alphas
        self.weights = weights
        self.cv = cv
        self.fit_intercept = fit_intercept
        self.scoring = scoring

    def _band_index(self, n_features: int) -> list[np.ndarray]:
        if self.bands is None:
            return [np.arange(n_features)]
        idx = [np.arange(n_features)[b] if isinstance(b, slice) else np.asarray(b, dtype=int) for b in self.bands]
        if not idx:
            raise InputError("bands: give at least one band of columns")
        allc = np.concatenate(idx)
        if allc.size != n_features or np.unique(allc).size != n_features:
            raise InputError(f"bands: must partition the {n_features} columns exactly once")
        return idx

    def _scale(self, X: np.ndarray, w: np.ndarray, idx) -> np.ndarray:
        Xs = np.empty_like(X)
        for b, cols in enumerate(idx):
            Xs[:, cols] = X[:, cols] * np.sqrt(w[b])
        return Xs

    def fit(self, X, Y, groups=None):
        """Fit on ``X`` (n_samples, n_features) and ``Y`` (n_samples,) or (n_samples, n_targets); returns self.

        ``score`` is scikit-learn's: R^2 averaged uniformly over targets.
        """
        X, Y = validate_fit_data(self, X, Y)
        idx = self._band_index(X.shape[1])
        alphas = RidgeCV(self.alphas)._alphas()
        W = band_weights_grid(len(idx)) if self.weights is None else np.asarray(self.weights, dtype=float)
        if W.ndim != 2 or W.shape[1] != len(idx) or np.any(W <= 0):
            raise InputError(f"weights: expected positive (n_candidates, {len(idx)}), got shape {W.shape}")
        splitter = LeaveOneGroupOut() if self.cv is None and groups is not None else \
            check_cv(KFold(5) if self.cv is None else self.cv)
        folds = list(splitter.split(X, Y, groups))
        scores = np.stack([fold_scores(self._scale(X, w, idx), Y, folds, alphas, scoring=self.scoring,
                                       fit_intercept=self.fit_intercept).mean(0) for w in W])
        self.cv_scores_ = scores                                      # (n_cand, n_alphas, T)
        flat = scores.reshape(-1, Y.shape[1])
        best = select_alphas(flat, np.tile(alphas, W.shape[0]))
        cand, ai = np.divmod(best, alphas.size)
        self.band_alphas_ = alphas[ai][None, :] / W[cand].T
        mx = X.mean(0) if self.fit_intercept else np.zeros(X.shape[1])
        my = Y.mean(0) if self.fit_intercept else np.zeros(Y.shape[1])
        self.coef_ = np.zeros((X.shape[1], Y.shape[1]))
        for c in np.unique(cand):
            t = np.flatnonzero(cand == c)
            scale = np.ones(X.shape[1])
            for b, cols in enumerate(idx):
                scale[cols] = np.sqrt(W[c, b])
            coef_s = solve_coefs(decompose((X - mx) * scale), Y[:, t] - my[t], alphas[ai[t]])
            self.coef_[:, t] = coef_s * scale[:, None]
        self.intercept_ = my - mx @ self.coef_
        return self


def band_unique_variance(X: np.ndarray, Y: np.ndarray, bands: Sequence, train: np.ndarray, test: np.ndarray, *,
                         groups: np.ndarray | None = None, alphas=None, cv=None) -> dict[str, np.ndarray]:
    """Held-out variance each band explains that no other band does.

    ``unique_b = R2(joint) - R2(joint without band b)``, every model fit on
    ``train`` with its own banded penalties and scored on ``test``.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
    Y : array of shape (n_samples, n_targets)
    bands : sequence of slices or index arrays
    train, test : index arrays
    groups : array of shape (n_samples,), optional
        Inner leave-one-group-out folds within ``train``.

    Returns
    -------
    dict
        ``r2_joint`` (n_targets,), ``r2_without`` and ``unique`` (n_bands, n_targets).
    """
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    Y = Y[:, None] if Y.ndim == 1 else Y
    g = None if groups is None else np.asarray(groups)[train]
    idx = [np.arange(X.shape[1])[b] if isinstance(b, slice) else np.asarray(b, dtype=int) for b in bands]

    def _r2(cols_bands):
        cols = np.sort(np.concatenate(cols_bands))
        local = [np.searchsorted(cols, c) for c in cols_bands]     # band columns within X[:, cols]
        m = BandedRidgeCV(local, alphas, cv=cv).fit(X[train][:, cols], Y[train], groups=g)
        return score_columns(Y[test], m.predict(X[test][:, cols])[None], "r2")[0]

    joint = _r2(idx)
    without = np.stack([_r2([c for j, c in enumerate(idx) if j != b]) for b in range(len(idx))])
    return {"r2_joint": joint, "r2_without": without, "unique": joint[None] - without}
