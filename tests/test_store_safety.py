"""Workspace safety: content identity, write failures, scratch, credentials, damaged catalogs, plain intake."""

import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

import numpy as np
import pytest
import xarray as xr
import yaml
from click.testing import CliRunner

import xaffect
from xaffect.cli import main
from xaffect.errors import StoreError
from xaffect.store import catalog as catalog_mod
from xaffect.store import public_options


def _ds(value=1.0, n=30):
    return xr.Dataset({"x": ("time", np.full(n, value))}, coords={"scale": ["arousal"]})


# ------------------------------------------------------------------ identity
def test_same_size_same_mtime_rewrite_changes_identity(workspace, tmp_path):
    src = tmp_path / "big.wav"
    src.write_bytes(b"a" * (2 << 20))  # above the always-hash size: the cache is used
    kw = dict(stage="stems", params={}, inputs=[str(src)])
    os.utime(src, ns=(1_000_000_000, 1_000_000_000))
    time.sleep(xaffect.store.identity.RACY_SECONDS + 0.1)  # out of the racy window: the entry is trusted
    first = workspace.identity(**kw)
    cache = json.loads((tmp_path / "ws" / ".xaffect" / "hashes.json").read_text())
    assert len(cache) == 1  # hashed once and cached
    assert workspace.identity(**kw) == first
    st = os.stat(src)
    with open(src, "r+b") as f:  # same size, in place, mtime put back: only ctime tells
        f.write(b"b")
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(src).st_size == st.st_size and os.stat(src).st_mtime_ns == st.st_mtime_ns
    assert workspace.identity(**kw) != first


def test_rewrite_within_the_timestamp_tick_is_rehashed(workspace, tmp_path):
    src = tmp_path / "big.wav"
    values = []
    for byte in (b"a", b"b", b"c"):
        src.write_bytes(byte * (2 << 20))  # same size, same second: a racy entry is never trusted
        values.append(workspace.identity(stage="s", params={}, inputs=[str(src)]))
    assert len(set(values)) == 3


# ---------------------------------------------------------- write failures
_DISK_FULL = """
import resource, signal, sys, numpy as np, xarray as xr, xaffect
from xaffect.errors import StoreError
ws = xaffect.Workspace(sys.argv[1])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)        # a real write then fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
big = xr.Dataset({"x": (("time", "unit"), np.random.default_rng(0).standard_normal((100, 2000)))})
try:
    ws.write("features.big", big.chunk({"time": 50}), stage="s", params={"v": 2}, progress=False)
except StoreError as exc:
    print(exc)
    sys.exit(2)
"""


