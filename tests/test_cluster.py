"""The encoding grid on a real dask.distributed cluster, workspace on S3, one worker lost mid-grid.

The scheduler and two workers are separate processes started by the ``dask``
command, as a cluster starts them; the workspace lives on a real S3 endpoint
(moto's server on loopback) and credentials reach every process from the
environment only. While the cluster works, a second "user" (another process)
writes stores into the same workspace.
"""

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from conftest import DaskCluster, moto_s3
import xarray as xr
import yaml

from test_encoding_stage import S, _write_stores
from xaffect.store import use_scheduler
from xaffect.study import load_study

import distributed
import moto.server  # noqa: F401  (declared test dependency)
import s3fs  # noqa: F401  (declared test dependency)

_CREDS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}

_OTHER_USER = """
import sys, numpy as np, xarray as xr, xaffect
ws = xaffect.Workspace(sys.argv[1], storage_options={"endpoint_url": sys.argv[2]})
for k in range(int(sys.argv[3])):
    ws.write(f"annotations.u{k}", xr.Dataset({"x": ("i", np.full(20, float(k)))}), stage="annotate",
             params={"k": k}, progress=False)
print("ok")
"""


@pytest.fixture
def s3_endpoint(monkeypatch):
    for k, v in _CREDS.items():
        monkeypatch.setenv(k, v)
    with moto_s3("lab") as endpoint:
        yield endpoint


@pytest.fixture
def cluster(tmp_path):
    """``dask scheduler`` and two ``dask worker`` processes (each its own process group)."""
    c = DaskCluster(tmp_path, 2)
    try:
        yield c.address, c.workers
    finally:
        c.close()


def _study(tmp_path, endpoint):
    for i in range(S):
        (tmp_path / f"s{i}.wav").write_bytes(b"")
    cfg = {"name": "t", "workspace": "s3://lab/study", "storage_options": {"endpoint_url": endpoint},
           "stimuli": [{"name": f"s{i}", "path": f"s{i}.wav"} for i in range(S)], "stages": ["encode"],
           "encode": {"n_perm": 20, "targets": ["ratings", "regions"], "alphas": [0.1, 1.0, 10.0, 100.0],
                      "feature_sets": ["features.deep", "features.mfcc"]}}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(cfg))
    return load_study(tmp_path / "study.yaml")


@pytest.mark.timeout(180)
def test_grid_on_a_cluster_survives_a_lost_worker_and_a_second_user(tmp_path, s3_endpoint, cluster):
    from xaffect.encoding.stage import run_encode

    address, workers = cluster
    study = _study(tmp_path, s3_endpoint)
    ws = study.workspace
    _write_stores(ws, np.random.default_rng(5))
    with use_scheduler("synchronous"):
        run_encode(study, progress=False)
    single = ws.open("scores").load()

    script = tmp_path / "other_user.py"
    script.write_text(_OTHER_USER)
    with distributed.Client(address, timeout="60s") as client:
        client.wait_for_workers(2, timeout=60)
        killed = {}

        def kill_one_mid_grid():
            deadline = time.time() + 60
            while time.time() < deadline:
                done = client.run_on_scheduler(
                    lambda dask_scheduler: sum(ts.state == "memory" for ts in dask_scheduler.tasks.values()))
                if done >= 5:
                    os.killpg(workers[0].pid, signal.SIGKILL)
                    killed["at_tasks"] = done
                    return
                time.sleep(0.05)

        other = subprocess.Popen([sys.executable, str(script), ws.url, s3_endpoint, "4"],
                                 env=dict(os.environ, **_CREDS), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True)
        killer = threading.Thread(target=kill_one_mid_grid)
        killer.start()
        with use_scheduler(client):
            run_encode(study, progress=False, force=True)
        killer.join()
        assert killed, "the grid finished before a worker could be killed"
        assert len(client.scheduler_info()["workers"]) == 1  # the lost worker stayed lost
        out, err = other.communicate(timeout=120)
        assert other.returncode == 0, err[-2000:]
    on_cluster = ws.open("scores").load()
    for var in ("r", "alpha", "p", "null"):
        xr.testing.assert_allclose(on_cluster[var], single[var])
    names = set(ws.names())
    assert {"scores", "features.deep", "targets", "regions"} <= names
    assert {f"annotations.u{k}" for k in range(4)} <= names  # the second user lost nothing either
