"""A workspace shared by several processes: no lost entries, one winner per name, no half stores.

Real processes write into one real workspace (a local folder, and a real S3
endpoint: moto's server on loopback); a file barrier makes them start together.
"""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import moto_s3
import zarr

import xaffect
from xaffect.errors import StoreError

_PRELUDE = """
import json, os, sys, time
import dask.array as da, numpy as np, xarray as xr, xaffect
from xaffect.errors import StoreError
url, who, barrier = sys.argv[1], int(sys.argv[2]), sys.argv[3]
so = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
ws = xaffect.Workspace(url, storage_options=so)
open(os.path.join(barrier, f"ready-{who}"), "w").close()
while not os.path.exists(os.path.join(barrier, "go")):
    time.sleep(0.002)
"""

_MANY_STORES = _PRELUDE + """
for t in range(int(os.environ["N_TRIALS"])):
    ds = xr.Dataset({"x": ("i", np.full(40, who * 100 + t, "float64"))})
    ws.write(f"w{who}.t{t}", ds, stage="s", params={"who": who, "t": t}, progress=False)
print("ok")
"""

_SAME_NAME = _PRELUDE + """
def slow(block):
    time.sleep(float(os.environ.get("SLOW", "1.0")))
    return block
data = da.full(40, float(who), chunks=40).map_blocks(slow)
try:
    ws.write("shared", xr.Dataset({"x": ("i", data)}), stage="s", params={"who": who}, progress=False)
    print("WON")
except StoreError as exc:
    print("LOST", exc)
"""


def _run_together(tmp_path, script, url, n, env_extra=None, so=None, timeout=120):
    barrier = tmp_path / f"barrier-{time.monotonic_ns()}"
    barrier.mkdir()
    path = tmp_path / "writer.py"
    path.write_text(script)
    env = dict(os.environ, **(env_extra or {}))
    args = [json.dumps(so)] if so else []
    procs = [subprocess.Popen([sys.executable, str(path), url, str(w), str(barrier), *args], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for w in range(n)]
    deadline = time.time() + timeout
    while len(list(barrier.glob("ready-*"))) < n:
        assert time.time() < deadline, "writers did not start"
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs if p.poll() is not None]
        time.sleep(0.02)
    (barrier / "go").touch()
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=timeout)
        assert p.returncode == 0, err[-2000:]
        outs.append(out.strip())
    return outs


@pytest.mark.timeout(240)
def test_concurrent_writers_of_different_stores_lose_nothing(workspace, tmp_path):
    n_writers, n_trials = 4, 3
    outs = _run_together(tmp_path, _MANY_STORES, workspace.url, n_writers, {"N_TRIALS": str(n_trials)})
    assert outs == ["ok"] * n_writers
    ws = xaffect.Workspace(workspace.url)
    expected = {f"w{w}.t{t}" for w in range(n_writers) for t in range(n_trials)}
    assert set(ws.names()) == expected  # 0 lost of 12
    for name in expected:
        w, t = int(name[1]), int(name.split(".t")[1])
        assert float(ws.open(name).x.max()) == w * 100 + t
    assert not [f for f in os.listdir(workspace.url) if ".tmp" in f]


@pytest.mark.timeout(240)
def test_same_name_writers_exactly_one_complete_winner(workspace, tmp_path):
    outs = _run_together(tmp_path, _SAME_NAME, workspace.url, 3)
    won = [i for i, o in enumerate(outs) if o == "WON"]
    lost = [o for o in outs if o.startswith("LOST")]
    assert len(won) == 1, outs
    assert len(lost) == 2 and all("replaced by another writer" in o and "discarded" in o for o in lost), outs
    ws = xaffect.Workspace(workspace.url)
    np.testing.assert_array_equal(ws.open("shared").x.values, np.full(40, float(won[0])))
    info = ws.metadata("shared")["xaffect"]
    assert zarr.open_group(os.path.join(workspace.url, info["path"]), mode="r").attrs["xaffect_status"] == "complete"
    # the losers removed their versions; only the winner's is left
    assert os.listdir(os.path.join(workspace.url, "stores", "shared")) == [info["path"].rsplit("/", 1)[1]]


