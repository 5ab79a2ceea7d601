"""Twelve classical low-level descriptors (LLDs), frame-wise, on the clock.

Audio is resampled to 16 kHz and analysed in 1024-sample (64 ms) Hann frames
every 320 samples (20 ms, the 50 Hz frame rate of the seed), centred on the
frame time; frames are then averaged into clock bins.

=====================  ========================================================
descriptor             meaning
=====================  ========================================================
rms                    root-mean-square amplitude (loudness proxy)
zcr                    zero-crossing rate (fraction of sign changes per sample)
spectral_centroid      magnitude-weighted mean frequency (Hz), "brightness"
spectral_bandwidth     magnitude-weighted spread around the centroid (Hz)
spectral_rolloff       frequency below which 85 % of the spectral energy lies (Hz)
spectral_flatness      geometric / arithmetic mean of the power spectrum (0 tone – 1 noise)
spectral_flux          L2 norm of the frame-to-frame increase of the normalised spectrum
spectral_contrast      mean peak-to-valley contrast (dB) over 6 octave bands
f0                     fundamental frequency by pYIN (Hz, 65–1000 Hz); bins
                       without voiced frames are linearly interpolated
voicing_probability    pYIN probability that the frame is voiced
harmonic_ratio         harmonic / (harmonic + percussive) energy after HPSS
onset_strength         spectral-flux onset envelope (librosa, mel based)
=====================  ========================================================
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..errors import InputError
from ..store.clock import bin_centres, n_bins, to_clock
from .hf import resample_audio

__all__ = ["LLD_NAMES", "lld", "lld_frames"]

LLD_NAMES = ("rms", "zcr", "spectral_centroid", "spectral_bandwidth", "spectral_rolloff", "spectral_flatness",
             "spectral_flux", "spectral_contrast", "f0", "voicing_probability", "harmonic_ratio",
             "onset_strength")
SR, N_FFT, HOP = 16000, 1024, 320
FMIN, FMAX = 65.0, 1000.0


def lld_frames(audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The twelve descriptors per 20 ms frame of 16 kHz audio.

    Parameters
    ----------
    audio : array of shape (n_samples,)
        Mono waveform at 16 kHz.

    Returns
    -------
    values : array of shape (n_frames, 12), float64
        Columns in :data:`LLD_NAMES` order; ``f0`` is NaN in unvoiced frames.
    times : array of shape (n_frames,)
        Frame centres in seconds.
    """
    import librosa

    y = np.asarray(audio, dtype=np.float32)
    stft = librosa.stft(y, n_fft=N_FFT, hop_length=HOP, window="hann", center=True)
    S = np.abs(stft)
    n = S.shape[1]
    freqs = librosa.fft_frequencies(sr=SR, n_fft=N_FFT)
    rms = librosa.feature.rms(y=y, frame_length=N_FFT, hop_length=HOP, center=True)[0]
    zcr = librosa.feature.zero_crossing_rate(y, frame_length=N_FFT, hop_length=HOP, center=True)[0]
    centroid = librosa.feature.spectral_centroid(S=S, sr=SR, freq=freqs)[0]
    bandwidth = librosa.feature.spectral_bandwidth(S=S, sr=SR, freq=freqs)[0]
    rolloff = librosa.feature.spectral_rolloff(S=S, sr=SR, freq=freqs, roll_percent=0.85)[0]
    flatness = librosa.feature.spectral_flatness(S=S)[0]
    norm = S / (S.sum(axis=0, keepdims=True) + 1e-10)
    flux = np.r_[0.0, np.sqrt((np.maximum(np.diff(norm, axis=1), 0.0) ** 2).sum(axis=0))]
    contrast = librosa.feature.spectral_contrast(S=S, sr=SR, freq=freqs, fmin=100.0, n_bands=6).mean(axis=0)
    f0, _, vprob = librosa.pyin(y, fmin=FMIN, fmax=FMAX, sr=SR, frame_length=N_FFT, hop_length=HOP,
                                center=True)
    H, P = librosa.decompose.hpss(S ** 2)
    hsum, psum = H.sum(axis=0), P.sum(axis=0)
    harmonic = hsum / (hsum + psum + 1e-12)
    onset = librosa.onset.onset_strength(S=librosa.power_to_db(
        librosa.feature.melspectrogram(S=S ** 2, sr=SR)), sr=SR, hop_length=HOP)
    cols = [rms, zcr, centroid, bandwidth, rolloff, flatness, flux, contrast, f0, vprob, harmonic, onset]
    values = np.stack([np.asarray(c, dtype=np.float64)[:n] for c in cols], axis=1)
    times = np.arange(n) * HOP / SR
    return values, times


def _checked_audio(audio: np.ndarray, sr: float, *, rate: float, resample: bool,
                   stimulus: str | None) -> tuple[np.ndarray, float, int]:
    """Validate a mono waveform, bring it to 16 kHz, and count its clock bins.

    Returns
    -------
    y : array of shape (n_samples,), float32 at 16 kHz
    duration : float
        Seconds.
    nb : int
        Complete clock bins at ``rate``.
    """
    what = f"stimulus {stimulus!r}" if stimulus else "audio"
    y = np.asarray(audio, dtype=np.float32)
    if y.ndim != 1:
        raise InputError(f"{what}: expected a mono waveform (n_samples,), got shape {y.shape}")
    if not np.all(np.isfinite(y)):
        raise InputError(f"{what}: audio holds NaN or infinite samples")
    y = resample_audio(y, sr, SR, resample=resample, what=what)
    duration = y.size / SR
    nb = n_bins(duration, rate)
    if nb == 0:
        raise InputError(f"{what}: {duration:.3f} s is shorter than one clock bin at {rate} Hz")
    return y, duration, nb


def lld(audio: np.ndarray, sr: float, *, rate: float = 1.0, resample: bool = True,
        stimulus: str | None = None) -> xr.DataArray:
    """Twelve classical descriptors on the clock.

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
        Coordinates ``onset`` (bin centres) and ``descriptor`` (:data:`LLD_NAMES`).
    """
    y, duration, nb = _checked_audio(audio, sr, rate=rate, resample=resample, stimulus=stimulus)
    values, times = lld_frames(y)
    f0_col = LLD_NAMES.index("f0")
    voiced = np.isfinite(values[:, f0_col])
    f0 = np.where(voiced, values[:, f0_col], 0.0)
    values[:, f0_col] = 0.0
    out = to_clock(values, times, rate=rate, duration=duration)
    f0_sum = to_clock(f0, times, rate=rate, duration=duration)
    n_voiced = to_clock(voiced.astype(float), times, rate=rate, duration=duration)
    with np.errstate(invalid="ignore", divide="ignore"):
        f0_bins = f0_sum / n_voiced  # mean over voiced frames only
    ok = np.isfinite(f0_bins) & (n_voiced > 0)
    centres = bin_centres(nb, rate)
    out[:, f0_col] = np.interp(centres, centres[ok], f0_bins[ok]) if ok.any() else 0.0
    coords = {"onset": ("time", centres), "descriptor": list(LLD_NAMES)}
    if stimulus is not None:
        coords["stimulus"] = ("time", np.full(nb, stimulus))
    return xr.DataArray(out.astype(np.float32), dims=("time", "descriptor"), coords=coords, name="lld",
                        attrs={"clock_rate": float(rate), "frame_hop_seconds": HOP / SR})
