"""A workspace on S3: a real S3 endpoint on loopback (moto's server mode), no mocks of zarr/fsspec/intake."""

import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import xarray as xr

import xaffect

moto_server = pytest.importorskip("moto.server")
pytest.importorskip("s3fs")


@pytest.fixture(scope="module")
def s3_endpoint():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    import boto3

    boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
                 region_name="us-east-1").create_bucket(Bucket="lab-share")
    yield endpoint
    server.stop()


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
