"""Band-limited amplitude envelopes (MNE band-pass, Hilbert) for band-envelope ISC."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..errors import InputError

#: Canonical EEG bands (Hz) for amplitude-envelope ISC.
BANDS: dict[str, tuple[float, float]] = {
    "delta": (1.0, 4.0), "theta": (4.0, 8.0), "alpha": (8.0, 13.0), "beta": (13.0, 30.0), "gamma": (30.0, 45.0),
}


def band_envelopes(x: np.ndarray, sfreq: float, bands: Sequence[str] | Mapping[str, tuple[float, float]]) -> dict:
    """Hilbert amplitude envelope of each band.

    Parameters
    ----------
    x : array of shape (n_subjects, n_samples, n_regions)
    sfreq : float
        Sampling rate in Hz.
    bands : list of band names (see :data:`BANDS`) or mapping name -> (low, high) Hz

    Returns
    -------
    dict of str to array of shape (n_subjects, n_samples, n_regions)
        Missing samples stay missing.
    """
    import mne
    from scipy.signal import hilbert

    spec = {b: BANDS[b] if b in BANDS else None for b in bands} if not isinstance(bands, Mapping) else dict(bands)
    nan = np.isnan(x)
    filled = np.where(nan, 0.0, x - np.nanmean(x, axis=1, keepdims=True))
    moved = np.ascontiguousarray(np.moveaxis(filled, 1, -1))  # (subject, region, sample)
    out = {}
    for name, edges in spec.items():
        if edges is None:
            raise InputError(f"bands: unknown band {name!r} (known: {', '.join(BANDS)}; or give {{name: [low, high]}})")
        lo, hi = map(float, edges)
        if not 0 < lo < hi < sfreq / 2:
            raise InputError(f"bands: {name} ({lo}-{hi} Hz) must lie within 0-{sfreq / 2:g} Hz (Nyquist)")
        filt = mne.filter.filter_data(moved.reshape(-1, moved.shape[-1]), sfreq, lo, hi, verbose="error")
        env = np.abs(hilbert(filt, axis=-1)).reshape(moved.shape)
        env = np.moveaxis(env, -1, 1)
        env[nan] = np.nan
        out[name] = env
    return out


def _check_bands(bands, sfreq: float) -> None:
    spec = dict(bands) if isinstance(bands, Mapping) else {b: BANDS.get(b) for b in bands}
    for name, edges in spec.items():
        if name == "raw":
            continue
        if edges is None:
            raise InputError(f"bands: unknown band {name!r} (known: raw, {', '.join(BANDS)}; "
                             "or give {name: [low, high]})")
        lo, hi = map(float, edges)
        if not 0 < lo < hi < sfreq / 2:
            raise InputError(f"bands: {name} ({lo}-{hi} Hz) must lie within 0-{sfreq / 2:g} Hz (Nyquist)")


def _band_signal(x: np.ndarray, sfreq: float, bands, band: str | None) -> np.ndarray:
    if band is None or band == "raw":
        return x
    spec = dict(bands) if isinstance(bands, Mapping) else {band: BANDS[band]}
    return band_envelopes(x, sfreq, {band: spec[band]})[band]