def test_disk_full_is_one_line_and_leaves_everything_intact(workspace, tmp_path):
    workspace.write("features.big", _ds(7.0), stage="s", params={"v": 1}, progress=False)
    catalog_before = (tmp_path / "ws" / "catalog.yaml").read_bytes()
    versions_before = sorted(os.listdir(tmp_path / "ws" / "stores" / "features" / "big"))
    script = tmp_path / "full.py"
    script.write_text(_DISK_FULL)
    proc = subprocess.run([sys.executable, str(script), workspace.url], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr[-2000:]
    line = proc.stdout.strip()
    assert "\n" not in line and "features.big" in line and "File too large" in line
    assert "partial version was removed" in line
    assert (tmp_path / "ws" / "catalog.yaml").read_bytes() == catalog_before
    assert sorted(os.listdir(tmp_path / "ws" / "stores" / "features" / "big")) == versions_before
    assert float(xaffect.Workspace(workspace.url).open("features.big").x.mean()) == 7.0
    assert not os.listdir(tmp_path / "ws" / ".xaffect" / "writers")


def test_scratch_lives_in_the_workspace_and_debris_of_dead_processes_goes(workspace, tmp_path):
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import os, sys, xaffect
        ws = xaffect.Workspace(sys.argv[1])
        with ws.scratch("stems") as d:
            open(os.path.join(d, "big.npy"), "wb").write(b"0" * 1000)
            print(d, flush=True)
            os.kill(os.getpid(), 9)
    """), workspace.url], capture_output=True, text=True)
    left = proc.stdout.strip()
    assert proc.returncode == -signal.SIGKILL
    assert left.startswith(str(tmp_path / "ws" / ".xaffect" / "scratch")) and os.path.exists(left)
    assert not left.startswith(tempfile.gettempdir() + "/xaffect")
    with workspace.scratch("stems") as mine:
        assert not os.path.exists(left)  # the dead process's scratch was reclaimed
        assert os.path.isdir(mine)
    assert not os.path.exists(mine)


# --------------------------------------------------------------- credentials
def test_allow_list_keeps_only_what_locates_data():
    s3 = {"endpoint_url": "http://x", "key": "AK", "secret": "SK", "token": "T", "anon": False,
          "client_kwargs": {"region_name": "eu-west-1", "aws_session_token": "T2"},
          "s3_additional_kwargs": {"SSECustomerKey": "K", "SSECustomerAlgorithm": "AES256"},
          "config_kwargs": {"signature_version": "s3v4"}}
    assert public_options(s3) == {"endpoint_url": "http://x", "anon": False,
                                  "client_kwargs": {"region_name": "eu-west-1"},
                                  "config_kwargs": {"signature_version": "s3v4"}}
    azure = {"account_name": "lab", "account_key": "K", "sas_token": "S", "connection_string": "C",
             "client_id": "I", "client_secret": "CS", "tenant_id": "T", "credential": object()}
    assert public_options(azure) == {"account_name": "lab"}
    http = {"headers": {"Authorization": "Bearer SECRET"}, "client_kwargs": {"auth": ("u", "p")}}
    assert public_options(http) == {}
    from xaffect.store.credentials import public_ref

    assert public_ref("https://u:SECRET@host:8/a/b.wav?sv=1&sig=SECRET") == "https://<redacted>@host:8/a/b.wav?<redacted>"
    assert public_ref("/data/clip.wav") == "/data/clip.wav"


class _AuthHandler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        if self.headers.get("Authorization") != "Bearer SECRET-HDR":
            self.send_error(403)
            return
        super().do_GET()

    do_HEAD = do_GET

    def log_message(self, *args):
        pass


def test_no_secret_reaches_catalog_or_provenance(tmp_path):
    serve = tmp_path / "serve"
    serve.mkdir()
    (serve / "clip.wav").write_bytes(b"RIFF-sound")
    handler = lambda *a, **k: _AuthHandler(*a, directory=str(serve), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        so = {"headers": {"Authorization": "Bearer SECRET-HDR"}, "timeout": 30}
        ws = xaffect.Workspace.init(tmp_path / "ws", storage_options=so)
        url = f"http://127.0.0.1:{server.server_port}/clip.wav?sig=SECRET-SIG"
        ws.write("stems", _ds(), stage="stems", params={}, inputs=[url], progress=False)
        prov = ws.provenance("stems")
    finally:
        server.shutdown()
    assert prov["inputs"][0]["hash"].startswith("sha256:")  # really read through the header
    assert prov["inputs"][0]["ref"] == f"http://127.0.0.1:{server.server_port}/clip.wav?<redacted>"
    text = (tmp_path / "ws" / "catalog.yaml").read_text() + json.dumps(prov)
    assert "SECRET" not in text
    assert "timeout: 30" in text
    # Azure-style options on a workspace of another fsspec backend
    azure = {"account_name": "lab", "account_key": "SECRET-AZ", "sas_token": "SECRET-SAS",
             "connection_string": "SECRET-CONN", "client_secret": "SECRET-CS", "tenant_id": "SECRET-T"}
    ws = xaffect.Workspace.init("memory://xaffect-azure-style", storage_options=azure)
    ws.write("stems", _ds(), stage="stems", params={}, progress=False)
    text = ws.fs.cat_file(ws._path("catalog.yaml")).decode() + json.dumps(ws.provenance("stems"))
    assert "SECRET" not in text and "account_name: lab" in text


# ----------------------------------------------------- catalog and bad input
def test_plain_intake_lists_and_reads_every_entry_in_a_fresh_process(workspace):
    workspace.write("features.hubert", _ds(2.0), stage="features", params={}, progress=False)
    tree = xr.DataTree.from_dict({"/": xr.Dataset(), "clip01": _ds(1.0, 10), "clip02": _ds(3.0, 20)})
    workspace.write("stems", tree, stage="stems", params={}, progress=False)
    code = textwrap.dedent("""
        import sys, intake
        cat = intake.from_yaml_file(sys.argv[1] + "/catalog.yaml")
        names = list(cat)
        assert len(cat) == len(names) and "features.hubert" in dir(cat) and "named datasets" in str(cat)
        sizes = {n: int(sum(v.size for v in cat[n].read().data_vars.values())) for n in names}
        assert "xaffect" not in sys.modules
        print(sizes)
    """)
    out = subprocess.run([sys.executable, "-c", code, workspace.url], capture_output=True, text=True, check=True)
    assert eval(out.stdout) == {"features.hubert": 30, "stems": 0, "stems/clip01": 10, "stems/clip02": 20}


def test_old_catalog_is_upgraded_when_opened_for_writing(workspace):
    workspace.write("targets", _ds(), stage="t", params={}, progress=False)
    path = os.path.join(workspace.url, "catalog.yaml")
    data = yaml.safe_load(open(path))
    data["aliases"], data["metadata"]["xaffect"] = {}, 1  # as xaffect 0.1 wrote it
    open(path, "w").write(yaml.safe_dump(data))
    import intake

    assert list(intake.from_yaml_file(path)) == []
    xaffect.Workspace(workspace.url)  # reading does not touch it
    assert yaml.safe_load(open(path))["aliases"] == {}
    xaffect.Workspace.init(workspace.url)
    assert list(intake.from_yaml_file(path)) == ["targets"]


def test_catalog_show_a_group_and_ls_shows_its_dims(workspace):
    tree = xr.DataTree.from_dict({"/": xr.Dataset(), "clip01": _ds(1.0, 10)})
    workspace.write("stems", tree, stage="stems", params={"b": 1}, progress=False)
    r = CliRunner().invoke(main, ["catalog", "show", workspace.url, "stems/clip01"])
    assert r.exit_code == 0, r.output
    assert "/clip01" in r.output and '"stage": "stems"' in r.output
    r = CliRunner().invoke(main, ["catalog", "ls", workspace.url])
    assert "stems/clip01" in r.output and "time=10" in r.output


def _cli_error(*args):
    r = CliRunner().invoke(main, list(args))
    assert r.exit_code == 2, (r.exit_code, r.output, r.exception)
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("xaffect: error:"), r.output
    return lines[0]


@pytest.mark.parametrize("damage, message", [
    (b"", "catalog is empty"),
    (b"version: 2\nentries:\n  stems:\n    reader: [unclosed", "not valid YAML at line"),
    (b"version: 2\ndata: {}\n", "not an intake 2 catalog"),
    (b"version: 2\nentries: {}\nmetadata: {xaffect: 99}\n", "newer xaffect"),
])
def test_damaged_or_newer_catalog_is_one_line_and_untouched(workspace, damage, message):
    path = os.path.join(workspace.url, "catalog.yaml")
    open(path, "wb").write(damage)
    assert message in _cli_error("catalog", "ls", workspace.url)
    assert path in _cli_error("catalog", "ls", workspace.url)
    with pytest.raises(StoreError, match=message):
        xaffect.Workspace.init(workspace.url)
    with pytest.raises(StoreError, match=message):
        xaffect.open_catalog(workspace.url)
    assert open(path, "rb").read() == damage


def test_bad_workspace_paths_and_missing_data(workspace, tmp_path):
    afile = tmp_path / "notes.txt"
    afile.write_text("hi")
    assert "is a file, not a workspace folder" in _cli_error("catalog", "ls", str(afile))
    with pytest.raises(StoreError, match="is a file"):
        xaffect.Workspace.init(afile)
    assert afile.read_text() == "hi"
    workspace.write("targets", _ds(), stage="t", params={}, progress=False)
    shutil.rmtree(os.path.join(workspace.url, workspace.metadata("targets")["xaffect"]["path"]))
    assert "data" in _cli_error("catalog", "show", workspace.url, "targets")
    with pytest.raises(StoreError, match="missing"):
        workspace.open("targets")
    assert not workspace.is_current("targets", stage="t", params={})


def test_lock_of_a_dead_process_is_no_obstacle_and_a_live_one_times_out(workspace, tmp_path, monkeypatch):
    holder = textwrap.dedent("""
        import sys, time, filelock
        lock = filelock.FileLock(sys.argv[1], thread_local=False)
        lock.acquire()
        print("held", flush=True)
        time.sleep(60)
    """)
    lock_path = os.path.join(workspace.url, ".xaffect", "catalog.lock")
    os.makedirs(os.path.dirname(lock_path), exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-c", holder, lock_path], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    monkeypatch.setattr(catalog_mod, "LOCK_TIMEOUT_S", 1.0)
    with pytest.raises(StoreError, match="catalog.lock: the catalog stayed locked"):
        workspace.write("a", _ds(), stage="s", params={}, progress=False)
    assert workspace.names() == [] and not os.listdir(os.path.join(workspace.url, "stores", "a"))
    proc.kill()
    proc.wait()
    assert os.path.exists(lock_path)  # the dead holder's lock file is still there ...
    workspace.write("a", _ds(), stage="s", params={}, progress=False)  # ... and no obstacle
    assert workspace.names() == ["a"]


def test_read_only_workspace_is_one_line_and_untouched(tmp_path):
    base = tempfile.mkdtemp(prefix="xaffect-ro-", dir="/tmp")  # reachable by an unprivileged user
    try:
        os.chmod(base, 0o755)
        ws = xaffect.Workspace.init(os.path.join(base, "ws"))
        ws.write("targets", _ds(), stage="t", params={}, progress=False)
        before = {p: os.path.getmtime(os.path.join(d, p)) for d, _, files in os.walk(ws.url) for p in files}
        if os.geteuid() == 0:  # root ignores permission bits, not the immutable attribute
            made = subprocess.run(["chattr", "-R", "+i", ws.url], capture_output=True)
            if made.returncode != 0:
                # root ignores permission bits: the immutable attribute is the only read-only workspace
                # root can be given here (the test machines' ext4 has it); without it the test cannot stand
                pytest.fail(f"running as root: chattr +i is needed to make {ws.url} read-only: {made.stderr!r}")
        else:
            for d, dirs, files in os.walk(ws.url):
                for p in dirs + files:
                    os.chmod(os.path.join(d, p), 0o555 if p in dirs else 0o444)
            os.chmod(ws.url, 0o555)
        code = textwrap.dedent("""
            import sys, numpy as np, xarray as xr, xaffect
            from xaffect.errors import StoreError
            ws = xaffect.Workspace(sys.argv[1])
            assert float(ws.open("targets").x.sum()) == 30.0   # reading works
            try:
                ws.write("more", xr.Dataset({"x": ("t", np.ones(3))}), stage="s", params={}, progress=False)
            except StoreError as exc:
                print(exc)
        """)
        out = subprocess.run([sys.executable, "-c", code, ws.url], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr[-2000:]
        assert "read-only" in out.stdout and ws.url in out.stdout and "\n" not in out.stdout.strip()
        after = {p: os.path.getmtime(os.path.join(d, p)) for d, _, files in os.walk(ws.url) for p in files}
        assert after == before
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-R", "-i", base], capture_output=True)
        for d, dirs, _ in os.walk(base):
            for p in dirs:
                os.chmod(os.path.join(d, p), 0o755)
        os.chmod(base, 0o755)
        shutil.rmtree(base, ignore_errors=True)


def test_alias_pointing_nowhere_is_one_line_and_a_write_repairs_it(workspace):
    workspace.write("targets", _ds(), stage="t", params={}, progress=False)
    path = os.path.join(workspace.url, "catalog.yaml")
    data = yaml.safe_load(open(path))
    data["aliases"]["ratings"] = "gone"
    open(path, "w").write(yaml.safe_dump(data))
    assert "alias 'ratings' points to 'gone'" in _cli_error("catalog", "ls", workspace.url)
    ws = xaffect.Workspace.init(workspace.url)
    assert ws.names() == ["targets"] and "ratings" not in yaml.safe_load(open(path))["aliases"]


def test_gc_command_reclaims_replaced_versions_only_after_the_grace_period(workspace):
    workspace.write("targets", _ds(1.0), stage="t", params={"v": 1}, progress=False)
    old = workspace.metadata("targets")["xaffect"]["path"]
    workspace.write("targets", _ds(2.0), stage="t", params={"v": 2}, progress=False)
    r = CliRunner().invoke(main, ["gc", workspace.url])
    assert r.exit_code == 0 and "removed 0 version(s)" in r.output  # within the default grace period
    r = CliRunner().invoke(main, ["gc", workspace.url, "--grace", "0", "--dry-run"])
    assert r.exit_code == 0 and f"would remove {old}" in r.output
    assert os.path.exists(os.path.join(workspace.url, old))
    r = CliRunner().invoke(main, ["gc", workspace.url, "--grace", "0"])
    assert r.exit_code == 0 and f"removed {old}" in r.output
    assert not os.path.exists(os.path.join(workspace.url, old))
    assert yaml.safe_load(open(os.path.join(workspace.url, "catalog.yaml")))["metadata"]["retired"] == []
    assert float(workspace.open("targets").x.mean()) == 2.0


def test_a_backend_without_conditional_writes_is_named_in_a_warning(tmp_path):
    """fsspec's DirFileSystem (a real backend with no compare-and-swap, like gcsfs/adlfs through fsspec)."""
    import warnings

    from xaffect.store.catalog import UnsafeBackendWarning

    (tmp_path / "dir").mkdir()
    opts = {"path": str(tmp_path / "dir"), "target_protocol": "file"}
    with pytest.warns(UnsafeBackendWarning, match=r"dir://lab-ws: the 'dir' backend .* one process at a time"):
        ws = xaffect.Workspace.init("dir://lab-ws", storage_options=opts)
    assert ws.names() == [] and (tmp_path / "dir" / "lab-ws" / "catalog.yaml").is_file()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnsafeBackendWarning)
        xaffect.Workspace.init("dir://lab-ws", storage_options=opts)  # once per workspace and process
        xaffect.Workspace.init("memory://xaffect-one-process")  # in-process: the thread lock covers it
        xaffect.Workspace.init(tmp_path / "local")  # flock
