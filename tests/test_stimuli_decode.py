"""Decoding every container (files made here with PyAV), resampling, bad inputs."""

from __future__ import annotations

import fractions
import struct

import av
import numpy as np
import pytest
import scipy.signal

from xaffect.errors import InputError
from xaffect.stimuli import load_audio, make_stimulus_table, probe_audio, resample

SR = 44100
DUR = 1.5


def _tone(sr: int = SR, dur: float = DUR, f: float = 440.0) -> np.ndarray:
    t = np.arange(int(sr * dur)) / sr
    left = 0.5 * np.sin(2 * np.pi * f * t)
    right = 0.3 * np.sin(2 * np.pi * f * t)
    return np.stack([left, right]).astype(np.float32)  # (2, n)


def write_media(path, audio: np.ndarray | None, *, codec: str, sr: int = SR, video: str | None = None,
                layout: str = "stereo", sample_fmt: str | None = None, n_video: int = 10) -> None:
    """Write a container with an audio stream (and optionally a video stream) through PyAV."""
    out = av.open(str(path), "w")
    vs = None
    if video is not None:
        vs = out.add_stream(video, rate=10)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
    if audio is not None:
        st = out.add_stream(codec, rate=sr)
        st.layout = layout
        fmt = sample_fmt or (st.codec_context.codec.audio_formats[0].name)
        st.format = fmt
        frame_size = st.codec_context.frame_size or 1024
        resampler = av.AudioResampler(format=fmt, layout=layout, rate=sr)
        pts = 0
        for i in range(0, audio.shape[1], frame_size):
            block = np.ascontiguousarray(audio[:, i:i + frame_size])
            if layout == "mono":
                block = block[:1]
            fr = av.AudioFrame.from_ndarray(block, format="fltp", layout=layout)
            fr.sample_rate, fr.pts, fr.time_base = sr, pts, fractions.Fraction(1, sr)
            pts += block.shape[1]
            for f2 in resampler.resample(fr):
                for p in st.encode(f2):
                    out.mux(p)
        for f2 in resampler.resample(None):
            for p in st.encode(f2):
                out.mux(p)
        for p in st.encode(None):
            out.mux(p)
    if vs is not None:
        for i in range(n_video):
            img = np.full((48, 64, 3), (i * 20) % 255, np.uint8)
            for p in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
    out.close()


CASES = [
    ("wav", "pcm_s16le", None, 1e-3),
    ("flac", "flac", None, 1e-3),
    ("mp3", "libmp3lame", None, 0.05),
    ("ogg", "libopus", None, 0.05),
    ("mp4", "aac", "libx264", 0.05),
    ("mkv", "aac", "mpeg4", 0.05),
    ("webm", "libopus", "libvpx", 0.05),
    ("avi", "libmp3lame", "mpeg4", 0.05),
]


@pytest.mark.parametrize("ext,codec,video,tol", CASES, ids=[c[0] for c in CASES])
def test_decodes_each_container(tmp_path, ext, codec, video, tol):
    sr = 48000 if codec == "libopus" else SR
    x = _tone(sr)
    path = tmp_path / f"clip.{ext}"
    write_media(path, x, codec=codec, sr=sr, video=video)
    y, out_sr = load_audio(path, sr=16000)
    assert out_sr == 16000 and y.dtype == np.float32 and y.ndim == 1
    # duration preserved within a codec frame (+ encoder padding)
    assert abs(y.size / 16000 - DUR) < 0.1
    # mono mixdown is the mean of the channels: a 440 Hz tone of amplitude 0.4
    mid = y[int(0.3 * 16000):int(1.2 * 16000)]
    amp = np.sqrt(2) * np.std(mid)
    assert abs(amp - 0.4) < 0.4 * tol * 4 + 0.01
    f, p = scipy.signal.periodogram(mid, fs=16000)
    assert abs(f[np.argmax(p)] - 440) < 5
    info = probe_audio(path)
    assert info["native_sr"] == sr and info["channels"] == 2


