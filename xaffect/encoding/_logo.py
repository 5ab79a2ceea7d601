"""Leave-one-group-out ridge scores for every alpha and target from one decomposition.

The inner cross-validation of the grid: the held-out residuals of every
training group, for every alpha, from the hat matrix of the whole training
set (:func:`logo_scores`). Two routes apply ``(I - H_kk)^-1``: a float64
solve with every target as a right-hand side, or -- for a float32 design
and many targets -- one float32 factor per (group, alpha), so the targets
pass through a single GEMM and are reduced to per-target sums at once.
"""

from __future__ import annotations

import numpy as np
from array_api_compat import device as array_device

from ._solvers import Decomposition, _as, _f64, _one_blas_thread, to_numpy

__all__ = ["logo_scores", "KAPPA_MAX"]


def _alpha_chunk(n_alphas: int, n_k: int, n_targets: int, width: int, itemsize: int, *, factor: bool,
                 budget: int = 48 * 2**20) -> int:
    """Alphas per batched step so that one step's (alphas, n_k, ...) blocks stay near ``budget`` bytes.

    A step holds the system ``(n_k, n_k)`` and its inverse in float64, the
    ``(n_k, width)`` products in the design's dtype, and per target: the
    factor route one held-out block and two scoring temporaries in the
    design's dtype; the solve route the full-fit block, the right-hand side,
    its float64 copy and the float64 solution, then the held-out block and
    its temporaries. Blocks stay below glibc's largest mmap threshold
    (32 MiB), so each step reuses heap pages instead of faulting in fresh ones.
    """
    per_target = 3 * itemsize if factor else 3 * itemsize + 16 + 8
    per_alpha = n_k * (16 * n_k + 2 * itemsize * width + per_target * n_targets)
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
            step = _alpha_chunk(sel.size, n_k, n_targets, width, 4 if float32 else 8, factor=factor_ok)
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
