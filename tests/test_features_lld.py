"""Twelve classical descriptors: planted tones and noise, and brute-force references."""

from __future__ import annotations

import numpy as np
import pytest

from xaffect.errors import InputError
from xaffect.features import LLD_NAMES, lld


def _tone_then_noise(sr=16000):
    t = np.arange(3 * sr) / sr
    tone = 0.5 * np.sin(2 * np.pi * 220 * t)
    noise = 0.1 * np.random.RandomState(0).randn(3 * sr)
    return np.r_[tone, noise].astype(np.float32)


@pytest.fixture(scope="module")
def table():
    return lld(_tone_then_noise(), 16000, stimulus="clip").to_pandas()


def test_twelve_named_descriptors_on_the_clock(table):
    assert tuple(table.columns) == LLD_NAMES and len(LLD_NAMES) == 12
    assert table.shape == (6, 12)
    assert np.isfinite(table.values).all()


def test_tone_is_recovered(table):
    tone = table.iloc[:2]  # bin 2 ends with frames that reach into the noise
    np.testing.assert_allclose(tone["rms"], 0.5 / np.sqrt(2), rtol=0.02)
    np.testing.assert_allclose(tone["f0"], 220, rtol=0.01)
    np.testing.assert_allclose(tone["spectral_centroid"], 220, rtol=0.05)
    np.testing.assert_allclose(tone["zcr"], 2 * 220 / 16000, rtol=0.1)
    assert (tone["voicing_probability"] > 0.5).all()
    assert (tone["harmonic_ratio"] > 0.9).all()


def test_noise_differs_from_tone_the_right_way(table):
    tone, noise = table.iloc[:3].mean(), table.iloc[3:].mean()
    np.testing.assert_allclose(noise["rms"], 0.1, rtol=0.05)
    np.testing.assert_allclose(noise["zcr"], 0.5, rtol=0.05)  # white noise changes sign half the time
    assert noise["spectral_flatness"] > 100 * tone["spectral_flatness"]
    assert noise["spectral_centroid"] > 3000 and noise["spectral_rolloff"] > 5000
    assert noise["voicing_probability"] < 0.2 < tone["voicing_probability"]
    assert noise["harmonic_ratio"] < tone["harmonic_ratio"]
    assert noise["spectral_bandwidth"] > 10 * tone["spectral_bandwidth"]


def test_rms_matches_brute_force_and_a_planted_ramp():
    sr = 16000
    rs = np.random.RandomState(1)
    gain = np.repeat(np.linspace(0.05, 0.5, 8), sr)
    x = (gain * rs.randn(8 * sr)).astype(np.float32)
    out = lld(x, sr, rate=1.0)
    brute = np.sqrt([np.mean(x[i * sr:(i + 1) * sr] ** 2) for i in range(8)])
    np.testing.assert_allclose(out.sel(descriptor="rms").values, brute, rtol=0.05)
    assert np.corrcoef(out.sel(descriptor="rms").values, gain[::sr])[0, 1] > 0.99
    # onset strength peaks where a click train starts
    y = np.zeros(8 * sr, np.float32)
    y[5 * sr:6 * sr:1600] = 1.0
    on = lld(y, sr).sel(descriptor="onset_strength").values
    assert on.argmax() == 5


def test_bad_audio():
    x = _tone_then_noise()
    with pytest.raises(InputError, match="stimulus 'a'.*22050 Hz"):
        lld(x, 22050, resample=False, stimulus="a")
    bad = x.copy()
    bad[10] = np.nan
    with pytest.raises(InputError, match="stimulus 'a'.*NaN"):
        lld(bad, 16000, stimulus="a")
    with pytest.raises(InputError, match="mono"):
        lld(np.stack([x, x]), 16000)
    with pytest.raises(InputError, match="shorter than one clock bin"):
        lld(x[:8000], 16000)
