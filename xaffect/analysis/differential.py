"""Differential encoding: are two targets predicted by different layers (and, for regions, differently)?

The seed fMRI study reports *emotionality* and *enjoyment* as "differentially
encoded". For two targets of one scores store (two ratings, two regions) --
or one target under two conditions (two elements, or two scores stores fitted
on the same stimuli) -- :func:`differential_encoding` compares them paired on
the same held-out stimuli (folds):

* **profiles**: the per-layer difference of cross-validated r, ``r_a - r_b``
  per fold, with Nadeau & Bengio's corrected resampled t (folds share most of
  their training stimuli, so a plain paired t across folds is too liberal),
  its interval, and p-values corrected over a declared family (Holm for
  ``fwer``, Benjamini-Hochberg for ``fdr``, over ``layer`` and, with several
  pairs, ``pair``); conservative here (0.8-2.9 % per claim at a nominal 5 %
  under the null), the price of not ignoring the fold overlap;
* **best layers**: each target's best layer (argmax of its mean profile),
  with a stimulus-level bootstrap interval (held-out stimuli resampled with
  replacement, the *same* draw for both targets, each best layer selected
  anew inside every resample) on ``best_a - best_b`` -- the estimate; and a
  *paired swap permutation test* of "different best layers" -- the p
  (:func:`._resample.crossing_swap_test`). Each target's profiles are put in
  units of their own spread (so a target that is merely less predictable
  does not count as differently shaped); the statistic is the *crossing*
  ``(A[a*] - A[b*]) + (B[b*] - B[a*])`` of the two mean profiles at their best
  layers ``a*``, ``b*`` (0 when they coincide); every swap exchanges the two
  targets' profiles at some held-out stimuli and selects both best layers
  again. H0: at each held-out stimulus the two rescaled profiles are
  exchangeable (same shape, hence same best layer); all ``2 ** n_folds``
  swaps when ``n_perm`` allows (exact), else random ones. With few held-out
  stimuli the swaps are few: 3 stimuli give 8 swaps and no p below 0.25
  (``p_best_min``). The swap test assumes comparably predictable targets:
  one target's folds share their training stimuli, so when its profile is
  mostly noise its (wrong) argmax is shared by all its folds, which no swap
  over folds reproduces. Where the two selection-honest best r differ by
  more than a factor 0.6, ``p_best_differs`` is therefore the two-sided
  stimulus-bootstrap p of ``best_a - best_b = 0`` (conservative), and
  ``best_test_used`` says which test answered. Measured at a nominal 5 % over
  600 null pairs per regime (``benchmarks/README.md``): 2.8-3.7 % when the
  best layer is unclear or absent or under AR(1) phi 0.9 noise, 0.2-4.3 %
  when b is half or a quarter as predictable (the swap test alone: 4-21 %),
  0 % when both share a clearly best layer (their point estimates then
  rarely differ and the crossing is 0); power 92 % on planted adjacent layers
  (2 vs 3) and 95 % on distant ones (1 vs 4) at a moderate signal (the
  bootstrap p alone: 0-2.7 % under the null, 71 % and 79 %). Calibration
  tests in ``tests/test_analysis_differential.py``;
* **selection-honest best scores**: each target at the layer chosen without
  each fold (:func:`._resample.choose_without_fold`), the per-fold difference
  tested with the corrected t -- "is a better predicted than b at its best layer".

**Region maps.** A map needs one comparison per region. With two *rating*
targets there is none: a rating is one time series, not a set of regions,
and "which regions carry emotionality rather than enjoyment" is a question
about coupling between regions and ratings (:func:`~xaffect.analysis.lead_lag`),
not about the scores grid. A map exists when the pairs are regions: give
``target_a``/``target_b`` as equal-length lists (the same ``region:`` targets
under two conditions, via ``element_b`` or ``scores_b``; or two sets of regions
paired position by position, e.g. homologous left/right parcels). Every
per-pair statistic then has a ``pair`` dim with a ``region`` coordinate, ready
for ``result[var].swap_dims(pair="region")`` and
:func:`~xaffect.analysis.plot_regions`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from ..encoding._compare import corrected_resampled_interval, corrected_resampled_ttest
from ..errors import InputError
from ..stats import adjust_family
from ._resample import (argmax_finite, argmax_over_layers, bootstrap_counts, bootstrap_layer_means,
                        choose_without_fold, crossing_swap_test, take_along_layer)
from ._scores import check_level, check_resamples, deep_feature_sets, layer_names, select_deep
from .layers import _quantile_interval

__all__ = ["differential_encoding", "describe_differential", "plot_differential_encoding"]

_TEST = "Nadeau-Bengio corrected resampled t across folds (held-out stimuli), paired"
_RESAMPLING = ("best-layer interval: stimulus-level bootstrap, held-out stimuli resampled with replacement, the same "
               "draw for both targets, each target's best layer selected inside every resample")
# below this ratio of the two selection-honest best r, "different best layers" is the bootstrap p, not the swap
# test's (benchmarks/README.md: the swap test held 4.0 % with b at half a's signal, 21 % with b at a quarter)
_COMPARABLE = 0.6
_BEST_TEST = ("paired swap permutation over held-out stimuli of the crossing (A[a*] - A[b*]) + (B[b*] - B[a*]) of "
              "the two mean profiles, each in units of its own spread, both best layers selected again under every "
              "swap; H0: per stimulus the two rescaled profiles are exchangeable; where one target's selection-honest "
              "best r is below 0.6 times the other's, the two-sided stimulus-bootstrap p of best_a - best_b = 0 "
              "(conservative) instead (best_test_used)")


def _nanmean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(x, axis=axis)


def _as_list(targets: str | Sequence[str], arg: str) -> list[str]:
    if isinstance(targets, str):
        return [targets]
    out = [str(t) for t in targets]
    if not out:
        raise InputError(f"{arg}: no target given")
    return out


def _side(scores: xr.Dataset, feature_set: str, element: str | None, targets: list[str], arg: str
          ) -> tuple[xr.DataArray, str]:
    """``r (pair, layer, fold)`` of ``targets`` for one side, and the element used."""
    have_el = [str(e) for e in scores["element"].values]
    if element is None:
        if len(have_el) != 1:
            raise InputError(f"element: the scores have elements {have_el}; name the one compared")
        element = have_el[0]
    r = select_deep(scores, feature_set, element, min_layers=2)
    have = [str(t) for t in r["target"].values]
    for t in targets:
        if t not in have:
            shown = ", ".join(have[:12]) + (" ..." if len(have) > 12 else "")
            raise InputError(f"{arg}: {t!r} is not a target of the scores (have: {shown})")
    r = r.sel(target=targets).rename(target="pair").transpose("pair", "layer", "fold")
    return r, element


def _scored_folds(r: np.ndarray) -> np.ndarray:
    """Held-out stimuli with a finite score at any layer, per pair: (pair, fold) bool."""
    return np.isfinite(r).any(axis=1)


def _check_pairs(ra: xr.DataArray, rb: xr.DataArray, ta: list[str], tb: list[str], b_arg: str) -> None:
    fa, fb = [str(f) for f in ra["fold"].values], [str(f) for f in rb["fold"].values]
    if fa != fb:
        only_a, only_b = sorted(set(fa) - set(fb)), sorted(set(fb) - set(fa))
        raise InputError(f"{b_arg}: held-out stimuli differ from the first side's (only there: {only_a[:5]}, "
                         f"only here: {only_b[:5]}, or in another order); a paired comparison needs the same folds")
    la, lb = ra["layer"].values.tolist(), rb["layer"].values.tolist()
    if la != lb:
        raise InputError(f"{b_arg}: scored layers {lb} differ from the first side's {la}")
    sa, sb = _scored_folds(ra.values), _scored_folds(rb.values)
    for i, (a, b) in enumerate(zip(sa, sb)):
        if (a != b).any():
            names = np.asarray(fa)
            raise InputError(f"target_b: {tb[i]!r} was scored on held-out stimuli {names[b].tolist()} but "
                             f"target_a {ta[i]!r} on {names[a].tolist()}; a paired comparison needs the same stimuli")
        if a.sum() < 2:
            raise InputError(f"target_a: {ta[i]!r} was scored on {int(a.sum())} held-out stimulus "
                             f"({np.asarray(fa)[a].tolist()}); a paired comparison needs at least 2")


def _best_bootstrap(ra: np.ndarray, rb: np.ndarray, layers: np.ndarray, *, n_boot: int, seed: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Best layer of each side in each paired resample: two arrays (n_boot, pair), NaN where none."""
    counts = bootstrap_counts(ra.shape[-1], n_boot, seed)

    def best(r):
        idx = np.concatenate([argmax_over_layers(m) for m in bootstrap_layer_means(r, counts)])
        return np.where(idx >= 0, layers[np.maximum(idx, 0)], np.nan)
    return best(ra), best(rb)


