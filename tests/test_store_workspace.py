"""Workspace: atomic writes, provenance, identity-skip, catalog readable by plain intake."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import dask.array as da
import numpy as np
import pytest
import xarray as xr

import xaffect
from xaffect.errors import InputError, StoreError


def _cube(seed=0):
    rng = np.random.default_rng(seed)
    data = da.from_array(rng.standard_normal((3, 20, 5, 8)).astype("float32"), chunks=(3, 20, 1, 8))
    return xr.Dataset(
        {"activation": (("element", "time", "layer", "unit"), data)},
        coords={"element": ["original", "voice", "soundtrack"], "layer": np.arange(5),
                "onset": ("time", np.r_[np.arange(10), np.arange(10)] + 0.5),
                "stimulus": ("time", np.array(["a"] * 10 + ["b"] * 10))},
        attrs={"clock_rate": 1.0})


def test_write_then_plain_intake_in_fresh_interpreter(workspace):
    ds = _cube()
    workspace.write("features.hubert", ds, stage="features", params={"model": "tiny"})
    expected = ds.compute()
    code = textwrap.dedent(f"""
        import sys, intake, xarray as xr, numpy as np
        cat = intake.from_yaml_file({str(workspace.url + '/catalog.yaml')!r})
        ds = cat["features.hubert"].read()
        assert "xaffect" not in sys.modules, "reading must not need xaffect"
        sub = ds.sel(layer=slice(1, 3), element="voice")
        assert sub.activation.shape == (20, 3, 8), sub.activation.shape
        ds.load().to_netcdf(sys.argv[1])
    """)
    out = workspace.url + "/roundtrip.nc"
    subprocess.run([sys.executable, "-c", code, out], check=True)
    back = xr.open_dataset(out).load()
    back.attrs = {}
    expected.attrs = {}
    xr.testing.assert_identical(back, expected)


def test_provenance_and_metadata(workspace):
    src = os.path.join(workspace.url, "input.bin")
    with open(src, "wb") as f:
        f.write(b"abc")
    workspace.write("features.x", _cube(), stage="features", params={"model": "m", "layers": [1, 2]},
                    inputs=[src], model={"name": "m", "revision": "abc123"})
    prov = workspace.provenance("features.x")
    assert prov["stage"] == "features"
    assert prov["params"] == {"model": "m", "layers": [1, 2]}
    assert prov["inputs"][0]["hash"].startswith("sha256:ba7816bf")  # sha256("abc")
    assert prov["model"]["revision"] == "abc123"
    assert "numpy" in prov["versions"] and prov["created"]
    meta = workspace.metadata("features.x")
    assert meta["stage"] == "features"
    assert meta["element"] == ["original", "voice", "soundtrack"]
    assert meta["dims"]["layer"] == 5
    ds = workspace.open("features.x")
    assert isinstance(ds.activation.data, da.Array)
    assert ds.activation.data.chunks[2] == (1,) * 5  # one layer per chunk survives


def test_identity_changes_with_input_content(workspace, tmp_path):
    src = tmp_path / "a.wav"
    src.write_bytes(b"one")
    kw = dict(stage="stems", params={"backend": "nnfilter"}, inputs=[str(src)])
    workspace.write("stems", _cube(), **kw)
    assert workspace.is_current("stems", **kw)
    time.sleep(0.01)
    src.write_bytes(b"two!")
    assert not workspace.is_current("stems", **kw)
    assert not workspace.is_current("stems", stage="stems", params={"backend": "spleeter"}, inputs=[str(src)])


def test_store_inputs_chain_identity(workspace):
    workspace.write("a", _cube(0), stage="s", params={"v": 1})
    workspace.write("b", _cube(1), stage="t", params={}, inputs=["a"])
    assert workspace.is_current("b", stage="t", params={}, inputs=["a"])
    workspace.write("a", _cube(0), stage="s", params={"v": 2})
    assert not workspace.is_current("b", stage="t", params={}, inputs=["a"])


def test_rerun_is_skipped_and_changed_param_recomputes(workspace):
    calls = []

    def slow_block(block):
        time.sleep(0.15)
        return block + 1

    def build(scale):
        calls.append(scale)
        arr = da.ones((8, 50), chunks=(1, 50)).map_blocks(slow_block) * scale
        return xr.Dataset({"x": (("time", "unit"), arr)})

    t0 = time.perf_counter()
    workspace.run_stage("slow", lambda: build(1.0), stage="slow", params={"scale": 1.0})
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    ds = workspace.run_stage("slow", lambda: build(1.0), stage="slow", params={"scale": 1.0})
    second = time.perf_counter() - t0
    assert calls == [1.0]
    assert second < 0.05 * first, (first, second)
    assert float(ds.x.sum()) == 8 * 50 * 2
    ds = workspace.run_stage("slow", lambda: build(3.0), stage="slow", params={"scale": 3.0})
    assert calls == [1.0, 3.0]
    assert float(ds.x.sum()) == 8 * 50 * 6
    versions = os.listdir(os.path.join(workspace.url, "stores", "slow"))
    assert len(versions) == 2, versions  # the replaced version stays readable for the grace period
    assert len(workspace.gc(grace_s=0)) == 1
    versions = os.listdir(os.path.join(workspace.url, "stores", "slow"))
    assert len(versions) == 1, versions  # gc reclaimed the stale version


_KILL_SCRIPT = """
import sys, time
import dask.array as da, xarray as xr, xaffect
ws = xaffect.Workspace(sys.argv[1])
def slow(b):
    time.sleep(0.1)
    return b * float(sys.argv[2])
