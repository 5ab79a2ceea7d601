"""One outer fold of nested cross-validated ridge: the unit of work of the grid.

For one cell (feature set, layer, element) and one held-out stimulus, all
targets share one decomposition of the training design: the inner
leave-one-group-out scores for every alpha, the refit at each target's alpha,
the held-out predictions and every null surrogate are formed from it.
"""

from __future__ import annotations

import numpy as np

from ..surrogates import make_surrogates, match_length, permutation_draws, shift_draws
from ._backend import resolve_backend
from ._solvers import (decompose, decompose_folds, fold_scores, logo_scores, predict_heldout, score_columns,
                       select_alphas, to_numpy)
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
            out["r_null"][b] = _null_scores(dec_np, Dte, Y[:, b].astype(np.float64), ymu, train, test,
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
    if null == "stimulus":
        fast = _stimulus_null_blocks(hats, groups_a, Y, train, test, inner, n_perm=n_perm, seed=seed,
                                     reduced=(A * 1.0, W, dec.s, alphas) if reduced else None)
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
    lags = shift_draws(inner, n_perm, seed=seed)                        # (n_perm, n_runs)
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


def _stimulus_null_blocks(hats, groups_a, Y, train, test, inner, *, n_perm, seed, reduced=None):
    """Stimulus-permutation nulls from one product per (training stimulus, donor stimulus).

    Surrogate ``j`` gives run ``r`` the length-matched targets of run
    ``perm_j[r]``, so its held-out prediction is ``sum_r H[:, c_r] @ Y_{perm_j[r]}``:
    the ``n_runs**2`` products are formed once and each surrogate is a sum of
    ``n_runs`` of them. With ``reduced = (A, W, s, alphas)`` (low rank) the
    products are ``W[c_r]' Y_d`` in the rank-sized space instead. (The hat
    matrix annihilates constants -- the training design is centred -- so the
    training mean of the targets need not be removed.) Returns None when the
    held-out rows are not exactly one run or a training run is only partly
    in ``train``.
    """
    runs = run_bounds(inner)
    spans = list(zip(runs[:-1], runs[1:]))
    in_train = np.zeros(inner.size, bool)
    in_train[train] = True
    pos = np.full(inner.size, -1)
    pos[train] = np.arange(train.size)
    test_run = [r for r, (a, b) in enumerate(spans) if a == test[0]]
    if len(test_run) != 1 or spans[test_run[0]][1] - spans[test_run[0]][0] != test.size:
        return None
    t = test_run[0]
    tr_runs = [r for r in range(len(spans)) if r != t]
    if not all(in_train[a:b].all() for a, b in (spans[r] for r in tr_runs)):
        return None
    perms = permutation_draws(inner, n_perm, seed=seed)                  # (n_perm, n_runs)
    n_te = test.size
    out = np.empty((Y.shape[1], n_perm))
    donors = [Y[a:b] for a, b in spans]
    T = np.stack([match_length(d, n_te) for d in donors])                  # (n_runs, n_te, n_targets)
    if reduced is not None:
        A, W, sv, alphas = reduced
        Z = np.zeros((n_perm, W.shape[1], Y.shape[1]))                    # W' S_j, (n_perm, rank, n_targets)
        for r in tr_runs:
            a, b = spans[r]
            Wr = W[pos[a:b]].T                                             # (rank, n_r)
            Z += np.stack([Wr @ match_length(d, b - a) for d in donors])[perms[:, r]]
        for ai, idx in groups_a.items():
            P = np.einsum("ir,brt->bit", A * (1.0 / (sv + alphas[ai])), Z[:, :, idx], optimize=True)
            out[idx] = _r_batch(T[perms[:, t]][:, :, idx], P).T
        return out
    for ai, idx in groups_a.items():
        H = hats[ai]
        P = np.zeros((n_perm, n_te, idx.size))
        for r in tr_runs:
            a, b = spans[r]
            Hr = H[:, pos[a:b]]
            M = np.stack([Hr @ match_length(d[:, idx], b - a) for d in donors])   # (n_runs, n_te, k)
            P += M[perms[:, r]]
        out[idx] = _r_batch(T[perms[:, t]][:, :, idx], P).T
    return out


def _r_batch(Yt: np.ndarray, P: np.ndarray) -> np.ndarray:
    """Pearson r per (surrogate, target) of arrays of shape (nb, n_test, k)."""
    Yt = Yt - Yt.mean(1, keepdims=True)
    P = P - P.mean(1, keepdims=True)
    den = np.sqrt((Yt ** 2).sum(1) * (P ** 2).sum(1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, (Yt * P).sum(1) / den, 0.0)
