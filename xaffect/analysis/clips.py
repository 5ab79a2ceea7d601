"""Clip-level labels predicted from each layer: the accuracy profile across layers.

The seed study's 4Q dataset has 255 clips of 30 s in arousal-valence
quadrants, and asks whether deep layers carry more information about the
expressed emotion than a classical descriptor. Here:

* :func:`pool_clips` averages a feature cube over time within each clip
  (``activation (element, time, layer, unit)`` -> ``(stimulus, layer, unit)``;
  ``lld (element, time, descriptor)`` -> ``(stimulus, descriptor)``);
* :func:`clip_label_profile` cross-validates a linear read-out (standardise,
  then ridge classifier or ridge regression with its penalty chosen inside
  each training fold by scikit-learn's efficient leave-one-out) per layer and
  for the classical descriptors, on the same folds (stratified; grouped when
  clips share a piece or an artist), and gets a label-permutation p-value.
  The same permuted labels serve every layer, so the maximum over layers in
  each permutation gives family-wise p-values: the best layer's p is honest
  about having been picked among all layers.

Layering: :func:`cross_validated_scores` (kernel on arrays, scikit-learn),
:func:`clip_label_profile` (xarray in, :class:`xarray.Dataset` out),
:func:`deep_vs_classical_clips` (best layer chosen on inner folds vs descriptors, corrected resampled t
over repeated cross-validation),
:func:`plot_clip_profile`.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import xarray as xr
from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold
from sklearn.preprocessing import StandardScaler

from ..encoding import RidgeCV
from ..errors import ConfigError, InputError

__all__ = ["pool_clips", "cross_validated_scores", "clip_label_profile", "deep_vs_classical_clips",
           "plot_clip_profile"]

_ALPHAS = np.logspace(-2, 5, 15)


def pool_clips(features: xr.DataArray, *, element: str | None = None, how: tuple[str, ...] = ("mean",)
               ) -> xr.DataArray:
    """Pool a clock-rate feature cube over time within each clip.

    Parameters
    ----------
    features : DataArray of shape (element, time, layer, unit) or (element, time, descriptor)
        With the clock's ``stimulus`` coordinate along ``time``; ``element``
        optional.
    element : str, optional
        Element to keep (default: the only one, else an error).
    how : tuple of {"mean", "std"}
        Statistics over time, stacked along the last (feature) dimension.

    Returns
    -------
    DataArray of shape (stimulus, [layer,] feature)
    """
    if "stimulus" not in features.coords or "time" not in features.dims:
        raise InputError(f"features {features.name!r}: need a 'time' dimension with a 'stimulus' coordinate")
    if "element" in features.dims:
        names = [str(v) for v in features["element"].values]
        if element is None and len(names) != 1:
            raise ConfigError(f"element: the cube has elements {names}; name one")
        element = element if element is not None else names[0]
        if element not in names:
            raise InputError(f"element: {element!r} not in features {features.name!r} (has {names})")
        features = features.sel(element=element, drop=True)
    elif element is not None:
        raise InputError(f"element: features {features.name!r} have no 'element' dimension")
    feat_dim = features.dims[-1]
    grouped = features.groupby("stimulus")
    parts = []
    for stat in how:
        if stat not in ("mean", "std"):
            raise ConfigError(f"how: statistics must be 'mean' or 'std', got {stat!r}")
        part = getattr(grouped, stat)("time")
        labels = [f"{v}_{stat}" for v in part[feat_dim].values]
        parts.append(part.assign_coords({feat_dim: labels}))
    pooled = xr.concat(parts, dim=feat_dim).rename({feat_dim: "feature"})
    order = list(dict.fromkeys(np.asarray(features["stimulus"].values).astype(str)))
    return pooled.sel(stimulus=order).transpose("stimulus", ..., "feature")


def _splits(y: np.ndarray, classes: bool, groups: np.ndarray | None, n_splits: int, seed: int) -> list:
    if groups is None:
        cv = (StratifiedKFold if classes else KFold)(n_splits=n_splits, shuffle=True, random_state=seed)
    elif classes:
        cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    else:
        cv = GroupKFold(n_splits=n_splits)
    return list(cv.split(np.zeros((y.size, 1)), y, groups))


def _balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Balanced accuracy of each column (mean recall over the classes present in ``y_true``).

    Integer codes, arrays of shape (n_test, n_columns); vectorised over columns (the
    permutations), which scikit-learn's ``balanced_accuracy_score`` is not.
    """
    recalls = []
    for c in range(n_classes):
        mask = y_true == c
        present = mask.sum(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            recalls.append(np.where(present > 0, (mask & (y_pred == c)).sum(0) / present, np.nan))
    return np.nanmean(np.stack(recalls), axis=0)


def _r2(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    ss_res = ((y_true - y_pred) ** 2).sum(0)
    ss_tot = ((y_true - y_true.mean(0)) ** 2).sum(0)
    return 1.0 - ss_res / ss_tot


def cross_validated_scores(Xs: list[np.ndarray], y: np.ndarray, splits: list, *, classes: bool,
                           permutations: np.ndarray, alphas: np.ndarray = _ALPHAS) -> np.ndarray:
    """Mean out-of-fold score of each feature set, for the labels and all their permutations at once.

    Each training fold is standardised, and one ridge (xaffect's
    :class:`~xaffect.encoding.RidgeCV`: one decomposition, the penalty of each
    target chosen by inner 5-fold CV on the training clips) is fitted to all
    permuted label vectors as targets (one-hot columns for classes, predicted
    class = the largest column of each permutation). A scikit-learn estimator
    refitted per permutation costs ~1000 times more.

    Parameters
    ----------
    Xs : list of arrays of shape (n_clips, n_features_k)
        One per feature set (layer or descriptors).
    y : array of shape (n_clips,)
        Integer class codes (``classes``) or values.
    splits : list of (train, test) index arrays
    classes : bool
        Balanced accuracy of a one-vs-rest ridge classifier, else R^2 of ridge regression.
    permutations : int array of shape (n_perm, n_clips)
        Row 0 should be the identity (the observed labels).
    alphas : array of shape (n_alphas,)

    Returns
    -------
    array of shape (n_perm, n_sets)
    """
    n_perm = permutations.shape[0]
    Yp = y[permutations].T                                                  # (n_clips, n_perm)
    n_classes = int(y.max()) + 1 if classes else 0
    if classes:
        targets = (Yp[:, :, None] == np.arange(n_classes)).reshape(y.size, -1).astype(float)
    else:
        targets = Yp.astype(float)
    out = np.zeros((n_perm, len(Xs)))
    for k, X in enumerate(Xs):
        for train, test in splits:
            scaler = StandardScaler().fit(X[train])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")                            # alphas at the grid edge under the null
                model = RidgeCV(alphas=alphas, cv=KFold(5)).fit(scaler.transform(X[train]), targets[train])
            pred = model.predict(scaler.transform(X[test]))
            if classes:
                codes = pred.reshape(test.size, n_perm, n_classes).argmax(-1)
                out[:, k] += _balanced_accuracy(Yp[test], codes, n_classes)
            else:
                out[:, k] += _r2(Yp[test], pred)
    return out / len(splits)


def _labels(labels: xr.DataArray, clips: list[str]) -> tuple[np.ndarray, bool]:
    if labels.dims != ("stimulus",):
        raise InputError(f"labels {labels.name!r}: expected dims ('stimulus',), got {labels.dims}")
    have = [str(v) for v in labels["stimulus"].values]
    missing = [c for c in clips if c not in have]
    if missing:
        raise InputError(f"labels {labels.name!r}: no label for clip(s) {missing[:5]}"
                         f"{' ...' if len(missing) > 5 else ''}")
    y = labels.assign_coords(stimulus=have).sel(stimulus=clips).values
    classes = y.dtype.kind in "OUSbi"
    if classes:
        values, counts = np.unique(y.astype(str), return_counts=True)
        if values.size < 2:
            raise InputError(f"labels {labels.name!r}: only one class ({values[0]!r}) among {y.size} clips; "
                             "nothing to predict")
        y = y.astype(str)
    elif not np.isfinite(y).all():
        raise InputError(f"labels {labels.name!r}: missing value for clip(s) "
                         f"{[c for c, v in zip(clips, y) if not np.isfinite(v)][:5]}")
    return y, classes


def clip_label_profile(pooled: xr.DataArray, labels: xr.DataArray, *, classical: xr.DataArray | None = None,
                       groups: xr.DataArray | None = None, n_splits: int = 5, n_permutations: int = 1000,
                       alphas: np.ndarray = _ALPHAS, seed: int = 0) -> xr.Dataset:
    """Cross-validated prediction of clip labels from each layer, with label-permutation p-values.

    Parameters
    ----------
    pooled : DataArray of shape (stimulus, layer, feature)
        Clip-pooled deep features (:func:`pool_clips`).
    labels : DataArray of shape (stimulus,)
        Classes (str/int: quadrant) or static values (float: valence, arousal).
    classical : DataArray of shape (stimulus, feature), optional
        Clip-pooled classical descriptors, scored on the same folds and permutations.
    groups : DataArray of shape (stimulus,), optional
        Piece / artist of each clip: clips of one group never straddle train and test.
    n_splits : int
    n_permutations : int
    alphas : array of shape (n_alphas,)
        Ridge penalties, chosen per fold by inner CV on the training clips
        (see :func:`cross_validated_scores`). Scores: balanced accuracy
        (classes) or R^2 (values).
    seed : int

    Returns
    -------
    xarray.Dataset
        ``score (layer)``, ``p (layer)`` (per layer), ``p_fwer (layer)`` (max
        over layers), ``null (permutation, layer)``, ``best_layer``,
        ``best_score``, ``p_best`` (= the best layer's ``p_fwer``), and with
        ``classical``: ``classical_score``, ``classical_p``. Attrs: ``scoring``, ``chance``.
    """
    if pooled.dims[0] != "stimulus" or "layer" not in pooled.dims or pooled.ndim != 3:
        raise InputError(f"pooled {pooled.name!r}: expected dims (stimulus, layer, feature), got {pooled.dims}")
    clips = [str(v) for v in pooled["stimulus"].values]
    y, classes = _labels(labels, clips)
    if classes and np.unique(y, return_counts=True)[1].min() < n_splits and groups is None:
        raise InputError(f"labels {labels.name!r}: a class has fewer clips than n_splits={n_splits} "
                         f"(counts {dict(zip(*np.unique(y, return_counts=True)))})")
    g = None if groups is None else np.asarray(groups.assign_coords(
        stimulus=[str(v) for v in groups["stimulus"].values]).sel(stimulus=clips).values).astype(str)
    splits = _splits(y, classes, g, n_splits, seed)
    scoring = "balanced_accuracy" if classes else "r2"
    layers = pooled["layer"].values
    Xs = [np.asarray(pooled.isel(layer=i).values, float) for i in range(layers.size)]
    if classical is not None:
        cl = classical.assign_coords(stimulus=[str(v) for v in classical["stimulus"].values])
        missing = [c for c in clips if c not in set(cl["stimulus"].values)]
        if missing:
            raise InputError(f"classical {classical.name!r}: no descriptors for clip(s) {missing[:5]}")
        Xs.append(np.asarray(cl.sel(stimulus=clips).transpose("stimulus", ...).values, float))
    rng = np.random.default_rng(seed)
    perms = np.vstack([np.arange(y.size)] + [rng.permutation(y.size) for _ in range(n_permutations)])
    codes = np.unique(y, return_inverse=True)[1] if classes else y.astype(float)
    scores = cross_validated_scores(Xs, codes, splits, classes=classes, permutations=perms, alphas=alphas)
    obs, null = scores[0], scores[1:]
    deep_obs, deep_null = obs[:layers.size], null[:, :layers.size]
    p = (1 + (deep_null >= deep_obs - 1e-12).sum(0)) / (n_permutations + 1)
    p_fwer = (1 + (deep_null.max(1)[:, None] >= deep_obs - 1e-12).sum(0)) / (n_permutations + 1)
    best = int(np.argmax(deep_obs))
    ds = xr.Dataset({"score": ("layer", deep_obs), "p": ("layer", p), "p_fwer": ("layer", p_fwer),
                     "null": (("permutation", "layer"), deep_null), "best_layer": layers[best],
                     "best_score": deep_obs[best], "p_best": p_fwer[best]}, coords={"layer": layers})
    if classical is not None:
        ds["classical_score"] = obs[-1]
        ds["classical_p"] = (1 + (null[:, -1] >= obs[-1] - 1e-12).sum()) / (n_permutations + 1)
        ds["classical_null"] = ("permutation", null[:, -1])
    ds.attrs.update(scoring=scoring, chance=(1.0 / np.unique(y).size) if classes else 0.0,
                    labels=str(labels.name), n_clips=len(clips), n_splits=int(n_splits),
                    n_permutations=int(n_permutations), grouped=groups is not None)
    return ds


def _predict(X: np.ndarray, target: np.ndarray, train: np.ndarray, test: np.ndarray, alphas: np.ndarray,
             classes: bool, n_classes: int) -> np.ndarray:
    """Standardise on ``train``, ridge (inner-CV penalty), predict ``test``: class codes or values."""
    scaler = StandardScaler().fit(X[train])
    t = (target[:, None] == np.arange(n_classes)).astype(float) if classes else target.astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = RidgeCV(alphas=alphas, cv=KFold(5)).fit(scaler.transform(X[train]), t[train])
    pred = np.asarray(model.predict(scaler.transform(X[test])))
    return pred.argmax(-1) if classes else pred.ravel()


def _repeated_splits(y: np.ndarray, classes: bool, groups: np.ndarray | None, n_splits: int, seed: int) -> list:
    """:func:`_splits` with a fresh shuffle for every seed, grouped regression included."""
    if groups is None or classes:
        return _splits(y, classes, groups, n_splits, seed)
    try:
        cv = GroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    except TypeError:                                                      # scikit-learn < 1.6
        raise ConfigError("n_repeats: repeating grouped folds for values needs scikit-learn >= 1.6 "
                          "(GroupKFold(shuffle=True)); use n_repeats=1 or upgrade") from None
    return list(cv.split(np.zeros((y.size, 1)), y, groups))


def deep_vs_classical_clips(pooled: xr.DataArray, labels: xr.DataArray, classical: xr.DataArray, *,
                            groups: xr.DataArray | None = None, n_splits: int = 5, inner_splits: int = 4,
                            n_repeats: int = 10, alphas: np.ndarray = _ALPHAS, seed: int = 0) -> xr.Dataset:
    """Does the best deep layer predict clip labels better than the classical descriptors? Selection-honest.

    In each outer fold the layer is chosen by inner cross-validation on the
    training clips only, then scored on the held-out clips, next to the
    classical descriptors on the same clips. The whole cross-validation is
    repeated ``n_repeats`` times with fresh fold assignments.

    The test is Nadeau & Bengio's corrected resampled t over the ``n_repeats
    x n_splits`` per-fold differences (Nadeau & Bengio 2003, Machine Learning
    52:239; Bouckaert & Frank 2004, PAKDD, for repeated k-fold):
    ``t = mean(d) / sqrt((1 / (k r) + n_test / n_train) var(d))`` with
    ``k r - 1`` degrees of freedom. A test on clips (exact McNemar for
    classes, a sign flip of per-clip errors for values) treats the held-out
    clips as independent, but the folds share most of their training clips
    (and the layer choice), so their errors are correlated: McNemar rejected
    8 % of equal-information nulls at 5 %. The ``n_test / n_train`` term pays
    for that overlap. (A label permutation test would answer another
    question -- whether either predicts at all -- not whether one predicts
    better.)

    Parameters
    ----------
    pooled : DataArray of shape (stimulus, layer, feature)
    labels : DataArray of shape (stimulus,)
    classical : DataArray of shape (stimulus, feature)
    groups : DataArray of shape (stimulus,), optional
    n_splits, inner_splits : int
    n_repeats : int
        Repetitions of the outer cross-validation (10 x 10 in Bouckaert &
        Frank; a few already stabilise the estimate).
    alphas : array of shape (n_alphas,)
    seed : int

    Returns
    -------
    xarray.Dataset
        ``deep_score``, ``classical_score`` (accuracy or R^2 over all held-out
        clips, averaged over repeats), ``difference`` (deep - classical),
        ``fold_difference (repeat, fold)`` (per-fold accuracy difference, or
        classical minus deep mean squared error for values: > 0 favours deep),
        ``mean_fold_difference``, ``ci_low``/``ci_high`` (95 % corrected
        interval of it), ``t``, ``p`` (two-sided corrected resampled t),
        ``chosen_layer (repeat, fold)``, and for classes ``deep_wins``/
        ``classical_wins`` (discordant clips, summed over repeats, descriptive).
    """
    from ..encoding._compare import corrected_resampled_interval, corrected_resampled_ttest

    if isinstance(n_repeats, bool) or not isinstance(n_repeats, (int, np.integer)) or n_repeats < 1:
        raise ConfigError(f"n_repeats: expected an integer >= 1, got {n_repeats!r}")
    clips = [str(v) for v in pooled["stimulus"].values]
    y, classes = _labels(labels, clips)
    codes = np.unique(y, return_inverse=True)[1] if classes else y.astype(float)
    n_classes = int(codes.max()) + 1 if classes else 0
    g = None if groups is None else np.asarray(groups.assign_coords(
        stimulus=[str(v) for v in groups["stimulus"].values]).sel(stimulus=clips).values).astype(str)
    cl = classical.assign_coords(stimulus=[str(v) for v in classical["stimulus"].values])
    missing = [c for c in clips if c not in set(cl["stimulus"].values)]
    if missing:
        raise InputError(f"classical {classical.name!r}: no descriptors for clip(s) {missing[:5]}")
    Xc = np.asarray(cl.sel(stimulus=clips).transpose("stimulus", ...).values, float)
    Xs = [np.asarray(pooled.isel(layer=i).values, float) for i in range(pooled.sizes["layer"])]
    layers = pooled["layer"].values
    fold_diff = np.full((n_repeats, n_splits), np.nan)
    chosen = np.zeros((n_repeats, n_splits), dtype=layers.dtype)
    ratios, scores_d, scores_c, wins_d, wins_c = [], [], [], 0, 0
    for rep in range(n_repeats):
        rep_seed = seed + 1000 * rep
        deep, base = np.empty(codes.shape), np.empty(codes.shape)
        for k, (train, test) in enumerate(_repeated_splits(codes, classes, g, n_splits, rep_seed)):
            inner = _splits(codes[train], classes, None if g is None else g[train], inner_splits, rep_seed + 1 + k)
            inner_scores = cross_validated_scores([X[train] for X in Xs], codes[train], inner, classes=classes,
                                                  permutations=np.arange(train.size)[None], alphas=alphas)[0]
            best = int(np.argmax(inner_scores))
            chosen[rep, k] = layers[best]
            deep[test] = _predict(Xs[best], codes, train, test, alphas, classes, n_classes)
            base[test] = _predict(Xc, codes, train, test, alphas, classes, n_classes)
            if classes:
                fold_diff[rep, k] = np.mean(deep[test] == codes[test]) - np.mean(base[test] == codes[test])
            else:
                fold_diff[rep, k] = np.mean((codes[test] - base[test]) ** 2) - np.mean((codes[test] - deep[test]) ** 2)
            ratios.append(test.size / train.size)
        if classes:
            right_d, right_c = deep == codes, base == codes
            wins_d += int((right_d & ~right_c).sum())
            wins_c += int((right_c & ~right_d).sum())
            scores_d.append(right_d.mean())
            scores_c.append(right_c.mean())
        else:
            tot = ((codes - codes.mean()) ** 2).sum()
            scores_d.append(1 - ((codes - deep) ** 2).sum() / tot)
            scores_c.append(1 - ((codes - base) ** 2).sum() / tot)
    ratio = float(np.mean(ratios))
    flat = fold_diff.ravel()
    t, p = corrected_resampled_ttest(flat, test_train_ratio=ratio)
    low, high = corrected_resampled_interval(flat, test_train_ratio=ratio)
    score_d, score_c = float(np.mean(scores_d)), float(np.mean(scores_c))
    extra = {"deep_wins": wins_d, "classical_wins": wins_c} if classes else {}
    ds = xr.Dataset({"deep_score": score_d, "classical_score": score_c, "difference": score_d - score_c,
                     "fold_difference": (("repeat", "fold"), fold_diff),
                     "mean_fold_difference": float(np.mean(flat)), "ci_low": float(low), "ci_high": float(high),
                     "t": float(t), "p": float(p), "chosen_layer": (("repeat", "fold"), chosen), **extra})
    ds.attrs.update(scoring="accuracy" if classes else "r2", labels=str(labels.name), n_clips=len(clips),
                    n_splits=int(n_splits), n_repeats=int(n_repeats), test_train_ratio=ratio,
                    fold_difference="accuracy difference" if classes else "classical MSE - deep MSE",
                    test="Nadeau-Bengio corrected resampled t over repeated cross-validation "
                         "(Nadeau & Bengio 2003; Bouckaert & Frank 2004)")
    return ds


def plot_clip_profile(result: xr.Dataset, *, ax: Any = None):
    """Score per layer with the 95th percentile of the label-permutation null, chance and classical lines.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    fig, ax = (plt.subplots(figsize=(7.5, 3.5)) if ax is None else (ax.figure, ax))
    layers = result["layer"].values
    ax.plot(layers, result["score"].values, "o-", color="C0", label="deep layer")
    ax.fill_between(layers, result["null"].quantile(0.05, "permutation").values,
                    result["null"].quantile(0.95, "permutation").values, color="0.8", label="permutation null 5-95 %")
    ax.axhline(result.attrs.get("chance", 0.0), color="0.5", ls=":", label="chance")
    if "classical_score" in result:
        ax.axhline(float(result["classical_score"]), color="C3", ls="--", label="classical descriptors")
    sig = result["p_fwer"].values < 0.05
    ax.plot(layers[sig], result["score"].values[sig], "*", color="k", ms=10, label="p_fwer < .05")
    ax.set_xlabel("layer")
    ax.set_ylabel(result.attrs.get("scoring", "score").replace("_", " "))
    ax.set_title(f"clip labels: {result.attrs.get('labels', '')}")
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # off the data
    fig.tight_layout()
    return fig
