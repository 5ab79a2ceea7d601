"""Ridge kernels on arrays: one decomposition per training set, all alphas and targets.

A training design is decomposed once (:func:`decompose`): an
eigendecomposition of ``X.T @ X`` (primal, when features do not outnumber
samples) or of ``X @ X.T`` (dual, otherwise). Both are written as a hat factor
``W`` with per-alpha weights ``g(alpha)`` so that the training hat matrix is
``W diag(g) W.T`` and every prediction for every alpha is formed in the reduced
space.

**Arrays and precision.** Every kernel takes numpy arrays or torch tensors
(through ``array_api_compat``: one code path, as himalaya's backends) and
returns arrays of the same library and device. The large products (Gram
matrix, ``X V``, hat blocks, residuals, predictions) run in the dtype of the
design -- float32 when the caller passes float32, which halves time and
memory -- while the steps whose accuracy decides which alpha wins are
float64 whatever the input: the eigendecomposition (``r^3``, small beside the
Gram) and the leave-one-group-out systems ``I - H_kk`` (``n_k^3`` per group
and alpha), which are either solved in float64 or, with many targets and
where ``cond(I - H_kk)`` is small, inverted in float64 and applied as one
float32 factor. See :func:`._logo.logo_scores` for the error bound that
justifies the float32 tolerance used in the tests. The leave-one-group-out
kernel lives in :mod:`._logo` and is re-exported here.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Sequence

import numpy as np
from array_api_compat import array_namespace, device as array_device, is_torch_array

__all__ = ["decompose", "decompose_folds", "predict_path", "predict_heldout", "solve_coefs", "score_columns",
           "select_alphas",
           "logo_scores", "fold_scores", "to_numpy"]


def to_numpy(a) -> np.ndarray:
    """A numpy copy of a numpy array or torch tensor (any device)."""
    if is_torch_array(a):
        return a.detach().cpu().numpy()
    return np.asarray(a)


def _as(xp, a, like):
    """``a`` as an array of ``like``'s library, device and dtype."""
    return xp.asarray(a, dtype=like.dtype, device=array_device(like))


@functools.lru_cache(maxsize=1)
def _blas_controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _one_blas_thread(xp):
    """One BLAS thread for LAPACK and small products (numpy): ``eigh``, the batched (n_k, n_k) systems.

    OpenBLAS splits each 240 x 240 factorisation (and the r x r ``eigh``)
    over its threads, which busy-wait on one another; on a loaded 2-core
    machine one thread was measured 15x faster for ``inv`` of 21 such
    systems (0.06 s vs 0.90 s) and 5-10x faster for ``eigh`` at r = 768. The
    large GEMMs over the targets keep every thread. (The grid already runs
    each task with one BLAS thread, ``fit_grid(blas_threads=1)``.)
    """
    if xp.__name__.endswith("numpy"):
        return _blas_controller().limit(limits=1, user_api="blas")
    return contextlib.nullcontext()


def _f64(xp, a):
    return xp.astype(a, xp.float64)


