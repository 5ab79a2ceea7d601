"""Permutation p-values and multiple-comparison corrections over declared families.

The surrogates themselves live in :mod:`xaffect.surrogates` (shared with
synchrony) and are re-exported here under encoding's names; the kernels that
push every surrogate through one outer fold's decomposition
(:func:`null_scores`, called by :func:`._nested.fit_outer_fold`) live here. Surrogate ``j``
is the same draw for every target and every cell of a grid (see
:mod:`._nested`), so max-statistics over any family of cells are valid;
:func:`family_pvalues` computes them for the family a claim rests on.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import xarray as xr

from ..errors import ConfigError
from ..stats import fdr_bh  # noqa: F401  (re-exported)
from ..store.clock import run_bounds
from ..surrogates import (circular_shift, make_surrogates, match_length, permutation_draws,  # noqa: F401
                          phase_randomise, shift_draws)

__all__ = ["circular_shift", "phase_randomise", "make_surrogates", "permutation_p", "fdr_bh", "fwer_maxstat",
           "family_pvalues", "GRID_FAMILY"]

#: the family of ``p_fdr``/``p_fwer`` in a scores store: the whole search of one grid (one target kind)
GRID_FAMILY = ("feature_set", "layer", "element", "target")


# the surrogate kernels live in xaffect.surrogates (shared with synchrony);
# re-exported here under encoding's historical names
shift_lags = shift_draws

def permutation_p(observed: np.ndarray, null: np.ndarray, axis: int = -1) -> np.ndarray:
    """One-sided permutation p-value with the +1 correction.

    Parameters
    ----------
    observed : array of shape S
    null : array of shape S with an extra ``axis`` of n_perm

    Returns
    -------
    array of shape S: ``(1 + #(null >= observed)) / (1 + n_perm)``
    """
    null = np.moveaxis(null, axis, -1)
    count = np.sum(null >= observed[..., None], axis=-1)
    p = (1.0 + count) / (1.0 + null.shape[-1])
    return np.where(np.isnan(observed), np.nan, p)




def fwer_maxstat(observed: np.ndarray, null: np.ndarray, family_axes: tuple[int, ...]) -> np.ndarray:
    """Max-statistic family-wise p-values.

    Parameters
    ----------
    observed : array of shape S
    null : array of shape S + (n_perm,)
        Surrogate ``j`` must be the same draw for every cell of the family.
    family_axes : tuple of int
        Axes of ``observed`` forming the family (e.g. target and layer).

    Returns
    -------
    array of shape S
    """
    mx = np.nanmax(null, axis=family_axes, keepdims=True)          # S' + (n_perm,)
    count = np.sum(mx >= observed[..., None], axis=-1)
    p = (1.0 + count) / (1.0 + null.shape[-1])
    return np.where(np.isnan(observed), np.nan, p)


def family_pvalues(scores: xr.Dataset, family: Sequence[str] = GRID_FAMILY, *, method: str = "fwer",
                   **selection) -> xr.DataArray:
    """p-values of ``scores`` corrected over a declared family of tests.

    A claim names the search it rests on: "layer L of feature set F predicts
    arousal" rests on (layer,) if F and arousal were fixed in advance; "some
    deep layer predicts some rating" on (feature_set, layer, element, target)
    restricted to the deep sets and the rating targets. Select the tests of
    the search with ``selection`` (``.sel`` keywords), name the dims pooled
    into one family with ``family``; every other dim indexes separate
    families.

    Parameters
    ----------
    scores : Dataset
        A scores store with ``r_mean (feature_set, layer, element, target)``,
        ``p`` and ``null (..., perm)`` (the fold-mean null r, the same
        surrogate index in every cell: see :func:`xaffect.encoding.fit_grid`).
    family : sequence of str
        Dims of one family (default: all four, the whole search).
    method : {"fwer", "fdr", "none"}
        "fwer": max-statistic family-wise p (Westfall & Young 1993; Nichols
        & Holmes 2002): each test's r against the null distribution of the
        family's maximum. "fdr": Benjamini-Hochberg over the family's ``p``.
        "none": ``p`` unchanged (a single pre-declared test).
    **selection
        ``dim=values`` passed to ``scores.sel`` first (e.g.
        ``target=["rating:arousal", "rating:valence"]``,
        ``feature_set=["hubert.pca12"]``).

    Returns
    -------
    DataArray of the shape of the selected ``r_mean``
        attrs: ``family`` (the pooled dims joined by " x "), ``method``,
        ``n_tests`` (tests per family, NaN cells excluded), ``selection``.

    Notes
    -----
    Targets of different kinds (ratings, synchrony, regions) come from
    separate grids; pooling them is valid for the stimulus-permutation null
    (the same permutation for every kind) and approximate for shift/phase.
    """
    if method not in ("fwer", "fdr", "none"):
        raise ConfigError(f"method: must be 'fwer', 'fdr' or 'none', got {method!r}")
    dims4 = tuple(d for d in scores["r_mean"].dims)
    bad = [d for d in family if d not in dims4]
    if bad:
        raise ConfigError(f"family: {bad} are not dims of the scores ({dims4})")
    for var in ("p", "null") if method == "fwer" else ("p",):
        if var not in scores:
            raise ConfigError(f"family_pvalues: the scores have no {var!r} (fitted with n_perm=0?)")
    ds = scores.sel(**{k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in selection.items()})
    r = ds["r_mean"]
    fam = [d for d in r.dims if d in family]
    rest = [d for d in r.dims if d not in family]
    r_t = r.transpose(*rest, *fam)
    shape_rest = tuple(r_t.sizes[d] for d in rest)
    n_fam = int(np.prod([r_t.sizes[d] for d in fam])) if fam else 1
    obs = np.asarray(r_t.values, dtype=np.float64).reshape(shape_rest + (n_fam,))
    if method == "fwer":
        null = np.asarray(ds["null"].transpose(*rest, *fam, "perm").values, dtype=np.float64)
        null = null.reshape(shape_rest + (n_fam, null.shape[-1]))
        out = fwer_maxstat(obs, null, family_axes=(len(rest),))
    else:
        p = np.asarray(ds["p"].transpose(*rest, *fam).values, dtype=np.float64).reshape(shape_rest + (n_fam,))
        out = fdr_bh(p, axis=-1) if method == "fdr" else p
    res = xr.DataArray(out.reshape(r_t.shape), dims=r_t.dims, coords=r_t.coords).transpose(*r.dims)
    res.attrs = dict(family=" x ".join(fam) or "single test", method=method,
                     n_tests=int(np.isfinite(obs).sum(-1).max()) if obs.size else 0,
                     selection=repr(selection), null=str(scores.attrs.get("null", "")))
    return res


# --------------------------------------------------------------------------------------------------
# Null kernels: the held-out r of every surrogate, through one outer fold's decomposition.
#
# Written by hand: no library replays a ridge fold on permuted or shifted targets. The fold's
# held-out prediction of training targets S is P = A diag(h) W' S (A: test factor, W: hat factor,
# h = 1/(s + alpha)); its centred part is Q R0 diag(h) W' S with Q R0 the QR of the centred A, so
# every r needs only q = min(n_test, rank) numbers per surrogate and target, never an
# (n_test x n_targets) prediction per surrogate.
# --------------------------------------------------------------------------------------------------

#: doubles held at once by a null kernel's largest work array (per target chunk)
_WORK_DOUBLES = 4_000_000


def null_scores(dec, Dte, Y, ymu, train, test, inner, best, alphas, *, n_perm, null, seed, batch=50):
    """Held-out r of models fit to surrogate targets, shape (n_targets, n_perm).

    Surrogate ``j`` shifts, phase-randomises or permutes every stimulus of the
    *whole* target matrix with draws that depend only on ``(seed, j)``, so it
    is the same surrogate in every fold and every cell: the null replays the
    whole cross-validation on a surrogate data set (training and held-out
    parts alike), which keeps the dependence between folds that the
    fold-mean r has. Each surrogate is pushed through this fold's
    decomposition at each target's chosen alpha -- no refit.

    Fast routes, each equal to the direct one (forming every surrogate) to
    round-off: the stimulus null from one product per (training stimulus,
    donor stimulus) (:func:`_stimulus_null_stats`); circular shifts for all
    lags at once by FFT cross-correlation (:func:`_shift_null_stats`), in the
    rank-sized space or through the hat rows. Both score every surrogate
    from sufficient statistics in a q = min(n_test, rank) basis of the
    held-out predictions. They need the held-out rows to be exactly
    one stimulus and every other stimulus wholly in training (leave one
    stimulus out); otherwise (blocked folds with a gap, phase nulls) the
    surrogates are formed ``batch`` at a time.

    Parameters
    ----------
    dec : decomposition
        ``s`` (rank,), ``W`` (n_train, rank), ``test_factor(Dte)`` (n_test, rank).
    Dte : array of shape (n_test, n_features)
    Y : array of shape (n_samples, n_targets)
    ymu : array of shape (n_targets,)
        Training mean of the targets.
    train, test : index arrays
    inner : array of shape (n_samples,)
        Stimulus (or block) of every sample.
    best : int array of shape (n_targets,)
        Index of each target's chosen alpha.
    alphas : array of shape (n_alphas,)
    n_perm, seed : int
    null : {"shift", "phase", "stimulus"}

    Returns
    -------
    array of shape (n_targets, n_perm)
    """
    A = np.asarray(dec.test_factor(Dte), dtype=np.float64)          # (n_test, rank)
    W = np.asarray(dec.W, dtype=np.float64)                          # (n_train, rank)
    sv = np.asarray(dec.s, dtype=np.float64)
    n_te, rank = A.shape
    n_tr = W.shape[0]
    # route by flop count: a (n_test, n_train) hat per alpha, or the reduced space W'S
    reduced = rank * (n_tr + n_te) < n_te * n_tr
    groups_a = {ai: np.flatnonzero(best == ai) for ai in np.unique(best)}
    layout = _loso_layout(np.asarray(inner), np.asarray(train), np.asarray(test))
    if layout is not None and null == "stimulus":
        return _stimulus_null_stats(A, W, sv, alphas, groups_a, Y, layout, n_perm=n_perm, seed=seed)
    if layout is not None and null == "shift":
        return _shift_null_stats(A, W, sv, alphas, groups_a, Y, ymu, layout, n_perm=n_perm, seed=seed)
    hats = {} if reduced else {ai: (A * (1.0 / (sv + alphas[ai]))) @ W.T for ai in groups_a}   # (n_test, n_train)
    out = np.empty((Y.shape[1], n_perm))
    for start in range(0, n_perm, batch):
        nb = min(batch, n_perm - start)
        S = make_surrogates(Y, inner, nb, kind=null, seed=seed, start=start)   # (nb, n_samples, T)
        Str = S[:, train] - ymu
        Ste = S[:, test]
        if reduced:
            Z = np.einsum("jr,bjt->brt", W, Str, optimize=True)                # (nb, rank, T)
        for ai, idx in groups_a.items():
            if reduced:
                P = np.einsum("ir,brt->bit", A * (1.0 / (sv + alphas[ai])), Z[:, :, idx], optimize=True)
            else:
                Sk = Str[:, :, idx].transpose(1, 0, 2).reshape(n_tr, -1)        # (n_train, nb*k)
                P = (hats[ai] @ Sk).reshape(n_te, nb, idx.size).transpose(1, 0, 2)   # (nb, n_test, k)
            out[idx, start:start + nb] = _r_batch(Ste[:, :, idx], P).T
    return out


def _loso_layout(inner, train, test):
    """``(spans, t, training runs, pos)`` when ``test`` is exactly run ``t`` and every other run is wholly
    in ``train`` (``pos``: row of each sample in the training design); else None."""
    runs = run_bounds(inner)
    spans = list(zip(runs[:-1].tolist(), runs[1:].tolist()))
    if test.size == 0:
        return None
    hit = [r for r, (a, b) in enumerate(spans) if a == test[0]]
    if len(hit) != 1:
        return None
    t = hit[0]
    a, b = spans[t]
    if test.size != b - a or not np.array_equal(test, np.arange(a, b)):
        return None
    pos = np.full(inner.size, -1)
    pos[train] = np.arange(train.size)
    tr_runs = [r for r in range(len(spans)) if r != t]
    if any((pos[a:b] < 0).any() for a, b in (spans[r] for r in tr_runs)):
        return None
    if train.size != sum(b - a for a, b in (spans[r] for r in tr_runs)):
        return None
    return spans, t, tr_runs, pos


@functools.lru_cache(maxsize=64)
def _cached_draws(kind: str, sizes: tuple, n: int, seed: int) -> np.ndarray:
    """The draws of surrogates ``0 .. n-1`` for runs of ``sizes`` (the same in every fold and cell: made once)."""
    groups = np.repeat(np.arange(len(sizes)), sizes)
    fn = permutation_draws if kind == "stimulus" else shift_draws
    out = fn(groups, n, seed=seed)
    out.setflags(write=False)
    return out


def _test_basis(A: np.ndarray):
    """``Q`` (n_test, q) and ``R0`` (q, rank), the QR of ``A`` centred over the held-out rows."""
    return np.linalg.qr(A - A.mean(0), mode="reduced")


def _ratio(cov, var_y, var_p):
    den = np.sqrt(var_y * np.clip(var_p, 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, cov / den, 0.0)


def _rank_space_cheaper(rank, q, n_tr, n_r_tr, n_runs, n_t, n_alpha_groups) -> bool:
    """Flop count: the stimulus null's blocks ``W_r' Y_d`` then ``R0 diag(h)``, or hat rows ``R0 diag(h) W'`` per alpha."""
    return (rank * n_tr * n_runs + q * rank * n_r_tr * n_runs) * n_t <= \
        n_alpha_groups * q * rank * n_tr + q * n_tr * n_runs * n_t


def _stimulus_null_stats(A, W, sv, alphas, groups_a, Y, layout, *, n_perm, seed):
    """Stimulus-permutation nulls from sufficient statistics of one product per (training run, donor).

    Surrogate ``j`` gives run ``r`` the length-matched targets of run ``d = perm_j[r]``, so the
    centred held-out prediction is ``Q sum_r E[r, d]`` with ``E[r, d] = R0 diag(h) W[c_r]' Y_d``
    (q x n_targets). The ``n_train_runs x n_runs`` blocks ``E`` are formed once (in the rank-sized
    space, or through the hat rows ``R0 diag(h) W'`` per alpha when that is cheaper), and all
    surrogates at once by one GEMM with the 0/1 pairing matrix; the covariance with the held-out
    donor ``perm_j[t]`` comes from the blocks' products with ``Q' y_d`` (n_runs of them). (The hat
    annihilates constants -- the training design is centred -- so the training mean of the targets
    need not be removed.)
    """
    spans, t, tr_runs, pos = layout
    sizes = tuple(b - a for a, b in spans)
    perms = _cached_draws("stimulus", sizes, int(n_perm), int(seed))               # (n_perm, n_runs)
    n_te, rank = A.shape
    n_tr = W.shape[0]
    n_runs, n_r_tr, n_t = len(spans), len(tr_runs), Y.shape[1]
    Q, R0 = _test_basis(A)
    q = R0.shape[0]
    # the 0/1 pairing matrix: surrogate j uses block (r, perm_j[r]) of every training run r
    sel = np.zeros((n_perm, n_r_tr * n_runs))
    sel[np.arange(n_perm)[:, None], np.arange(n_r_tr)[None, :] * n_runs + perms[:, tr_runs]] = 1.0
    d0 = perms[:, t]                                                                  # held-out donors
    # flops: blocks in the rank-sized space, then R0 diag(h); or hat rows per alpha, then blocks
    rank_space = _rank_space_cheaper(rank, q, n_tr, n_r_tr, n_runs, n_t, len(groups_a))
    hat_rows = {}
    out = np.empty((n_t, n_perm))
    chunk = max(1, _WORK_DOUBLES // (max(q, rank if rank_space else 0) * n_r_tr * n_runs + n_perm * q))
    for c0 in range(0, n_t, chunk):
        cols = np.arange(c0, min(c0 + chunk, n_t))
        # donors matched to the held-out length: centred, their variances and Q' y_d
        held = np.stack([match_length(Y[a:b, cols], n_te) for a, b in spans])       # (n_runs, n_te, k)
        held = held - held.mean(1, keepdims=True)
        var_y = (held ** 2).sum(1)                                                    # (n_runs, k)
        Qy = np.einsum("iq,dik->dqk", Q, held, optimize=True)                        # (n_runs, q, k)
        by_length = {}                                   # every donor matched to each training length, once
        for r in tr_runs:
            n_r = spans[r][1] - spans[r][0]
            if n_r not in by_length:
                by_length[n_r] = np.stack([match_length(Y[a:b, cols], n_r) for a, b in spans], 1)
        matched = [by_length[spans[r][1] - spans[r][0]] for r in tr_runs]            # (n_r, n_runs, k) each
        if rank_space:
            B = np.stack([W[pos[spans[r][0]:spans[r][1]]].T @ m.reshape(m.shape[0], -1)
                          for r, m in zip(tr_runs, matched)]).reshape(n_r_tr, rank, n_runs, cols.size)
        for ai, idx in groups_a.items():
            loc = idx[(idx >= cols[0]) & (idx <= cols[-1])] - cols[0]
            if not loc.size:
                continue
            h = 1.0 / (sv + alphas[ai])
            if rank_space:
                E = np.einsum("qr,xrdk->xdqk", R0 * h, B[..., loc], optimize=True)     # (n_r_tr, n_runs, q, k)
            else:
                if ai not in hat_rows:
                    hat_rows[ai] = (R0 * h) @ W.T                                     # (q, n_train)
                G = hat_rows[ai]
                E = np.stack([np.einsum("qi,idk->dqk", G[:, pos[spans[r][0]:spans[r][1]]], m[:, :, loc],
                                        optimize=True) for r, m in zip(tr_runs, matched)])
            E = E.reshape(n_r_tr * n_runs, q, loc.size)
            Z = (sel @ E.reshape(n_r_tr * n_runs, -1)).reshape(n_perm, q, loc.size)    # Q' P_j, centred
            var_p = (Z ** 2).sum(1)                                                   # (n_perm, k)
            cov_blocks = np.einsum("xqk,dqk->xdk", E, Qy[:, :, loc], optimize=True)   # (blocks, n_runs, k)
            cov_all = (sel @ cov_blocks.reshape(n_r_tr * n_runs, -1)).reshape(n_perm, n_runs, loc.size)
            cov = cov_all[np.arange(n_perm), d0]                                      # (n_perm, k)
            out[cols[loc]] = _ratio(cov, var_y[d0][:, loc], var_p).T
    return out


def _shift_null_stats(A, W, sv, alphas, groups_a, Y, ymu, layout, *, n_perm, seed):
    """Circular-shift nulls for every lag at once by FFT cross-correlation, from sufficient statistics.

    Surrogate ``j`` rolls training run ``r`` by ``k_jr`` and the held-out run by ``k_jt``. With
    ``F`` any row factor of the hat (``P = Q R0 diag(h) W' S``), ``F_r roll(Y_r, k)`` for every lag
    ``k`` of run ``r`` is one circular cross-correlation along time
    (``irfft(rfft(F_r) conj(rfft(Y_r)))``), so ``Q' P_j`` is a sum over training runs of one
    precomputed slice each, and its covariance with the rolled held-out target needs
    ``Q' roll(y, k)`` for every lag, another cross-correlation. ``F = W'`` (rank-sized space, the
    low-rank route: one correlation for all alphas, ``R0 diag(h)`` after) when ``rank <= q``,
    else ``F = R0 diag(h) W'`` per alpha (the hat route: q = n_test rows).
    """
    spans, t, tr_runs, pos = layout
    sizes = tuple(b - a for a, b in spans)
    lags = _cached_draws("shift", sizes, int(n_perm), int(seed))                     # (n_perm, n_runs)
    n_te, rank = A.shape
    n_t = Y.shape[1]
    Q, R0 = _test_basis(A)
    q = R0.shape[0]
    rank_space = rank <= q
    ta, tb = spans[t]
    rows = [pos[a:b] for a, b in (spans[r] for r in tr_runs)]
    FW = [np.fft.rfft(W[c], axis=0) for c in rows] if rank_space else None             # (f, rank) each
    FQ = np.fft.rfft(Q, axis=0)                                                          # (f, q)
    hat_rows = {}
    out = np.empty((n_t, n_perm))
    width = max(rank if rank_space else q, q)
    chunk = max(1, _WORK_DOUBLES // ((sum(sizes) + n_te) * width))
    for c0 in range(0, n_t, chunk):
        cols = np.arange(c0, min(c0 + chunk, n_t))
        FY = [np.fft.rfft(Y[a:b, cols] - ymu[cols], axis=0) for a, b in (spans[r] for r in tr_runs)]   # (f, k)
        yc = Y[ta:tb, cols] - Y[ta:tb, cols].mean(0)
        G = np.fft.irfft(FQ[:, :, None] * np.conj(np.fft.rfft(yc, axis=0))[:, None, :], n=n_te, axis=0)
        var_y = (yc ** 2).sum(0)                                                          # G[k] = Q' roll(y, k)
        if rank_space:                                 # C[k] = W_r' roll(Y_r, k), every lag, all alphas
            corr = [np.fft.irfft(fw[:, :, None] * np.conj(fy)[:, None, :], n=sizes[r], axis=0)
                    for r, fw, fy in zip(tr_runs, FW, FY)]                                # (n_r, rank, k) each
        per_alpha = []
        for ai, idx in groups_a.items():
            loc = idx[(idx >= cols[0]) & (idx <= cols[-1])] - cols[0]
            if not loc.size:
                continue
            h = 1.0 / (sv + alphas[ai])
            if rank_space:
                per_alpha.append((loc, R0 * h, None))
            else:                                      # C[k] = R0 diag(h) W_r' roll(Y_r, k), per alpha
                if ai not in hat_rows:
                    hat_rows[ai] = [np.fft.rfft(((R0 * h) @ W[c].T).T, axis=0) for c in rows]   # (f, q) each
                per_alpha.append((loc, None, [
                    np.fft.irfft(fh[:, :, None] * np.conj(fy[:, loc])[:, None, :], n=sizes[r], axis=0)
                    for r, fh, fy in zip(tr_runs, hat_rows[ai], FY)]))
        # surrogates in blocks small enough to stay in cache while the runs' slices are summed
        block = max(1, 262_144 // (width * cols.size))
        for p0 in range(0, n_perm, block):
            pj = np.arange(p0, min(p0 + block, n_perm))
            if rank_space:
                Z = corr[0][lags[pj, tr_runs[0]]]
                for r, c in zip(tr_runs[1:], corr[1:]):
                    Z += c[lags[pj, r]]                                                   # W' S_j, (block, rank, k)
            Gj = G[lags[pj, t]]                                                           # Q' roll(y, k_jt)
            for loc, M, corr_a in per_alpha:
                if rank_space:
                    E = np.matmul(M, Z[:, :, loc])                                        # Q' P_j, (block, q, k)
                else:
                    E = corr_a[0][lags[pj, tr_runs[0]]]
                    for r, c in zip(tr_runs[1:], corr_a[1:]):
                        E += c[lags[pj, r]]
                Gl = Gj[:, :, loc]
                out[cols[loc][:, None], pj[None, :]] = _ratio((E * Gl).sum(1), var_y[loc], (E ** 2).sum(1)).T
    return out


def _r_batch(Yt: np.ndarray, P: np.ndarray) -> np.ndarray:
    """Pearson r per (surrogate, target) of arrays of shape (nb, n_test, k)."""
    Yt = Yt - Yt.mean(1, keepdims=True)
    P = P - P.mean(1, keepdims=True)
    den = np.sqrt((Yt ** 2).sum(1) * (P ** 2).sum(1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, (Yt * P).sum(1) / den, 0.0)
