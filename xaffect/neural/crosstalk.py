"""Region cross-talk of the EEG inverse actually used, and the leakage it explains.

A source estimate spreads every region's activity into its neighbours
(point-spread), so a region's estimated signal also reads what its
neighbours did (cross-talk). MNE's resolution matrix
(:func:`mne.minimum_norm.make_inverse_resolution_matrix`) is ``K · G``:
inverse kernel times lead field, columns = point-spread functions, rows =
cross-talk functions. xaffect summarises it per atlas label on both sides:

``crosstalk[i, j]`` = region ``i``'s estimated signal when every source of
region ``j`` carries a unit current along the cortical normal (the same
source model as :func:`~xaffect.neural.simulate_raw`), others silent.

It is composed from the *region filter* (label extraction ∘ inverse kernel,
exactly the operator applied to the recordings, see
:func:`~xaffect.neural.region_filter`) and MNE's fixed-orientation lead
field, because for a loose inverse ``make_inverse_resolution_matrix``
returns x/y/z rows against surface-oriented columns; for a fixed-orientation
inverse both are equal (tested against MNE's resolution matrix).

:func:`leaked_r` turns it into "the r region ``i`` would show if only
region ``j`` carried the effect region ``j`` shows" (:func:`leakage_ratio`:
its small-effect limit, as a share of ``r_j``), and :func:`flag_leakage`
marks significant regions whose effect that explains.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from ..errors import InputError

__all__ = ["region_crosstalk", "crosstalk_dataset", "leakage_ratio", "leaked_r", "flag_leakage"]

_V = "error"


def _label_patterns(forward: Any, labels: Sequence[Any], ch_names: Sequence[str]) -> np.ndarray:
    """Sensor pattern of each whole region (unit normal current in all its sources).

    Returns
    -------
    ndarray of shape (n_channels, n_regions)
    """
    import mne

    fwd = mne.convert_forward_solution(forward, surf_ori=True, force_fixed=True, use_cps=True, verbose=_V)
    missing = [c for c in ch_names if c not in fwd["info"]["ch_names"]]
    if missing:
        raise InputError(f"forward: channel(s) {', '.join(missing[:5])} of the region filter are not in the "
                         "forward model")
    fwd = mne.pick_channels_forward(fwd, list(ch_names), ordered=True, verbose=_V)
    gain = fwd["sol"]["data"]                                     # (n_channels, n_sources)
    vertno = [s["vertno"] for s in fwd["src"]]
    offset = {"lh": 0, "rh": len(vertno[0])}
    patterns = np.zeros((gain.shape[0], len(labels)))
    for j, lab in enumerate(labels):
        if lab.hemi not in offset:
            raise InputError(f"labels: {lab.name!r} has hemisphere {lab.hemi!r}; expected lh or rh "
                             "(bilateral labels are not regions of a parcellation)")
        cols = np.nonzero(np.isin(vertno[0 if lab.hemi == "lh" else 1], lab.vertices))[0] + offset[lab.hemi]
        if cols.size == 0:
            raise InputError(f"labels: region {lab.name!r} has no source in the forward model's source space")
        patterns[:, j] = gain[:, cols].sum(axis=1)
    return patterns


def region_crosstalk(weights: np.ndarray, ch_names: Sequence[str], forward: Any, labels: Sequence[Any],
                     *, attrs: Mapping[str, Any] | None = None) -> xr.DataArray:
    """Region-by-region cross-talk of a region filter.

    Parameters
    ----------
    weights : array of shape (n_regions, n_channels)
        The region filter (:func:`~xaffect.neural.region_filter`), one row per label.
    ch_names : sequence of str
        Its channels (columns), in order.
    forward : mne.Forward
        The forward model the inverse was made from.
    labels : sequence of mne.Label
        The regions, in the order of ``weights``' rows.
    attrs : mapping, optional
        Recorded on the result (method, mode, snr, ...).

    Returns
    -------
    xarray.DataArray of shape (region, region_source)
        ``[i, j]``: region ``i``'s estimate of a unit current in every source of
        region ``j`` (A·m per region source, in the filter's units).
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (len(labels), len(ch_names)):
        raise InputError(f"weights: expected shape (n_regions={len(labels)}, n_channels={len(ch_names)}), "
                         f"got {w.shape}")
    ct = w @ _label_patterns(forward, labels, ch_names)
    names = [lab.name for lab in labels]
    return xr.DataArray(ct, dims=("region", "region_source"), coords={"region": names, "region_source": names},
                        name="crosstalk", attrs={"description": "region estimate (row) of a unit normal current in "
                                                 "every source of region_source (column)", **dict(attrs or {})})


def crosstalk_dataset(by_subject: Mapping[str, xr.DataArray], *, attrs: Mapping[str, Any] | None = None
                      ) -> xr.Dataset:
    """The ``crosstalk`` store: every subject's region cross-talk, stacked.

    Parameters
    ----------
    by_subject : mapping of str to xarray.DataArray of shape (region, region_source)
        From :func:`region_crosstalk`, one per subject (regions in the same order).
    attrs : mapping, optional
        Inverse settings recorded on the store (method, mode, snr, parc).

    Returns
    -------
    xarray.Dataset
        ``crosstalk (subject, region, region_source)`` (float64).
    """
    if not by_subject:
        raise InputError("crosstalk: no subject's cross-talk given")
    subjects = list(by_subject)
    first = by_subject[subjects[0]]
    for s in subjects[1:]:
        if list(by_subject[s]["region"].values) != list(first["region"].values):
            raise InputError(f"subject {s}: cross-talk regions differ from subject {subjects[0]}'s")
    da = xr.concat([by_subject[s].drop_attrs() for s in subjects], dim="subject").assign_coords(subject=subjects)
    da.attrs.update(first.attrs)
    return xr.Dataset({"crosstalk": da}, attrs=dict(attrs or {}))


def leakage_ratio(crosstalk: xr.DataArray) -> xr.DataArray:
    """Share of region ``j``'s r that region ``i`` shows when only ``j`` carries the effect.

    With independent, equal-variance activity in every region (the
    background) and an effect added to region ``j`` alone, the correlation
    of a prediction of that effect with region ``i``'s estimate is ``r_j``
    times ``(C[i, j] / ‖C[i, :]‖) / (C[j, j] / ‖C[j, :]‖)``: each region's
    sensitivity to ``j`` relative to its total variance. Its absolute value
    is returned (the sign of a ``mean_flip`` region is arbitrary).

    Parameters
    ----------
    crosstalk : xarray.DataArray of shape ([subject,] region, region_source)
        From :func:`region_crosstalk`; a ``subject`` dim is averaged after the ratio.

    Returns
    -------
    xarray.DataArray of shape (region, region_source)
        1 on the diagonal; ``[i, j]`` near 1 means ``i`` cannot be told apart from ``j``.
    """
    c = _checked(crosstalk)
    vals = np.asarray(c.values, dtype=np.float64)
    norm = np.sqrt((vals ** 2).sum(-1, keepdims=True))                     # ‖C[i, :]‖
    rel = np.divide(vals, norm, out=np.zeros_like(vals), where=norm > 0)   # C[i, j] / ‖C[i, :]‖
    own = np.diagonal(rel, axis1=-2, axis2=-1)[..., None, :]               # C[j, j] / ‖C[j, :]‖
    ratio = np.abs(np.divide(rel, own, out=np.zeros_like(rel), where=own != 0))
    out = xr.DataArray(ratio, dims=c.dims, coords=c.coords, name="leakage_ratio")
    for d in [d for d in out.dims if d not in ("region", "region_source")]:
        out = out.mean(d)
    out.attrs["description"] = "r of region (row) / r of region_source when only region_source carries the effect"
    return out


def leaked_r(crosstalk: xr.DataArray, r: xr.DataArray) -> xr.DataArray:
    """The r each region would show if only ``region_source`` carried the effect it shows.

    Model: every region carries independent background activity of equal
    variance ``σ²``, region ``j`` also the effect (variance ``v``); region
    ``i``'s estimate is ``Σ_k C[i, k] x_k``. Then
    ``r_i = |C[i, j]| √q / √(‖C[i, :]‖² + C[i, j]² q)`` with ``q = v / σ²``,
    and ``q`` follows from the r region ``j`` shows itself:
    ``q = r_j² ‖C[j, :]‖² / (C[j, j]² (1 - r_j²))``. For small effects this is
    :func:`leakage_ratio` ``· r_j``; for strong ones (e.g. targets that
    average subjects, whose background shrinks) every region reading any of
    ``j`` approaches ``r_j``. Sensor noise is left out.

    Parameters
    ----------
    crosstalk : xarray.DataArray of shape ([subject,] region, region_source)
        A ``subject`` dim is averaged after the prediction.
    r : xarray.DataArray of shape (region,)
        Observed r per region (read for the source regions; clipped to [0, 0.999]).

    Returns
    -------
    xarray.DataArray of shape (region, region_source)
    """
    c = _checked(crosstalk)
    src = [str(x) for x in c["region_source"].values]
    rj = np.clip(np.nan_to_num(np.asarray(r.reindex(region=src).values, dtype=np.float64)), 0.0, 0.999)
    vals = np.asarray(c.values, dtype=np.float64)
    norm2 = (vals ** 2).sum(-1)                                          # ‖C[i, :]‖², (..., i)
    own2 = np.diagonal(vals, axis1=-2, axis2=-1) ** 2                     # C[j, j]², (..., j)
    q = np.divide(rj ** 2 * norm2, own2 * (1 - rj ** 2), out=np.zeros_like(norm2), where=own2 > 0)
    cij2 = vals ** 2
    pred = np.sqrt(np.divide(cij2 * q[..., None, :], norm2[..., :, None] + cij2 * q[..., None, :],
                             out=np.zeros_like(vals), where=norm2[..., :, None] > 0))
    out = xr.DataArray(pred, dims=c.dims, coords=c.coords, name="leaked_r")
    for d in [d for d in out.dims if d not in ("region", "region_source")]:
        out = out.mean(d)
    out.attrs["description"] = "r of region (row) if only region_source carried its observed effect"
    return out


def _checked(crosstalk: xr.DataArray) -> xr.DataArray:
    if {"region", "region_source"} - set(crosstalk.dims):
        raise InputError(f"crosstalk: expected dims (region, region_source), got {crosstalk.dims}")
    c = crosstalk.transpose(..., "region", "region_source")
    if list(c["region"].values) != list(c["region_source"].values):
        raise InputError("crosstalk: region and region_source must list the same regions in the same order")
    return c


def flag_leakage(r: xr.DataArray, significant: xr.DataArray, crosstalk: xr.DataArray, *,
                 explained: float = 0.8) -> xr.Dataset:
    """Significant regions whose effect cross-talk from another significant region explains.

    Region ``i`` (significant, ``r_i > 0``) is flagged when a significant
    region ``j`` alone would give it, through :func:`leaked_r`, at least
    ``explained`` of its r, and explains it better than it explains ``j``
    (``leaked_r[i, j] / r_i > leaked_r[j, i] / r_j``): of two regions the
    inverse mixes, the one whose effect accounts for the other's is taken as
    the source, whichever shows the (marginally) higher r. ``j`` is named as
    the source, preferring one not flagged itself. A region with an effect of
    its own on top of the leak shows more than the leak predicts and is not
    flagged.

    Parameters
    ----------
    r : xarray.DataArray of shape (region,)
        Effect per region (e.g. best mean r).
    significant : xarray.DataArray of bool, shape (region,)
        Under the claim's family.
    crosstalk : xarray.DataArray of shape ([subject,] region, region_source)
        From :func:`region_crosstalk` (regions absent from ``r`` are ignored).
    explained : float
        Share of ``r_i`` that leakage must account for, in (0, 1].

    Returns
    -------
    xarray.Dataset
        ``leakage`` (bool, region), ``leakage_from`` (str, region; "" when
        not flagged), ``explained_r`` (:func:`leaked_r` from that source, region).
    """
    if not 0 < explained <= 1:
        raise InputError(f"explained: must be in (0, 1], got {explained}")
    for name, a in (("r", r), ("significant", significant)):
        if a.dims != ("region",):
            raise InputError(f"{name}: expected a 1-D DataArray with dim 'region', got {a.dims}")
    regions = [str(x) for x in r["region"].values]
    have = set(str(x) for x in crosstalk["region"].values)
    missing = [x for x in regions if x not in have]
    if missing:
        raise InputError(f"crosstalk: no row for region(s) {', '.join(missing[:5])}")
    rv = np.asarray(r.values, dtype=np.float64)
    leak = leaked_r(crosstalk, r).sel(region=regions, region_source=regions).values  # [i, j]: r_i from j alone
    sig = np.asarray(significant.sel(region=regions).values, dtype=bool) & np.isfinite(rv) & (rv > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(sig[:, None] & sig[None, :], leak / rv[:, None], 0.0)  # share of r_i that j explains
    np.fill_diagonal(share, 0.0)
    dominated = (share >= explained) & (share > share.T)  # j explains i, better than i explains j
    flagged = dominated.any(axis=1)
    source = np.full(len(regions), "", dtype=object)
    expl = np.full(len(regions), np.nan)
    for i in np.nonzero(flagged)[0]:
        cand = np.nonzero(dominated[i])[0]
        # a source that is itself explained by another is a leak of a leak: prefer one that is not
        j = max(cand, key=lambda k: (not flagged[k], share[i, k]))
        source[i], expl[i] = regions[j], leak[i, j]
    return xr.Dataset({"leakage": ("region", flagged), "leakage_from": ("region", source.astype(str)),
                       "explained_r": ("region", expl)}, coords={"region": regions},
                      attrs={"explained": float(explained)})