arr = da.ones((60, 100), chunks=(1, 100)).map_blocks(slow)
ws.write("slow", xr.Dataset({"x": (("time", "unit"), arr)}), stage="slow", params={"v": float(sys.argv[2])},
         progress=False)
print("done", flush=True)
"""


def _chunks_written(root):
    n = 0
    for dirpath, _, files in os.walk(os.path.join(root, "stores", "slow")):
        n += sum(1 for f in files if f.isdigit() or dirpath.endswith("/c") or "/c/" in dirpath)
    return n


@pytest.mark.timeout(120)
def test_sigkill_midway_lists_nothing_and_rerun_completes(workspace, tmp_path):
    script = tmp_path / "kill.py"
    script.write_text(_KILL_SCRIPT)
    # a complete first version that the killed rewrite must not damage
    subprocess.run([sys.executable, str(script), workspace.url, "1"], check=True, capture_output=True)
    before = workspace.open("slow").x.values.copy()
    proc = subprocess.Popen([sys.executable, str(script), workspace.url, "2"], stdout=subprocess.PIPE)
    deadline = time.time() + 60
    while _chunks_written(workspace.url) < 60 + 10 and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    # the catalog still lists only the complete old version, intact
    ws = xaffect.Workspace(workspace.url)
    assert ws.names() == ["slow"]
    assert ws.provenance("slow")["params"] == {"v": 1.0}
    np.testing.assert_array_equal(ws.open("slow").x.values, before)
    # debris of the killed write is not marked complete
    import zarr

    versions = os.listdir(os.path.join(workspace.url, "stores", "slow"))
    assert len(versions) == 2
    current = ws.metadata("slow")["xaffect"]["path"].split("/")[-1]
    partial = [v for v in versions if v != current][0]
    g = zarr.open_group(os.path.join(workspace.url, "stores", "slow", partial), mode="r")
    assert g.attrs["xaffect_status"] == "writing"
    # rerun completes and removes the killed writer's debris; the replaced version waits for gc
    subprocess.run([sys.executable, str(script), workspace.url, "2"], check=True, capture_output=True)
    ws = xaffect.Workspace(workspace.url)
    assert ws.provenance("slow")["params"] == {"v": 2.0}
    assert float(ws.open("slow").x.sum()) == 2 * 60 * 100
    assert partial not in os.listdir(os.path.join(workspace.url, "stores", "slow"))
    assert len(os.listdir(os.path.join(workspace.url, "stores", "slow"))) == 2
    ws.gc(grace_s=0)
    assert len(os.listdir(os.path.join(workspace.url, "stores", "slow"))) == 1
    assert not [f for f in os.listdir(workspace.url) if f.endswith(".tmp")]


def test_datatree_groups_are_catalog_entries(workspace):
    tree = xr.DataTree.from_dict({
        "/": xr.Dataset({"energy_ratio_stimulus": ("stimulus", [0.5, 2.0])}, coords={"stimulus": ["a", "b"]}),
        "a": xr.Dataset({"audio": (("element", "sample"), np.ones((3, 100), "float32"))}, attrs={"sr": 100}),
        "b": xr.Dataset({"audio": (("element", "sample"), np.zeros((3, 50), "float32"))}, attrs={"sr": 100}),
    })
    workspace.write("stems", tree, stage="stems", params={})
    cat = xaffect.open_catalog(workspace.url)
    a = cat["stems/a"].read()
    assert a.audio.shape == (3, 100) and a.attrs["sr"] == 100
    t = workspace.open("stems")
    assert isinstance(t, xr.DataTree)
    assert set(t.children) == {"a", "b"}
    assert workspace.open("stems", group="b").audio.shape == (3, 50)
    workspace.remove("stems")
    assert workspace.names() == []
    workspace.gc(grace_s=0)
    assert not os.listdir(os.path.join(workspace.url, "stores", "stems"))


def test_memory_filesystem_round_trip():
    ws = xaffect.Workspace.init("memory://xaffect-test-ws")
    ds = _cube(3)
    ws.write("features.mem", ds, stage="features", params={})
    back = ws.open("features.mem").load()
    np.testing.assert_array_equal(back.activation.values, ds.activation.values)
    cat = xaffect.open_catalog("memory://xaffect-test-ws")
    np.testing.assert_array_equal(cat["features.mem"].read().activation.values, ds.activation.values)


def test_bad_names_and_missing(workspace, tmp_path):
    with pytest.raises(StoreError, match="no store named 'nope'"):
        workspace.open("nope")
    with pytest.raises(StoreError, match="letters"):
        workspace.write("bad name", _cube(), stage="s", params={})
    with pytest.raises(InputError, match="does not exist"):
        workspace.write("x", _cube(), stage="s", params={}, inputs=[str(tmp_path / "missing.wav")])
    assert workspace.names() == []
    with pytest.raises(StoreError, match="not an xaffect workspace"):
        xaffect.Workspace(tmp_path / "elsewhere")


@pytest.mark.timeout(120)
def test_write_through_a_distributed_scheduler_address(workspace):
    import distributed
    from xaffect.store import current_scheduler, use_scheduler

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        with use_scheduler(cluster.scheduler_address) as client:
            assert current_scheduler() is client
            ds = _cube(5)
            workspace.write("features.dist", ds, stage="features", params={}, progress=False)
            assert client.run(lambda: 1)  # the workers really were there
    assert current_scheduler() == "threads"
    back = workspace.open("features.dist").load()
    np.testing.assert_array_equal(back.activation.values, ds.activation.values)


def test_unknown_scheduler_is_a_config_error():
    from xaffect.errors import ConfigError
    from xaffect.store import use_scheduler

    with pytest.raises(ConfigError, match="scheduler"):
        with use_scheduler("gpu-farm"):
            pass
