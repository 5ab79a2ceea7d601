"""VGGish's 23 stages read by forward hooks, and the generic hook extractor."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xaffect.errors import InputError
from xaffect.features import (VGGISH_LABELS, VGGISH_STAGES, hook_activations, load_vggish, make_random_model,
                              vggish_activations, vggish_examples)

SR = 16000


def _audio(seconds, seed=0):
    return (0.1 * np.random.RandomState(seed).randn(int(seconds * SR))).astype(np.float32)


def test_23_stages_with_the_seed_names():
    assert len(VGGISH_STAGES) == len(VGGISH_LABELS) == 23
    assert VGGISH_LABELS[1] == "conv1" and VGGISH_LABELS[17] == "fc1_1" and VGGISH_LABELS[22] == "EmbeddingBatch"
    net = load_vggish(random_init=True, seed=0)
    names = dict(net.named_modules())
    assert isinstance(names[VGGISH_STAGES[1]], torch.nn.Conv2d)
    assert isinstance(names[VGGISH_STAGES[17]], torch.nn.Linear) and names[VGGISH_STAGES[17]].in_features == 12288
    assert names[VGGISH_STAGES[21]].out_features == 128


def test_log_mel_front_end_matches_librosa():
    import librosa

    x = _audio(2.5)
    ex, centres = vggish_examples(x)
    assert ex.shape == (2, 96, 64)
    np.testing.assert_allclose(centres, [0.4875, 1.4475])
    # librosa centres the 400-sample window in the 512-point frame: shift by 56 samples so that frame t
    # windows samples [160 t, 160 t + 400), as VGGish does (a circular shift leaves magnitudes unchanged)
    S = np.abs(librosa.stft(np.r_[np.zeros(56, np.float32), x], n_fft=512, hop_length=160, win_length=400, window="hann", center=False))
    mel = librosa.filters.mel(sr=SR, n_fft=512, n_mels=64, fmin=125, fmax=7500, htk=True, norm=None)
    ref = np.log(mel @ S + 0.01).T
    np.testing.assert_allclose(ex[1], ref[96:192], rtol=1e-4, atol=1e-4)
    with pytest.raises(InputError, match="hop_seconds"):
        vggish_examples(x, hop_seconds=0.015)


def test_hooks_equal_the_forward_pass():
    net = load_vggish(random_init=True, seed=1)
    x = torch.from_numpy(vggish_examples(_audio(3))[0])[:, None]
    got = hook_activations(net, x, ["input", "features.0", "embeddings.5"])
    with torch.inference_mode():
        out = net(x).numpy()
        conv1 = net.features[0](x).numpy()
    np.testing.assert_allclose(got["embeddings.5"], out, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["features.0"], conv1.reshape(3, -1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["input"], x.numpy().reshape(3, -1))
    pooled = hook_activations(net, x, ["features.0"], pool="time-mean")["features.0"]
    np.testing.assert_allclose(pooled, conv1.mean(axis=2).reshape(3, -1), rtol=1e-5, atol=1e-6)
    with pytest.raises(InputError, match="nope.*not submodules"):
        hook_activations(net, x, ["nope"])


def test_cube_on_the_clock_and_checkpoint_round_trip(tmp_path):
    ckpt = make_random_model("vggish", tmp_path, seed=5)
    loaded = load_vggish(ckpt)
    drawn = load_vggish(random_init=True, seed=5)
    x = _audio(6)
    a = vggish_activations(x, SR, loaded, rate=0.5, stimulus="s")
    b = vggish_activations(x, SR, drawn, rate=0.5)
    np.testing.assert_array_equal(a.values, b.values)
    assert a.dims == ("time", "layer", "unit") and a.sizes["time"] == 3 and a.sizes["layer"] == 23
    assert a.sizes["unit"] == 4096
    assert list(a["n_units"].values[[0, 1, 3, 17, 22]]) == [64, 4096, 2048, 4096, 128]
    assert list(a["layer"].values) == list(range(1, 24))  # the seed's numbering
    assert a["layer_name"].values[0] == "L01 InputBatch" and a["layer_name"].values[-1] == "L23 EmbeddingBatch"
    assert np.isnan(a.sel(layer=23).values[:, 128:]).all() and np.isfinite(a.sel(layer=23).values[:, :128]).all()
    # brute force: bin 1 covers [2, 4) s = the examples centred at 2.4075 and 3.3675 s
    ex, centres = vggish_examples(x)
    with torch.inference_mode():
        emb = loaded(torch.from_numpy(ex)[:, None]).numpy()
    inbin = (centres >= 2) & (centres < 4)
    assert inbin.sum() == 2
    np.testing.assert_allclose(a.sel(layer=23).values[1, :128], emb[inbin].mean(0), rtol=1e-5, atol=1e-6)


def test_bad_vggish_input(tmp_path):
    with pytest.raises(InputError, match="checkpoint: PATH.*random_init"):
        load_vggish(None)
    with pytest.raises(InputError, match="missing.pt: file does not exist"):
        load_vggish(tmp_path / "missing.pt")
    torch.save({"weight": torch.zeros(2)}, tmp_path / "bad.pt")
    with pytest.raises(InputError, match="bad.pt: does not fit"):
        load_vggish(tmp_path / "bad.pt")
    net = load_vggish(random_init=True)
    with pytest.raises(InputError, match=r"layers: \[0, 24\] out of range for VGGish with layers 1..23"):
        vggish_activations(_audio(2), SR, net, layers=[0, 1, 24])
    with pytest.raises(InputError, match="stimulus 'x'.*44100 Hz"):
        vggish_activations(_audio(2), 44100, net, resample=False, stimulus="x")
