"""Separation: one suite for the interface, subclassed per backend; the
nnfilter kernel against librosa; quality on mixtures with a known truth."""

from __future__ import annotations

import numpy as np
import pytest
import librosa
import mir_eval

from xaffect.errors import ConfigError, InputError
from xaffect.stimuli import separate
from xaffect.stimuli.nnfilter import nn_median_filter
from xaffect.stimuli.synth import make_mixture

SR = 16000


class SeparatorTests:
    """What every backend promises; subclasses set ``backend`` and ``options``."""

    backend = ""
    duration = 4.0

    @pytest.fixture
    def options(self, tmp_path):
        return {}

    @pytest.fixture(scope="class")
    def mixture(self):
        return make_mixture(self.duration, SR, seed=5)

    def test_shapes_and_dtype(self, mixture, options):
        out = separate(mixture["mixture"], SR, backend=self.backend, **options)
        assert set(out) == {"voice", "soundtrack"}
        for y in out.values():
            assert y.shape == mixture["mixture"].shape and y.dtype == np.float32
            assert np.isfinite(y).all()

    def test_odd_length(self, mixture, options):
        x = mixture["mixture"][: SR + 1234]
        out = separate(x, SR, backend=self.backend, **options)
        assert out["voice"].shape == x.shape == out["soundtrack"].shape

    def test_rejects_stereo(self, mixture, options):
        with pytest.raises(InputError, match="mono"):
            separate(np.stack([mixture["mixture"]] * 2), SR, backend=self.backend, **options)

    def test_unknown_option(self, mixture, options):
        with pytest.raises(ConfigError, match="bogus"):
            separate(mixture["mixture"], SR, backend=self.backend, bogus=1, **options)


class TestNNFilter(SeparatorTests):
    backend = "nnfilter"

    def test_sum_is_mixture(self, mixture):
        out = separate(mixture["mixture"], SR, backend=self.backend)
        np.testing.assert_allclose(out["voice"] + out["soundtrack"], mixture["mixture"], atol=1e-5)


class TestDemucs(SeparatorTests):
    backend = "demucs"
    duration = 2.0

    @pytest.fixture
    def options(self, tmp_path_factory):
        return {"model_path": str(_tiny_demucs(tmp_path_factory))}


_TINY: dict = {}


def _tiny_demucs(tmp_path_factory):
    """A randomly initialised HTDemucs (Demucs's own class), saved as Demucs saves models."""
    if "path" not in _TINY:
        import torch
        from demucs.htdemucs import HTDemucs
        from demucs.states import get_state

        torch.manual_seed(0)
        net = HTDemucs(sources=["drums", "bass", "other", "vocals"], channels=8, depth=4, t_layers=1,
                       nfft=1024, samplerate=SR, segment=2)
        args, kwargs = net._init_args_kwargs
        path = tmp_path_factory.mktemp("demucs") / "tiny_htdemucs.th"
        torch.save({"klass": HTDemucs, "args": args, "kwargs": kwargs, "state": get_state(net, None, False)},
                   path)
        _TINY["path"] = path
        _TINY["net"] = net
    return _TINY["path"]


def test_demucs_backend_equals_demucs_apply_model(tmp_path_factory):
    """The backend is Demucs's apply_model on the normalised mixture, vocals vs the rest."""
    import torch
    from demucs.apply import apply_model

    path = _tiny_demucs(tmp_path_factory)
    net = _TINY["net"].eval()
    x = make_mixture(2.0, SR, seed=1)["mixture"]
    out = separate(x, SR, backend="demucs", model_path=str(path), shifts=0)
    mix = torch.from_numpy(np.stack([x, x]))
    mean, std = mix.mean(0).mean(), mix.mean(0).std()
    with torch.inference_mode():
        est = apply_model(net, ((mix - mean) / std)[None], shifts=0, split=True)[0] * std + mean
    est = est.mean(1).numpy()
    np.testing.assert_allclose(out["voice"], est[3], atol=1e-4)
    np.testing.assert_allclose(out["soundtrack"], est[:3].sum(0), atol=1e-4)


def test_demucs_missing_model_file(tmp_path):
    with pytest.raises(InputError, match="missing.th"):
        separate(np.ones(SR, np.float32), SR, backend="demucs", model_path=str(tmp_path / "missing.th"))


