"""Energy of each element on the analysis clock, and the voice/soundtrack ratio.

The first seed links voice/soundtrack biases to each stimulus's "energy
distribution"; these are its variables: mean power of each element per clock
bin, and ``10 log10(voice / soundtrack)`` per bin and per stimulus.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..store.clock import frame_times, on_clock

__all__ = ["frame_power", "energy_on_clock", "energy_ratio_db"]

_EPS = 1e-12


def frame_power(audio: np.ndarray, sr: int, *, hop: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """Mean power of consecutive non-overlapping frames.

    Parameters
    ----------
    audio : ndarray of shape (..., n_samples)
    sr : int
        Sample rate in Hz.
    hop : float
        Frame length (= hop) in seconds.

    Returns
    -------
    power : ndarray of shape (..., n_frames), float64
        Mean of squared samples per frame (the last, partial frame is dropped).
    times : ndarray of shape (n_frames,)
        Frame centres in seconds.
    """
    audio = np.asarray(audio)
    L = max(1, int(round(hop * sr)))
    n = audio.shape[-1] // L
    x = audio[..., :n * L].astype(np.float64).reshape(audio.shape[:-1] + (n, L))
    return np.mean(x * x, axis=-1), frame_times(n, hop=L / sr, win=L / sr)


def energy_ratio_db(voice: np.ndarray, soundtrack: np.ndarray) -> np.ndarray:
    """``10 log10(voice / soundtrack)``, guarded against silence (shapes broadcast)."""
    return 10.0 * np.log10((np.asarray(voice, dtype=np.float64) + _EPS)
                           / (np.asarray(soundtrack, dtype=np.float64) + _EPS))


def energy_on_clock(audio: xr.DataArray, sr: int, *, rate: float, stimulus: str | None = None,
                    hop: float = 0.01) -> xr.Dataset:
    """Per-bin energy of each element and the voice/soundtrack ratio.

    Parameters
    ----------
    audio : xarray.DataArray of shape (element, sample)
        Elements ``original``, ``voice``, ``soundtrack``.
    sr : int
        Sample rate in Hz.
    rate : float
        Clock rate in Hz.
    stimulus : str, optional
        Stimulus name for the ``stimulus`` coordinate.
    hop : float
        Power frame length in seconds (frames are binned by their centre).

    Returns
    -------
    xarray.Dataset
        ``energy (element, time)`` (mean power) and ``energy_ratio (time)``
        (dB), with coordinates ``onset`` (and ``stimulus``), attrs ``clock_rate``.
    """
    power, times = frame_power(np.asarray(audio.values), sr, hop=hop)
    da = xr.DataArray(power, dims=("element", "frame"), coords={"element": audio["element"].values})
    duration = audio.sizes["sample"] / sr
    energy = on_clock(da, rate=rate, duration=duration, dim="frame", times=times, stimulus=stimulus)
    ratio = energy_ratio_db(energy.sel(element="voice").values, energy.sel(element="soundtrack").values)
    ds = xr.Dataset({"energy": energy.astype(np.float32),
                     "energy_ratio": (("time",), ratio.astype(np.float32))})
    ds["energy"].attrs = {"long_name": "mean power per clock bin", "units": "amplitude^2"}
    ds["energy_ratio"].attrs = {"long_name": "voice / soundtrack energy", "units": "dB"}
    ds.attrs["clock_rate"] = float(rate)
    return ds
