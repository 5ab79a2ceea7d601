"""The features and regions stages on a real dask.distributed cluster, workspace on S3, a worker lost mid-stage.

A ``dask scheduler`` and two ``dask worker`` processes (started as a cluster
starts them, :class:`conftest.DaskCluster`) run the per-block work of the
``features`` stage (a small wav2vec2 built from its config and saved locally,
and librosa's LLDs) and the per-subject work of the ``regions`` stage (EEG
through MNE's real forward and inverse on the synthetic FreeSurfer subject).
The workspace is on S3 (moto's server on loopback). One worker is SIGKILLed
mid-stage, once per stage (a replacement joins between the stages, as a
cluster's autoscaler would start one); the stores equal a single-process run.
"""

import numpy as np
import pytest
import xarray as xr
import yaml

import distributed
import mne
import moto.server  # noqa: F401  (declared test dependency)
import s3fs  # noqa: F401  (declared test dependency)
from conftest import S3_CREDS, moto_s3

from xaffect.datasets import synthetic_subject
from xaffect.features import make_random_model
from xaffect.features.stage import run_features
from xaffect.neural import forward_model, region_labels, set_standard_montage, simulate_raw
from xaffect.neural.stage import run as run_regions
from xaffect.store import use_scheduler
from xaffect.study import load_study

SR = 16000
SECONDS = 3
CHANNELS = ["Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "FC5", "FC1", "FC2", "FC6", "T7", "C3", "Cz", "C4", "T8",
            "CP5", "CP1", "CP2", "CP6", "P7", "P3", "Pz", "P4", "P8", "O1", "Oz", "O2"]
N_SUBJECTS = 3


def _eeg(root):
    """Three subjects' recordings, each with both clips annotated, and the synthetic anatomy."""
    sd = root / "anatomy"
    synthetic_subject(sd, grade=4)
    raw0 = mne.io.RawArray(np.zeros((len(CHANNELS), 1)), mne.create_info(CHANNELS, 100.0, "eeg"), verbose="error")
    set_standard_montage(raw0)
    fwd = forward_model(raw0.info, subjects_dir=sd, subject="xaffect-synth", spacing="oct4")
    labels = region_labels(subjects_dir=sd, subject="xaffect-synth")
    rng = np.random.default_rng(0)
    shared = rng.standard_normal(1400)
    recordings = []
    for s in range(N_SUBJECTS):
        x = np.c_[shared + 0.5 * rng.standard_normal(1400), rng.standard_normal((1400, 2))] * 1e-8
        sig = xr.DataArray(x, dims=("time", "region"),
                           coords={"region": ["superiortemporal-lh", "precuneus-rh", "frontalpole-lh"]})
        raw = simulate_raw(sig, raw0.info, fwd, labels, noise=0.2, seed=s)
        raw.set_annotations(mne.Annotations([1.0, 8.0], [SECONDS, SECONDS], ["clip01", "clip02"]))
        path = root / f"sub-{s + 1:02d}_raw.fif"
        raw.save(path, verbose="error")
        recordings.append({"subject": f"sub-{s + 1:02d}", "path": str(path)})
    return sd, recordings


def _stems(ws):
    rs = np.random.RandomState(0)
    groups = {"/": xr.Dataset()}
    t = np.arange(SR * SECONDS) / SR
    for k, name in enumerate(("clip01", "clip02")):
        voice = 0.3 * np.sin(2 * np.pi * (150 + 40 * k) * t) * (1 + np.sin(2 * np.pi * 0.5 * t))
        sound = 0.1 * rs.randn(t.size)
        groups[f"/{name}"] = xr.Dataset({"audio": (("element", "sample"), np.stack([voice + sound, voice])
                                                   .astype(np.float32))},
                                        coords={"element": ["original", "voice"]}, attrs={"sr": SR})
    ws.write("stems", xr.DataTree.from_dict(groups), stage="stems", params={"test": 1}, progress=False)