def test_unknown_backend():
    with pytest.raises(ConfigError, match="spleeterz"):
        separate(np.ones(SR, np.float32), SR, backend="spleeterz")


@pytest.mark.parametrize("k,width", [(5, 3), (12, 8)])
def test_nn_median_filter_matches_librosa(k, width):
    rng = np.random.default_rng(k)
    S = rng.random((40, 200)).astype(np.float32)
    ref = librosa.decompose.nn_filter(S, aggregate=np.median, metric="cosine", k=k, width=width,
                                      mode="distance")
    np.testing.assert_allclose(nn_median_filter(S, k=k, width=width), ref, atol=1e-6)


def test_nnfilter_blocks_do_not_leave_seams():
    """Blocked processing agrees with one block where both see the same context."""
    from xaffect.stimuli.nnfilter import separate_nnfilter

    m = make_mixture(12.0, SR, seed=2)
    one = separate_nnfilter(m["mixture"], SR, block=12.0)["voice"]
    many = separate_nnfilter(m["mixture"], SR, block=4.0, context=4.0)["voice"]
    r = np.corrcoef(one, many)[0, 1]
    assert r > 0.9


def _si_sdr(ref: np.ndarray, est: np.ndarray) -> float:
    """SI-SDR (dB) by fast_bss_eval."""
    import fast_bss_eval

    return float(fast_bss_eval.si_sdr(ref[None].astype(np.float64), est[None].astype(np.float64))[0])


def _sdr(ref: np.ndarray, est: np.ndarray) -> float:
    """BSS-eval SDR (dB) by mir_eval."""
    sdr, _, _, _ = mir_eval.separation.bss_eval_sources(ref[None].astype(np.float64),
                                                       est[None].astype(np.float64),
                                                       compute_permutation=False)
    return float(sdr[0])


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_nnfilter_improves_voice_by_3db():
    """Planted truth: nnfilter's voice beats the mixture-as-estimate by >= 3 dB SI-SDR."""
    m = make_mixture(30.0, SR, snr_db=0.0, seed=0)
    out = separate(m["mixture"], SR, backend="nnfilter")
    base = _si_sdr(m["voice"], m["mixture"])
    got = _si_sdr(m["voice"], out["voice"])
    assert got - base >= 3.0, (base, got)
    assert _si_sdr(m["soundtrack"], out["soundtrack"]) > _si_sdr(m["soundtrack"], m["mixture"])
    assert _sdr(m["voice"][: 4 * SR], out["voice"][: 4 * SR]) > _sdr(m["voice"][: 4 * SR], m["mixture"][: 4 * SR])


# --- masknet: the default backend, on real recordings held out from its training -------------------


class TestMaskNet(SeparatorTests):
    backend = "masknet"

    def test_sum_is_mixture(self, mixture):
        out = separate(mixture["mixture"], SR, backend=self.backend)
        np.testing.assert_allclose(out["voice"] + out["soundtrack"], mixture["mixture"], atol=1e-5)


@pytest.fixture(scope="module")
def heldout_mixture():
    from xaffect.stimuli.recordings import make_recorded_mixture

    return make_recorded_mixture(20.0, SR, snr_db=0.0, split="heldout", seed=7)


def _gains(m, out):
    return (_si_sdr(m["voice"], out["voice"]) - _si_sdr(m["voice"], m["mixture"]),
            _si_sdr(m["soundtrack"], out["soundtrack"]) - _si_sdr(m["soundtrack"], m["mixture"]))


def test_default_backend_improves_both_stems_on_heldout_recordings(heldout_mixture):
    """Recorded speech over recorded music (prompts, voices and tracks never used in training), 0 dB:
    the default backend beats the unseparated mixture on both stems (SI-SDR, fast_bss_eval)."""
    m = heldout_mixture
    out = separate(m["mixture"], SR)  # the default backend
    gain_voice, gain_soundtrack = _gains(m, out)
    assert gain_voice >= 2.0 and gain_soundtrack >= 1.0, (gain_voice, gain_soundtrack)
    # BSS-eval SDR (mir_eval) agrees on the voice
    assert _sdr(m["voice"][: 5 * SR], out["voice"][: 5 * SR]) > _sdr(m["voice"][: 5 * SR], m["mixture"][: 5 * SR])


