"""Synthetic stimuli: a voice-like and a music-like sound, their descriptors, and an mp4 to carry them.

Used by the simulated studies (:mod:`xaffect.datasets.simulate` for EEG,
:mod:`xaffect.datasets.simulate_fmri` for fMRI). Everything is seeded by the
caller's :class:`numpy.random.Generator`.
"""

from __future__ import annotations

import os

import numpy as np
from scipy import signal as sps

__all__ = ["synth_voice", "synth_music", "element_descriptors", "write_stimulus_video", "DESCRIPTORS"]

#: The classical descriptors :func:`element_descriptors` computes (a classical plant names one).
DESCRIPTORS = ("rms", "spectral_centroid", "spectral_flatness")
_VOWELS = np.array([[730, 1090, 2440], [270, 2290, 3010], [300, 870, 2240], [530, 1840, 2480],
                    [570, 840, 2410], [440, 1020, 2240], [660, 1720, 2410]], dtype=float)


# ------------------------------------------------------------------ sound
def _smooth_walk(rng: np.random.Generator, n: int, *, smooth: int) -> np.ndarray:
    """A zero-mean, unit-variance random walk smoothed over ``smooth`` samples."""
    x = rng.standard_normal(n + 2 * smooth)
    k = np.hanning(max(3, 2 * smooth + 1))
    y = sps.oaconvolve(x, k / k.sum(), mode="same")[smooth:smooth + n]
    return (y - y.mean()) / (y.std() + 1e-12)


def _resonator(x: np.ndarray, f: float, bw: float, sr: int) -> np.ndarray:
    r = np.exp(-np.pi * bw / sr)
    a = [1.0, -2 * r * np.cos(2 * np.pi * f / sr), r * r]
    return sps.lfilter([1.0 - r], a, x)


