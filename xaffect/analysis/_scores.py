"""Checking a ``scores`` store and reading one feature set's cells from it.

Shared by :mod:`.layers`, :mod:`.compare`, :mod:`.zones` and :mod:`.effects`.
A ``scores`` store has ``r (feature_set, layer, element, target, fold)``;
classical feature sets sit at ``layer = -1`` (NaN elsewhere); ``fold`` is the
held-out stimulus (or block). When the feature cubes carry a ``layer_name``
coordinate (``L01 InputBatch`` ... for VGGish), it rides along ``layer``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from ..errors import InputError

__all__ = ["check_level", "check_resamples", "check_scores", "feature_sets", "deep_feature_sets", "classical_feature_sets", "select_deep",
           "select_classical", "layer_names", "claim_p"]

_REQUIRED_DIMS = ("feature_set", "layer", "element", "target")


def check_level(value: float, name: str) -> float:
    """``value`` as a float in (0, 1), else :class:`InputError` naming ``name`` (``ci``, ``alpha``)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name}: expected a number in (0, 1), got {value!r}") from None
    if not 0.0 < v < 1.0:
        raise InputError(f"{name}: must be in (0, 1), got {value!r}")
    return v


def check_resamples(value: int, name: str = "n_boot") -> int:
    """``value`` as an int >= 1, else :class:`InputError` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"{name}: expected an integer >= 1, got {value!r}")
    return int(value)


def check_scores(scores: xr.Dataset, *, min_folds: int = 2) -> None:
    """Raise :class:`InputError` unless ``scores`` is a scores store with ``min_folds`` folds.

    Per-fold r is what every comparison resamples; a store without a ``fold``
    dim, or with a single fold, cannot carry an uncertainty.
    """
    if not isinstance(scores, xr.Dataset) or "r" not in scores:
        raise InputError("scores: expected the scores Dataset with a variable 'r'")
    dims = list(scores["r"].dims)
    missing = [d for d in _REQUIRED_DIMS if d not in dims]
    if missing:
        raise InputError(f"scores: r lacks dims {missing} (has {dims})")
    if "fold" not in dims:
        raise InputError(f"scores: r has no 'fold' dim (has {dims}); layer analyses resample the per-fold "
                         "scores of the encoding stage, not fold means")
    n = scores.sizes["fold"]
    if n < min_folds:
        only = ", ".join(str(f) for f in scores["fold"].values) or "none"
        raise InputError(f"scores: {n} fold ({only}); comparisons and intervals need at least {min_folds} "
                         "held-out folds (cv: loso with >= 3 stimuli, or blocked k-fold)")


def feature_sets(scores: xr.Dataset) -> list[str]:
    """Names of the feature sets in ``scores``."""
    check_scores(scores, min_folds=0)
    return [str(f) for f in scores["feature_set"].values]


def _layers_present(scores: xr.Dataset, fs: str) -> np.ndarray:
    r = scores["r"].sel(feature_set=fs)
    ok = np.isfinite(np.asarray(r.values)).any(axis=tuple(i for i, d in enumerate(r.dims) if d != "layer"))
    return np.asarray(scores["layer"].values)[ok]


def classical_feature_sets(scores: xr.Dataset) -> list[str]:
    """Feature sets whose only scored layer is -1 (classical descriptors)."""
    return [f for f in feature_sets(scores) if list(_layers_present(scores, f)) == [-1]]


def deep_feature_sets(scores: xr.Dataset) -> list[str]:
    """Feature sets scored at layers >= 0."""
    return [f for f in feature_sets(scores) if (_layers_present(scores, f) >= 0).any()]


def _check_feature_set(scores: xr.Dataset, feature_set: str, arg: str = "feature_set") -> None:
    have = feature_sets(scores)
    if feature_set not in have:
        raise InputError(f"{arg}: {feature_set!r} is not in the scores (have: {', '.join(have)})")


def _check_element(scores: xr.Dataset, element: str | None, arg: str = "element") -> None:
    if element is None:
        return
    have = [str(e) for e in scores["element"].values]
    if element not in have:
        raise InputError(f"{arg}: {element!r} is not in the scores (have: {', '.join(have)})")


def select_deep(scores: xr.Dataset, feature_set: str, element: str | None = None, *,
                min_layers: int = 1, min_folds: int = 2, arg: str = "feature_set") -> xr.DataArray:
    """``r ([element,] layer, target, fold)`` of a deep feature set on its own scored layers.

    Parameters
    ----------
    scores : xarray.Dataset
    feature_set : str
    element : str, optional
        One element (its dim dropped); all when None.
    min_layers : int
        Fewest scored layers the analysis needs (a profile needs 2).
    min_folds : int
    arg : str
        Argument name used in error messages.

    Returns
    -------
    xarray.DataArray of float, computed (small), with ``layer_name`` when the store has it.
    """
    check_scores(scores, min_folds=min_folds)
    _check_feature_set(scores, feature_set, arg)
    _check_element(scores, element)
    layers = _layers_present(scores, feature_set)
    layers = layers[layers >= 0]
    if layers.size == 0:
        raise InputError(f"{arg}: {feature_set!r} is classical (layer -1 only); layer analyses need a deep "
                         "feature set")
    if layers.size < min_layers:
        raise InputError(f"{arg}: {feature_set!r} has {layers.size} scored layer ({layers.tolist()}); "
                         f"this analysis needs at least {min_layers}")
    r = scores["r"].sel(feature_set=feature_set)
    if element is not None:
        r = r.sel(element=element)
    return r.sel(layer=layers).drop_vars("feature_set", errors="ignore").astype(float).compute()


def select_classical(scores: xr.Dataset, feature_set: str, element: str | None = None, *,
                     arg: str = "classical") -> xr.DataArray:
    """``r ([element,] target, fold)`` of a classical feature set (layer -1)."""
    check_scores(scores)
    _check_feature_set(scores, feature_set, arg)
    _check_element(scores, element)
    if feature_set not in classical_feature_sets(scores):
        raise InputError(f"{arg}: {feature_set!r} is not a classical feature set (it is scored at layers "
                         f"{_layers_present(scores, feature_set).tolist()}; classical sets sit at layer -1)")
    r = scores["r"].sel(feature_set=feature_set, layer=-1)
    if element is not None:
        r = r.sel(element=element)
    return r.drop_vars(["feature_set", "layer", "layer_name"], errors="ignore").astype(float).compute()


def layer_names(r: xr.DataArray | xr.Dataset) -> dict[int, str]:
    """``{layer: layer_name}`` when the ``layer_name`` coordinate is present, else ``{}``."""
    if "layer_name" not in r.coords:
        return {}
    names = np.asarray(r["layer_name"].values)
    if names.ndim != 1:  # one name per layer; another layout is not ours to guess
        return {}
    return {int(lay): str(n) for lay, n in zip(r["layer"].values, names)}


def claim_p(scores: xr.Dataset, p_var: str = "p_fdr", *, feature_set: str | None = None,
            family: Sequence[str] | None = None, method: str = "fdr") -> xr.DataArray:
    """The p-values a claim rests on, ``(feature_set, layer, element, target)``.

    Parameters
    ----------
    scores : xarray.Dataset
    p_var : str
        Variable of the store used when no ``family`` is declared (``p_fdr``
        and ``p_fwer`` of the encoding stage are corrected over its whole grid;
        their ``family`` attr says so).
    feature_set : str, optional
        With ``family``: restrict the search to this feature set's deep
        layers before correcting (the claim is about its layers only).
    family : sequence of str, optional
        Dims pooled into one family of tests (e.g. ``("layer",)``: the layers
        of one feature set, element and target), corrected with
        :func:`xaffect.encoding.family_pvalues`.
    method : {"fdr", "fwer", "none"}
        Correction over ``family``.

    Raises
    ------
    InputError
        Naming ``p_var`` (or ``family``) when the store lacks what it needs.
    """
    if family is not None:
        from ..encoding._nulls import family_pvalues
        from ..errors import ConfigError

        sel = {}
        if feature_set is not None:
            layers = _layers_present(scores, feature_set)
            sel = {"feature_set": [feature_set], "layer": [int(v) for v in layers[layers >= 0]]}
        try:
            return family_pvalues(scores, tuple(family), method=method, **sel)
        except ConfigError as err:
            raise InputError(f"family: {err}") from None
    if p_var not in scores:
        have = ", ".join(str(v) for v in scores.data_vars if str(v).startswith("p")) or "none"
        raise InputError(f"p_var: the scores have no {p_var!r} (p-value variables: {have}); run the encode "
                         "stage with n_perm > 0 for permutation p-values")
    return scores[p_var]
