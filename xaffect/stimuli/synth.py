"""Mixtures whose true voice and soundtrack are known, for tests and benchmarks.

* voice: a glottal pulse train whose pitch follows a syllabic contour with
  vibrato, filtered by vowel formants that change every syllable, gated by
  a syllable envelope with pauses (a stand-in for speech when espeak-ng is
  not available);
* soundtrack: a synthesiser loop of chords (harmonic tones) and percussion
  (kick and hi-hat) that repeats bar after bar, as film and pop music do.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

__all__ = ["make_voice", "make_music", "make_mixture"]

# (F1, F2, F3) in Hz of a few vowels
_VOWELS = np.array([[730, 1090, 2440], [270, 2290, 3010], [300, 870, 2240],
                    [530, 1840, 2480], [570, 840, 2410], [660, 1720, 2410]], dtype=float)


def make_voice(duration: float, sr: int = 16000, *, seed: int = 0, f0: float = 140.0) -> np.ndarray:
    """A synthetic voice: pitch contour, formants, syllables and pauses.

    Parameters
    ----------
    duration : float
        Seconds.
    sr : int
        Sample rate in Hz.
    seed : int
        Random seed (syllable timing, vowels, pitch).
    f0 : float
        Mean fundamental frequency in Hz.

    Returns
    -------
    ndarray of shape (round(duration * sr),), float32, peak 1
    """
    rng = np.random.default_rng(seed)
    n = int(round(duration * sr))
    t = np.arange(n) / sr
    # syllables of 150-350 ms, phrases separated by pauses
    env = np.zeros(n)
    vowel_track = np.zeros((n, 3))
    pitch = np.full(n, f0)
    pos = 0
    while pos < n:
        phrase = int(rng.uniform(1.0, 3.0) * sr)
        end = min(n, pos + phrase)
        p = pos
        base = f0 * rng.uniform(0.85, 1.2)
        while p < end:
            L = int(rng.uniform(0.15, 0.35) * sr)
            q = min(end, p + L)
            w = np.sin(np.linspace(0, np.pi, q - p)) ** 0.7
            env[p:q] = w
            vowel_track[p:q] = _VOWELS[rng.integers(len(_VOWELS))]
            pitch[p:q] = base * (1 + 0.15 * np.sin(np.linspace(0, np.pi, q - p)) * rng.uniform(-1, 1))
            p = q
        pos = end + int(rng.uniform(0.2, 0.8) * sr)
    pitch *= 1 + 0.01 * np.sin(2 * np.pi * 5.5 * t)  # vibrato
    phase = np.cumsum(pitch) / sr
    source = 2 * (phase % 1.0) - 1.0  # sawtooth glottal source
    source += 0.02 * rng.standard_normal(n)  # aspiration
    # time-varying formants: filter per 20 ms segment with second-order resonators
    out = np.zeros(n)
    seg = int(0.02 * sr)
    zi = [np.zeros(2) for _ in range(3)]
    for s in range(0, n, seg):
        e = min(n, s + seg)
        y = source[s:e]
        acc = np.zeros(e - s)
        for j in range(3):
            fc = vowel_track[s, j] if vowel_track[s, j] > 0 else _VOWELS[0, j]
            bw = 80.0 + 40.0 * j
            r = np.exp(-np.pi * bw / sr)
            a = [1.0, -2 * r * np.cos(2 * np.pi * fc / sr), r * r]
            b = [1 - r]
            yj, zi[j] = signal.lfilter(b, a, y, zi=zi[j])
            acc += yj / (j + 1)
        out[s:e] = acc
    out *= env
    out /= np.max(np.abs(out)) + 1e-12
    return out.astype(np.float32)


def make_music(duration: float, sr: int = 16000, *, seed: int = 1, bpm: float = 120.0) -> np.ndarray:
    """A repeating synthesiser loop: four chords, kick and hi-hat.

    Parameters
    ----------
    duration : float
        Seconds.
    sr : int
        Sample rate in Hz.
    seed : int
        Random seed (chord voicing, hi-hat noise).
    bpm : float
        Tempo; a bar is four beats and the loop is four bars.

    Returns
    -------
    ndarray of shape (round(duration * sr),), float32, peak 1
    """
    rng = np.random.default_rng(seed)
    beat = int(round(60.0 / bpm * sr))
    bar = 4 * beat
    roots = 110.0 * 2 ** (np.array([0, 5, 7, 3]) / 12)  # A, D, E, C
    loop = np.zeros(4 * bar)
    tb = np.arange(bar) / sr
    for i, root in enumerate(roots):
        chord = np.zeros(bar)
        for interval in (0, 4, 7, 12):
            f = root * 2 ** (interval / 12)
            for h in range(1, 6):
                chord += np.sin(2 * np.pi * f * h * tb + rng.uniform(0, 2 * np.pi)) / h ** 1.5
        chord *= np.minimum(1.0, tb / 0.02) * np.exp(-tb * 0.6)
        loop[i * bar:(i + 1) * bar] += 0.25 * chord
    tk = np.arange(int(0.25 * sr)) / sr
    kick = np.sin(2 * np.pi * (50 + 80 * np.exp(-tk * 30)) * tk) * np.exp(-tk * 14)
    hat_len = int(0.05 * sr)
    hat = rng.standard_normal(hat_len) * np.exp(-np.arange(hat_len) / sr * 80)
    hat = signal.lfilter([1, -1], [1], hat)  # brighten
    for b in range(16):
        s = b * beat
        loop[s:s + kick.size] += 0.9 * kick[:max(0, min(kick.size, loop.size - s))]
        for off in (0, beat // 2):
            h0 = s + off
            loop[h0:h0 + hat_len] += 0.15 * hat[:max(0, min(hat_len, loop.size - h0))]
    n = int(round(duration * sr))
    out = np.tile(loop, n // loop.size + 1)[:n]
    out /= np.max(np.abs(out)) + 1e-12
    return out.astype(np.float32)


def make_mixture(duration: float, sr: int = 16000, *, snr_db: float = 0.0, seed: int = 0
                 ) -> dict[str, np.ndarray]:
    """Voice plus soundtrack at a given voice-to-soundtrack energy ratio.

    Parameters
    ----------
    duration : float
        Seconds.
    sr : int
        Sample rate in Hz.
    snr_db : float
        Voice energy over soundtrack energy, in dB.
    seed : int
        Random seed.

    Returns
    -------
    dict
        ``mixture``, ``voice``, ``soundtrack``: ndarrays of shape (n_samples,),
        float32, with ``mixture == voice + soundtrack``.
    """
    voice = make_voice(duration, sr, seed=seed)
    music = make_music(duration, sr, seed=seed + 1)
    ev, em = np.mean(voice.astype(float) ** 2), np.mean(music.astype(float) ** 2)
    music = music * np.sqrt(ev / em / 10 ** (snr_db / 10))
    mix = voice + music
    scale = 0.9 / max(np.max(np.abs(mix)), 1e-12)
    voice, music = (voice * scale).astype(np.float32), (music * scale).astype(np.float32)
    return {"mixture": (voice + music).astype(np.float32), "voice": voice, "soundtrack": music}