def test_untrained_masknet_does_not_separate(heldout_mixture, tmp_path):
    """Control: the same network with random weights gains nothing — the shipped weights do the work."""
    import json

    import torch

    from xaffect.stimuli.masknet import build_masknet, load_masknet

    _, meta = load_masknet()
    torch.manual_seed(0)
    net = build_masknet(**{**meta["config"], "dilations": tuple(meta["config"]["dilations"])})
    path = tmp_path / "random.npz"
    np.savez(path, __meta__=np.array(json.dumps(meta)),
             **{k: v.detach().numpy() for k, v in net.state_dict().items()})
    gain_voice, gain_soundtrack = _gains(heldout_mixture, separate(heldout_mixture["mixture"], SR,
                                                                   backend="masknet", weights=str(path)))
    assert gain_voice < 1.0 or gain_soundtrack < 0.0, (gain_voice, gain_soundtrack)


def test_masknet_blocks_and_rates():
    """Blocked processing equals one block; another rate is resampled, sums to the mixture and
    separates as well as at the network's own rate."""
    from xaffect.stimuli.masknet import separate_masknet

    m = make_mixture(12.0, SR, seed=3)
    whole = separate_masknet(m["mixture"], SR, block=60.0)["voice"]
    blocks = separate_masknet(m["mixture"], SR, block=2.5)["voice"]
    np.testing.assert_allclose(blocks, whole, atol=2e-4)
    gain_16k = _si_sdr(m["voice"], whole) - _si_sdr(m["voice"], m["mixture"])
    sr = 22050
    y, v = (librosa.resample(m[k], orig_sr=SR, target_sr=sr) for k in ("mixture", "voice"))
    out = separate(y, sr, backend="masknet")
    assert out["voice"].shape == y.shape
    np.testing.assert_allclose(out["voice"] + out["soundtrack"], y, atol=1e-5)
    gain = _si_sdr(v, out["voice"]) - _si_sdr(v, y)
    assert abs(gain - gain_16k) < 1.5, (gain, gain_16k)


def test_masknet_rejects_low_sample_rate():
    with pytest.raises(InputError, match="4000 Hz"):
        separate(np.random.default_rng(0).standard_normal(4000).astype(np.float32), 4000, backend="masknet")


def test_masknet_weights_missing_or_foreign(tmp_path):
    x = np.random.default_rng(0).standard_normal(SR).astype(np.float32)
    with pytest.raises(ConfigError, match="nothere.npz"):
        separate(x, SR, backend="masknet", weights=str(tmp_path / "nothere.npz"))
    bad = tmp_path / "foreign.npz"
    bad.write_bytes(b"not a weight file")
    with pytest.raises(ConfigError, match="foreign.npz"):
        separate(x, SR, backend="masknet", weights=str(bad))
    other = tmp_path / "other.npz"
    np.savez(other, w=np.ones(3))
    with pytest.raises(ConfigError, match="other.npz"):
        separate(x, SR, backend="masknet", weights=str(other))


def test_auto_falls_back_to_masknet_and_takes_no_options(monkeypatch, tmp_path):
    from xaffect.stimuli import backend_info, resolve_backend

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no Demucs weights cached here
    monkeypatch.setenv("XAFFECT_SPLEETER_MODELS", str(tmp_path / "spleeter-models"))  # no checkpoint
    assert resolve_backend("auto") == "masknet"
    info = backend_info("auto")
    assert info["backend"] == "masknet" and info["requested"] == "auto" and info["model"]["hash"]
    with pytest.raises(ConfigError, match="auto"):
        separate(np.ones(SR, np.float32), SR, backend="auto", k=3)


def test_si_sdr_and_alignment_of_stems_quality():
    """The demo's SI-SDR equals fast_bss_eval's; a planted codec delay is found."""
    from xaffect.stimuli.quality import align_to, si_sdr

    rng = np.random.default_rng(0)
    ref = rng.standard_normal(8000)
    est = 0.7 * ref + 0.3 * rng.standard_normal(8000)
    assert si_sdr(ref, est) == pytest.approx(_si_sdr(ref, est), abs=1e-6)
    x = make_mixture(2.0, SR, seed=1)["mixture"]
    late = np.concatenate([np.zeros(1105, np.float32), x])
    assert align_to(late, x, max_lag=4000) == 1105
    assert align_to(x, late, max_lag=4000) == -1105
