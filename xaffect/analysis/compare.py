"""Comparisons that pay for their layer selection: deep vs classical, voice vs soundtrack.

Both pick a layer ("the best layer of the deep set") and then compare. Picking
the layer on the same folds that are then tested makes the deep side win by
selection alone (with every layer and the classical set carrying the same
signal, "deep better" at p < .05 for 20-24 % of targets). Here the layer is
chosen **on inner folds of the training stimuli**: for held-out fold ``k``,
the layer with the highest mean r over the other folds; fold ``k`` is read
at that layer. The per-fold differences are then tested with Nadeau &
Bengio's corrected resampled t, which pays for the training data the folds
share. (Inner-fold selection was chosen over a max-over-layers permutation
null because the store keeps per-fold r for every layer but its null only
as fold means, so the selection can be redone exactly here.)
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import xarray as xr

from ..encoding._compare import corrected_resampled_interval, corrected_resampled_ttest
from ..errors import InputError
from ..stats import fdr_bh
from ._resample import argmax_finite, choose_without_fold, spearman_permutation, take_along_layer
from ._scores import (check_scores, classical_feature_sets, deep_feature_sets, feature_sets, layer_names,
                      select_classical, select_deep)

__all__ = ["deep_vs_classical", "element_contrast", "energy_ratio_db"]

_SELECTION = "layer chosen per held-out fold on the other folds (inner folds of the training stimuli)"
_TEST = "Nadeau-Bengio corrected resampled t across folds"


def _nanmean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(x, axis=axis)


def _selected(r: xr.DataArray, lead: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-fold r at the layer chosen without that fold; the chosen layer; the full-data best layer."""
    rv = np.asarray(r.transpose(*lead, "layer", "fold").values, dtype=float)
    layers = np.asarray(r["layer"].values)
    idx = choose_without_fold(rv)
    chosen = np.where(idx >= 0, layers[np.maximum(idx, 0)], -1)
    full = argmax_finite(_nanmean(rv), axis=-1)
    return take_along_layer(rv, idx), chosen, np.where(full >= 0, layers[np.maximum(full, 0)], -1)


def deep_vs_classical(scores: xr.Dataset, *, deep: str | None = None, classical: str | None = None,
                      element: str | None = None, alternative: str = "two-sided",
                      test_train_ratio: float | None = None) -> xr.Dataset:
    """Best layer of a deep feature set vs a classical descriptor set, per target.

    The deep layer is selected on inner folds (see the module docstring), so
    ``r_deep`` at fold ``k`` is the score of a layer chosen without fold ``k``.

    Parameters
    ----------
    scores : xarray.Dataset
    deep, classical : str, optional
        Feature sets (default: the first deep / classical set in the scores;
        an error naming the argument when the scores have none).
    element : str, optional
        One element; all when None (kept as a dim).
    alternative : {"two-sided", "greater", "less"}
        ``"greater"``: deep better.
    test_train_ratio : float, optional
        For the corrected t (default ``1 / (n_folds - 1)``).

    Returns
    -------
    xarray.Dataset
        ``r_deep``, ``r_classical``, ``difference``, ``layer_selected``
        ``([element,] target, fold)``; ``best_layer`` (argmax of the full-data
        mean, descriptive), ``mean_difference``, ``ci_low``/``ci_high`` (95 %
        corrected resampled t interval), ``t``, ``p``, ``p_fdr`` (BH across
        targets) ``([element,] target)``.
    """
    check_scores(scores)
    deeps, classicals = deep_feature_sets(scores), classical_feature_sets(scores)
    if classical is None:
        if not classicals:
            raise InputError(f"classical: the scores have no classical feature set (layer -1 only; feature sets: "
                             f"{', '.join(feature_sets(scores))})")
        classical = classicals[0]
    if deep is None:
        if not deeps:
            raise InputError(f"deep: the scores have no deep feature set (feature sets: "
                             f"{', '.join(feature_sets(scores))})")
        deep = deeps[0]
    rd = select_deep(scores, deep, element, arg="deep")
    rc = select_classical(scores, classical, element)
    lead = [d for d in rd.dims if d not in ("layer", "fold")]
    coords = {d: rd[d].values for d in lead} | {"fold": rd["fold"].values}
    r_deep, chosen, full = _selected(rd, lead)
    r_cls = np.asarray(rc.transpose(*lead, "fold").values, dtype=float)
    diff = r_deep - r_cls
    t, p = corrected_resampled_ttest(diff, test_train_ratio=test_train_ratio, alternative=alternative)
    low, high = corrected_resampled_interval(diff, test_train_ratio=test_train_ratio)
    dims5, dims4 = tuple(lead) + ("fold",), tuple(lead)
    out = xr.Dataset({"r_deep": (dims5, r_deep), "r_classical": (dims5, r_cls), "difference": (dims5, diff),
                      "layer_selected": (dims5, chosen), "best_layer": (dims4, full),
                      "mean_difference": (dims4, _nanmean(diff)), "ci_low": (dims4, low), "ci_high": (dims4, high),
                      "t": (dims4, t), "p": (dims4, p),
                      "p_fdr": (dims4, fdr_bh(p, axis=lead.index("target")))}, coords=coords)
    names = layer_names(rd)
    if names:
        out["best_layer_name"] = (dims4, np.vectorize(lambda v: names.get(int(v), ""), otypes=[object])(full)
                                  .astype(str))
    out.attrs.update(deep=deep, classical=classical, alternative=alternative, selection=_SELECTION, test=_TEST)
    return out


