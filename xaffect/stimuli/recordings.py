"""Real speech-over-music mixtures from freely licensed recordings found offline.

Separation is built and judged on recordings made by others, not on
xaffect's own synthesiser:

* speech: Debian's ``asterisk-core-sounds-en-wav`` (telephone prompts read by
  one professional speaker, 8 kHz) and ``espeak-ng`` voices (formant speech
  in several accents and voice variants);
* music: Debian's ``asterisk-moh-opsound-wav`` (five music-on-hold tracks,
  three artists, 8 kHz);
* sound events: ``sound-theme-freedesktop`` (bells, phones, alerts), which
  belong to the soundtrack.

Every source is split, fixed here in code, into a **tuning** set (used to
train and tune the ``masknet`` separator) and a **held-out** set (used only
to evaluate it): whole prompt families, whole music tracks, whole espeak-ng
voices and whole event sounds, so a held-out mixture shares no recording
with anything the separator saw.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..errors import InputError

__all__ = ["SPLITS", "require_recordings", "speech_files", "music_files", "event_files", "espeak_voices",
           "make_speech_track", "make_music_track", "make_recorded_mixture", "mix_at_snr"]

SPLITS = ("tuning", "heldout")
SPEECH_DIR = Path(os.environ.get("XAFFECT_ASTERISK_SOUNDS", "/usr/share/asterisk/sounds/en"))
MUSIC_DIR = Path(os.environ.get("XAFFECT_ASTERISK_MOH", "/usr/share/asterisk/moh"))
EVENTS_DIR = Path(os.environ.get("XAFFECT_FREEDESKTOP_SOUNDS", "/usr/share/sounds/freedesktop/stereo"))

#: Prompt families (file-name prefix before the first '-') kept for evaluation (~7 of 21 min).
HELDOUT_PROMPT_FAMILIES = ("conf", "confbridge", "queue", "dir")
#: Music tracks kept for evaluation: one of macroform's three, and manolo_camp's only track.
HELDOUT_MUSIC = ("macroform-robot_dity", "manolo_camp-morning_coffee")
#: Event sounds kept for evaluation.
HELDOUT_EVENTS = ("bell", "phone-incoming-call", "complete", "dialog-warning", "camera-shutter")
#: espeak-ng voice+variant per split (accents and voice qualities differ between splits).
ESPEAK_VOICES = {
    "tuning": ("en-us+m3", "en-gb+f2", "en-gb-scotland+m1", "en-us+f4", "de+m2", "fr+f3", "en-029+m4",
               "es+f1"),
    "heldout": ("en-gb-x-rp+f5", "en-gb-x-gbclan+m6", "it+m7"),
}
_SENTENCES = (
    "The storm had passed, and the valley lay quiet under a pale and silver sky.",
    "Nobody expected the letter to arrive on a Sunday, least of all my grandmother.",
    "We walked along the river until the lights of the city disappeared behind us.",
    "Is this really what you wanted, after everything we have been through together?",
    "The children laughed and ran towards the sea, shouting each other's names.",
    "Please hold the door, the last train leaves in less than five minutes.",
    "I never told anyone what happened that night in the old house by the lake.",
    "Turn left at the bakery, then keep going until you see the blue gate.",
)


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise InputError(f"split: must be one of {SPLITS}, got {split!r}")


def require_recordings() -> None:
    """Raise a one-line :class:`InputError` when the Debian recordings are missing."""
    for folder, package in ((SPEECH_DIR, "asterisk-core-sounds-en-wav"), (MUSIC_DIR, "asterisk-moh-opsound-wav")):
        if not folder.is_dir() or not any(folder.glob("*.wav")):
            raise InputError(f"{folder}: no recordings; install the Debian package {package} "
                             f"(apt-get install {package})")


def speech_files(split: str) -> list[Path]:
    """Speech prompts of one split (sorted paths)."""
    _check_split(split)
    require_recordings()
    files = sorted(SPEECH_DIR.glob("*.wav"))
    held = [f for f in files if f.stem.split("-")[0] in HELDOUT_PROMPT_FAMILIES]
    return held if split == "heldout" else [f for f in files if f not in held]


def music_files(split: str) -> list[Path]:
    """Music tracks of one split (sorted paths)."""
    _check_split(split)
    require_recordings()
    files = sorted(MUSIC_DIR.glob("*.wav"))
    return [f for f in files if (f.stem in HELDOUT_MUSIC) == (split == "heldout")]


def event_files(split: str) -> list[Path]:
    """Sound events of one split (empty without sound-theme-freedesktop).

    The ``audio-channel-*`` and ``audio-test-signal`` files are left out:
    they are spoken words and a test tone, not soundtrack events.
    """
    _check_split(split)
    files = [f for f in sorted(EVENTS_DIR.glob("*.oga")) if not f.stem.startswith(("audio-channel", "audio-test"))]
    return [f for f in files if (f.stem in HELDOUT_EVENTS) == (split == "heldout")]


def espeak_voices(split: str) -> tuple[str, ...]:
    """espeak-ng voices of one split (empty when espeak-ng is not installed)."""
    _check_split(split)
    return ESPEAK_VOICES[split] if shutil.which("espeak-ng") else ()


@functools.lru_cache(maxsize=1024)
def _load(path: str, sr: int) -> np.ndarray:
    from .decode import load_audio

    y, _ = load_audio(path, sr=sr, mono=True, allow_silent=True)
    y.setflags(write=False)
    return y


@functools.lru_cache(maxsize=256)
def _espeak(voice: str, sentence: int, speed: int, sr: int) -> np.ndarray:
    with tempfile.TemporaryDirectory(prefix="xaffect-espeak-") as tmp:
        wav = os.path.join(tmp, "s.wav")
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", wav, _SENTENCES[sentence]],
                       check=True, capture_output=True)
        y = _load.__wrapped__(wav, sr)
    y.setflags(write=False)
    return y


def make_speech_track(seconds: float, sr: int = 16000, *, split: str = "heldout", seed: int = 0,
                      espeak: float = 0.3) -> np.ndarray:
    """Speech of one split: utterances one after another with pauses, like dialogue.

    Parameters
    ----------
    seconds : float
        Duration.
    sr : int
        Sample rate in Hz.
    split : {"tuning", "heldout"}
    seed : int
        Random seed (which utterances, pauses).
    espeak : float
        Probability that an utterance is espeak-ng speech rather than a
        recorded prompt (ignored without espeak-ng).

    Returns
    -------
    ndarray of shape (round(seconds * sr),), float32, peak 1
    """
    rng = np.random.default_rng(seed)
    prompts = speech_files(split)
    voices = espeak_voices(split)
    n = int(round(seconds * sr))
    out = np.zeros(n, np.float32)
    pos = int(rng.uniform(0.0, 0.5) * sr)
    while pos < n:
        if voices and rng.random() < espeak:
            y = _espeak(voices[rng.integers(len(voices))], int(rng.integers(len(_SENTENCES))),
                        int(rng.choice((145, 165, 185))), sr)
        else:
            y = _load(str(prompts[rng.integers(len(prompts))]), sr)
        y = y / max(float(np.max(np.abs(y))), 1e-6) * rng.uniform(0.5, 1.0)
        m = min(y.size, n - pos)
        out[pos:pos + m] = y[:m]
        pos += m + int(rng.uniform(0.1, 0.7) * sr)
    return out / max(float(np.max(np.abs(out))), 1e-6)


def make_music_track(seconds: float, sr: int = 16000, *, split: str = "heldout", seed: int = 0,
                     events: float = 0.0) -> np.ndarray:
    """An excerpt of one music track of the split, optionally with sound events.

    Parameters
    ----------
    seconds : float
    sr : int
    split : {"tuning", "heldout"}
    seed : int
        Random seed (track, start, events).
    events : float
        Sound events per second (bells, phones, alerts of the split), each at
        a random level from -12 to 0 dB re the music's peak.

    Returns
    -------
    ndarray of shape (round(seconds * sr),), float32, peak 1
    """
    rng = np.random.default_rng(seed)
    tracks = music_files(split)
    n = int(round(seconds * sr))
    track = _load(str(tracks[rng.integers(len(tracks))]), sr)
    if track.size <= n:
        track = np.tile(track, n // track.size + 1)
    start = int(rng.integers(0, track.size - n + 1))
    out = np.array(track[start:start + n], dtype=np.float32)
    out /= max(float(np.max(np.abs(out))), 1e-6)
    sounds = event_files(split)
    if events > 0 and sounds:
        for _ in range(rng.poisson(events * seconds)):
            y = _load(str(sounds[rng.integers(len(sounds))]), sr)[:n]
            at = int(rng.integers(0, n - y.size + 1))
            out[at:at + y.size] += y / max(float(np.max(np.abs(y))), 1e-6) * 10 ** (rng.uniform(-12, 0) / 20)
    return out / max(float(np.max(np.abs(out))), 1e-6)


def mix_at_snr(voice: np.ndarray, soundtrack: np.ndarray, snr_db: float, peak: float = 0.9
               ) -> dict[str, np.ndarray]:
    """Scale the soundtrack to ``snr_db`` (voice over soundtrack energy) and sum.

    Returns
    -------
    dict
        ``mixture``, ``voice``, ``soundtrack``: float32 arrays of the same
        shape, the mixture peaking at ``peak`` and equal to voice + soundtrack.
    """
    pv, pm = float(np.mean(np.square(voice, dtype=np.float64))), float(np.mean(np.square(soundtrack, dtype=np.float64)))
    if pv <= 0 or pm <= 0:
        raise InputError("mix_at_snr: voice and soundtrack must both be non-silent")
    m = soundtrack * np.sqrt(pv / pm / 10 ** (snr_db / 10))
    scale = peak / max(float(np.max(np.abs(voice + m))), 1e-9)
    v, s = (voice * scale).astype(np.float32), (m * scale).astype(np.float32)
    return {"mixture": v + s, "voice": v, "soundtrack": s}


def make_recorded_mixture(seconds: float, sr: int = 16000, *, snr_db: float = 0.0, split: str = "heldout",
                          seed: int = 0, espeak: float = 0.3, events: float = 0.0) -> dict[str, np.ndarray]:
    """Recorded speech over recorded music at a voice-to-music ratio.

    Parameters
    ----------
    seconds : float
    sr : int
    snr_db : float
        Voice over soundtrack energy, whole excerpt, in dB.
    split : {"tuning", "heldout"}
        Which recordings (see the module docstring).
    seed : int
    espeak : float
        Share of espeak-ng utterances in the speech.
    events : float
        Sound events per second in the soundtrack.

    Returns
    -------
    dict
        ``mixture``, ``voice``, ``soundtrack``: ndarrays of shape
        (round(seconds * sr),), float32, mixture = voice + soundtrack.
    """
    voice = make_speech_track(seconds, sr, split=split, seed=seed, espeak=espeak)
    music = make_music_track(seconds, sr, split=split, seed=seed + 10_000, events=events)
    return mix_at_snr(voice, music, snr_db)