class Decomposition:
    """Eigendecomposition of one (centred) training design.

    Attributes
    ----------
    kind : {"primal", "dual"}
    s : array of shape (rank,)
        Eigenvalues (clipped at 0), in the design's dtype.
    V : array of shape (n_features, rank) or (n_samples, rank)
        Eigenvectors of ``X.T X`` (primal) or ``X X.T`` (dual).
    X : array of shape (n_samples, n_features)
        The training design itself (numpy array or torch tensor).
    """

    def __init__(self, X):
        xp = array_namespace(X)
        if not xp.isdtype(X.dtype, "real floating"):
            X = xp.astype(X, xp.float64)
        self.xp = xp
        self.X = X
        n, p = X.shape
        self.kind = "primal" if p <= n else "dual"
        gram = X.T @ X if self.kind == "primal" else X @ X.T
        # eigh in float64 whatever the design's dtype: r^3, cheap beside the
        # Gram, and it fixes the spectrum every alpha is scored with
        with _one_blas_thread(xp):
            s, V = xp.linalg.eigh(_f64(xp, gram))
        self.s = xp.astype(xp.clip(s, 0.0, None), X.dtype)
        self.V = xp.astype(V, X.dtype)
        self._W = None

    @property
    def W(self):
        """Hat factor of shape (n_samples, rank): training hat = ``W diag(g) W.T``."""
        if self._W is None:
            self._W = self.X @ self.V if self.kind == "primal" else self.V
        return self._W

    def _alphas(self, alphas):
        return _as(self.xp, to_numpy(alphas).astype(np.float64), self.s)[:, None]

    def g(self, alphas) -> np.ndarray:
        """Hat weights, array of shape (n_alphas, rank)."""
        a = self._alphas(alphas)
        if self.kind == "primal":
            return 1.0 / (self.s[None, :] + a)
        return self.s[None, :] / (self.s[None, :] + a)

    def test_factor(self, Xte):
        """``A`` of shape (n_test, rank) with test predictions ``A diag(h) W.T Y``.

        ``h = 1/(s+alpha)`` in both forms: primal ``A = Xte V``; dual
        ``A = Xte X.T V``.
        """
        Xte = _as(self.xp, Xte, self.X)
        if self.kind == "primal":
            return Xte @ self.V
        return (Xte @ self.X.T) @ self.V

    def projected_targets(self, Y):
        """``Z = W.T Y`` of shape (rank, n_targets) (primal: ``V.T X.T Y``)."""
        Y = _as(self.xp, Y, self.X)
        return self.V.T @ (self.X.T @ Y) if self.kind == "primal" else self.V.T @ Y

    def h(self, alphas):
        """Test weights ``1/(s+alpha)``, array of shape (n_alphas, rank)."""
        return 1.0 / (self.s[None, :] + self._alphas(alphas))

    @property
    def complete(self) -> bool:
        """Whether ``W`` spans every sample (dual form: ``V`` is square)."""
        return self.kind == "dual" and self.V.shape[1] == self.V.shape[0]

    def complement(self, alphas, *, intercept: bool):
        """``I - H = U diag(c) U.T`` for the dual form, without cancellation.

        With ``V`` square, ``I - V diag(g) V.T = V diag(1 - g) V.T``, and
        ``1 - g = alpha/(s+alpha)`` is formed directly (``g`` rounds to 1 in
        float32 when ``alpha`` is far below ``s``). With an intercept the hat
        also holds ``11'/n``: instead of subtracting it (which cancels against
        the constant eigenvector), the constant direction is removed from the
        null space of ``X X.T`` and the rest of that null space kept with
        weight 1.

        Returns
        -------
        U : array of shape (n_samples, rank')
        c : array of shape (n_alphas, rank')
        """
        xp, V, s = self.xp, self.V, self.s
        a = self._alphas(alphas)
        if not intercept:
            return V, a / (s[None, :] + a)
        n = V.shape[0]
        tol = float(xp.max(s)) * n * float(np.finfo(np.float32 if s.dtype == xp.float32 else np.float64).eps)
        null = s <= tol
        keep = ~null
        V0 = _f64(xp, V[:, null])
        u = xp.ones((n, 1), dtype=xp.float64, device=array_device(V)) / np.sqrt(n)
        V0p = V0 - u @ (u.T @ V0)
        if V0p.shape[1]:
            B, sv, _ = xp.linalg.svd(V0p, full_matrices=False)
            B = xp.astype(B[:, sv > 0.5], V.dtype)
        else:
            B = V0p[:, :0]
        U = xp.concat([V[:, keep], B], axis=1)
        c = xp.concat([a / (s[None, keep] + a),
                       xp.ones((a.shape[0], B.shape[1]), dtype=V.dtype, device=array_device(V))], axis=1)
        return U, c


def decompose(X) -> Decomposition:
    """Decompose a training design once for all alphas and targets.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        numpy array or torch tensor; float32 keeps the large products in
        float32.

    Returns
    -------
    Decomposition
    """
    return Decomposition(X)


def predict_path(dec: Decomposition, Y, Xte, alphas: Sequence[float]):
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
    Z = dec.projected_targets(Y)
    h = dec.h(alphas)
    return (A[None, :, :] * h[:, None, :]) @ Z


def solve_coefs(dec: Decomposition, Y, alpha_per_target):
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
    h = 1.0 / (dec.s[:, None] + _as(dec.xp, to_numpy(alpha_per_target).astype(np.float64), dec.s)[None, :])
    Y = _as(dec.xp, Y, dec.X)
    if dec.kind == "primal":
        return dec.V @ (h * (dec.V.T @ (dec.X.T @ Y)))
    return dec.X.T @ (dec.V @ (h * (dec.V.T @ Y)))


