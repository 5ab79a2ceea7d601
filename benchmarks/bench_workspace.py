"""A shared workspace under load: lost entries, NaN reads, rerun cost, the grid on a cluster.

Run: ``python benchmarks/bench_workspace.py [--quick] [--out results.json]``

1. N writer processes x trials, each writing its own stores into one local
   workspace at once (file barrier): entries lost (goal 0).
2. A reader looping over ``open(...).load()`` while another process rewrites
   the store and garbage-collects at once (grace 0): NaN / fill-value reads
   (goal 0); errors are clear ``StoreError``s.
3. Rerun with identical identity vs the first run, local and S3 (moto on
   loopback): goal < 5 %.
4. The encoding grid on ``dask scheduler`` + 1, 2 or 4 ``dask worker``
   processes (one thread each), and on 2 with one killed mid-grid (same
   scores, time cost). Each run prints the load average around it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # the encode-stage fixture data (test_encoding_stage)

_CREDS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}

_WRITER = """
import os, sys, time, numpy as np, xarray as xr, xaffect
ws = xaffect.Workspace(sys.argv[1]); who = int(sys.argv[2]); barrier = sys.argv[3]
open(os.path.join(barrier, f"ready-{who}"), "w").close()
while not os.path.exists(os.path.join(barrier, "go")):
    time.sleep(0.002)
for t in range(int(sys.argv[4])):
    ws.write(f"w{who}.t{t}", xr.Dataset({"x": ("i", np.full(40, who * 100.0 + t))}), stage="s",
             params={"who": who, "t": t}, progress=False)
"""

_REWRITER = """
import sys, dask.array as da, xarray as xr, xaffect
ws = xaffect.Workspace(sys.argv[1])
for k in range(1, int(sys.argv[2]) + 1):
    ws.write("hot", xr.Dataset({"x": ("i", da.full(4000, float(k), chunks=20))}), stage="s", params={"k": k},
             progress=False)
    ws.gc(grace_s=0)
