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
memory -- while the two steps whose accuracy decides which alpha wins run in
float64 whatever the input: the eigendecomposition (``r^3``, small beside the
Gram) and the leave-one-group-out solves ``(I - H_kk)^-1`` (``n_k^3`` per
group and alpha). See :func:`logo_scores` for the error bound that justifies
the float32 tolerance used in the tests.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Sequence

import numpy as np
from array_api_compat import array_namespace, device as array_device, is_torch_array

__all__ = ["decompose", "predict_path", "solve_coefs", "score_columns", "select_alphas",
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


def fold_scores(X, Y, folds, alphas, *, scoring: str = "neg_mse", fit_intercept: bool = True):
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
    xp = array_namespace(X)
    Y = _as(xp, Y, X)
    out = []
    for train, test in folds:
        tr = _as(xp, train, xp.zeros(1, dtype=xp.int64, device=array_device(X)))
        te = _as(xp, test, tr)
        Xtr, Xte, Ytr, Yte = xp.take(X, tr, axis=0), xp.take(X, te, axis=0), xp.take(Y, tr, axis=0), xp.take(Y, te, axis=0)
        if fit_intercept:
            mx, my = xp.mean(Xtr, axis=0), xp.mean(Ytr, axis=0)
            Xtr, Xte, Ytr, Yte = Xtr - mx, Xte - mx, Ytr - my, Yte - my
        dec = decompose(Xtr)
        A = dec.test_factor(Xte)
        Z = dec.projected_targets(Ytr)
        h = dec.h(alphas)
        # one alpha at a time: memory stays (n_test, n_targets)
        out.append(xp.stack([score_columns(Yte, (A * h[i]) @ Z, scoring) for i in range(h.shape[0])]))
    return xp.stack(out)


def _alpha_chunk(n_alphas: int, n_k: int, n_targets: int, width: int, itemsize: int,
                 budget: int = 48 * 2**20) -> int:
    """Alphas per batched step so that one step's (alphas, n_k, ...) blocks stay near ``budget`` bytes.

    A step holds the system ``(n_k, n_k)`` in float64, the applied factor
    ``(n_k, width)`` and about three ``(n_k, n_targets)`` blocks (held-out
    residuals and the scoring temporaries) in the design's dtype. Blocks stay
    below glibc's largest mmap threshold (32 MiB), so each step reuses heap
    pages instead of faulting in fresh ones.
    """
    per_alpha = n_k * (16 * n_k + itemsize * (width + 3 * n_targets))
    return int(max(1, min(n_alphas, budget // max(per_alpha, 1))))


#: Largest 1-norm condition number of ``I - H_kk`` for which the held-out
#: residuals are applied as a float32 factor (see :func:`logo_scores`): the
#: extra relative error is at most ``eps32 * sqrt(n_k) * KAPPA_MAX`` ~ 1e-4 at
#: ``n_k = 240``, and in practice (random-walk round-off, 2-norm far below the
#: 1-norm bound) 1e-6; above it the float64 solve is used.
KAPPA_MAX = 64.0


def _rows(xp, A, B):
    """``A @ B`` for a stack ``A`` (a, m, k) and one matrix ``B`` (k, n) as a single 2-d GEMM (a, m, n).

    numpy's stacked matmul with a shared (or transposed) right operand was
    measured 7x slower than one ``(a m, k) @ (k, n)`` product.
    """
    a, m, k = A.shape
    return xp.reshape(xp.reshape(A, (a * m, k)) @ B, (a, m, B.shape[1]))


def _inverse_route_pays(n_k: int, width: int, n_targets: int, float32: bool) -> bool:
    """Whether applying ``(I - H_kk)^-1`` as one factor beats a float64 solve with every target as a right-hand side.

    Flop counts per alpha, float64 weighted 2x a float32 flop: the solve route
    costs ``2 n_k width T`` (fit) + ``c (2/3 n_k^3 + 2 n_k^2 T)``; the factor
    route ``2 c n_k^3`` (inverse) + ``2 n_k^2 width`` (factor) + ``2 n_k (n_k + width) T``.
    """
    if not float32:
        return False
    c = 2.0
    solve = 2 * n_k * width * n_targets + c * (2 / 3 * n_k ** 3 + 2 * n_k ** 2 * n_targets)
    factor = 2 * c * n_k ** 3 + 2 * n_k ** 2 * width + 2 * n_k * (n_k + width) * n_targets
    return factor < solve


def _heldout_stats(xp, Yk, O, *, residual: bool, scoring: str, ykc, ss):
    """Scores of one group for a chunk of alphas from its held-out residuals or predictions.

    ``O`` (a, n_k, T) is the held-out residual (``residual``) or prediction;
    each score is formed from per-column sums over the ``n_k`` rows, with no
    float64 copy of ``O``.
    """
    n_k = Yk.shape[0]
    if scoring in ("neg_mse", "r2"):
        R = O if residual else Yk[None, :, :] - O
        sse = xp.sum(R * R, axis=-2)
        if scoring == "neg_mse":
            return -sse / n_k
        with np.errstate(divide="ignore", invalid="ignore"):
            return 1.0 - sse / ss
    P = Yk[None, :, :] - O if residual else O
    P = P - xp.mean(P, axis=-2, keepdims=True)
    num = xp.sum(ykc[None, :, :] * P, axis=-2)
    den = xp.sqrt(ss * xp.sum(P * P, axis=-2))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = num / den
    return xp.where(den > 0, out, xp.zeros_like(out))


def logo_scores(dec: Decomposition, Yc, groups, alphas, *, scoring: str = "neg_mse",
                intercept: bool = True, route: str = "auto"):
    """Leave-one-group-out scores from the decomposition of the whole training set.

    Exact for ridge with an unpenalised intercept: with the training hat
    matrix ``H = 11'/n + W diag(g) W'``, the residuals of the fit without
    group ``k`` are ``(I - H_kk)^-1 e_k`` where ``e`` are the full-fit
    residuals -- so no group needs its own decomposition.

    All alphas of a group form one batched system ``M = I - H_kk`` (float64,
    from a float32 product when the design is float32), in alpha chunks that
    bound memory. Two routes apply ``M^-1``:

    * **solve**: ``e_k`` for every alpha, then a float64 solve with every
      target as a right-hand side (few targets, or a float64 design);
    * **factor** (float32 design, many targets): ``M^-1`` in float64 (``n_k^3``,
      independent of the targets), folded into one float32 factor
      ``B = [M^-1, -M^-1 Q_k]`` (``Q_k = W_k diag(g)``), so the held-out
      residuals of every target are **one float32 GEMM** ``B @ [Y_k; W'Y]``
      with no float64 copy of any ``(n_k, T)`` block. Used only where
      ``cond_1(M) <= KAPPA_MAX``; less well-conditioned alphas fall back to
      the solve.

    Each held-out block is reduced to per-target sums at once
    (:func:`_heldout_stats`).

    **Precision.** With a float32 design, ``H_kk`` and ``e_k`` carry a
    relative error of about ``eps32 * sqrt(rank)`` (a GEMM's round-off,
    ``eps32 = 6e-8``); the solve amplifies it by at most ``cond(M) <= 1 / (1 -
    max leverage)``. The factor route adds the float32 rounding of ``M^-1``
    and of its product with ``Q_k``, at most ``eps32 * sqrt(n_k) * cond(M)``,
    which ``KAPPA_MAX`` bounds. The held-out residuals and so the scores
    therefore agree with the float64 path to about 1e-5 relative; alphas
    whose CV scores differ by less than that may swap, which is why the
    float32 tests compare scores and held-out r, and count alpha agreement
    rather than require it.

    Parameters
    ----------
    dec : Decomposition
        Of the centred training design (n_samples, n_features).
    Yc : array of shape (n_samples, n_targets)
        Centred targets (raw if ``intercept`` is False).
    groups : array of shape (n_samples,)
        Group label of each sample; one fold per group.
    alphas : array of shape (n_alphas,)
    route : {"auto", "solve", "factor"}
        How ``M^-1`` is applied ("auto": by flop count, float32 designs only;
        identical results within the precision above).

    Returns
    -------
    array of shape (n_groups, n_alphas, n_targets), in the design's dtype
    """
    if route not in ("auto", "solve", "factor"):
        raise ValueError(f"route: must be 'auto', 'solve' or 'factor', got {route!r}")
    if scoring not in ("neg_mse", "r", "r2"):
        raise ValueError(f"scoring: must be 'neg_mse', 'r' or 'r2', got {scoring!r}")
    xp = dec.xp
    W = dec.W
    n, rank = W.shape
    dev = array_device(W)
    Yc = _as(xp, Yc, W)
    G = dec.g(alphas)                       # (n_alphas, rank)
    WtY = W.T @ Yc                          # (rank, n_targets)
    n_alphas, n_targets = G.shape[0], Yc.shape[1]
    float32 = W.dtype == xp.float32
    # Two exact forms of the held-out prediction, chosen per alpha for round-off:
    #   residual form  pred = y_k - (I - H_kk)^-1 e_k          while the fit is close (small alpha)
    #   direct form    pred = (I - H_kk)^-1 (yhat_k - H_kk y_k)  once it is shrunk (large alpha),
    # since y_k - (I - H_kk)^-1 e_k cancels when e_k is almost y_k.
    s64 = to_numpy(dec.s).astype(np.float64)
    a64 = to_numpy(alphas).astype(np.float64)
    shrink = np.median(s64[None, :] / (s64[None, :] + a64[:, None]), axis=1)   # 1: interpolating, 0: shrunk
    residual_form = np.flatnonzero(shrink >= 0.5)
    direct_form = np.flatnonzero(shrink < 0.5)
    complement = dec.complete and residual_form.size > 0
    if complement:
        U, C = dec.complement(alphas, intercept=intercept)
        UtY = U.T @ Yc
    groups = np.asarray(groups)
    labels = list(dict.fromkeys(groups.tolist()))
    out = xp.empty((len(labels), n_alphas, n_targets), dtype=W.dtype, device=dev)
    for gi, lab in enumerate(labels):
        idx = xp.asarray(np.flatnonzero(groups == lab), device=dev)
        Wk = xp.take(W, idx, axis=0)        # (n_k, rank)
        Yk = xp.take(Yc, idx, axis=0)       # (n_k, n_targets)
        n_k = Wk.shape[0]
        ykc = Yk - xp.mean(Yk, axis=0, keepdims=True)
        ss = xp.sum(ykc * ykc, axis=0)
        eye = xp.eye(n_k, dtype=xp.float64, device=dev)
        YZ = None
        for form, sel in (("residual", residual_form), ("direct", direct_form)):
            use_c = form == "residual" and complement
            width = U.shape[1] if use_c else rank
            factor_ok = route == "factor" or (route == "auto" and _inverse_route_pays(n_k, width, n_targets, float32))
            step = _alpha_chunk(sel.size, n_k, n_targets, width, 4 if float32 else 8)
            for c0 in range(0, sel.size, step):
                ai = sel[c0:c0 + step]
                ait = xp.asarray(ai, device=dev)
                if use_c:
                    # dual form: I - H_kk = U_k diag(c) U_k', e_k = U_k diag(c) U'Y, no cancellation
                    Uk = xp.take(U, idx, axis=0)
                    Q = Uk[None, :, :] * xp.take(C, ait, axis=0)[:, None, :]
                    Hk = None
                    Mk = _f64(xp, _rows(xp, Q, Uk.T))                          # one GEMM
                else:
                    Q = Wk[None, :, :] * xp.take(G, ait, axis=0)[:, None, :]   # (a, n_k, rank)
                    Hk = _rows(xp, Q, Wk.T)                                   # (a, n_k, n_k): one GEMM
                    if intercept:
                        Hk = Hk + 1.0 / n
                    Mk = eye[None, :, :] - _f64(xp, Hk)
                fac = np.zeros(ai.size, dtype=bool)
                if factor_ok:
                    with _one_blas_thread(xp):
                        Minv = xp.linalg.inv(Mk)
                    kappa = to_numpy(xp.max(xp.sum(xp.abs(Mk), axis=-2), axis=-1)
                                     * xp.max(xp.sum(xp.abs(Minv), axis=-2), axis=-1))
                    fac = kappa <= KAPPA_MAX
                for use_factor in (True, False):
                    part = np.flatnonzero(fac == use_factor)
                    if part.size == 0:
                        continue
                    pt = xp.asarray(part, device=dev)
                    Qp = xp.take(Q, pt, axis=0)
                    if use_factor:
                        Mi = xp.take(Minv, pt, axis=0)
                        with _one_blas_thread(xp):
                            MiQ = xp.astype(Mi, W.dtype) @ Qp                 # (a', n_k, width)
                        if use_c:
                            O = _rows(xp, MiQ, UtY)
                        else:
                            if YZ is None:
                                YZ = xp.concat([Yk, WtY], axis=0)             # (n_k + rank, T): read once per group
                            # residual: r = M^-1 y_k - M^-1 Q_k W'Y;  direct: pred = (I - M^-1) y_k + M^-1 Q_k W'Y
                            first = Mi if form == "residual" else eye[None, :, :] - Mi
                            B = xp.concat([xp.astype(first, W.dtype), -MiQ if form == "residual" else MiQ], axis=2)
                            O = _rows(xp, B, YZ)                             # one GEMM for every target
                    else:
                        Mp = xp.take(Mk, pt, axis=0)
                        if use_c:
                            rhs = _rows(xp, Qp, UtY)
                        else:
                            fitted = _rows(xp, Qp, WtY)                       # full-fit prediction (a', n_k, T)
                            rhs = (Yk[None, :, :] - fitted if form == "residual"
                                   else fitted - _rows(xp, xp.take(Hk, pt, axis=0), Yk))
                        with _one_blas_thread(xp):
                            O = xp.astype(xp.linalg.solve(Mp, _f64(xp, rhs)), W.dtype)
                    out[gi, xp.asarray(ai[part], device=dev), :] = _heldout_stats(
                        xp, Yk, O, residual=form == "residual", scoring=scoring, ykc=ykc, ss=ss)
    return out
