"""One contract, every extractor: ``ExtractorTests`` subclassed per implementation.

As zarr-python runs one store test suite per store, each extractor (Hugging
Face model, VGGish, any torch network, librosa LLDs, openSMILE eGeMAPS) runs
the same tests: values on the clock with the right bins and coordinates, a
name on every layer, determinism, sensitivity to the sound, and the same
one-line errors naming the stimulus for bad input.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from xaffect.errors import InputError

SR = 16000


def _sound(seconds: float, sr: int = SR, *, f0: float = 220.0, seed: int = 0) -> np.ndarray:
    """A gliding harmonic tone in a little noise: voice-like, so every extractor has something to read."""
    rs = np.random.RandomState(seed)
    t = np.arange(int(seconds * sr)) / sr
    f = f0 * (1 + 0.2 * np.sin(2 * np.pi * 0.5 * t))
    phase = 2 * np.pi * np.cumsum(f) / sr
    x = sum(0.3 / k * np.sin(k * phase) for k in (1, 2, 3)) + 0.02 * rs.randn(t.size)
    return x.astype(np.float32)


class ExtractorTests:
    """The contract; a subclass defines the ``extract`` fixture:
    ``extract(audio, sr, *, rate=1.0, resample=True, stimulus=None) -> DataArray``."""

    deep = True

    def test_values_on_the_clock(self, extract):
        out = extract(_sound(3.5), SR, rate=1.0, stimulus="clip")
        assert isinstance(out, xr.DataArray) and out.dtype == np.float32
        assert out.dims == (("time", "layer", "unit") if self.deep else ("time", "descriptor"))
        assert out.sizes["time"] == 3  # floor(3.5 s * 1 Hz): bin i covers [i, i + 1) s
        np.testing.assert_allclose(out["onset"].values, [0.5, 1.5, 2.5])
        assert (out["stimulus"].values == "clip").all()
        fast = extract(_sound(3.5), SR, rate=2.0)
        assert fast.sizes["time"] == 7 and "stimulus" not in fast.coords

    def test_every_layer_is_named(self, extract):
        out = extract(_sound(2.2), SR)
        if not self.deep:
            names = [str(v) for v in out["descriptor"].values]
        else:
            names = [str(v) for v in out["layer_name"].values]
            assert out["layer"].size == len(names) >= 2
            assert np.all(np.diff(out["layer"].values) > 0)
        assert len(set(names)) == len(names) and all(names)

    def test_finite_and_deterministic(self, extract):
        x = _sound(2.5)
        a = extract(x, SR)
        b = extract(x, SR)
        np.testing.assert_array_equal(a.values, b.values)
        vals = a.values
        if "n_units" in a.coords:  # NaN only in the padding beyond a layer's width
            for j, w in enumerate(a["n_units"].values):
                assert np.isfinite(vals[:, j, :w]).all() and np.isnan(vals[:, j, w:]).all()
        else:
            assert np.isfinite(vals).all()

    def test_reads_the_sound(self, extract):
        a = extract(_sound(2.5, f0=150.0), SR).values
        b = extract(_sound(2.5, f0=400.0, seed=1), SR).values
        ok = np.isfinite(a) & np.isfinite(b)
        assert np.abs(a[ok] - b[ok]).max() > 1e-3

    def test_resampled_or_refused(self, extract):
        x = _sound(2.5, sr=22050)
        assert extract(x, 22050).sizes["time"] == 2
        with pytest.raises(InputError, match="stimulus 'odd'.*22050"):
            extract(x, 22050, resample=False, stimulus="odd")

    def test_too_short_or_not_mono_names_the_stimulus(self, extract):
        with pytest.raises(InputError, match="stimulus 'blip'.*shorter than one"):
            extract(_sound(0.6), SR, stimulus="blip")
        with pytest.raises(InputError, match="stimulus 'two'.*mono"):
            extract(np.stack([_sound(2.0)] * 2), SR, stimulus="two")


class TestHuggingFace(ExtractorTests):
    @pytest.fixture(scope="class")
    def extract(self, tmp_path_factory):
        from xaffect.features import layer_activations, load_model, make_random_model

        sm = load_model(make_random_model("wav2vec2", tmp_path_factory.mktemp("w2v") / "m", seed=1))

        def run(audio, sr, *, rate=1.0, resample=True, stimulus=None):
            return layer_activations(audio, sr, sm, rate=rate, resample=resample, stimulus=stimulus)

        return run

    def test_layer_zero_is_the_transformer_input(self, extract):
        out = extract(_sound(2.0), SR)
        assert out["layer"].values[0] == 0 and out["layer_name"].values[0] == "input"
        assert list(out["layer_name"].values[1:]) == [f"block {i}" for i in range(1, out.sizes["layer"])]


class TestVGGish(ExtractorTests):
    @pytest.fixture(scope="class")
    def extract(self):
        from xaffect.features import load_vggish, vggish_activations

        net = load_vggish(random_init=True, seed=0)

        def run(audio, sr, *, rate=1.0, resample=True, stimulus=None):
            return vggish_activations(audio, sr, net, rate=rate, layers=[1, 2, 12, 18, 23], hop_seconds=0.5,
                                      resample=resample, stimulus=stimulus)

        return run


class TestTorchCrepe(ExtractorTests):
    @pytest.fixture(scope="class")
    def extract(self):
        from xaffect.features import crepe_extractor_spec, load_torch_network, torch_activations

        spec = crepe_extractor_spec(hop_seconds=0.05)
        net = load_torch_network(**{k: v for k, v in spec.items() if k not in ("name", "kind")})

        def run(audio, sr, *, rate=1.0, resample=True, stimulus=None):
            return torch_activations(audio, sr, net, rate=rate, resample=resample, stimulus=stimulus)

        return run


class TestLLD(ExtractorTests):
    deep = False

    @pytest.fixture(scope="class")
    def extract(self):
        from xaffect.features import lld

        return lld


class TestEGeMAPS(ExtractorTests):
    deep = False

    @pytest.fixture(scope="class")
    def extract(self):
        import opensmile  # noqa: F401  (declared test dependency)
        from xaffect.features import egemaps

        return egemaps
