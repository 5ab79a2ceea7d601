"""Layer cubes from Hugging Face speech models: tiny models built from configs,
saved with save_pretrained and loaded by path through the real code."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xaffect.errors import InputError
from xaffect.features import layer_activations, load_model, make_random_model
from xaffect.features.hf import SpeechModel, frame_centres, frames_reference, n_frames
from xaffect.store.clock import to_clock

SR = 16000


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    return {k: make_random_model(k, root / k, seed=1) for k in ("wav2vec2", "hubert", "wavlm", "data2vec-audio",
                                                                 "whisper")}


def _audio(seconds, seed=0):
    rs = np.random.RandomState(seed)
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * (200 + 50 * np.sin(t)) * t) + 0.05 * rs.randn(t.size)).astype(np.float32)


@pytest.mark.parametrize("kind", ["wav2vec2", "hubert", "wavlm", "data2vec-audio", "whisper"])
def test_every_family_gives_a_cube_on_the_clock(models, kind):
    sm = load_model(models[kind])
    x = _audio(5.5)
    cube = layer_activations(x, SR, sm, rate=2.0, stimulus="s1")
    assert cube.dims == ("time", "layer", "unit")
    assert cube.dtype == np.float32
    assert cube.sizes["time"] == 11  # floor(5.5 s * 2 Hz)
    assert cube.sizes["layer"] == sm.n_layers == sm.module.config.num_hidden_layers + 1 \
        if kind != "whisper" else cube.sizes["layer"] == 3
    assert cube.sizes["unit"] == 32
    np.testing.assert_allclose(cube["onset"].values, (np.arange(11) + 0.5) / 2.0)
    assert np.isfinite(cube.values).all()
    assert (cube["stimulus"].values == "s1").all()
    # geometry comes from the config: 20 ms hop for all of these
    assert sm.hop == 320


def test_geometry_is_read_from_the_config(tmp_path):
    import transformers as tf

    cfg = tf.Wav2Vec2Config(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16,
                            conv_dim=(8, 8), conv_kernel=(8, 4), conv_stride=(4, 2), num_conv_pos_embeddings=4,
                            num_conv_pos_embedding_groups=2, num_feat_extract_layers=2)
    tf.Wav2Vec2Model(cfg).save_pretrained(tmp_path / "m")
    sm = load_model(tmp_path / "m")
    assert (sm.hop, sm.field) == (8, 8 + 3 * 4)
    x = _audio(0.05)
    with torch.inference_mode():
        out = sm.module(torch.from_numpy(x)[None]).last_hidden_state
    assert out.shape[1] == n_frames(sm, x.size)
    np.testing.assert_allclose(frame_centres(sm, x.size)[:2], np.array([10, 18]) / SR)


@pytest.mark.parametrize("kind", ["wav2vec2", "hubert"])
def test_chunked_equals_single_pass(tmp_path, kind):
    import transformers as tf

    from xaffect.features.models import _TINY

    # layer-norm feature encoder (as in the large models): every frame depends on local audio only
    # up to the transformer, so context can make the seams disappear
    cls, cfg = {"wav2vec2": (tf.Wav2Vec2Model, tf.Wav2Vec2Config),
                "hubert": (tf.HubertModel, tf.HubertConfig)}[kind]
    torch.manual_seed(0)
    cls(cfg(**_TINY, feat_extract_norm="layer")).save_pretrained(tmp_path / kind)
    sm = load_model(tmp_path / kind)
    x = _audio(24)
    layers = list(range(sm.n_layers))
    ref = frames_reference(sm, x, rate=1.0, layers=layers)
    one = layer_activations(x, SR, sm, batch_seconds=60).values
    np.testing.assert_allclose(one, ref, rtol=1e-5, atol=1e-5)
    chunked = layer_activations(x, SR, sm, batch_seconds=4, context_seconds=2).values
    scale = np.abs(ref).max(axis=(0, 2))
    err = np.abs(chunked - ref).max(axis=2) / scale  # (time, layer)
    assert err.max() < 0.01
    # seams (bins 3/4, 7/8, ...) are no worse than the interior
    seams = np.r_[3:24:4, 4:24:4]
    inner = np.setdiff1d(np.arange(24), seams)
    assert err[seams].mean() < 3 * err[inner].mean() + 1e-3
    # without context the seams do show
    bare = layer_activations(x, SR, sm, batch_seconds=4, context_seconds=0).values
    bare_err = np.abs(bare - ref).max(axis=2) / scale
    assert bare_err[seams].mean() > 3 * err[seams].mean()


def test_planted_event_lands_in_its_bin(models):
    """A loud burst at 6.0–7.0 s changes layer 1 in bin 6 — also after resampling from 44.1 kHz."""
    sm = load_model(models["wav2vec2"])
    sr2 = 44100
    quiet = np.zeros(int(12 * sr2), np.float32)
    burst = quiet.copy()
    t = np.arange(sr2) / sr2
    burst[6 * sr2:7 * sr2] = 0.8 * np.sin(2 * np.pi * 1000 * t)
    a = layer_activations(quiet + 1e-3 * np.random.RandomState(0).randn(quiet.size).astype(np.float32), sr2, sm)
    b = layer_activations(burst + 1e-3 * np.random.RandomState(0).randn(quiet.size).astype(np.float32), sr2, sm)
    diff = np.abs(b.values - a.values)[:, 1].mean(axis=1)
    assert diff.argmax() == 6
    assert diff[6] > 5 * np.median(diff)


def test_random_init_is_explicit_and_seeded(models):
    a = load_model(models["hubert"], random_init=True, seed=3)
    b = load_model(models["hubert"], random_init=True, seed=3)
    c = load_model(models["hubert"], random_init=True, seed=4)
    trained = load_model(models["hubert"])
    x = _audio(3)
    ca, cb, cc, ct = (layer_activations(x, SR, m).values for m in (a, b, c, trained))
    np.testing.assert_array_equal(ca, cb)
    assert not np.allclose(ca, cc)
    assert not np.allclose(ca, ct)
    assert a.provenance()["random_init"] is True and a.provenance()["seed"] == 3
    assert trained.provenance()["random_init"] is False


def test_whisper_single_window_matches_the_encoder(models):
    sm = load_model(models["whisper"])
    x = _audio(10)
    cube = layer_activations(x, SR, sm, layers=[0, 2])
    feats = sm.feature_extractor(x, sampling_rate=SR, return_tensors="pt").input_features
    with torch.inference_mode():
        hs = sm.module(feats, output_hidden_states=True).hidden_states
    fr = np.stack([hs[i][0, :500].numpy() for i in (0, 2)], axis=1)
    ref = to_clock(fr, np.arange(500) * 0.02, rate=1.0, duration=10)
    np.testing.assert_allclose(cube.values, ref, rtol=1e-4, atol=1e-4)


def test_layer_selection(models):
    sm = load_model(models["wav2vec2"])
    x = _audio(3)
    full = layer_activations(x, SR, sm)
    part = layer_activations(x, SR, sm, layers=[3, 1])
    assert list(part["layer"].values) == [3, 1]
    np.testing.assert_allclose(part.values, full.sel(layer=[3, 1]).values, rtol=1e-5, atol=1e-6)
    with pytest.raises(InputError, match=r"layers: \[7\] out of range .* 0\.\.3"):
        layer_activations(x, SR, sm, layers=[1, 7])
    with pytest.raises(InputError, match="layers: 'middle' is not 'all'"):
        layer_activations(x, SR, sm, layers="middle")


def test_bad_models(tmp_path, models):
    with pytest.raises(InputError, match=r"does-not-exist.*local folder"):
        load_model(tmp_path / "does-not-exist")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"empty.*no config.json"):
        load_model(tmp_path / "empty")
    import transformers as tf

    tf.BertModel(tf.BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=16, vocab_size=50)).save_pretrained(tmp_path / "bert")
    with pytest.raises(InputError, match="not a raw-waveform speech model"):
        load_model(tmp_path / "bert")


class _NoHidden(torch.nn.Module):
    def forward(self, x, output_hidden_states=False):
        return {"last": x}


def test_model_without_hidden_states_is_refused(models):
    sm = load_model(models["wav2vec2"])
    broken = SpeechModel(_NoHidden(), "no-hidden", None, "waveform", SR, sm.hop, sm.first_centre, sm.field,
                         sm.n_layers, sm.n_units)
    with pytest.raises(InputError, match="no-hidden.*no hidden states"):
        layer_activations(_audio(2), SR, broken)


def test_wrong_sample_rate_is_resampled_or_refused(models):
    sm = load_model(models["wav2vec2"])
    x = _audio(4)
    with pytest.raises(InputError, match="stimulus 'clip'.*8000 Hz.*16000"):
        layer_activations(x[::2], 8000, sm, resample=False, stimulus="clip")
    up = layer_activations(x[::2], 8000, sm)
    assert up.sizes["time"] == 4  # same duration on the clock, never mis-timed