def score_columns(y_true, y_pred, scoring: str):
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
    xp = array_namespace(y_true, y_pred)
    if scoring == "neg_mse":
        return -xp.mean((y_true - y_pred) ** 2, axis=-2)
    if scoring == "r2":
        ss = xp.sum((y_true - xp.mean(y_true, axis=0)) ** 2, axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            return 1.0 - xp.sum((y_true - y_pred) ** 2, axis=-2) / ss
    if scoring == "r":
        yt = y_true - xp.mean(y_true, axis=0)
        yp = y_pred - xp.mean(y_pred, axis=-2, keepdims=True)
        num = xp.sum(yt * yp, axis=-2)
        den = xp.sqrt(xp.sum(yt ** 2, axis=0) * xp.sum(yp ** 2, axis=-2))
        with np.errstate(divide="ignore", invalid="ignore"):
            out = num / den
        return xp.where(den > 0, out, xp.zeros_like(out))
    raise ValueError(f"scoring: must be 'neg_mse', 'r' or 'r2', got {scoring!r}")


def select_alphas(cv_scores, alphas) -> np.ndarray:
    """Index of the best alpha per target (ties go to the larger alpha).

    Parameters
    ----------
    cv_scores : array of shape (n_alphas, n_targets)
        Mean inner-CV score (numpy or torch).
    alphas : array of shape (n_alphas,)

    Returns
    -------
    numpy array of int of shape (n_targets,)
    """
    s = np.nan_to_num(to_numpy(cv_scores).astype(np.float64), nan=-np.inf)
    s = s + (np.log(to_numpy(alphas).astype(np.float64)) * 1e-10)[:, None]
    return np.argmax(s, axis=0)


def decompose_folds(X, folds, *, fit_intercept: bool = True) -> list:
    """One decomposition per (train, test) fold, for :func:`fold_scores` to reuse over target batches.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
    folds : iterable of (train, test) index arrays

    Returns
    -------
    list of (train, test, Decomposition, A, x_mean)
        ``A`` of shape (n_test, rank) is the test factor of the centred held-out rows.
    """
    xp = array_namespace(X)
    out = []
    for train, test in folds:
        tr = _as(xp, train, xp.zeros(1, dtype=xp.int64, device=array_device(X)))
        te = _as(xp, test, tr)
        Xtr, Xte = xp.take(X, tr, axis=0), xp.take(X, te, axis=0)
        if fit_intercept:
            mx = xp.mean(Xtr, axis=0)
            Xtr, Xte = Xtr - mx, Xte - mx
        dec = decompose(Xtr)
        out.append((tr, te, dec, dec.test_factor(Xte)))
    return out


def fold_scores(X, Y, folds, alphas, *, scoring: str = "neg_mse", fit_intercept: bool = True, decomposed=None):
    """Inner-CV scores by one decomposition per fold (any folds).

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
    Y : array of shape (n_samples, n_targets)
    folds : iterable of (train, test) index arrays
    alphas : array of shape (n_alphas,)
    decomposed : list, optional
        :func:`decompose_folds` of ``X`` and ``folds`` (same ``fit_intercept``),
        so that target batches share the decompositions.

    Returns
    -------
    array of shape (n_folds, n_alphas, n_targets)
    """
    xp = array_namespace(X)
    Y = _as(xp, Y, X)
    if decomposed is None:
        decomposed = decompose_folds(X, folds, fit_intercept=fit_intercept)
    out = []
    for tr, te, dec, A in decomposed:
        Ytr, Yte = xp.take(Y, tr, axis=0), xp.take(Y, te, axis=0)
        if fit_intercept:
            my = xp.mean(Ytr, axis=0)
            Ytr, Yte = Ytr - my, Yte - my
        Z = dec.projected_targets(Ytr)
        h = dec.h(alphas)
        # one alpha at a time: memory stays (n_test, n_targets)
        out.append(xp.stack([score_columns(Yte, (A * h[i]) @ Z, scoring) for i in range(h.shape[0])]))
    return xp.stack(out)


def predict_heldout(dec: Decomposition, A, Y, alpha_per_target):
    """Held-out predictions with one alpha per target, without forming coefficients.

    ``A diag(h_t) W'Y`` with ``h_t = 1/(s + alpha_t)``: equal to
    ``Xte @ solve_coefs(dec, Y, alpha_per_target)`` but costs ``rank`` rather
    than ``n_features`` per (sample, target) -- in the dual form (features
    outnumber samples) several times less.

    Parameters
    ----------
    dec : Decomposition
        Of the training design (n_train, n_features).
    A : array of shape (n_test, rank)
        ``dec.test_factor(Xte)``.
    Y : array of shape (n_train, n_targets)
    alpha_per_target : array of shape (n_targets,)

    Returns
    -------
    array of shape (n_test, n_targets)
    """
    h = 1.0 / (dec.s[:, None] + _as(dec.xp, to_numpy(alpha_per_target).astype(np.float64), dec.s)[None, :])
    return A @ (h * dec.projected_targets(Y))


from ._logo import logo_scores  # noqa: E402  (re-exported: the inner-CV kernel lives in its own module)