def test_stereo_and_native_rate(tmp_path):
    x = _tone()
    path = tmp_path / "a.wav"
    write_media(path, x, codec="pcm_f32le")
    y, sr = load_audio(path, sr=None, mono=False)
    assert sr == SR and y.shape == x.shape
    np.testing.assert_allclose(y, x, atol=1e-6)
    m, _ = load_audio(path, sr=None)
    np.testing.assert_allclose(m, x.mean(0), atol=1e-6)
    y16, _ = load_audio(path, sr=16000, mono=False)
    assert y16.shape[0] == 2 and abs(y16.shape[1] - x.shape[1] * 16000 / SR) <= 2
    core = slice(2000, 20000)
    np.testing.assert_allclose(y16[:, core], resample(x, SR, 16000)[:, core], atol=1e-3)


def test_resampling_is_anti_aliased_and_matches_scipy_polyphase():
    sr = 48000
    t = np.arange(sr) / sr
    low = np.sin(2 * np.pi * 1000 * t)
    high = np.sin(2 * np.pi * 11000 * t)  # above the 8 kHz Nyquist of 16 kHz
    y = resample((low + high).astype(np.float32), sr, 16000)
    ref = scipy.signal.resample_poly(low, 1, 3)
    core = slice(800, 15200)
    # the 11 kHz tone is removed (no alias at 5 kHz), the 1 kHz tone kept
    np.testing.assert_allclose(y[core], ref[core], atol=2e-3)


def test_stimulus_table(tmp_path):
    write_media(tmp_path / "a.wav", _tone(), codec="pcm_s16le")
    write_media(tmp_path / "b.flac", _tone(dur=0.5), codec="flac")
    table = make_stimulus_table({"a": tmp_path / "a.wav", "b": tmp_path / "b.flac"})
    assert list(table.index) == ["a", "b"]
    assert table.loc["a", "native_sr"] == SR and table.loc["b", "codec"] == "flac"
    assert abs(table.loc["a", "duration"] - DUR) < 0.05
    assert table.loc["a", "hash"].startswith("sha256:") and table.loc["a", "hash"] != table.loc["b", "hash"]


# --------------------------------------------------------------- bad inputs
def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="nope.wav"):
        load_audio(tmp_path / "nope.wav")


def test_corrupt_file(tmp_path):
    path = tmp_path / "junk.mp4"
    path.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(InputError, match="junk.mp4"):
        load_audio(path)


def test_truncated_file(tmp_path):
    path = tmp_path / "cut.mp4"
    write_media(path, _tone(), codec="aac", video="libx264")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(InputError, match="cut.mp4"):
        load_audio(path)


def test_no_audio_stream(tmp_path):
    path = tmp_path / "silent_film.mp4"
    write_media(path, None, codec="aac", video="libx264")
    with pytest.raises(InputError, match="silent_film.mp4.*no audio stream"):
        load_audio(path)


def test_zero_bytes(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(InputError, match="empty.wav.*empty"):
        load_audio(path)


def test_zero_length_audio(tmp_path):
    import soundfile as sf

    path = tmp_path / "zero.wav"
    sf.write(path, np.zeros((0, 2), np.float32), SR)  # a valid header, no samples
    assert path.stat().st_size > 0
    with pytest.raises(InputError, match="zero.wav.*zero length"):
        load_audio(path)


def test_all_silent(tmp_path):
    path = tmp_path / "quiet.flac"
    write_media(path, np.zeros((2, SR), np.float32), codec="flac")
    with pytest.raises(InputError, match="quiet.flac.*silent"):
        load_audio(path)


def test_unsupported_sample_format(tmp_path):
    # a RIFF/WAVE header with a format tag no decoder knows (0x7777)
    n = 1000
    fmt = struct.pack("<HHIIHH", 0x7777, 1, 16000, 32000, 2, 16)
    body = b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", 2 * n) + b"\x01\x00" * n
    path = tmp_path / "odd.wav"
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body)
    with pytest.raises(InputError, match="odd.wav"):
        load_audio(path)


def test_long_file_decodes_in_bounded_memory(tmp_path):
    """Native-rate multichannel audio is streamed, never held whole."""
    import tracemalloc

    import soundfile as sf

    sr, dur = 48000, 60.0
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal((int(sr * dur), 2))).astype(np.float32)
    path = tmp_path / "long.flac"
    sf.write(path, x, sr)
    native_bytes = x.nbytes  # 23 MB as float32 stereo
    del x
    tracemalloc.start()
    y, _ = load_audio(path, sr=16000)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert abs(y.size - 16000 * dur) < 16
    assert peak < 2.5 * y.nbytes + 4e6 < native_bytes