"""


def bench_writers(root: Path, n_writers: int, trials: int, repeats: int) -> dict:
    import xaffect

    lost, walls = [], []
    for rep in range(repeats):
        ws = xaffect.Workspace.init(root / f"writers{rep}")
        barrier = root / f"barrier{rep}"
        barrier.mkdir()
        script = root / "writer.py"
        script.write_text(_WRITER)
        procs = [subprocess.Popen([sys.executable, str(script), ws.url, str(w), str(barrier), str(trials)])
                 for w in range(n_writers)]
        while len(list(barrier.glob("ready-*"))) < n_writers:
            time.sleep(0.02)
        t0 = time.perf_counter()
        (barrier / "go").touch()
        codes = [p.wait() for p in procs]
        walls.append(time.perf_counter() - t0)
        assert codes == [0] * n_writers, codes
        lost.append(n_writers * trials - len(xaffect.Workspace(ws.url).names()))
    return {"writers": n_writers, "trials": trials, "repeats": repeats, "entries_lost": int(sum(lost)),
            "entries_written": n_writers * trials * repeats, "median_wall_s": statistics.median(walls)}


def bench_readers(root: Path, rewrites: int) -> dict:
    import dask.array as da
    import xarray as xr

    import xaffect
    from xaffect.errors import StoreError

    ws = xaffect.Workspace.init(root / "readers")
    ws.write("hot", xr.Dataset({"x": ("i", da.full(4000, 0.0, chunks=20))}), stage="s", params={"k": 0},
             progress=False)
    script = root / "rewriter.py"
    script.write_text(_REWRITER)
    proc = subprocess.Popen([sys.executable, str(script), ws.url, str(rewrites)])
    good = errors = bad = 0
    while proc.poll() is None:
        try:
            values = ws.open("hot").x.values
        except StoreError:
            errors += 1
            continue
        if np.isnan(values).any() or len(set(values.tolist())) != 1:
            bad += 1
        else:
            good += 1
    return {"rewrites": rewrites, "reads_complete": good, "reads_store_error": errors, "reads_nan_or_mixed": bad}


def _slow_stage(ws, n_chunks: int, tag: int) -> tuple[float, float]:
    import dask.array as da
    import xarray as xr

    def slow(block):
        time.sleep(0.1)
        return block + 1

    def build():
        return xr.Dataset({"x": (("time", "unit"), da.ones((n_chunks, 200), chunks=(1, 200)).map_blocks(slow))})

    t0 = time.perf_counter()
    ws.run_stage(f"slow{tag}", build, stage="slow", params={"v": tag}, progress=False)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    ws.run_stage(f"slow{tag}", build, stage="slow", params={"v": tag}, progress=False)
    return first, time.perf_counter() - t0


def _moto():
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    import boto3

    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket="lab")
    return server, endpoint


def bench_rerun(root: Path, endpoint: str, n_chunks: int, repeats: int) -> dict:
    """First run vs rerun with identical identity, local and S3 interleaved; medians over ``repeats``."""
    import xaffect

    spaces = {"local": xaffect.Workspace.init(root / "rerun"),
              "s3": xaffect.Workspace.init("s3://lab/rerun", storage_options={"endpoint_url": endpoint})}
    got: dict = {k: {"first": [], "rerun": []} for k in spaces}
    for rep in range(repeats):
        for kind, ws in spaces.items():
            first, rerun = _slow_stage(ws, n_chunks, rep)
            got[kind]["first"].append(first)
            got[kind]["rerun"].append(rerun)
    out: dict = {"repeats": repeats, "n_chunks": n_chunks}
    for kind, v in got.items():
        ratios = [r / f for f, r in zip(v["first"], v["rerun"])]
        out[f"{kind}_first_s_median"] = statistics.median(v["first"])
        out[f"{kind}_rerun_s_median"] = statistics.median(v["rerun"])
        out[f"{kind}_ratio_median"] = statistics.median(ratios)
        out[f"{kind}_ratio_max"] = max(ratios)
    return out


def _start_cluster(root: Path, n_workers: int):
    sched_file = root / f"sched-{time.monotonic_ns()}.json"
    env = dict(os.environ, **_CREDS)
    common = dict(env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    sched = subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--port", "0", "--no-dashboard",
                              "--scheduler-file", str(sched_file)], **common)
    while not sched_file.exists():
        time.sleep(0.1)
    workers = [subprocess.Popen([sys.executable, "-m", "dask", "worker", "--scheduler-file", str(sched_file),
                                 "--nthreads", "1", "--no-dashboard"], **common) for _ in range(n_workers)]
    return json.loads(sched_file.read_text())["address"], sched, workers


def _stop(procs) -> None:
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()


def bench_cluster(root: Path, endpoint: str, n_perm: int) -> dict:
    import distributed
    import xarray as xr
    import yaml

    from test_encoding_stage import S, _write_stores
    from xaffect.encoding.stage import run_encode
    from xaffect.store import use_scheduler
    from xaffect.study import load_study

    for i in range(S):
        (root / f"s{i}.wav").write_bytes(b"")
    cfg = {"name": "t", "workspace": "s3://lab/grid", "storage_options": {"endpoint_url": endpoint},
           "stimuli": [{"name": f"s{i}", "path": f"s{i}.wav"} for i in range(S)], "stages": ["encode"],
           "encode": {"n_perm": n_perm, "targets": ["ratings", "regions"], "alphas": [0.1, 1.0, 10.0, 100.0],
                      "feature_sets": ["features.deep", "features.mfcc"]}}
    (root / "study.yaml").write_text(yaml.safe_dump(cfg))
    study = load_study(root / "study.yaml")
    _write_stores(study.workspace, np.random.default_rng(5))
    t0 = time.perf_counter()
    with use_scheduler("synchronous"):
        run_encode(study, progress=False, force=True)
    out = {"synchronous_s": time.perf_counter() - t0}
    reference = study.workspace.open("scores").load()
    runs = [("1_worker", 1, False), ("2_workers", 2, False), ("4_workers", 4, False), ("2_workers_one_killed", 2, True)]
    for label, n_workers, kill in runs:
        address, sched, workers = _start_cluster(root, n_workers)
        try:
            with distributed.Client(address, timeout="60s") as client:
                client.wait_for_workers(n_workers, timeout=60)
                killed = {}

                def killer():
                    while not killed:
                        done = client.run_on_scheduler(
                            lambda dask_scheduler: sum(t.state == "memory" for t in dask_scheduler.tasks.values()))
                        if done >= 5:
                            os.killpg(workers[0].pid, signal.SIGKILL)
                            killed["tasks"] = done
                        time.sleep(0.05)

                thread = threading.Thread(target=killer, daemon=True) if kill else None
                t0 = time.perf_counter()
                if thread:
                    thread.start()
                load = os.getloadavg()[0]
                with use_scheduler(client):
                    run_encode(study, progress=False, force=True)
                out[f"{label}_s"] = time.perf_counter() - t0
                out[f"{label}_load"] = [round(load, 1), round(os.getloadavg()[0], 1)]
                killed.setdefault("done", True)
            scores = study.workspace.open("scores").load()
            xr.testing.assert_allclose(scores["r"], reference["r"])
            xr.testing.assert_allclose(scores["p"], reference["p"])
            out[f"{label}_same_scores"] = True
        finally:
            _stop([*workers, sched])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    parser.add_argument("--only", choices=("writers", "readers", "rerun", "cluster"), action="append",
                        help="run only these parts (repeatable)")
    args = parser.parse_args()
    os.environ.update(_CREDS)
    results: dict = {"load_average_start": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="bench-ws-", dir=HERE) as tmp:
        root = Path(tmp)
        server, endpoint = _moto()
        try:
            only = set(args.only or ("writers", "readers", "rerun", "cluster"))
            if "writers" in only:
                results["writers"] = bench_writers(root, 4, 3 if args.quick else 5, 1 if args.quick else 3)
            if "readers" in only:
                results["readers"] = bench_readers(root, 4 if args.quick else 10)
            if "rerun" in only:
                results["rerun"] = bench_rerun(root, endpoint, 10 if args.quick else 30, 1 if args.quick else 5)
            if "cluster" in only:
                results["cluster"] = bench_cluster(root, endpoint, 10 if args.quick else 40)
        finally:
            server.stop()
    results["load_average_end"] = os.getloadavg()
    print(json.dumps(results, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
