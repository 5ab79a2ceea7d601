"""EEG preprocessing: filtering, referencing, resampling, bad channels, ICA.

Each step is optional and every parameter is returned in a record that the
``regions`` stage writes into provenance.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["find_bad_channels", "preprocess", "PREPROCESS_DEFAULTS"]

_V = "error"

#: Defaults of :func:`preprocess` (and of the ``regions.preprocess`` config mapping).
PREPROCESS_DEFAULTS = {
    "l_freq": 0.5, "h_freq": 45.0, "notch": None, "reference": "average", "resample": None,
    "bad_channels": "auto", "bad_z": 5.0, "bad_corr": 0.4, "interpolate": True, "ica": None, "ica_method": "fastica",
    "ica_exclude": "eog", "seed": 0,
}


def find_bad_channels(data: np.ndarray, *, z: float = 5.0, min_corr: float | None = 0.4) -> np.ndarray:
    """Flat, extreme or uncorrelated channels.

    A channel is bad if it is flat, if the robust z-score of its log variance
    (``|log var - median| / (1.4826 * MAD)``) exceeds ``z``, or if its largest
    absolute correlation with any other channel is below ``min_corr`` (PREP's
    "bad by correlation": real EEG neighbours share signal, a broken
    electrode does not).

    Parameters
    ----------
    data : array of shape (n_channels, n_times)
    z : float
    min_corr : float or None
        None disables the correlation criterion.

    Returns
    -------
    ndarray of bool, shape (n_channels,)
        True for bad channels.
    """
    x = np.asarray(data, dtype=np.float64)
    var = np.var(x, axis=1)
    flat = var <= 1e-30
    lv = np.log(np.where(flat, np.nan, var))
    med = np.nanmedian(lv)
    mad = 1.4826 * np.nanmedian(np.abs(lv - med))
    bad = flat.copy()
    if np.isfinite(mad) and mad > 0:
        bad |= np.nan_to_num(np.abs(lv - med) / mad, nan=np.inf) > z
    if min_corr is not None and (~flat).sum() > 2:
        live = np.flatnonzero(~flat)
        c = np.abs(np.corrcoef(x[live]))
        np.fill_diagonal(c, 0.0)
        bad[live[c.max(axis=1) < min_corr]] = True
    return bad


def _check_finite(raw: Any, who: str) -> None:
    import mne

    picks = mne.pick_types(raw.info, eeg=True, eog=True, exclude=())
    x = raw.get_data(picks=picks)
    bad = ~np.isfinite(x)
    if bad.any():
        ch, t = np.argwhere(bad)[0]
        raise InputError(f"{who}: channel {raw.ch_names[picks[ch]]} has NaN/inf samples "
                         f"(first at {raw.times[t]:.3f} s)")


def preprocess(raw: Any, *, l_freq: float | None = 0.5, h_freq: float | None = 45.0,
               notch: float | Sequence[float] | None = None, reference: str | None = "average",
               resample: float | None = None, bad_channels: str | Sequence[str] | None = "auto",
               bad_z: float = 5.0, bad_corr: float | None = 0.4, interpolate: bool = True, ica: int | float | None = None,
               ica_method: str = "fastica", ica_exclude: str | Sequence[int] = "eog", seed: int = 0,
               who: str = "recording") -> tuple[Any, dict]:
    """Clean a continuous EEG recording.

    Parameters
    ----------
    raw : mne.io.Raw
        Preloaded; not modified (a copy is returned).
    l_freq, h_freq : float or None
        Band-pass edges in Hz (None: no high-/low-pass).
    notch : float or list of float, optional
        Line-noise frequencies (e.g. 50 and harmonics).
    reference : {"average", None}
        Average reference (applied to the data) or leave as is.
    resample : float, optional
        New sampling rate in Hz.
    bad_channels : "auto", list of str or None
        Detect bad channels (:func:`find_bad_channels`), take a given list, or none.
    bad_z, bad_corr : float
        Thresholds of the detector (:func:`find_bad_channels`).
    interpolate : bool
        Interpolate bad channels from their neighbours (spherical splines).
    ica : int or float, optional
        Run MNE's ICA with this many components (or explained-variance fraction).
    ica_method : str
        ``"fastica"``, ``"infomax"`` or ``"picard"``.
    ica_exclude : "eog" or list of int
        Remove components whose time course correlates (|r| > 0.5) with an EOG
        channel (or, without any, Fp1/Fp2), or these component indices.
    seed : int
        ICA random state.
    who : str
        Subject or file named in errors.

    Returns
    -------
    raw : mne.io.Raw
        The cleaned copy.
    record : dict
        Parameters used and what was found (bad channels, excluded components).
    """
    import mne

    if not raw.preload:
        raw = raw.copy().load_data(verbose=_V)
    else:
        raw = raw.copy()
    _check_finite(raw, who)
    record: dict[str, Any] = {"l_freq": l_freq, "h_freq": h_freq, "notch": notch, "reference": reference,
                              "resample": resample, "bad_channels": None, "interpolate": interpolate,
                              "ica": ica, "ica_method": ica_method, "ica_excluded": []}
    eeg = mne.pick_types(raw.info, eeg=True, exclude=())
    if notch:
        raw.notch_filter(np.atleast_1d(notch), picks=eeg, verbose=_V)
    if l_freq is not None or h_freq is not None:
        raw.filter(l_freq, h_freq, picks=eeg, verbose=_V)
    if bad_channels == "auto":
        flags = find_bad_channels(raw.get_data(picks=eeg), z=bad_z, min_corr=bad_corr)
        bads = [raw.ch_names[p] for p, f in zip(eeg, flags) if f]
    elif bad_channels:
        missing = [c for c in bad_channels if c not in raw.ch_names]
        if missing:
            raise InputError(f"{who}: bad channel(s) {', '.join(missing)} are not in the recording")
        bads = list(bad_channels)
    else:
        bads = []
    raw.info["bads"] = sorted(set(raw.info["bads"]) | set(bads))
    record["bad_channels"] = list(raw.info["bads"])
    if interpolate and raw.info["bads"]:
        raw.interpolate_bads(reset_bads=True, verbose=_V)
    if reference == "average":
        raw.set_eeg_reference("average", projection=True, verbose=_V)
        raw.apply_proj(verbose=_V)  # referenced data, projector kept (MNE's inverse needs it)
    elif reference is not None:
        raise InputError(f"reference: must be 'average' or null, got {reference!r}")
    if ica:
        record["ica_excluded"] = _run_ica(raw, ica, ica_method, ica_exclude, seed, who)
    if resample and float(resample) != raw.info["sfreq"]:
        raw.resample(float(resample), verbose=_V)
    return raw, record


def _run_ica(raw: Any, n: int | float, method: str, exclude: Any, seed: int, who: str) -> list[int]:
    import mne
    from mne.preprocessing import ICA

    fit_raw = raw.copy().filter(1.0, None, verbose=_V) if (raw.info["highpass"] or 0) < 1.0 else raw
    ica = ICA(n_components=n, method=method, random_state=seed, max_iter="auto", verbose=_V)
    ica.fit(fit_raw, picks="eeg", verbose=_V)
    if isinstance(exclude, str):
        if exclude != "eog":
            raise InputError(f"ica_exclude: must be 'eog' or a list of component indices, got {exclude!r}")
        eog = mne.pick_types(raw.info, eog=True)
        if len(eog):
            idx, _ = ica.find_bads_eog(raw, measure="correlation", threshold=0.5, verbose=_V)
        else:
            proxies = [c for c in raw.ch_names if c.upper() in ("FP1", "FP2", "FPZ")]
            if not proxies:
                raise InputError(f"{who}: ICA artefact removal by 'eog' needs EOG channels or Fp1/Fp2")
            idx, _ = ica.find_bads_eog(raw, ch_name=proxies, measure="correlation", threshold=0.5,
                                        verbose=_V)
    else:
        idx = [int(i) for i in exclude]
    ica.exclude = sorted(set(int(i) for i in idx))
    ica.apply(raw, verbose=_V)
    return list(ica.exclude)
