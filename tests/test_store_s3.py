"""A workspace on S3: a real S3 endpoint on loopback (moto's server mode), no mocks of zarr/fsspec/intake."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import moto_s3
import xarray as xr

import xaffect

import moto.server  # noqa: F401  (declared test dependency)
import s3fs  # noqa: F401  (declared test dependency)


@pytest.fixture(scope="module")
def s3_endpoint():
    with moto_s3("lab-share") as endpoint:
        yield endpoint


def test_s3_round_trip_and_shared_catalog(s3_endpoint, monkeypatch):
    so = {"endpoint_url": s3_endpoint, "key": "testing", "secret": "testing"}
    ws = xaffect.Workspace.init("s3://lab-share/study1", storage_options=so)
    rng = np.random.default_rng(0)
    ds = xr.Dataset({"rating": (("time", "scale"), rng.standard_normal((30, 2)).astype("float32"))},
                    coords={"scale": ["arousal", "valence"], "onset": ("time", np.arange(30) + 0.5),
                            "stimulus": ("time", np.array(["clip"] * 30))})
    ws.write("targets", ds, stage="targets", params={"x": 1})
    assert ws.is_current("targets", stage="targets", params={"x": 1})
    back = xaffect.Workspace("s3://lab-share/study1", storage_options=so).open("targets").load()
    np.testing.assert_array_equal(back.rating.values, ds.rating.values)
    text = ws.fs.cat_file(ws._path("catalog.yaml")).decode()
    assert "testing" not in text, "credentials must never be written to a shared catalog"
    # a colleague opens it with plain intake, credentials from the environment
    env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_DEFAULT_REGION="us-east-1")
    code = textwrap.dedent("""
        import sys, intake
        cat = intake.from_yaml_file("s3://lab-share/study1/catalog.yaml",
                                    storage_options={"endpoint_url": sys.argv[1]})
        ds = cat["targets"].read()
        assert "xaffect" not in sys.modules
        print(float(ds.rating.sel(scale="valence").sum()))
    """)
    out = subprocess.run([sys.executable, "-c", code, s3_endpoint], env=env, capture_output=True, text=True,
                         check=True)
    assert abs(float(out.stdout.strip()) - float(ds.rating.sel(scale="valence").sum())) < 1e-3


def test_s3_same_second_same_size_rewrites_change_identity(s3_endpoint):
    from xaffect.store.identity import content_key

    so = {"endpoint_url": s3_endpoint, "key": "testing", "secret": "testing"}
    ws = xaffect.Workspace.init("s3://lab-share/ident", storage_options=so)
    url = "s3://lab-share/inputs/clip.wav"
    stale = 0
    seen = set()
    for trial in range(5):  # rewrites well within LastModified's one-second resolution
        ws.fs.pipe_file("lab-share/inputs/clip.wav", bytes([65 + trial]) * (1536 << 10))  # cached size
        ws.fs.invalidate_cache()
        ident = ws.identity(stage="s", params={}, inputs=[url])
        stale += ident in seen
        seen.add(ident)
    assert stale == 0
    keys = set()
    for trial in range(3):
        ws.fs.pipe_file("lab-share/inputs/small.wav", bytes([70 + trial]) * 100)
        ws.fs.invalidate_cache()
        keys.add(content_key(ws.fs, "lab-share/inputs/small.wav")[0])
    assert len(keys) == 3  # the cache key carries the ETag


def test_s3_reader_of_a_collected_version_gets_an_error_not_nan(s3_endpoint):
    import pytest as _pytest

    from xaffect.errors import StoreError

    so = {"endpoint_url": s3_endpoint, "key": "testing", "secret": "testing"}
    ws = xaffect.Workspace.init("s3://lab-share/readers", storage_options=so)
    ws.write("t", xr.Dataset({"x": ("i", np.arange(40.0))}).chunk({"i": 10}), stage="s", params={"v": 1},
             progress=False)
    held = ws.open("t")
    ws.write("t", xr.Dataset({"x": ("i", -np.arange(40.0))}).chunk({"i": 10}), stage="s", params={"v": 2},
             progress=False)
    np.testing.assert_array_equal(held.x.values, np.arange(40.0))  # grace period: still readable
    assert len(ws.gc(grace_s=0)) == 1
    with _pytest.raises(StoreError, match="deleted"):
        held.x.values
    np.testing.assert_array_equal(ws.open("t").x.values, -np.arange(40.0))
