"""Middle vs final layers: a band fixed in advance, tested once.

The first seed's claim is that the middle layers of a 24-layer wav2vec 2.0 /
HuBERT (7-14) beat the final ones. :func:`middle_vs_final` tests exactly that
claim on a band fixed before looking at the data -- by default the seed's
band by relative depth (:data:`SEED_MIDDLE_FRACTION` of the deepest layer
index, so 7-14 of 24 and 4-7 of 12) -- against the final layer(s), with
Nadeau & Bengio's corrected resampled t across folds.

The band the data would pick (longest run of layers significantly above the
final one) is still reported, as ``exploratory_*``: it is chosen and tested on
the same folds, so its p-value is circular and must not be read as a test.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import xarray as xr

from ..encoding._compare import corrected_resampled_interval, corrected_resampled_ttest
from ..errors import InputError
from ..stats import fdr_bh
from ._scores import check_level, select_deep

__all__ = ["middle_vs_final", "middle_band", "SEED_MIDDLE_FRACTION"]

#: Layers 7-14 of a 24-layer model, as fractions of the deepest layer index.
SEED_MIDDLE_FRACTION = (7 / 24, 14 / 24)


def middle_band(layers: Sequence[int], *, fraction: tuple[float, float] = SEED_MIDDLE_FRACTION
                ) -> tuple[int, int]:
    """First and last layer of a band given by relative depth.

    Relative depth of layer ``l`` is ``l / L`` with ``L`` the deepest layer
    index (Hugging Face models: layer 0 is the input to the transformer and
    ``L`` its last block, so the seed's 7-14 of a 24-layer model is
    ``(7/24, 14/24)``; VGGish stages 1-23 scale the same way).

    Parameters
    ----------
    layers : sequence of int
        The model's scored layers.
    fraction : (float, float)
        Band edges in relative depth, ``0 <= lo <= hi <= 1``.

    Returns
    -------
    (int, int)
        The scored layers nearest inside the band.

    Raises
    ------
    InputError
        Naming ``band_fraction`` when the fraction is invalid or no scored layer falls in it.
    """
    lo, hi = (float(v) for v in fraction)
    if not (0.0 <= lo <= hi <= 1.0):
        raise InputError(f"band_fraction: {tuple(fraction)} must satisfy 0 <= lo <= hi <= 1 (relative depth)")
    layers = np.sort(np.asarray(layers, dtype=int))
    depth = int(layers.max())
    inside = layers[(layers >= lo * depth - 1e-9) & (layers <= hi * depth + 1e-9)]
    if inside.size == 0:
        raise InputError(f"band_fraction: {tuple(fraction)} of depth {depth} holds none of the scored layers "
                         f"{layers.tolist()}")
    return int(inside.min()), int(inside.max())


def _check_band(band: Sequence[int], layers: np.ndarray, finals: list[int], feature_set: str) -> tuple[int, int]:
    try:
        start, end = (int(v) for v in band)
    except (TypeError, ValueError):
        raise InputError(f"band: expected (first, last) layer, got {band!r}") from None
    lo, hi = int(layers.min()), int(layers.max())
    if start > end or start < lo or end > hi:
        raise InputError(f"band: ({start}, {end}) is outside the depth of {feature_set!r} (layers {lo}..{hi})")
    inside = layers[(layers >= start) & (layers <= end)]
    if inside.size == 0:
        raise InputError(f"band: ({start}, {end}) holds no scored layer of {feature_set!r}")
    if any(start <= f <= end for f in finals):
        raise InputError(f"band: ({start}, {end}) overlaps the final layer(s) {finals}")
    return start, end


def _longest_true_run(mask: np.ndarray) -> tuple[int, int]:
    """Start and end (inclusive) indices of the longest run of True; (-1, -1) if none."""
    best, start = (-1, -1), None
    for i, v in enumerate(list(mask) + [False]):
        if v and start is None:
            start = i
        elif not v and start is not None:
            if best[0] < 0 or i - start > best[1] - best[0] + 1:
                best = (start, i - 1)
            start = None
    return best


def middle_vs_final(scores: xr.Dataset, *, feature_set: str, element: str, band: Sequence[int] | None = None,
                    band_fraction: tuple[float, float] = SEED_MIDDLE_FRACTION,
                    final: int | Sequence[int] | None = None, alternative: str = "greater", alpha: float = 0.05,
                    test_train_ratio: float | None = None) -> xr.Dataset:
    """A pre-set middle band vs the final layer(s), per target.

    Per fold, the band's mean r minus the final layers' mean r; tested across
    folds with the corrected resampled t (one-sided "band better" by default,
    the seed's claim). Per-layer differences from the final layer are given
    too (corrected t, FDR across layers), and the data-picked band as an
    explicitly exploratory output.

    Parameters
    ----------
    scores : xarray.Dataset
    feature_set : str
        A deep feature set.
    element : str
    band : (int, int), optional
        First and last layer of the middle band, fixed in advance. Default:
        :func:`middle_band` of ``band_fraction``.
    band_fraction : (float, float)
        Band by relative depth when ``band`` is None (default the seed's 7-14 of 24).
    final : int or sequence of int, optional
        Final layer(s) (default: the deepest scored layer).
    alternative : {"greater", "two-sided", "less"}
    alpha : float
        Level of the per-layer FDR marks and of the exploratory band.
    test_train_ratio : float, optional

    Returns
    -------
    xarray.Dataset
        ``difference``, ``t``, ``p``, ``p_fdr``, ``significant`` ``(target, layer)``
        (per layer vs final, descriptive); ``band_difference``, ``band_ci_low``,
        ``band_ci_high`` (95 % corrected resampled t interval), ``band_t``,
        ``band_p``, ``band_p_fdr`` (BH across targets), ``band_start``,
        ``band_end`` ``(target)`` (the pre-set band: the test to report);
        ``exploratory_band_start``, ``exploratory_band_end`` (-1 when none),
        ``exploratory_band_difference``, ``exploratory_band_p`` ``(target)``
        (picked and tested on the same folds: circular, not a test).
    """
    alpha = check_level(alpha, "alpha")
    r = select_deep(scores, feature_set, element, min_layers=2).transpose("target", "layer", "fold")
    layers = np.asarray(r["layer"].values)
    finals = [int(layers.max())] if final is None else [int(f) for f in np.atleast_1d(final)]
    for f in finals:
        if f not in layers:
            raise InputError(f"final: layer {f} is not scored for {feature_set!r} "
                             f"(layers {layers.min()}..{layers.max()})")
    by_fraction = band is None
    if by_fraction:
        band = middle_band(layers, fraction=band_fraction)
    start, end = _check_band(band, layers, finals, feature_set)
    rv = np.asarray(r.values, dtype=float)
    in_band = (layers >= start) & (layers <= end)
    is_final = np.isin(layers, finals)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        rf = np.nanmean(rv[:, is_final], axis=1)                         # (target, fold)
        band_diff = np.nanmean(rv[:, in_band], axis=1) - rf
    bt, bp = corrected_resampled_ttest(band_diff, test_train_ratio=test_train_ratio, alternative=alternative)
    blo, bhi = corrected_resampled_interval(band_diff, test_train_ratio=test_train_ratio)
    diff = rv - rf[:, None, :]
    t, p = corrected_resampled_ttest(diff, test_train_ratio=test_train_ratio, alternative=alternative)
    t[:, is_final], p[:, is_final] = np.nan, np.nan
    p_fdr = fdr_bh(p, axis=1)
    sig = np.nan_to_num(p_fdr, nan=1.0) < alpha
    n_t = rv.shape[0]
    es, ee = np.full(n_t, -1), np.full(n_t, -1)
    ed, ep = np.full(n_t, np.nan), np.full(n_t, np.nan)
    for i in range(n_t):
        s, e = _longest_true_run(sig[i])
        if s < 0:
            continue
        es[i], ee[i] = layers[s], layers[e]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            d = np.nanmean(rv[i, s:e + 1], axis=0) - rf[i]
        ed[i] = np.nanmean(d)
        ep[i] = float(corrected_resampled_ttest(d, test_train_ratio=test_train_ratio, alternative=alternative)[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean_diff, mean_band = np.nanmean(diff, axis=-1), np.nanmean(band_diff, axis=-1)
    tl = ("target", "layer")
    out = xr.Dataset(
        {"difference": (tl, mean_diff), "t": (tl, t), "p": (tl, p), "p_fdr": (tl, p_fdr), "significant": (tl, sig),
         "band_difference": ("target", mean_band), "band_ci_low": ("target", blo), "band_ci_high": ("target", bhi),
         "band_t": ("target", bt), "band_p": ("target", bp),
         "band_p_fdr": ("target", fdr_bh(bp)),
         "band_start": ("target", np.full(n_t, start)), "band_end": ("target", np.full(n_t, end)),
         "exploratory_band_start": ("target", es), "exploratory_band_end": ("target", ee),
         "exploratory_band_difference": ("target", ed), "exploratory_band_p": ("target", ep)},
        coords={"target": r["target"].values, "layer": layers})
    if "layer_name" in r.coords:
        out = out.assign_coords(layer_name=("layer", np.asarray(r["layer_name"].values).astype(str)))
    out["exploratory_band_p"].attrs["note"] = "band picked and tested on the same folds: circular, not a test"
    out.attrs.update(feature_set=feature_set, element=element, band=[start, end],
                     band_fraction=[float(v) for v in band_fraction] if by_fraction else "given",
                     final_layers=finals, final_layer=finals[0] if len(finals) == 1 else str(finals),
                     alternative=alternative, alpha=alpha,
                     test="Nadeau-Bengio corrected resampled t across folds of mean r(band) - mean r(final)")
    return out