@pytest.fixture
def study(tmp_path, monkeypatch):
    for k, v in S3_CREDS.items():
        monkeypatch.setenv(k, v)
    sd, recordings = _eeg(tmp_path)
    make_random_model("wav2vec2", tmp_path / "models" / "w2v", seed=2)
    for name in ("clip01", "clip02"):
        (tmp_path / f"{name}.wav").write_bytes(b"")
    with moto_s3("lab") as endpoint:
        cfg = {"name": "t", "workspace": "s3://lab/study", "storage_options": {"endpoint_url": endpoint},
               "stimuli": [{"name": n, "path": f"{n}.wav"} for n in ("clip01", "clip02")],
               "stages": ["features", "regions"],
               "features": {"extractors": [{"name": "w2v", "kind": "hf", "model": "models/w2v", "pca": None,
                                            "time_chunk": 2},
                                           {"kind": "lld"}]},
               "regions": {"kind": "eeg", "recordings": recordings, "subjects_dir": str(sd),
                           "subject": "xaffect-synth", "spacing": "oct4", "method": "MNE",
                           "preprocess": {"l_freq": None, "h_freq": 40.0}}}
        (tmp_path / "study.yaml").write_text(yaml.safe_dump(cfg))
        study = load_study(tmp_path / "study.yaml")
        _stems(study.workspace)
        yield study


_STORES = ("features.w2v", "features.lld", "regions", "crosstalk")


def _snapshot(ws) -> dict:
    out = {}
    for name in _STORES:
        data = ws.open(name)
        if isinstance(data, xr.DataTree):
            for path, node in data.subtree_with_keys:
                if node.has_data:
                    out[f"{name}/{path}"] = node.to_dataset().load()
        else:
            out[name] = data.load()
    return out


def _same(a: dict, b: dict) -> None:
    assert set(a) == set(b)
    for key in a:
        for var in a[key].data_vars:
            # float32 stores; the workers run the same code on the same inputs, in another process
            xr.testing.assert_allclose(a[key][var], b[key][var], rtol=1e-5, atol=1e-6)


@pytest.mark.timeout(240)
def test_features_and_regions_on_a_cluster_survive_a_lost_worker(study, dask_cluster):
    ws = study.workspace
    with use_scheduler("synchronous"):
        run_features(study, progress=False)
        run_regions(study, progress=False)
    single = _snapshot(ws)
    paths = {n: ws.metadata(n)["xaffect"]["path"] for n in _STORES}

    with distributed.Client(dask_cluster.address, timeout="60s") as client:
        client.wait_for_workers(2, timeout=60)
        with use_scheduler(client):
            # features: 2 stimuli x 2 elements x 2 blocks for w2v, the LLDs, then the writes
            watch = dask_cluster.kill_when(client, dask_cluster.workers[0], tasks_done=3)
            run_features(study, progress=False, force=True)
            watch["stop"] = True
            watch["thread"].join()
            assert watch.get("at_tasks"), "features finished before a worker could be killed"
            assert len(client.scheduler_info()["workers"]) == 1

            dask_cluster.spawn_worker()  # the replacement a cluster's autoscaler would start; killed next
            client.wait_for_workers(2, timeout=60)
            # regions: one task per subject (read, filter, forward, inverse, region signals)
            watch = dask_cluster.kill_when(client, dask_cluster.workers[2], tasks_done=1)
            run_regions(study, progress=False, force=True)
            watch["stop"] = True
            watch["thread"].join()
            assert watch.get("at_tasks"), "regions finished before a worker could be killed"
            assert len(client.scheduler_info()["workers"]) == 1

            # the work ran on the workers: the survivor loaded the network itself and source-localised
            # (neither is preloaded: --preload imports torch/transformers and mne.minimum_norm only)
            def what_ran_here() -> dict:  # defined here, so it is pickled by value to the worker
                import sys

                from xaffect.features import resolve

                return {"networks_loaded": len(resolve._LOADED),
                        "region_signals": "xaffect.neural.source" in sys.modules}

            on_worker = client.run(what_ran_here)
    assert list(on_worker.values()) == [{"networks_loaded": 1, "region_signals": True}], on_worker
    assert all(ws.metadata(n)["xaffect"]["path"] != paths[n] for n in _STORES)  # new versions were written
    _same(_snapshot(ws), single)
    g = ws.open("regions", group="clip01")
    assert g.sizes["subject"] == N_SUBJECTS and g.sizes["region"] == 68
