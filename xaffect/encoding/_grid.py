"""The ridge grid: feature set x layer x element x target as one lazy dask graph.

Each task of the graph is one (feature set, layer, element, outer fold): it
reads that layer's slice of the feature cube, builds the delays within each
stimulus, standardises on the training stimuli, decomposes the training
design once and uses that decomposition for every alpha, every target and
every null surrogate (:func:`._nested.fit_outer_fold`). One final task
gathers the folds into the ``scores`` layout with p-values.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

import dask
import numpy as np
import xarray as xr
from threadpoolctl import threadpool_limits

from ..errors import InputError
from ..store.clock import check_same_clock, stimulus_slices, window_mean
from ..store.compute import compute as _compute
from ._cv import delay_samples, make_delays, outer_folds
from ._nested import fit_outer_fold
from ._nulls import fdr_bh, fwer_maxstat, permutation_p
from ._ridge import DEFAULT_ALPHAS

__all__ = ["fit_grid", "as_feature_cube"]


def as_feature_cube(obj: xr.Dataset | xr.DataArray, name: str = "features") -> xr.DataArray:
    """A feature store as ``(element, time, layer, unit)``.

    Deep ``activation (element, time, layer, unit)`` is returned as is;
    reduced ``(..., component)`` renames ``component`` to ``unit``; classical
    ``lld (element, time, descriptor)`` gets ``layer = [-1]``.
    """
    if isinstance(obj, xr.Dataset):
        for var in ("activation", "lld"):
            if var in obj.data_vars:
                obj = obj[var]
                break
        else:
            raise InputError(f"{name}: no 'activation' or 'lld' variable (have {list(obj.data_vars)})")
    da = obj
    if "component" in da.dims:
        da = da.rename(component="unit")
    if "descriptor" in da.dims:
        da = da.rename(descriptor="unit").expand_dims(layer=[-1], axis=2)
    if "element" not in da.dims:
        da = da.expand_dims(element=["original"])
    need = ("element", "time", "layer", "unit")
    if set(da.dims) != set(need):
        raise InputError(f"{name}: expected dims {need}, got {da.dims}")
    return da.transpose(*need)


def _clock_rate(obj) -> float:
    if "window" in obj.attrs:
        return 1.0 / float(obj.attrs["step"])
    return float(obj.attrs.get("clock_rate", 1.0))


def _check_finite_targets(Y: np.ndarray, targets: xr.DataArray, stims: np.ndarray) -> None:
    bad = np.argwhere(~np.isfinite(Y))
    if bad.size:
        t, j = bad[0]
        raise InputError(f"targets: {len(bad)} NaN/inf values, first in target {str(targets['target'].values[j])!r} "
                         f"of stimulus {str(stims[t])!r} at onset {float(targets['onset'].values[t]):g} s")


def _prep_cell(x, stims, lags, where: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    bad = np.argwhere(~np.isfinite(x))
    if bad.size:
        raise InputError(f"{where}: {len(bad)} NaN/inf feature values, first in stimulus {str(stims[bad[0][0]])!r} "
                         f"(time step {bad[0][0]}, unit {bad[0][1]})")
    return make_delays(x, stims, lags)


def _fold_task(X, Y, C, train, test, inner, kw, blas_threads):
    if blas_threads:
        with threadpool_limits(limits=blas_threads):
            out = fit_outer_fold(X, Y, train, test, inner, covariates=C, **kw)
    else:
        out = fit_outer_fold(X, Y, train, test, inner, covariates=C, **kw)
    const = np.asarray(Y)[test].std(0) == 0
    if const.any():
        out["r"][const] = np.nan
        out["r2"][const] = np.nan
        out["r_null"][const] = np.nan
    return out


def fit_grid(features: Mapping[str, xr.Dataset | xr.DataArray], targets: xr.DataArray, *,
             covariates: xr.DataArray | None = None, delays: Sequence[float] = (0.0,), cv: str | int = "loso",
             gap: int | None = None, alphas: Sequence[float] | None = None, scoring: str = "neg_mse",
             n_perm: int = 0, null: str = "shift", seed: int = 0, elements: Sequence[str] | None = None,
             layers: Sequence[int] | None = None, blas_threads: int | None = 1, compute: bool = True,
             progress: bool = True):
    """Nested cross-validated ridge for every feature set x layer x element x target.

    Parameters
    ----------
    features : mapping of str to Dataset or DataArray
        Feature set name to a feature store (see :func:`as_feature_cube`) on
        the analysis clock (``time`` with ``stimulus``/``onset`` coordinates).
    targets : DataArray of shape (time, target)
        Responses on the same clock, or on a sliding-window clock (attrs
        ``window``/``step``), in which case features and covariates are
        averaged over the same windows first.
    covariates : DataArray of shape (time, descriptor), optional
        Trained on as regressors, set to their training mean at prediction.
    delays : sequence of float
        FIR delays in seconds, built within each stimulus.
    cv : "loso" or int
        Leave one stimulus out, or that many contiguous blocks.
    gap : int, optional
        Blocked cv: samples dropped each side of the test block (default:
        the largest delay plus the window overlap).
    alphas : sequence of float
        Default ``10 ** arange(-5, 5.5, 0.5)``.
    scoring : {"neg_mse", "r", "r2"}
        Inner-CV criterion for each target's alpha.
    n_perm : int
        Null surrogates of the targets (``null``: "shift" = circular shift
        within stimulus, "phase" = phase randomisation within stimulus).
    seed : int
    elements, layers : sequence, optional
        Subsets (default all).
    blas_threads : int or None
        BLAS threads inside each task (default 1: the grid's parallelism
        comes from dask running (cell, fold) tasks side by side, and
        oversubscribed BLAS threads are far slower; None leaves BLAS alone).
    compute : bool
        Compute now (default), or return the ``dask.delayed`` of the result.
    progress : bool

    Returns
    -------
    xarray.Dataset
        ``r``, ``r2``, ``alpha``, ``cv_score`` (feature_set, layer, element,
        target, fold); ``r_mean``, ``p``, ``p_fdr`` (BH across targets),
        ``p_fwer`` (max statistic across targets x layers), ``null_mean``,
        ``null_std`` (feature_set, layer, element, target); ``null``
        (..., perm) of the fold-mean null r.
    """
    if not isinstance(targets, xr.DataArray) or set(targets.dims) != {"time", "target"}:
        raise InputError(f"targets: expected a DataArray (time, target), got {getattr(targets, 'dims', targets)}")
    if not features:
        raise InputError("features: no feature sets given")
    targets = targets.transpose("time", "target")
    window = targets.attrs.get("window")
    cubes = {}
    for name, obj in features.items():
        cube = as_feature_cube(obj, name)
        if window is not None and "window" not in cube.attrs:
            cube = window_mean(cube, window=float(window), step=float(targets.attrs["step"]))
        check_same_clock(cube, targets, names=(f"features {name!r}", "targets"))
        cubes[name] = cube
    C = None
    if covariates is not None:
        cov = covariates
        if window is not None and "window" not in cov.attrs:
            cov = window_mean(cov, window=float(window), step=float(targets.attrs["step"]))
        check_same_clock(cov, targets, names=("covariates", "targets"))
        C = np.asarray(cov.transpose("time", ...).values, dtype=np.float64).reshape(cov.sizes["time"], -1)
        if not np.isfinite(C).all():
            raise InputError("covariates: NaN/inf values (fill or drop those descriptors first)")

    stims = np.asarray(targets["stimulus"].values).astype(str)
    stimulus_slices(targets)                                  # contiguous runs or error
    Y = np.asarray(targets.values, dtype=np.float64)
    _check_finite_targets(Y, targets, stims)
    const = Y.std(0) == 0
    if const.any():
        warnings.warn(f"targets: {list(targets['target'].values[const])} are constant; their scores are NaN",
                      UserWarning, stacklevel=2)
    rate = _clock_rate(targets)
    lags = delay_samples(delays, rate)
    if gap is None:
        overlap = int(math.ceil(float(window) * rate)) - 1 if window is not None else 0
        gap = max([abs(k) for k in lags] + [0]) + max(overlap, 0)
    folds, inner = outer_folds(stims, cv, gap=gap)
    alphas = np.asarray(DEFAULT_ALPHAS if alphas is None else alphas, dtype=np.float64)
    kw = dict(alphas=alphas, scoring=scoring, n_perm=int(n_perm), null=null, seed=int(seed))

    Yd = dask.delayed(Y, pure=True)
    Cd = dask.delayed(C, pure=True) if C is not None else None
    all_layers = sorted({int(v) for c in cubes.values() for v in c["layer"].values})
    if layers is not None:
        all_layers = [lay for lay in all_layers if lay in set(int(v) for v in layers) or lay == -1]
    all_elements = list(dict.fromkeys(str(e) for c in cubes.values() for e in c["element"].values))
    if elements is not None:
        missing = [e for e in elements if e not in all_elements]
        if missing:
            raise InputError(f"elements: {missing} not in the feature stores (have {all_elements})")
        all_elements = list(elements)
    cells = []
    for name, cube in cubes.items():
        for lay in cube["layer"].values:
            if int(lay) not in all_layers:
                continue
            for el in all_elements:
                if el not in cube["element"].values:
                    continue
                x = cube.sel(layer=lay, element=el).transpose("time", "unit").data
                where = f"features {name!r} layer {int(lay)} element {el!r}"
                X = dask.delayed(_prep_cell)(x, stims, lags, where, dask_key_name=f"prep-{name}-{int(lay)}-{el}")
                tasks = [dask.delayed(_fold_task)(X, Yd, Cd, tr, te, inner, kw, blas_threads,
                                                  dask_key_name=f"fold-{name}-{int(lay)}-{el}-{fname}")
                         for fname, tr, te in folds]
                cells.append(((name, int(lay), el), tasks))
    coords = dict(feature_set=list(cubes), layer=all_layers, element=all_elements,
                  target=[str(t) for t in targets["target"].values], fold=[f[0] for f in folds])
    attrs = dict(clock_rate=rate, delays=[float(d) for d in delays], cv=str(cv), gap=int(gap), n_perm=int(n_perm),
                 null=null, scoring=scoring, alphas=[float(a) for a in alphas], seed=int(seed),
                 covariates=C is not None)
    if window is not None:
        attrs.update(window=float(window), step=float(targets.attrs["step"]))
    keys = [k for k, _ in cells]
    result = dask.delayed(_assemble)(keys, [t for _, t in cells], coords, attrs)
    if not compute:
        return result
    if blas_threads:
        with threadpool_limits(limits=blas_threads):
            return _compute(result, desc="ridge grid", progress=progress)[0]
    return _compute(result, desc="ridge grid", progress=progress)[0]


def _assemble(keys, results, coords, attrs) -> xr.Dataset:
    """Fold results into the ``scores`` layout, with null summaries and p-values."""
    shape = tuple(len(coords[d]) for d in ("feature_set", "layer", "element", "target", "fold"))
    n_perm = attrs["n_perm"]
    arrs = {v: np.full(shape, np.nan) for v in ("r", "r2", "alpha", "cv_score")}
    null = np.full(shape[:4] + (n_perm,), np.nan)
    fs_i = {n: i for i, n in enumerate(coords["feature_set"])}
    la_i = {n: i for i, n in enumerate(coords["layer"])}
    el_i = {n: i for i, n in enumerate(coords["element"])}
    for (fs, lay, el), folds in zip(keys, results):
        ix = (fs_i[fs], la_i[lay], el_i[el])
        for k, res in enumerate(folds):
            for v in arrs:
                arrs[v][ix + (slice(None), k)] = res[v]
        if n_perm:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                null[ix] = np.nanmean(np.stack([f["r_null"] for f in folds]), axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        r_mean = np.nanmean(arrs["r"], axis=-1)
    dims5 = ("feature_set", "layer", "element", "target", "fold")
    dims4 = dims5[:4]
    ds = xr.Dataset({v: (dims5, a.astype(np.float32)) for v, a in arrs.items()}, coords=coords, attrs=attrs)
    ds["r_mean"] = (dims4, r_mean.astype(np.float32))
    if n_perm:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            p = permutation_p(r_mean, null)
            ds["null_mean"] = (dims4, np.nanmean(null, -1).astype(np.float32))
            ds["null_std"] = (dims4, np.nanstd(null, -1).astype(np.float32))
            ds["p"] = (dims4, p)
            ds["p_fdr"] = (dims4, fdr_bh(p, axis=3))
            ds["p_fwer"] = (dims4, fwer_maxstat(r_mean, null, family_axes=(1, 3)))
            ds["null"] = (dims4 + ("perm",), null.astype(np.float32))
    for v, desc in dict(r="Pearson r on the held-out fold", r2="R^2 on the held-out fold",
                        alpha="alpha chosen by inner CV", r_mean="mean r over folds",
                        p="permutation p of r_mean (+1 corrected)", p_fdr="Benjamini-Hochberg across targets",
                        p_fwer="max-statistic FWER across targets x layers").items():
        if v in ds:
            ds[v].attrs["description"] = desc
    return ds
