"""The ridge grid: feature set x layer x element x target as one lazy dask graph.

Each task of the graph is one (feature set, layer, element, outer fold): it
reads that layer's slice of the feature cube, builds the delays within each
stimulus, standardises on the training stimuli, decomposes the training
design once and uses that decomposition for every alpha, every target and
every null surrogate (:func:`._nested.fit_outer_fold`). One final task
gathers the folds into the ``scores`` layout with p-values.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Mapping, Sequence

import dask
import numpy as np
import xarray as xr
from threadpoolctl import threadpool_limits

from ..errors import ConfigError, InputError
from ..store.clock import check_same_clock, run_bounds, stimulus_slices, window_mean
from ..store.compute import compute as _compute
from ..surrogates import MIN_STIMULI_FOR_PERMUTATION, SURROGATE_KINDS
from ._cv import DETREND_KINDS, check_delays_fit, delay_samples, detrend_within, make_delays, outer_folds
from ._backend import resolve_backend
from ._nested import fit_outer_fold
from ._nulls import GRID_FAMILY, fdr_bh, fwer_maxstat, permutation_p
from ._ridge import DEFAULT_ALPHAS

__all__ = ["fit_grid", "as_feature_cube", "resolve_null"]


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


def _prep_cell(x, stims, lags, where: str, detrend=None, high_pass=None, rate=1.0, pca=None,
               interpolation="cubic") -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    x = x[:, ~np.isnan(x).all(axis=0)]                  # padding units of a narrower layer (VGGish stages)
    bad = np.argwhere(~np.isfinite(x))
    if bad.size:
        raise InputError(f"{where}: {len(bad)} NaN/inf feature values, first in stimulus {str(stims[bad[0][0]])!r} "
                         f"(time step {bad[0][0]}, unit {bad[0][1]})")
    x = detrend_within(x, stims, detrend, rate=rate, high_pass=high_pass)
    return x if pca else make_delays(x, stims, lags, interpolation=interpolation)


def _pca_in_fold(X: np.ndarray, train: np.ndarray, n_components: int, stims, lags,
                 interpolation: str = "cubic") -> np.ndarray:
    """PCA fitted on the outer-training rows only, applied to all rows, then the delays.

    scikit-learn's ``svd_solver="auto"`` (randomized for large inputs; see
    :mod:`xaffect.features.reduce` for its agreement with the exact solver).
    """
    from sklearn.decomposition import PCA

    k = int(min(n_components, train.size - 1, X.shape[1]))
    Z = PCA(n_components=k, svd_solver="auto", random_state=0).fit(X[train]).transform(X)
    return make_delays(Z, stims, lags, interpolation=interpolation)


def _fold_task(X, Y, C, train, test, inner, kw, blas_threads, pca=None):
    with threadpool_limits(limits=blas_threads) if blas_threads else contextlib.nullcontext():
        if pca:
            X = _pca_in_fold(X, train, *pca)
        out = fit_outer_fold(X, Y, train, test, inner, covariates=C, **kw)
    const = np.asarray(Y)[test].std(0) == 0
    if const.any():
        out["r"][const] = np.nan
        out["r2"][const] = np.nan
        out["r_null"][const] = np.nan
    return out


def resolve_null(null: str, cv, n_stimuli: int) -> tuple[str, str]:
    """The null actually used for ``null`` ("auto" or a kind) and a note for the attrs.

    "auto" is the stimulus permutation (calibrated for drifting ratings, see
    :mod:`xaffect.surrogates`) when the outer folds leave one stimulus out
    and there are at least :data:`~xaffect.surrogates.MIN_STIMULI_FOR_PERMUTATION`
    stimuli; otherwise circular shift, with the reason recorded.
    """
    if null not in ("auto",) + SURROGATE_KINDS:
        raise ConfigError(f"null: must be one of {('auto',) + SURROGATE_KINDS}, got {null!r}")
    enough = cv == "loso" and n_stimuli >= MIN_STIMULI_FOR_PERMUTATION
    if null == "stimulus" and not enough:
        why = "cv is blocked (one long stimulus)" if cv != "loso" else f"only {n_stimuli} stimuli"
        raise ConfigError(f"null='stimulus': {why}; it needs cv='loso' and at least "
                          f"{MIN_STIMULI_FOR_PERMUTATION} stimuli (null='shift' is not calibrated for drifting targets)")
    if null != "auto":
        return null, f"{null} (as configured)"
    if enough:
        return "stimulus", "auto -> stimulus permutation"
    why = "cv is blocked" if cv != "loso" else f"only {n_stimuli} stimuli (< {MIN_STIMULI_FOR_PERMUTATION})"
    return "shift", (f"auto -> circular shift because {why}: not calibrated for targets that drift on the "
                     f"scale of a stimulus (the stimulus null needs cv='loso' and >= {MIN_STIMULI_FOR_PERMUTATION} "
                     "stimuli)")


def _check_lengths(stims: np.ndarray, lags: list[float], overlap: int) -> None:
    bounds = run_bounds(stims)
    need = _max_lag(lags) + max(overlap, 0) + 2
    for a, b in zip(bounds[:-1], bounds[1:]):
        if b - a < need:
            raise InputError(f"stimulus {str(stims[a])!r}: {b - a} samples, fewer than the largest delay plus the "
                             f"window plus 2 ({need}); drop it or shorten the delays")


def _max_lag(lags: list[float]) -> int:
    """The largest |delay| in whole samples, rounded up (a fractional delay reaches its next sample)."""
    return max([int(math.ceil(abs(float(k)) - 1e-6)) for k in lags] + [0])


def _constant_within(Y: np.ndarray, stims: np.ndarray, names) -> list[str]:
    bounds = run_bounds(stims)
    out = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        for j in np.flatnonzero(Y[a:b].std(0) == 0):
            out.append(f"{names[j]}@{stims[a]}")
    return out


def fit_grid(features: Mapping[str, xr.Dataset | xr.DataArray], targets: xr.DataArray, *,
             covariates: xr.DataArray | None = None, delays: Sequence[float] = (0.0,), cv: str | int = "loso",
             delay_interpolation: str = "cubic", gap: int | None = None, alphas: Sequence[float] | None = None,
             scoring: str = "neg_mse",
             n_perm: int = 0, null: str = "auto", detrend: str | None = None, high_pass: float | None = None,
             pca: Mapping[str, int] | None = None, seed: int = 0, elements: Sequence[str] | None = None,
             layers: Sequence[int] | None = None, blas_threads: int | None = 1, compute: bool = True,
             progress: bool = True, backend: str = "numpy", device: str = "cpu", dtype: str = "float64",
             n_targets_batch: int | None = None):
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
        Delayed with the same FIR delays as the features (within stimulus);
        the delayed features are residualised on the delayed covariates
        (training rows), which are trained on and set to their training mean
        at prediction.
    delays : sequence of float
        FIR delays in seconds, built within each stimulus (feature at t - d
        predicts the response at t; before a stimulus's start the delayed
        feature is zero, never the previous stimulus). A delay that is not a
        whole number of samples of the targets' clock (5 s at TR 2 s) is
        interpolated within the stimulus (``delay_interpolation``); whole
        ones are exact shifts. The covariates and PCA-in-fold sets get the
        same delays.
    delay_interpolation : {"cubic", "linear", "none"}
        Interpolant of fractional delays (:func:`._cv.make_delays`): "cubic"
        (default; spline, 1.8 % RMS error on an HRF-convolved feature at
        5 s / TR 2 s against 8.2 % for "linear"), "linear" (never overshoots;
        a half-sample delay is then the mean of its two whole neighbours),
        "none" (refuse them). Recorded in attrs with each delay in samples.
    cv : "loso" or int
        Leave one stimulus out, or that many contiguous blocks.
    gap : int, optional
        Blocked cv: samples dropped each side of the test block, in the
        outer and in the inner folds (default: the largest delay plus the
        window overlap).
    alphas : sequence of float
        Default ``10 ** arange(-5, 5.5, 0.5)``.
    scoring : {"neg_mse", "r", "r2"}
        Inner-CV criterion for each target's alpha.
    n_perm : int
        Null surrogates of the targets.
    null : {"auto", "stimulus", "shift", "phase"}
        "stimulus": targets of one stimulus paired with the features of
        another (exact when stimuli are exchangeable; calibrated for drifting
        ratings; needs LOSO and >= 5 stimuli). "shift": circular shift
        within stimulus; "phase": phase randomisation within stimulus (both
        valid for stationary targets whose autocorrelation is short next to
        a stimulus). "auto" (default): "stimulus" where possible, else
        "shift" with the reason in ``attrs["null_note"]``. See
        :mod:`xaffect.surrogates`.
    detrend : {None, "linear", "cosine"}
        Within-stimulus drift removal of targets, features and covariates
        before anything is fitted or scored (:func:`._cv.detrend_within`),
        recorded in attrs. It changes the estimand (slow covariation is
        discarded) and is *not* a calibration fix for "shift": measured in
        ``benchmarks/bench_calibration.py``, circular shift after linear
        detrending gives .07 (AR(0.9)) and .09 (random walk) at alpha .05.
        For drifting targets use the stimulus null.
    high_pass : float, optional
        Cut-off in Hz for ``detrend="cosine"``.
    pca : mapping of str to int, optional
        Feature sets reduced by PCA *inside each outer fold* (fitted on the
        training stimuli, applied to the held-out one) to that many
        components; the others are used as given.
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
    backend, device, dtype : str
        Where and in what precision the ridge kernels run: ``"numpy"`` or
        ``"torch"``, ``"cpu"`` or ``"cuda"``, ``"float64"`` (default) or
        ``"float32"`` (about half the time and memory; scores within float32
        round-off of float64, see :mod:`._solvers`). Recorded in attrs
        (``compute_backend``); a device that is not there is an error, never
        a silent fallback.
    n_targets_batch : int, optional
        Targets per batch inside each task (all at once when None): bounds
        memory for voxelwise grids; results do not depend on it.

    Returns
    -------
    xarray.Dataset
        ``r``, ``r2``, ``alpha``, ``cv_score`` (feature_set, layer, element,
        target, fold); ``r_mean``, ``p`` (single test), ``p_fdr`` (BH) and
        ``p_fwer`` (max statistic) over the family feature_set x layer x
        element x target of this grid, each naming its family in attrs;
        ``null_mean``, ``null_std``; ``null`` (..., perm) of the fold-mean
        null r (for :func:`family_pvalues` over other families).
    """
    compute_backend = resolve_backend(backend, device=device, dtype=dtype)
    if n_targets_batch is not None and int(n_targets_batch) < 1:
        raise InputError(f"n_targets_batch: must be a positive number of targets, got {n_targets_batch!r}")
    if not isinstance(targets, xr.DataArray) or set(targets.dims) != {"time", "target"}:
        raise InputError(f"targets: expected a DataArray (time, target), got {getattr(targets, 'dims', targets)}")
    if not features:
        raise InputError("features: no feature sets given")
    if detrend not in DETREND_KINDS:
        raise ConfigError(f"detrend: must be null, 'linear' or 'cosine', got {detrend!r}")
    pca = dict(pca or {})
    unknown = sorted(set(pca) - set(features))
    if unknown:
        raise ConfigError(f"pca: feature sets {unknown} are not among the features ({list(features)})")
    targets = targets.transpose("time", "target")
    window = targets.attrs.get("window")
    cubes = {}
    for name, obj in features.items():
        cube = as_feature_cube(obj, name)
        if window is not None and "window" not in cube.attrs:
            cube = window_mean(cube, window=float(window), step=float(targets.attrs["step"]))
        check_same_clock(cube, targets, names=(f"features {name!r}", "targets"))
        cubes[name] = cube
    stims = np.asarray(targets["stimulus"].values).astype(str)
    stimulus_slices(targets)                                  # contiguous runs or error
    rate = _clock_rate(targets)
    lags = delay_samples(delays, rate, interpolation=delay_interpolation)
    check_delays_fit(stims, lags, rate)
    overlap = int(math.ceil(float(window) * rate)) - 1 if window is not None else 0
    _check_lengths(stims, lags, overlap)
    C = None
    if covariates is not None:
        cov = covariates
        if window is not None and "window" not in cov.attrs:
            cov = window_mean(cov, window=float(window), step=float(targets.attrs["step"]))
        check_same_clock(cov, targets, names=("covariates", "targets"))
        C = np.asarray(cov.transpose("time", ...).values, dtype=np.float64).reshape(cov.sizes["time"], -1)
        if not np.isfinite(C).all():
            raise InputError("covariates: NaN/inf values (fill or drop those descriptors first)")
        # the covariates get the features' delays, so a confound acting at a lag is removed at that lag
        C = make_delays(detrend_within(C, stims, detrend, rate=rate, high_pass=high_pass), stims, lags,
                        interpolation=delay_interpolation)

    Y = np.asarray(targets.values, dtype=np.float64)
    _check_finite_targets(Y, targets, stims)
    Y = detrend_within(Y, stims, detrend, rate=rate, high_pass=high_pass)
    names = [str(t) for t in targets["target"].values]
    const = Y.std(0) == 0
    if const.any():
        warnings.warn(f"targets: {list(np.array(names)[const])} are constant; their scores are NaN",
                      UserWarning, stacklevel=2)
    const_in = _constant_within(Y[:, ~const], stims, np.array(names)[~const])
    if const_in:
        warnings.warn(f"targets constant within a stimulus (r is NaN for that held-out fold): {const_in}",
                      UserWarning, stacklevel=2)
    n_stimuli = run_bounds(stims).size - 1
    null_used, null_note = resolve_null(null, cv, n_stimuli)
    if n_perm and null_note.startswith("auto -> circular"):
        warnings.warn(f"null: {null_note}", UserWarning, stacklevel=2)
    if gap is None:
        gap = _max_lag(lags) + max(overlap, 0)
    folds, inner = outer_folds(stims, cv, gap=gap)
    inner_gap = int(gap) if cv != "loso" else 0
    alphas = np.asarray(DEFAULT_ALPHAS if alphas is None else alphas, dtype=np.float64)
    kw = dict(alphas=alphas, scoring=scoring, n_perm=int(n_perm), null=null_used, seed=int(seed),
              inner_gap=inner_gap, backend=compute_backend.name, device=compute_backend.device,
              dtype=compute_backend.dtype, n_targets_batch=n_targets_batch)

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
        k_pca = pca.get(name)
        for lay in cube["layer"].values:
            if int(lay) not in all_layers:
                continue
            for el in all_elements:
                if el not in cube["element"].values:
                    continue
                x = cube.sel(layer=lay, element=el).transpose("time", "unit").data
                where = f"features {name!r} layer {int(lay)} element {el!r}"
                X = dask.delayed(_prep_cell)(x, stims, lags, where, detrend, high_pass, rate, k_pca,
                                             delay_interpolation, dask_key_name=f"prep-{name}-{int(lay)}-{el}")
                pca_arg = (int(k_pca), stims, lags, delay_interpolation) if k_pca else None
                tasks = [dask.delayed(_fold_task)(X, Yd, Cd, tr, te, inner, kw, blas_threads, pca_arg,
                                                  dask_key_name=f"fold-{name}-{int(lay)}-{el}-{fname}")
                         for fname, tr, te in folds]
                cells.append(((name, int(lay), el), tasks))
    coords = dict(feature_set=list(cubes), layer=all_layers, element=all_elements,
                  target=names, fold=[f[0] for f in folds])
    attrs = dict(clock_rate=rate, delays=[float(d) for d in delays], delay_samples=[float(k) for k in lags],
                 delay_interpolation=str(delay_interpolation),
                 delay_fill="zero where t - delay falls outside the stimulus (never another stimulus)",
                 cv=str(cv), gap=int(gap), inner_gap=inner_gap,
                 n_perm=int(n_perm), null=null_used, null_requested=null, null_note=null_note,
                 detrend=str(detrend), high_pass=float(high_pass) if high_pass else 0.0,
                 scoring=scoring, alphas=[float(a) for a in alphas], seed=int(seed),
                 covariates=C is not None, covariate_delays="same FIR delays as the features, within stimulus",
                 pca_fit="train" if pca else "as given",
                 pca_in_fold=[f"{k}:{v}" for k, v in pca.items()], constant_within_stimulus=const_in,
                 compute_backend=compute_backend.describe(),
                 n_targets_batch=int(n_targets_batch) if n_targets_batch else 0)
    if window is not None:
        attrs.update(window=float(window), step=float(targets.attrs["step"]))
    keys = [k for k, _ in cells]
    result = dask.delayed(_assemble)(keys, [t for _, t in cells], coords, attrs)
    if not compute:
        return result
    with threadpool_limits(limits=blas_threads) if blas_threads else contextlib.nullcontext():
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
            # one declared family: the whole search of this grid (a claim "significant somewhere")
            ds["p_fdr"] = (dims4, fdr_bh(p.reshape(-1)).reshape(p.shape))
            ds["p_fwer"] = (dims4, fwer_maxstat(r_mean, null, family_axes=(0, 1, 2, 3)))
            ds["null"] = (dims4 + ("perm",), null.astype(np.float32))
    family = " x ".join(GRID_FAMILY)
    for v, desc, fam in (("r", "Pearson r on the held-out fold", None), ("r2", "R^2 on the held-out fold", None),
                         ("alpha", "alpha chosen by inner CV", None), ("r_mean", "mean r over folds", None),
                         ("p", "permutation p of r_mean (+1 corrected), uncorrected", "single test"),
                         ("p_fdr", "Benjamini-Hochberg over the family", family),
                         ("p_fwer", "max-statistic family-wise p over the family", family)):
        if v in ds:
            ds[v].attrs["description"] = desc
            if fam:
                ds[v].attrs["family"] = fam
                ds[v].attrs["null"] = attrs["null"]
    return ds
