"""Shared pytest fixtures."""

import contextlib
import os
import socket

import matplotlib
import pytest

matplotlib.use("Agg")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MNE_LOGGING_LEVEL", "ERROR")


@pytest.fixture
def workspace(tmp_path):
    """A fresh local workspace."""
    from xaffect import Workspace

    return Workspace.init(tmp_path / "ws")


@contextlib.contextmanager
def moto_s3(bucket: str):
    """A real S3 endpoint on loopback (moto's server mode) with ``bucket`` created; yields its URL.

    Credentials are moto's test ones ("testing"); every S3 test (round trip,
    concurrent writers, the cluster) starts its server through this.
    """
    import boto3
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
                     region_name="us-east-1").create_bucket(Bucket=bucket)
        yield endpoint
    finally:
        server.stop()
