"""openSMILE eGeMAPS LLDs: a planted tone and loudness step, and the stage kind."""

from __future__ import annotations

import numpy as np
import pytest

from xaffect.errors import InputError

import opensmile

from xaffect.features import egemaps  # noqa: E402


def test_tone_and_loudness_step_on_the_clock():
    sr = 16000
    t = np.arange(2 * sr) / sr
    tone = np.sin(2 * np.pi * 220 * t)
    x = np.r_[0.5 * tone, 0.05 * tone].astype(np.float32)
    out = egemaps(x, sr, stimulus="s")
    assert out.dims == ("time", "descriptor") and out.shape == (4, 25)
    f0 = out.sel(descriptor="F0semitoneFrom27.5Hz_sma3nz").values
    np.testing.assert_allclose(f0, 12 * np.log2(220 / 27.5), atol=0.5)  # 36 semitones above 27.5 Hz
    loud = out.sel(descriptor="Loudness_sma3").values
    assert loud[:2].min() > 3 * loud[2:].max()
    with pytest.raises(InputError, match="stimulus 's'.*44100 Hz"):
        egemaps(x, 44100, resample=False, stimulus="s")


def test_egemaps_stage_kind(tmp_path):
    from test_features_stage import _study

    from xaffect.features.stage import run_features

    study = _study(tmp_path, "[{name: gemaps, kind: egemaps, elements: [voice, soundtrack]}]",
                   covariates="{enabled: false}")
    assert run_features(study, progress=False) == ["features.gemaps"]
    ds = study.workspace.open("features.gemaps")
    assert ds["lld"].dims == ("element", "time", "descriptor") and ds["lld"].shape == (2, 7, 25)
    assert ds.attrs["kind"] == "egemaps"