def test_same_name_same_content_keeps_the_first_and_warns(workspace):
    import threading
    import warnings

    import dask.array as da
    import xarray as xr

    gate = threading.Barrier(2)

    def slow(block):
        time.sleep(0.3)
        return block

    def write():
        gate.wait()
        ds = xr.Dataset({"x": ("i", da.ones(10, chunks=10).map_blocks(slow))})
        workspace.write("same", ds, stage="s", params={}, progress=False)

    with warnings.catch_warnings(record=True) as caught:  # one global record for both threads
        warnings.simplefilter("always")
        threads = [threading.Thread(target=write) for _ in range(2)]
        [t.start() for t in threads]
        [t.join() for t in threads]
    assert len([w for w in caught if "kept theirs" in str(w.message)]) == 1
    assert len(os.listdir(os.path.join(workspace.url, "stores", "same"))) == 1
    assert float(workspace.open("same").x.sum()) == 10


_REWRITER = """
import sys, time, numpy as np, dask.array as da, xarray as xr, xaffect
ws = xaffect.Workspace(sys.argv[1])
for k in range(1, int(sys.argv[2]) + 1):
    ws.write("hot", xr.Dataset({"x": ("i", da.full(4000, float(k), chunks=20))}), stage="s", params={"k": k},
             progress=False)
    ws.gc(grace_s=0)  # as aggressive as it gets: the replaced version goes at once
print("done")
"""


@pytest.mark.timeout(240)
def test_readers_during_rewrites_never_see_fill_values(workspace, tmp_path):
    import dask.array as da
    import xarray as xr

    workspace.write("hot", xr.Dataset({"x": ("i", da.full(4000, 0.0, chunks=20))}), stage="s",
                    params={"k": 0}, progress=False)
    script = tmp_path / "rewriter.py"
    script.write_text(_REWRITER)
    proc = subprocess.Popen([sys.executable, str(script), workspace.url, "4"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    good = gone = nan = 0
    while proc.poll() is None:
        try:
            values = workspace.open("hot").x.values
        except StoreError as exc:
            assert "deleted" in str(exc) or "missing" in str(exc), exc
            gone += 1
            continue
        if np.isnan(values).any() or len(set(values.tolist())) != 1:
            nan += 1
        else:
            good += 1
    assert proc.returncode == 0, proc.stderr.read()[-2000:]
    assert nan == 0, (good, gone, nan)
    assert good >= 1
    # a reader that kept a lazy handle past gc gets an error, not NaN
    held = workspace.open("hot")
    workspace.write("hot", xr.Dataset({"x": ("i", da.full(4000, 9.0, chunks=20))}), stage="s",
                    params={"k": 9}, progress=False)
    np.testing.assert_array_equal(held.x.values, np.full(4000, 4.0))  # within the grace period: still readable
    workspace.gc(grace_s=0)
    with pytest.raises(StoreError, match="deleted"):
        held.x.values


# ------------------------------------------------------------------------- S3
import moto.server  # noqa: F401  (declared test dependency)
import s3fs  # noqa: F401  (declared test dependency)


@pytest.fixture(scope="module")
def s3_endpoint():
    with moto_s3("lab") as endpoint:
        yield endpoint


@pytest.mark.timeout(240)
def test_s3_concurrent_writers_lose_nothing_and_same_name_has_one_winner(s3_endpoint, tmp_path):
    so = {"endpoint_url": s3_endpoint, "key": "testing", "secret": "testing"}
    url = "s3://lab/shared-ws"
    xaffect.Workspace.init(url, storage_options=so)
    outs = _run_together(tmp_path, _MANY_STORES, url, 3, {"N_TRIALS": "2"}, so=so)
    assert outs == ["ok"] * 3
    ws = xaffect.Workspace(url, storage_options=so)
    assert set(ws.names()) == {f"w{w}.t{t}" for w in range(3) for t in range(2)}
    outs = _run_together(tmp_path, _SAME_NAME, url, 2, {"SLOW": "1.0"}, so=so)
    assert sorted(o.split()[0] for o in outs) == ["LOST", "WON"], outs
    winner = [i for i, o in enumerate(outs) if o == "WON"][0]
    np.testing.assert_array_equal(ws.open("shared").x.values, np.full(40, float(winner)))
    text = ws.fs.cat_file(ws._path("catalog.yaml")).decode()
    assert "testing" not in text
