"""One outer fold of nested cross-validated ridge: the unit of work of the grid.

For one cell (feature set, layer, element) and one held-out stimulus, all
targets share one decomposition of the training design: the inner
leave-one-group-out scores for every alpha, the refit at each target's alpha,
the held-out predictions and every null surrogate are formed from it.
"""

from __future__ import annotations

import numpy as np

from ._backend import resolve_backend
from ._nulls import null_scores
from ._solvers import (decompose, decompose_folds, fold_scores, logo_scores, predict_heldout, score_columns,
                       select_alphas, to_numpy)

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
                   method: str = "auto", inner_gap: int = 0, backend: str = "numpy", device: str = "cpu",
                   dtype: str = "float64", n_targets_batch: int | None = None) -> dict[str, np.ndarray]:
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
        Null surrogates of the targets, pushed through the same
        decomposition at each target's alpha.
    null : {"shift", "phase", "stimulus"}
        See :mod:`xaffect.surrogates`.
    seed : int
    method : {"auto", "logo", "refit"}
        Inner-CV route (identical results; "auto" picks the cheaper).
    inner_gap : int
        Samples dropped from the inner training set on each side of an inner
        held-out group (blocked cv: the same gap as the outer folds, so
        windowed targets and delays do not leak into the choice of alpha).
        Forces the refit route when > 0.
    backend, device, dtype : str
        Where and in what precision the ridge kernels run
        (:func:`._backend.resolve_backend`): ``"numpy"`` or ``"torch"``,
        ``"cpu"`` or ``"cuda"``, ``"float64"`` or ``"float32"``. The design is
        standardised in float64 and decomposed once; ``Y`` keeps its own dtype
        and is cast one target batch at a time. Nulls run on numpy views of
        the same decomposition.
    n_targets_batch : int, optional
        Targets per batch (all at once when None): memory is bounded by the
        batch, as himalaya's ``n_targets_batch``; results do not depend on it.

    Returns
    -------
    dict
        ``r``, ``r2``, ``alpha``, ``cv_score`` of shape (n_targets,),
        ``r_null`` of shape (n_targets, n_perm).
    """
    be = resolve_backend(backend, device=device, dtype=dtype)
    if n_targets_batch is not None and int(n_targets_batch) < 1:
        raise ValueError(f"n_targets_batch: must be a positive number of targets, got {n_targets_batch!r}")
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
    Y = np.asarray(Y)
    if not np.issubdtype(Y.dtype, np.floating):
        Y = Y.astype(np.float64)
    Dtr = be.asarray(D[train])
    Dte = D[test].copy()
    Dte[:, n_feat:] = 0.0                 # covariates at their training mean
    Dte_b = be.asarray(Dte)
    groups = np.asarray(inner)[train]
    dec = decompose(Dtr)                  # one decomposition for every target batch

    labels, sizes = np.unique(groups, return_counts=True)
    if labels.size < 2:
        raise ValueError("inner cross-validation needs at least 2 training groups")
    n_targets = Y.shape[1]
    if inner_gap > 0:
        inner_folds = _gapped_inner_folds(groups, np.asarray(train), labels, inner_gap)
    else:
        if method == "auto":
            # per target batch: the work that repeats; the refit route would also keep one
            # decomposition per inner group alive across batches (measured +157 MiB on the seed cell)
            batch_size = n_targets if not n_targets_batch else min(n_targets, int(n_targets_batch))
            method = _inner_method(Dtr.shape[0], Dtr.shape[1], sizes, alphas.size, batch_size)
        inner_folds = None if method == "logo" else [(np.flatnonzero(groups != g), np.flatnonzero(groups == g))
                                                     for g in labels]
    dec_np = dec if be.name == "numpy" else _NumpyDecomposition(dec)
    # shared by every target batch: the inner decompositions and the held-out test factor
    inner_dec = decompose_folds(Dtr, inner_folds) if inner_folds is not None else None
    A_test = dec.test_factor(Dte_b)
    step = n_targets if not n_targets_batch else int(n_targets_batch)
    out = {"r": np.empty(n_targets), "r2": np.empty(n_targets), "alpha": np.empty(n_targets),
           "cv_score": np.empty(n_targets), "r_null": np.full((n_targets, n_perm), np.nan)}
    for t0 in range(0, n_targets, step):
        b = slice(t0, min(t0 + step, n_targets))
        Ytr = Y[train, b]                                 # one target batch at a time, in the backend's dtype
        ymu = Ytr.mean(0, dtype=np.float64)
        Yc = be.asarray(Ytr) - be.asarray(ymu)
        del Ytr
        if inner_folds is None:
            scores = logo_scores(dec, Yc, groups, alphas, scoring=scoring)
        else:
            scores = fold_scores(Dtr, Yc, inner_folds, alphas, scoring=scoring, decomposed=inner_dec)
        cv = to_numpy(scores).astype(np.float64).mean(0)      # (n_alphas, batch)
        best = select_alphas(cv, alphas)
        alpha_t = alphas[best]
        pred = to_numpy(predict_heldout(dec, A_test, Yc, alpha_t)).astype(np.float64) + ymu
        Yte = Y[test, b].astype(np.float64)
        out["r"][b] = score_columns(Yte, pred[None], "r")[0]
        out["r2"][b] = score_columns(Yte, pred[None], "r2")[0]
        out["alpha"][b] = alpha_t
        out["cv_score"][b] = cv[best, np.arange(cv.shape[1])]
        del Yc, scores                                    # before the next batch allocates its own
        if n_perm:
            out["r_null"][b] = null_scores(dec_np, Dte, Y[:, b].astype(np.float64), ymu, train, test,
                                            np.asarray(inner), best, alphas, n_perm=n_perm, null=null,
                                            seed=seed, batch=perm_batch)
    return out


class _NumpyDecomposition:
    """Numpy view (s, W, test factor) of a torch decomposition, for the null routes."""

    def __init__(self, dec):
        self._dec = dec
        self.s = to_numpy(dec.s)
        self.W = to_numpy(dec.W)

    def test_factor(self, Xte):
        return to_numpy(self._dec.test_factor(Xte))


def _gapped_inner_folds(groups: np.ndarray, train: np.ndarray, labels, gap: int) -> list:
    """Leave-one-group-out folds on the training rows, minus ``gap`` samples each side of the held-out group.

    ``train`` holds the original sample index of each training row, so the gap
    is measured on the original clock (across an outer test block too).
    """
    folds = []
    for g in labels:
        te = np.flatnonzero(groups == g)
        lo, hi = train[te].min(), train[te].max()
        keep = (groups != g) & ((train < lo - gap) | (train > hi + gap))
        if not keep.any():
            raise ValueError(f"inner cross-validation: gap={gap} leaves no training rows for group {g!r}")
        folds.append((np.flatnonzero(keep), te))
    return folds
