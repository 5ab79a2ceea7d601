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


#: moto's test credentials; S3 clients in every process read them from the environment only.
S3_CREDS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


class DaskCluster:
    """``dask scheduler`` and ``dask worker`` processes started as a cluster starts them.

    Each process runs in its own process group, so a worker can be SIGKILLed
    (as a lost node) without touching the others. ``address`` is the
    scheduler's; ``workers`` the worker processes, in start order.
    """

    def __init__(self, folder, n_workers: int = 2, memory_limit: str = "2GiB", preload: tuple = ()):
        import json
        import subprocess
        import sys
        import time

        self._folder, self._memory_limit = folder, memory_limit
        self._preload = [a for m in preload for a in ("--preload", m)]  # modules a worker imports as it starts
        sched_file = folder / f"scheduler-{time.monotonic_ns()}.json"
        self._env = dict(os.environ, **S3_CREDS, DASK_DISTRIBUTED__WORKER__DAEMON="False")
        self._common = dict(env=self._env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
        self.scheduler = subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--port", "0",
                                           "--no-dashboard", "--scheduler-file", str(sched_file)], **self._common)
        deadline = time.time() + 60
        while not sched_file.exists() and time.time() < deadline:
            time.sleep(0.1)
        self._sched_file = sched_file
        self.address = json.loads(sched_file.read_text())["address"]
        self.workers: list = []
        for _ in range(n_workers):
            self.spawn_worker()

    def spawn_worker(self):
        """Start one more ``dask worker`` process (one thread); returns it."""
        import subprocess
        import sys

        p = subprocess.Popen([sys.executable, "-m", "dask", "worker", "--scheduler-file", str(self._sched_file),
                              "--nthreads", "1", "--nworkers", "1", "--no-dashboard",
                              "--memory-limit", self._memory_limit, *self._preload], **self._common)
        self.workers.append(p)
        return p

    def kill(self, worker) -> None:
        """SIGKILL one worker process (a node lost mid-work)."""
        import signal

        try:
            os.killpg(worker.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def kill_when(self, client, worker, *, tasks_done: int, timeout: float = 120.0) -> dict:
        """Start a thread that kills ``worker`` once ``tasks_done`` tasks sit in memory.

        Returns a dict the thread fills with ``at_tasks`` when it killed; join
        ``result["thread"]`` after the work.
        """
        import threading
        import time

        result: dict = {}

        def watch():
            deadline = time.time() + timeout
            while time.time() < deadline and not result.get("stop"):
                try:
                    done = client.run_on_scheduler(
                        lambda dask_scheduler: sum(ts.state == "memory" for ts in dask_scheduler.tasks.values()))
                except Exception:  # noqa: BLE001  (the client closing ends the watch)
                    return
                if done >= tasks_done:
                    self.kill(worker)
                    result["at_tasks"] = done
                    return
                time.sleep(0.05)

        result["thread"] = threading.Thread(target=watch, daemon=True)
        result["thread"].start()
        return result

    def close(self) -> None:
        for p in [*self.workers[::-1], self.scheduler]:
            self.kill(p)
            p.wait()


@pytest.fixture
def dask_cluster(tmp_path):
    """A scheduler and two worker processes (see :class:`DaskCluster`).

    The workers import torch/transformers and MNE's inverse as they start
    (``--preload``, as a cluster warms its workers), while the test's
    single-process run goes on.
    """
    cluster = DaskCluster(tmp_path, 2, preload=("xaffect.features.hf", "mne.minimum_norm"))
    try:
        yield cluster
    finally:
        cluster.close()