def energy_ratio_db(energy_ratio: xr.DataArray) -> xr.DataArray:
    """The stems store's ``energy_ratio_stimulus`` in dB, read by its ``units`` attr.

    ``units`` is the one source of truth: ``"dB"`` is taken as is; ``"1"`` or
    ``"ratio"`` (a linear power ratio) is converted with ``10 log10``. The dim
    may be named ``stimulus`` or ``stimuli`` (the stems store's name).

    Raises
    ------
    InputError
        Naming ``energy_ratio`` when the dim or the ``units`` attr is missing or unknown.
    """
    if not isinstance(energy_ratio, xr.DataArray) or energy_ratio.ndim != 1 or \
            energy_ratio.dims[0] not in ("stimulus", "stimuli"):
        raise InputError("energy_ratio: expected a 1-d DataArray over 'stimulus' (the stems store's "
                         "energy_ratio_stimulus)")
    er = energy_ratio.rename({energy_ratio.dims[0]: "stimulus"})
    units = str(er.attrs.get("units", "")).strip()
    if units.lower() == "db":
        return er.astype(float)
    if units in ("1", "ratio"):
        with np.errstate(divide="ignore"):
            out = 10.0 * np.log10(er.astype(float).where(er > 0))
        return out.assign_attrs(er.attrs, units="dB")
    raise InputError(f"energy_ratio: units attr is {units!r}; expected 'dB' (as the stems stage writes it) "
                     "or '1'/'ratio' for a linear power ratio")