def synth_voice(duration: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A voice-like signal: formant-filtered glottal pulses with pitch and syllables.

    Parameters
    ----------
    duration : float
        Seconds.
    sr : int
        Sample rate.
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of shape (round(duration * sr),), float32, peak about 1
    """
    n = int(round(duration * sr))
    base = rng.uniform(110, 200)
    f0 = base * 2 ** (0.25 * _smooth_walk(rng, n, smooth=int(0.4 * sr)))
    phase = np.cumsum(f0 / sr)
    pulses = np.diff(np.floor(phase), prepend=0.0)
    glottal = sps.lfilter([1.0], [1.0, -0.95], pulses) + 0.02 * rng.standard_normal(n)
    # syllables of 150-300 ms, each with a vowel; phrases of 1-4 s separated by pauses
    out = np.zeros(n)
    env = np.zeros(n)
    pos = 0
    while pos < n:
        phrase = int(rng.uniform(1.0, 4.0) * sr)
        loud = 10 ** (rng.uniform(-12, 0) / 20)
        end = min(n, pos + phrase)
        p = pos
        while p < end:
            syl = int(rng.uniform(0.15, 0.3) * sr)
            q = min(end, p + syl)
            seg = glottal[p:q]
            vowel = _VOWELS[rng.integers(len(_VOWELS))] * rng.uniform(0.9, 1.1)
            y = sum(_resonator(seg, f, 80 + 40 * i, sr) * (0.8 ** i) for i, f in enumerate(vowel))
            out[p:q] = y
            env[p:q] = loud * np.sin(np.linspace(0, np.pi, q - p)) ** 0.6
            p = q
        pos = end + int(rng.uniform(0.3, 1.2) * sr)
    out *= env
    out /= np.abs(out).max() + 1e-12
    return out.astype(np.float32) * 0.9


def synth_music(duration: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A music-like signal: a repeating bar pattern of chords and percussion, with a dynamic arc.

    Like most film music, it repeats: a pattern of 2 bars (4 chords, kick and
    hats on a fixed tempo) is looped, with its level following a slow arc and
    a new chord sequence every 4 loops.

    Returns
    -------
    ndarray of shape (round(duration * sr),), float32, peak about 1
    """
    n = int(round(duration * sr))
    tempo = rng.uniform(90, 130) / 60.0  # beats per second
    beat = int(round(sr / tempo))
    bar = 4 * beat
    out = np.zeros(n + 8 * bar)
    pos = 0
    while pos < n:
        # one section: a 2-bar pattern looped 4 times
        roots = 220 * 2 ** (rng.integers(-5, 7, size=4) / 12)
        minors = rng.random(4) < 0.5
        bright = rng.uniform(0.3, 0.9)
        pattern = np.zeros(2 * bar)
        tt = np.arange(bar // 2) / sr
        for c in range(4):
            chord = roots[c] * 2 ** (np.array([0, 3 if minors[c] else 4, 7]) / 12)
            decay = np.exp(-tt / rng.uniform(0.6, 1.5))
            seg = sum((bright ** h) * np.sin(2 * np.pi * f * h * tt) for f in chord for h in range(1, 6))
            pattern[c * (bar // 2):(c + 1) * (bar // 2)] += seg * decay
        hits = rng.random(8) < 0.5
        tb = np.arange(int(0.25 * sr)) / sr
        kick = 2.0 * np.sin(2 * np.pi * (60 + 90 * np.exp(-tb * 30)) * tb) * np.exp(-tb * 12)
        hat = 0.6 * sps.lfilter([1, -1], [1], rng.standard_normal(tb.size)) * np.exp(-tb * 40)
        for b in range(8):
            i = b * beat
            m = min(tb.size, pattern.size - i)
            pattern[i:i + m] += (kick if b % 2 == 0 or hits[b] else hat)[:m]
        for _ in range(4):
            out[pos:pos + pattern.size] += pattern
            pos += pattern.size
    out = out[:n]
    arc = 10 ** ((10 * _smooth_walk(rng, n, smooth=int(3 * sr)) - 6) / 20)
    out *= arc
    out /= np.abs(out).max() + 1e-12
    return out.astype(np.float32) * 0.9


def element_descriptors(audio: np.ndarray, sr: int, *, rate: float = 1.0,
                        duration: float | None = None) -> dict[str, np.ndarray]:
    """Classical descriptors of one element on the clock (librosa frames, centre-binned).

    Parameters
    ----------
    audio : array of shape (n_samples,)
    sr : int
    rate : float
        Clock rate in Hz.
    duration : float, optional
        Stimulus duration (default: from ``audio``).

    Returns
    -------
    dict of str to ndarray of shape (n_bins,)
        ``rms``, ``spectral_centroid``, ``spectral_flatness``.
    """
    import librosa

    from ..store.clock import frame_times, to_clock

    hop, win = 512, 2048
    x = np.asarray(audio, dtype=np.float32)
    feats = {
        "rms": librosa.feature.rms(y=x, frame_length=win, hop_length=hop)[0],
        "spectral_centroid": librosa.feature.spectral_centroid(y=x, sr=sr, n_fft=win, hop_length=hop)[0],
        "spectral_flatness": librosa.feature.spectral_flatness(y=x, n_fft=win, hop_length=hop)[0],
    }
    duration = x.size / sr if duration is None else duration
    out = {}
    for k, v in feats.items():
        times = frame_times(v.size, hop=hop / sr)  # librosa centres frames on hop multiples
        out[k] = np.nan_to_num(to_clock(v, times, rate=rate, duration=duration))
    return out


# ------------------------------------------------------------------ video
def write_stimulus_video(path: str | os.PathLike, audio: np.ndarray, sr: int, *, fps: int = 10,
                         size: tuple[int, int] = (64, 48), seed: int = 0) -> dict[str, np.ndarray]:
    """Write an mp4 with an AAC sound track and a video of drifting luminance and a moving square.

    Parameters
    ----------
    path : path
        Output ``.mp4``.
    audio : array of shape (n_samples,)
        Mono sound track in [-1, 1].
    sr : int
    fps : int
    size : (width, height)
    seed : int

    Returns
    -------
    dict
        ``luminance`` and ``speed`` per video frame (what the covariates should find).
    """
    import av

    rng = np.random.default_rng(seed)
    w, h = size
    duration = audio.size / sr
    n_frames = int(np.ceil(duration * fps))
    lum = 0.5 + 0.3 * np.tanh(_smooth_walk(rng, n_frames, smooth=2 * fps))
    speed = np.minimum(np.abs(_smooth_walk(rng, n_frames, smooth=2 * fps)) * 2.5, 6.0)
    pos = np.cumsum(speed) % (w - 8)
    with av.open(str(path), mode="w") as container:
        vs = container.add_stream("mpeg4", rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        aud = container.add_stream("aac", rate=sr)
        aud.layout = "mono"
        for i in range(n_frames):
            img = np.full((h, w, 3), int(255 * lum[i]), dtype=np.uint8)
            x0 = int(pos[i])
            img[h // 2 - 4:h // 2 + 4, x0:x0 + 8] = 255 if lum[i] < 0.5 else 0
            for packet in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in vs.encode():
            container.mux(packet)
        block = 1024
        x = np.clip(np.asarray(audio, dtype=np.float32), -1, 1)
        for start in range(0, x.size, block):
            frame = av.AudioFrame.from_ndarray(x[None, start:start + block], format="fltp", layout="mono")
            frame.sample_rate = sr
            frame.pts = start
            for packet in aud.encode(frame):
                container.mux(packet)
        for packet in aud.encode():
            container.mux(packet)
    return {"luminance": lum, "speed": speed}