def _bootstrap_p(delta: np.ndarray) -> np.ndarray:
    """Two-sided bootstrap p of ``delta == 0`` over axis 0, NaN resamples dropped.

    ``2 min(#(d <= 0) + 1, #(d >= 0) + 1) / (n + 1)``, capped at 1: the level at
    which the percentile interval of ``d`` stops covering 0, never 0 itself.
    Conservative for a discrete argmax (resamples of a shared best layer agree).
    """
    ok = np.isfinite(delta)
    n = ok.sum(0)
    low, high = (ok & (delta <= 0)).sum(0), (ok & (delta >= 0)).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.minimum(1.0, 2 * (np.minimum(low, high) + 1) / (n + 1))
    return np.where(n > 0, p, np.nan)


def comparably_predictable(r_a: np.ndarray, r_b: np.ndarray) -> np.ndarray:
    """Whether the smaller selection-honest best r is at least ``_COMPARABLE`` times the larger (False on NaN)."""
    with np.errstate(invalid="ignore"):
        return np.minimum(r_a, r_b) >= _COMPARABLE * np.maximum(r_a, r_b)


def _profile_band(r: np.ndarray, ci: float, ratio: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lo, hi = corrected_resampled_interval(r, level=ci, test_train_ratio=ratio)
    return _nanmean(r), lo, hi


def differential_encoding(scores: xr.Dataset, target_a: str | Sequence[str], target_b: str | Sequence[str], *,
                          feature_set: str | None = None, element: str | None = None, element_b: str | None = None,
                          scores_b: xr.Dataset | None = None, family: Sequence[str] | None = None,
                          method: str = "fwer", alpha: float = 0.05, ci: float = 0.95, n_boot: int = 2000,
                          n_perm: int = 4096, seed: int = 0, test_train_ratio: float | None = None) -> xr.Dataset:
    """Paired comparison of two targets' layer profiles, best layers and selection-honest best scores.

    Side a is ``target_a`` of ``scores`` at ``element``; side b is ``target_b``
    of ``scores_b`` (default ``scores``) at ``element_b`` (default ``element``).
    Both sides must have been scored on the same held-out stimuli (folds).

    Parameters
    ----------
    scores : xarray.Dataset
        A scores store, ``r (feature_set, layer, element, target, fold)``.
    target_a, target_b : str or sequence of str
        Targets compared (``"rating:emotionality"`` vs ``"rating:enjoyment"``).
        Equal-length lists make ``n_pair`` pairs, compared position by
        position (region maps; see the module docstring); two strings make one
        pair and the ``pair`` dim is dropped.
    feature_set : str, optional
        Deep feature set with >= 2 scored layers (default: the only deep set).
    element, element_b : str, optional
        Element of side a (default: the only one) and of side b (default: ``element``).
    scores_b : xarray.Dataset, optional
        A second scores store for side b (another condition fitted on the same stimuli).
    family : sequence of {"layer", "pair"}, optional
        Dims pooled into one family for the profile p-values (default
        ``("layer",)`` for one pair, ``("layer", "pair")`` for several). The
        per-pair p-values (best layers, best scores) are corrected over
        ``pair`` when it is in the family.
    method : {"fwer", "fdr", "none"}
        Holm (family-wise, valid under any dependence between layers),
        Benjamini-Hochberg, or none. The names and attrs follow
        :func:`xaffect.encoding.family_pvalues`; its ``fwer`` is a max-statistic
        over the store's permutation null, which exists per target, not for
        a difference between targets, so here family-wise means Holm.
    alpha : float
        Level of the ``differs`` marks.
    ci : float
        Level of every interval.
    n_boot : int
        Stimulus-level bootstrap resamples for the best-layer intervals and ``p_best_bootstrap``.
    n_perm : int
        Swaps for ``p_best_differs``: all ``2 ** n_folds`` when that is at
        most ``n_perm`` (exact; the default covers up to 12 held-out
        stimuli), else ``n_perm`` random ones.
    seed : int
    test_train_ratio : float, optional
        ``n_test / n_train`` for the corrected t (default ``1 / (n_folds - 1)``).

    Returns
    -------
    xarray.Dataset
        Per layer, ``([pair,] layer)``: ``mean_a``, ``mean_b`` with
        ``lower_a``/``upper_a``, ``lower_b``/``upper_b`` (corrected t interval
        of each profile); ``difference`` (mean ``r_a - r_b``), ``difference_lower``/
        ``difference_upper``, ``t``, ``p`` (uncorrected), ``p_family``
        (corrected over ``family``), ``differs`` (``p_family < alpha``); per pair,
        ``p_profiles_differ`` (the smallest ``p_family`` over layers: "the profiles differ somewhere").
        Per pair, ``([pair])``: ``best_a``, ``best_b`` (argmax of the mean
        profile) with bootstrap ``best_a_lower``/``best_a_upper``,
        ``best_b_lower``/``best_b_upper``; ``best_difference`` (``best_a -
        best_b``), ``best_difference_lower``/``best_difference_upper``,
        ``best_share_same`` (share of resamples picking the same layer);
        ``best_crossing`` (the swap test's statistic, in units of each
        profile's spread), ``p_best_swap`` (its swap permutation p),
        ``p_best_bootstrap`` (two-sided bootstrap p of ``best_difference = 0``,
        ties on both sides; conservative), ``best_test_used`` (``"swap"``
        where the selection-honest best r ``r_cv_a``, ``r_cv_b`` are within a
        factor 0.6 of each other, else ``"bootstrap"``), ``p_best_differs``
        (the p of that test, and ``p_best_differs_family``), ``p_best_min``
        (the smallest p it can give: ``2 / 2 ** n_folds`` for exact swaps,
        ``2 / (n_boot + 1)`` for the bootstrap); ``r_cv_a``, ``r_cv_b``
        (each fold at the layer chosen on the other folds), ``r_cv_difference``
        with ``r_cv_lower``/``r_cv_upper``, ``p_r_cv`` (and ``p_r_cv_family``).
        Per fold, ``([pair,] layer, fold)``: ``r_a``, ``r_b``. Coordinates
        ``target_a``, ``target_b`` (and ``region`` when side a's targets are
        ``region:`` targets), ``layer_name`` when the store names its layers.
        Attrs name the ``family``, ``method``, ``n_tests``, ``test``, ``resampling``,
        ``best_test``, ``n_swaps`` and ``swaps_exact``.

    Raises
    ------
    InputError
        Naming ``target_a``/``target_b`` (unknown target, different held-out
        stimuli, fewer than 2 stimuli), ``feature_set``, ``element``,
        ``scores_b``, ``family`` or ``method``.

    Examples
    --------
    >>> res = differential_encoding(scores, "rating:emotionality", "rating:enjoyment",
    ...                             feature_set="vggish")  # doctest: +SKIP
    >>> float(res.best_difference), float(res.p_best_differs)  # doctest: +SKIP
    """
    ci, alpha, n_boot = check_level(ci, "ci"), check_level(alpha, "alpha"), check_resamples(n_boot)
    n_perm = check_resamples(n_perm, "n_perm")
    if method not in ("fwer", "fdr", "none"):
        raise InputError(f"method: must be 'fwer', 'fdr' or 'none', got {method!r}")
    single = isinstance(target_a, str) and isinstance(target_b, str)
    ta, tb = _as_list(target_a, "target_a"), _as_list(target_b, "target_b")
    if len(ta) != len(tb):
        raise InputError(f"target_b: {len(tb)} targets for {len(ta)} in target_a; pairs are compared position "
                         "by position")
    if feature_set is None:
        deeps = deep_feature_sets(scores)
        if len(deeps) != 1:
            raise InputError(f"feature_set: the scores have deep feature sets {deeps}; name the one compared")
        feature_set = deeps[0]
    if family is None:
        family = ("layer",) if single else ("layer", "pair")
    family = tuple(family)
    if any(d not in ("layer", "pair") for d in family):
        raise InputError(f"family: dims must be among ('layer', 'pair'), got {tuple(family)}")
    ra, el_a = _side(scores, feature_set, element, ta, "target_a")
    rb, el_b = _side(scores if scores_b is None else scores_b, feature_set,
                     element if element_b is None else element_b, tb, "target_b")
    _check_pairs(ra, rb, ta, tb, "target_b" if scores_b is None else "scores_b")

    layers = np.asarray(ra["layer"].values)
    a, b = np.asarray(ra.values, float), np.asarray(rb.values, float)          # (pair, layer, fold)
    d = a - b
    ratio = test_train_ratio
    t, p = corrected_resampled_ttest(d, test_train_ratio=ratio)
    d_lo, d_hi = corrected_resampled_interval(d, level=ci, test_train_ratio=ratio)
    axes = tuple(i for i, dim in enumerate(("pair", "layer")) if dim in family)
    p_fam = adjust_family(p, axes, method)

    boot_a, boot_b = _best_bootstrap(a, b, layers, n_boot=n_boot, seed=seed)     # (boot, pair)
    delta = boot_a - boot_b
    best_a, best_b = (np.where(i >= 0, layers[np.maximum(i, 0)], -1) for i in
                      (argmax_finite(_nanmean(a), -1), argmax_finite(_nanmean(b), -1)))
    p_swap, crossing, p_swap_min, swaps_exact, n_swaps = crossing_swap_test(a, b, n_perm=n_perm, seed=seed)
    cv_a, cv_b = (take_along_layer(r, choose_without_fold(r)) for r in (a, b))   # (pair, fold)
    _, p_cv = corrected_resampled_ttest(cv_a - cv_b, test_train_ratio=ratio)
    cv_lo, cv_hi = corrected_resampled_interval(cv_a - cv_b, level=ci, test_train_ratio=ratio)
    # the swap test where the two targets are comparably predictable, else the (conservative) bootstrap p:
    # a noise-dominated profile shares its argmax across folds, which no swap over folds reproduces
    use_swap = comparably_predictable(_nanmean(cv_a), _nanmean(cv_b))
    p_boot = _bootstrap_p(delta)
    p_best = np.where(use_swap, p_swap, p_boot)
    p_best_min = np.where(use_swap, p_swap_min, 2.0 / (n_boot + 1))
    pair_axes = (0,) if "pair" in family else ()

    PL, P, PLF = ("pair", "layer"), ("pair",), ("pair", "layer", "fold")
    data: dict[str, Any] = {"r_a": (PLF, a), "r_b": (PLF, b), "difference": (PL, _nanmean(d)),
                            "difference_lower": (PL, d_lo), "difference_upper": (PL, d_hi), "t": (PL, t),
                            "p": (PL, p), "p_family": (PL, p_fam),
                            "differs": (PL, np.nan_to_num(p_fam, nan=1.0) < alpha)}
    for side, r in (("a", a), ("b", b)):
        m, lo, hi = _profile_band(r, ci, ratio)
        data |= {f"mean_{side}": (PL, m), f"lower_{side}": (PL, lo), f"upper_{side}": (PL, hi)}
    for side, best, boot in (("a", best_a, boot_a), ("b", best_b, boot_b)):
        lo, hi = _quantile_interval(boot, ci, discrete=True)
        data |= {f"best_{side}": (P, best.astype(int)), f"best_{side}_lower": (P, lo), f"best_{side}_upper": (P, hi)}
    lo, hi = _quantile_interval(delta, ci, discrete=True)
    data |= {"best_difference": (P, (best_a - best_b).astype(int)), "best_difference_lower": (P, lo),
             "best_difference_upper": (P, hi), "best_share_same": (P, np.mean(delta == 0, axis=0)),
             "best_crossing": (P, crossing), "p_best_swap": (P, p_swap), "p_best_bootstrap": (P, p_boot),
             "best_test_used": (P, np.where(use_swap, "swap", "bootstrap")),
             "p_best_differs": (P, p_best), "p_best_min": (P, p_best_min),
             "p_best_differs_family": (P, adjust_family(p_best, pair_axes, method)),
             "p_profiles_differ": (P, np.nanmin(np.where(np.isnan(p_fam), np.inf, p_fam), axis=1)),
             "r_cv_a": (P, _nanmean(cv_a)), "r_cv_b": (P, _nanmean(cv_b)),
             "r_cv_difference": (P, _nanmean(cv_a - cv_b)),
             "r_cv_lower": (P, cv_lo), "r_cv_upper": (P, cv_hi), "p_r_cv": (P, p_cv),
             "p_r_cv_family": (P, adjust_family(p_cv, pair_axes, method))}
    label = [f"{x}" if x == y else f"{x} - {y}" for x, y in zip(ta, tb)]
    coords: dict[str, Any] = {"pair": label, "layer": layers, "fold": ra["fold"].values,
                              "target_a": ("pair", np.asarray(ta)), "target_b": ("pair", np.asarray(tb))}
    if all(t_.startswith("region:") for t_ in ta):
        coords["region"] = ("pair", np.asarray([t_.split(":", 1)[1] for t_ in ta]))
    out = xr.Dataset(data, coords=coords)
    names = layer_names(ra)
    if names:
        out = out.assign_coords(layer_name=("layer", [names.get(int(v), "") for v in layers]))
    n_tests = int(np.prod([p.shape[i] for i in axes])) if axes else 1
    fam_label = " x ".join(dim for dim in ("layer", "pair") if dim in family and not (single and dim == "pair"))
    correction = {"fwer": "Holm", "fdr": "Benjamini-Hochberg", "none": "none"}[method]
    out["p_family"].attrs.update(family=fam_label or "single test", method=method, correction=correction,
                                 n_tests=n_tests)
    out.attrs.update(feature_set=feature_set, element_a=el_a, element_b=el_b, family=fam_label or "single test",
                     method=method, correction=correction, n_tests=n_tests, alpha=alpha, ci=ci, n_boot=n_boot,
                     seed=seed, n_folds=int(_scored_folds(a).sum(-1).max()),
                     test=_TEST, resampling=_RESAMPLING,
                     best_test=_BEST_TEST, n_perm=n_perm, n_swaps=n_swaps, swaps_exact=int(swaps_exact),
                     r_cv="each fold read at the layer chosen on the other folds (selection-honest)",
                     second_store=scores_b is not None)
    if single:
        out = out.isel(pair=0)
    return out


def describe_differential(result: xr.Dataset, *, alpha: float | None = None) -> str:
    """One pair's result as a sentence: "a and b are best predicted by different layers: 1 vs 4 (...)".

    The best-layer claim quotes the bootstrap interval of the difference (the
    estimate) and the swap permutation p (the test), and says when the swaps
    are too few to give a p below ``alpha`` (3 held-out stimuli: 8 swaps,
    smallest p 0.25), and names the test used (the bootstrap p where the two
    targets are not comparably predictable).

    Parameters
    ----------
    result : xarray.Dataset
        :func:`differential_encoding` for one pair (select one with ``result.isel(pair=i)``).
    alpha : float, optional
        Level of the claims (default: the result's ``alpha``).
    """
    if "pair" in result.dims:
        raise InputError("describe_differential: select one pair first, e.g. result.isel(pair=0)")
    a = result.attrs
    alpha = a.get("alpha", 0.05) if alpha is None else check_level(alpha, "alpha")
    ta, tb = str(result["target_a"].values), str(result["target_b"].values)
    if ta == tb:
        ta, tb = f"{ta} ({a.get('element_a')})", f"{tb} ({a.get('element_b')})"
    level = f"{round(100 * a.get('ci', 0.95))}% CI"
    p_best, p_min = float(result["p_best_differs"]), float(result["p_best_min"])
    r_a, r_b = float(result["r_cv_a"]), float(result["r_cv_b"])
    if str(result["best_test_used"].values) == "swap":
        how = (f"{'all' if a.get('swaps_exact') else 'random'} {a.get('n_swaps')} swaps of the two targets' profiles "
               f"over the held-out stimuli, each best layer selected again under every swap")
    else:
        how = (f"stimulus bootstrap, conservative: the best-layer r differ ({r_a:.2f} vs {r_b:.2f}) and the swap "
               f"test holds only for comparably predictable targets")
    if p_min > alpha:
        how += f"; {p_min:.3g} is the smallest p these resamples can give, so this test cannot reach {alpha:g} here"
    best = (f"{int(result['best_a'])} vs {int(result['best_b'])}, difference {int(result['best_difference'])} "
            f"(bootstrap {level} {float(result['best_difference_lower']):g} to "
            f"{float(result['best_difference_upper']):g}; p = {p_best:.3g}, {how})")
    head = (f"{ta} and {tb} are best predicted by different layers: {best}" if p_best < alpha else
            f"no evidence that {ta} and {tb} are best predicted by different layers: {best}")
    differs = [int(v) for v in result["layer"].values[np.asarray(result["differs"].values, bool)]]
    prof = (f"profiles differ at layers {differs}" if differs else "profiles differ at no layer") + \
        f" ({a.get('correction')} over {a.get('family')}, corrected resampled t, < {a.get('alpha')})"
    cv = (f"best-layer r (selection-honest) {float(result['r_cv_a']):.2f} vs {float(result['r_cv_b']):.2f}, "
          f"p = {float(result['p_r_cv']):.3g}")
    return f"{head}; {prof}; {cv}; {a.get('n_folds')} held-out stimuli"


def plot_differential_encoding(result: xr.Dataset, *, pair: int | str | None = None,
                               labels: Sequence[str] | None = None):
    """Both layer profiles with their bands and best-layer intervals, and their difference.

    Parameters
    ----------
    result : xarray.Dataset
        Result of :func:`differential_encoding`.
    pair : int or str, optional
        Which pair to draw when the result has a ``pair`` dim (index, or side
        a's target or region name; default the first).
    labels : pair of str, optional
        Legend names of the two sides (default: the target names, with the
        element when the two sides differ only by element).

    Returns
    -------
    matplotlib.figure.Figure
        Top: ``mean_a`` and ``mean_b`` with their corrected t bands, each best
        layer as a star with its bootstrap interval as a horizontal bar.
        Bottom: the difference with its band, layers that differ under the
        family marked.
    """
    from matplotlib.figure import Figure

    res = result
    if "pair" in res.dims:
        if pair is None:
            pair = 0
        if isinstance(pair, str):
            keys = [str(v) for v in res["target_a"].values] + ([str(v) for v in res["region"].values]
                                                              if "region" in res.coords else [])
            if pair not in keys:
                raise InputError(f"pair: {pair!r} is not one of the compared targets")
            pair = keys.index(pair) % res.sizes["pair"]
        res = res.isel(pair=int(pair))
    ta, tb = str(res["target_a"].values), str(res["target_b"].values)
    if labels is None:
        same = ta == tb
        labels = (f"{ta} ({res.attrs.get('element_a')})" if same else ta,
                  f"{tb} ({res.attrs.get('element_b')})" if same else tb)
    x = res["layer"].values
    fig = Figure(figsize=(6.4, 5.2), constrained_layout=True)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    ymax = float(np.nanmax(np.r_[res["upper_a"].values, res["upper_b"].values, 0.0]))
    for k, (side, colour, label) in enumerate((("a", "C0", labels[0]), ("b", "C3", labels[1]))):
        top.plot(x, res[f"mean_{side}"].values, "o-", ms=3, color=colour, label=label)
        top.fill_between(x, res[f"lower_{side}"].values, res[f"upper_{side}"].values, color=colour, alpha=0.2)
        best = int(res[f"best_{side}"])
        if best >= 0:
            y = ymax * (1.05 + 0.07 * k)
            top.plot([best], [y], "*", ms=12, color=colour)
            top.hlines(y, float(res[f"best_{side}_lower"]), float(res[f"best_{side}_upper"]), color=colour, lw=2,
                       label=f"best layer, {round(100 * res.attrs.get('ci', 0.95))}% bootstrap CI" if k == 0 else None)
    top.axhline(0, color="grey", lw=0.6)
    top.set_ylabel(f"r (mean over folds, {round(100 * res.attrs.get('ci', 0.95))}% CI)")
    top.set_title(f"best layer {int(res['best_a'])} vs {int(res['best_b'])}: difference "
                  f"{int(res['best_difference'])} [{float(res['best_difference_lower']):g}, "
                  f"{float(res['best_difference_upper']):g}], p = {float(res['p_best_differs']):.3g}", fontsize=9)
    top.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0, frameon=False)
    bottom.plot(x, res["difference"].values, "o-", ms=3, color="k", label="a - b")
    bottom.fill_between(x, res["difference_lower"].values, res["difference_upper"].values, color="0.6", alpha=0.4)
    sig = np.asarray(res["differs"].values, bool)
    bottom.plot(x[sig], res["difference"].values[sig], "*", ms=10, color="k",
                label=f"{res.attrs.get('correction')} over {res.attrs.get('family')} < {res.attrs.get('alpha')}")
    bottom.axhline(0, color="grey", lw=0.6)
    bottom.set_xlabel("layer")
    bottom.set_ylabel("r difference (a - b)")
    bottom.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0, frameon=False)
    if "layer_name" in res.coords:
        bottom.set_xticks(x, [str(v) for v in res["layer_name"].values], rotation=90, fontsize=6)
    return fig
