"""Permutation p-values and multiple-comparison corrections over declared families.

The surrogates themselves live in :mod:`xaffect.surrogates` (shared with
synchrony) and are re-exported here under encoding's names. Surrogate ``j``
is the same draw for every target and every cell of a grid (see
:mod:`._nested`), so max-statistics over any family of cells are valid;
:func:`family_pvalues` computes them for the family a claim rests on.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from ..errors import ConfigError
from ..stats import fdr_bh  # noqa: F401  (re-exported)
from ..surrogates import (circular_shift, make_surrogates, phase_randomise,  # noqa: F401
                          shift_draws)

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
