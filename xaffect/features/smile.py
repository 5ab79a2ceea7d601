"""openSMILE's eGeMAPS v02 low-level descriptors: a second classical family.

The 25 eGeMAPS LLDs (loudness, alpha ratio, Hammarberg index, spectral slopes
and flux, MFCC 1–4, F0 in semitones, jitter, shimmer, HNR, H1–H2, H1–A3 and
the first three formants) every 10 ms, computed by the openSMILE binary that
the ``opensmile`` wheel ships (``pip install "xaffect[opensmile]"``). Voiced-
only descriptors (``*_sma3nz``) are 0 in unvoiced frames, as openSMILE
reports them. A frame's time is the centre of its nominal window; frames are
averaged into clock bins.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..errors import ConfigError
from ..store.clock import bin_centres, to_clock
from .lld import SR, _checked_audio

__all__ = ["egemaps"]



def _smile():
    try:
        import opensmile
    except ImportError:
        raise ConfigError("kind egemaps needs openSMILE: pip install 'xaffect[opensmile]'") from None
    return opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                           feature_level=opensmile.FeatureLevel.LowLevelDescriptors)


def egemaps(audio: np.ndarray, sr: float, *, rate: float = 1.0, resample: bool = True,
            stimulus: str | None = None) -> xr.DataArray:
    """eGeMAPS v02 LLDs on the clock.

    Parameters
    ----------
    audio : array of shape (n_samples,)
        Mono waveform.
    sr : float
        Its sample rate (resampled to 16 kHz, or refused if ``resample`` is False).
    rate : float
        Clock rate in Hz.
    stimulus : str, optional
        Adds a ``stimulus`` coordinate and names it in errors.

    Returns
    -------
    xarray.DataArray of shape (time, descriptor), float32
        25 descriptors named as openSMILE names them.
    """
    y, duration, nb = _checked_audio(audio, sr, rate=rate, resample=resample, stimulus=stimulus)
    df = _smile().process_signal(y, SR)
    start = df.index.get_level_values("start").total_seconds().to_numpy()
    end = df.index.get_level_values("end").total_seconds().to_numpy()
    values = to_clock(df.to_numpy(dtype=np.float64), (start + end) / 2.0, rate=rate, duration=duration,
                      empty="interpolate")
    coords = {"onset": ("time", bin_centres(nb, rate)), "descriptor": [str(c) for c in df.columns]}
    if stimulus is not None:
        coords["stimulus"] = ("time", np.full(nb, stimulus))
    return xr.DataArray(values.astype(np.float32), dims=("time", "descriptor"), coords=coords, name="lld",
                        attrs={"clock_rate": float(rate), "feature_set": "eGeMAPSv02"})