def element_contrast(scores: xr.Dataset, *, feature_set: str, layer: int | str | None = "best",
                     elements: Sequence[str] = ("voice", "soundtrack"), energy_ratio: xr.DataArray | None = None,
                     alternative: str = "two-sided", test_train_ratio: float | None = None,
                     n_perm: int = 9999, seed: int = 0) -> xr.Dataset:
    """Voice vs soundtrack per target at one layer, and its relation to the energy ratio.

    Parameters
    ----------
    scores : xarray.Dataset
    feature_set : str
    layer : int or "best"
        Layer compared (classical sets: -1). ``"best"``: for each held-out
        fold, the layer with the highest r averaged over both elements on the
        *other* folds (inner-fold selection, see the module docstring).
    elements : pair of str
        The two elements contrasted (first minus second).
    energy_ratio : xarray.DataArray, optional
        ``energy_ratio_stimulus (stimulus)`` of the stems store, in the unit
        of its ``units`` attr (:func:`energy_ratio_db`). Folds are held-out
        stimuli, so the per-fold difference is related to the held-out
        stimulus's ratio by Spearman's rho with a permutation p.
    alternative : {"two-sided", "greater", "less"}
    test_train_ratio : float, optional
    n_perm : int
        Permutations for the energy-ratio test.
    seed : int

    Returns
    -------
    xarray.Dataset
        ``r_first``, ``r_second``, ``difference``, ``layer_selected``
        ``(target, fold)``; ``mean_difference``, ``ci_low``/``ci_high`` (95 %
        corrected resampled t interval), ``t``, ``p``, ``p_fdr``,
        ``preferred``, ``layer`` (full-data choice, descriptive) ``(target)``;
        with ``energy_ratio``: ``energy_rho``, ``energy_p``, ``energy_n``
        ``(target)`` and ``energy_ratio_db (fold)``.
    """
    a, b = elements
    check_scores(scores)
    have = [str(e) for e in scores["element"].values]
    for e in elements:
        if e not in have:
            raise InputError(f"elements: {e!r} is not in the scores (have: {', '.join(have)})")
    if feature_set in classical_feature_sets(scores):
        rc = select_classical(scores, feature_set, arg="feature_set").transpose("element", "target", "fold")
        ra, rb = (np.asarray(rc.sel(element=e).values, dtype=float) for e in (a, b))
        chosen = np.full(ra.shape, -1)
        full = np.full(ra.shape[0], -1)
        coords = {"target": rc["target"].values, "fold": rc["fold"].values}
    else:
        r = select_deep(scores, feature_set).sel(element=[a, b]).transpose("element", "target", "layer", "fold")
        rv = np.asarray(r.values, dtype=float)
        layers = np.asarray(r["layer"].values)
        coords = {"target": r["target"].values, "fold": r["fold"].values}
        if layer is None or layer == "best":
            both = _nanmean(rv, axis=0)                                   # (target, layer, fold)
            idx = choose_without_fold(both)
            fidx = argmax_finite(_nanmean(both), axis=-1)
            full = np.where(fidx >= 0, layers[np.maximum(fidx, 0)], -1)
        else:
            if int(layer) not in layers:
                raise InputError(f"layer: {layer} is not scored for {feature_set!r} (layers {layers.tolist()})")
            li = int(np.flatnonzero(layers == int(layer))[0])
            idx = np.full(rv.shape[1:2] + rv.shape[-1:], li)
            full = np.full(rv.shape[1], int(layer))
        chosen = np.where(idx >= 0, layers[np.maximum(idx, 0)], -1)
        ra, rb = take_along_layer(rv[0], idx), take_along_layer(rv[1], idx)
    diff = ra - rb
    t, p = corrected_resampled_ttest(diff, test_train_ratio=test_train_ratio, alternative=alternative)
    low, high = corrected_resampled_interval(diff, test_train_ratio=test_train_ratio)
    md = _nanmean(diff)
    preferred = np.where(md >= 0, a, b).astype(str)
    out = xr.Dataset(
        {"r_first": (("target", "fold"), ra), "r_second": (("target", "fold"), rb),
         "difference": (("target", "fold"), diff), "layer_selected": (("target", "fold"), chosen),
         "mean_difference": ("target", md), "ci_low": ("target", low), "ci_high": ("target", high),
         "t": ("target", t), "p": ("target", p), "p_fdr": ("target", fdr_bh(p)),
         "preferred": ("target", preferred), "layer": ("target", full)},
        coords=coords)
    if energy_ratio is not None:
        _add_energy_relation(out, energy_ratio, n_perm=n_perm, seed=seed)
    out.attrs.update(feature_set=feature_set, first=a, second=b, alternative=alternative, test=_TEST,
                     selection=_SELECTION if layer in (None, "best") else f"layer {layer} fixed in advance")
    return out


def _add_energy_relation(out: xr.Dataset, energy_ratio: xr.DataArray, *, n_perm: int, seed: int) -> None:
    er = energy_ratio_db(energy_ratio)
    folds = [str(f) for f in out["fold"].values]
    stims = [str(s) for s in er["stimulus"].values]
    missing = [f for f in folds if f not in stims]
    if missing:
        raise InputError(f"energy_ratio: no value for held-out stimulus {missing[0]!r}")
    db = np.asarray(er.sel(stimulus=folds).values, dtype=float)
    diff = np.asarray(out["difference"].values)
    res = [spearman_permutation(db, diff[i], n_perm=n_perm, seed=seed) for i in range(diff.shape[0])]
    out["energy_rho"] = ("target", np.array([x[0] for x in res]))
    out["energy_p"] = ("target", np.array([x[1] for x in res]))
    out["energy_n"] = ("target", np.array([x[2] for x in res], dtype=int))
    out["energy_ratio_db"] = ("fold", db)
    out["energy_ratio_db"].attrs.update(units="dB", long_name="voice / soundtrack energy of the held-out stimulus")
    out.attrs["energy_test"] = "Spearman rho of the per-fold difference with the held-out stimulus's ratio, " \
                               f"permutation p ({n_perm} permutations, exact for small n)"
