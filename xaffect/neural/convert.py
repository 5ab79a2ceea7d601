"""Region signals to and from MNE objects: epochs in, ``RawArray`` and label ``SourceEstimate`` out.

So that a lab can continue in MNE's plots and statistics
(``raw.plot()``, ``stc.plot()``, ``mne.stats``) from what xaffect computed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from ..errors import InputError

__all__ = ["to_mne_raw", "to_label_stc", "epochs_region_signals", "epochs_inverse_regions"]

_V = "error"  # MNE log level inside library calls


# ------------------------------------------------------------------ epochs in
def _check_finite_epochs(x: np.ndarray, ch_names: Sequence[str], times: np.ndarray, who: str) -> None:
    bad = np.argwhere(~np.isfinite(x))
    if bad.size:
        e, c, t = bad[0]
        raise InputError(f"{who}: epoch {e}, channel {ch_names[c]} has NaN/inf samples (first at {times[t]:.3f} s)")


def epochs_region_signals(weights: np.ndarray, epochs: Any, ch_names: Sequence[str], *,
                          who: str = "recording") -> np.ndarray:
    """Apply a region filter to every epoch.

    Parameters
    ----------
    weights : array of shape (n_regions, n_channels)
        From :func:`~xaffect.neural.region_filter`.
    epochs : mne.Epochs
    ch_names : sequence of str
        The filter's channels, in column order.

    Returns
    -------
    array of shape (n_epochs, n_times, n_regions)
        float32.
    """
    x = epochs.get_data(picks=list(ch_names))                   # (epoch, channel, time)
    _check_finite_epochs(x, list(ch_names), epochs.times, who)
    return np.einsum("ect,rc->etr", x, np.asarray(weights, dtype=np.float64), optimize=True).astype(np.float32)


def epochs_inverse_regions(epochs: Any, inverse: Any, labels: Sequence[Any], *, method: str, lambda2: float,
                           mode: str, who: str = "recording") -> np.ndarray:
    """MNE's own path for epochs: ``apply_inverse_epochs`` then ``extract_label_time_course``.

    Returns
    -------
    array of shape (n_epochs, n_times, n_regions)
        float32.
    """
    import mne
    from mne.minimum_norm import apply_inverse_epochs

    from .source import _with_average_reference

    ep = _with_average_reference(epochs.copy().pick(inverse["info"]["ch_names"]))
    _check_finite_epochs(ep.get_data(), ep.ch_names, ep.times, who)
    stcs = apply_inverse_epochs(ep, inverse, lambda2, method=method, pick_ori="normal", return_generator=True,
                                verbose=_V)
    tcs = mne.extract_label_time_course(stcs, list(labels), inverse["src"], mode=mode, verbose=_V)
    return np.stack(tcs).transpose(0, 2, 1).astype(np.float32)


# ------------------------------------------------------------------ MNE out
def _time_dim(signals: xr.DataArray) -> str:
    extra = [d for d in signals.dims if d not in ("time", "sample", "region")]
    if "region" not in signals.dims or extra or signals.ndim != 2:
        hint = f" (select one first, e.g. signals.sel({extra[0]}=...))" if extra else ""
        raise InputError(f"signals: expected dims (time, region) or (sample, region), got {signals.dims}{hint}")
    return next(d for d in signals.dims if d != "region")


def _sfreq(signals: xr.DataArray, tdim: str, sfreq: float | None) -> float:
    if sfreq is not None:
        return float(sfreq)
    if "sfreq" in signals.attrs:
        return float(signals.attrs["sfreq"])
    if tdim == "time" and "time" in signals.coords and signals.sizes["time"] > 1:
        step = np.diff(np.asarray(signals["time"].values, dtype=np.float64))
        if np.allclose(step, step[0], rtol=1e-6):
            return 1.0 / float(step[0])
    raise InputError("signals: no sampling rate (no 'sfreq' attribute and no evenly spaced 'time' "
                     "coordinate); give sfreq=")


def _tmin(signals: xr.DataArray, tdim: str) -> float:
    return float(signals[tdim].values[0]) if tdim == "time" and tdim in signals.coords else 0.0


def to_mne_raw(signals: xr.DataArray, *, sfreq: float | None = None, ch_type: str = "misc") -> Any:
    """Region signals as an MNE ``RawArray``, one channel per region.

    Parameters
    ----------
    signals : xarray.DataArray of shape (time, region) or (sample, region)
        E.g. :func:`~xaffect.neural.region_signals`' output, or one subject
        of a ``regions`` store group (``ds.signal.sel(subject="s01")``).
    sfreq : float, optional
        Sampling rate (default: ``signals.attrs["sfreq"]``, else the
        spacing of the ``time`` coordinate).
    ch_type : str
        MNE channel type of the region channels (``"misc"``: MNE has no
        source-amplitude channel type; it keeps plots unscaled).

    Returns
    -------
    mne.io.RawArray
        ``n_regions`` channels named after the regions; the first sample
        at the ``time`` coordinate's first value (``raw.first_time``); the
        signals' attrs in ``raw.info["description"]``.
    """
    import mne

    tdim = _time_dim(signals)
    rate = _sfreq(signals, tdim, sfreq)
    names = [str(r) for r in signals["region"].values]
    info = mne.create_info(names, rate, ch_type)
    desc = ", ".join(f"{k}={v}" for k, v in signals.attrs.items() if isinstance(v, (str, int, float)))
    with info._unlock():
        info["description"] = f"xaffect region signals ({desc})" if desc else "xaffect region signals"
    data = np.asarray(signals.transpose("region", tdim).values, dtype=np.float64)
    first_samp = int(round(_tmin(signals, tdim) * rate))
    return mne.io.RawArray(data, info, first_samp=first_samp, verbose=_V)


def to_label_stc(signals: xr.DataArray, labels: Sequence[Any], *, src: Any = None, subject: str | None = None,
                 sfreq: float | None = None) -> Any:
    """Region signals as a ``SourceEstimate``: every vertex of a label carries its region's signal.

    The inverse of ``mne.extract_label_time_course`` with ``mode="mean"``
    (through ``mne.labels_to_stc``), so region maps and time courses can be
    shown with ``stc.plot()`` or passed to ``mne.stats``.

    Parameters
    ----------
    signals : xarray.DataArray of shape (time, region), (sample, region) or (region,)
        Region names must be names of ``labels``; a (region,) map (e.g. one
        score per region) gives a single-sample estimate.
    labels : sequence of mne.Label
        E.g. :func:`~xaffect.neural.region_labels`.
    src : mne.SourceSpaces, optional
        Restrict the estimate to these sources (e.g. ``forward["src"]``);
        default: every vertex of the labels.
    subject : str, optional
        FreeSurfer subject (default: the labels').
    sfreq : float, optional
        As in :func:`to_mne_raw`.

    Returns
    -------
    mne.SourceEstimate
        (n_vertices, n_times).
    """
    import mne

    by_name = {lab.name: lab for lab in labels}
    regions = [str(r) for r in np.atleast_1d(signals["region"].values)] if "region" in signals.dims else []
    unknown = [r for r in regions if r not in by_name]
    if not regions or unknown:
        raise InputError(f"signals: region(s) {', '.join(unknown[:5]) or '(none)'} are not labels given "
                         f"({len(by_name)} labels, e.g. {next(iter(by_name), '-')})")
    if signals.ndim == 1:
        values, tmin, tstep = np.asarray(signals.values, dtype=np.float64)[:, None], 0.0, 1.0
    else:
        tdim = _time_dim(signals)
        rate = _sfreq(signals, tdim, sfreq)
        values = np.asarray(signals.transpose("region", tdim).values, dtype=np.float64)
        tmin, tstep = _tmin(signals, tdim), 1.0 / rate
    subject = subject or labels[0].subject
    return mne.labels_to_stc([by_name[r] for r in regions], values, tmin=tmin, tstep=tstep, subject=subject,
                             src=src, verbose=_V)
