"""Many files (issue 26): scan and bulk upgrade on local processes, a real Dask scheduler with
two real workers, and moto's S3 server; workers and clients killed mid-run lose nothing."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

from conftest import FIXTURES, run_cli

SOURCES = ["tfkeras/bidir.h5", "tfkeras/lstm_gru.h5", "tfkeras/stacked.wonly.h5", "keras3/lstm_gru.keras",
           "keras3/convlstm.h5", "legacy/keras1_conv1d_lstm.h5", "keras3/seq_simple.weights.h5"]
ENV = dict(os.environ, LSTMTOOL_LOAD_TIMEOUT="3")


def corpus(root, copies=1):
    """Real fixtures under several names, and damaged files beside them."""
    os.makedirs(root, exist_ok=True)
    for k in range(copies):
        for src in SOURCES:
            name = os.path.join(root, f"set{k}", src.replace("/", "_"))
            os.makedirs(os.path.dirname(name), exist_ok=True)
            shutil.copyfile(os.path.join(FIXTURES, src), name)
    bad = os.path.join(root, "bad")
    os.makedirs(bad, exist_ok=True)
    data = open(os.path.join(FIXTURES, "tfkeras", "bidir.h5"), "rb").read()
    open(os.path.join(bad, "truncated.h5"), "wb").write(data[:9000])
    open(os.path.join(bad, "notes.h5"), "w").write("not a model")
    return root


def lines(path):
    return [json.loads(x) for x in open(path)]


def cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "lstmtool", *map(str, args)], capture_output=True, text=True,
                          env=kw.pop("env", ENV), **kw)


def single(path):
    """What the single-file commands say of `path`: inspect --json, and upgrade --dry-run's verdict."""
    r = run_cli("inspect", path, "--json")
    if r.exit_code:
        return None, r.stderr.strip().removeprefix("lstmtool: error: ")
    doc = json.JSONDecoder().raw_decode(r.stdout)[0]
    u = run_cli("upgrade", path, "--dry-run")
    doc["upgrade"] = "ok" if u.exit_code == 0 else u.stderr.strip().removeprefix("lstmtool: error: ")
    return doc, None


def check_record(record, path):
    doc, error = single(path)
    assert record["error"] == error, (path, record["error"], error)
    if doc is None:
        return
    for key in ("format", "keras_version", "backend", "warnings", "upgrade"):
        assert record[key] == doc[key], (path, key)
    assert [(c["path"], c["class"], c["units"]) for c in record["cells"] if c["complete"]] == \
        [(c["path"], c["class"], c["units"]) for c in doc["cells"]]
    assert record["size"] == os.path.getsize(path)
    import hashlib

    assert record["sha256"] == hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_scan_records_equal_the_single_file_commands(tmp_path):
    root = corpus(str(tmp_path / "models"))
    inv = tmp_path / "inv.jsonl"
    r = cli("scan", root, "-o", inv, "--jobs", "2")
    assert r.returncode == 1, r.stderr  # the damaged files are errors: exit 1 at the end
    records = lines(inv)
    assert len(records) == len(SOURCES) + 2
    for rec in records:
        check_record(rec, rec["path"])
    assert "scanned 9 file(s)" in r.stderr and "2 error(s)" in r.stderr
    assert "Traceback" not in r.stderr
    # the same with a glob, an @list and in-process (library) form
    listed = tmp_path / "list.txt"
    listed.write_text("\n".join(rec["path"] for rec in records[:3]) + "\n# a comment\n")
    r = cli("scan", f"@{listed}", os.path.join(root, "**", "*.keras"))
    got = [json.loads(x) for x in r.stdout.splitlines()]
    want = {rec["path"] for rec in records[:3]} | {rec["path"] for rec in records if rec["path"].endswith(".keras")}
    assert sorted(g["path"] for g in got) == sorted(want)  # each file once, however it was named
    from lstmtool import scan_one

    mine = scan_one(records[0]["path"])
    assert {k: v for k, v in mine.items() if k != "seconds"} == {k: v for k, v in records[0].items() if k != "seconds"}


def test_inventory_formats_and_resume(tmp_path):
    pa = pytest.importorskip("pyarrow.parquet")
    root = corpus(str(tmp_path / "models"))
    r = cli("scan", root, "-o", tmp_path / "inv.parquet", "--no-hash")
    table = pa.read_table(tmp_path / "inv.parquet").to_pylist()
    assert len(table) == len(SOURCES) + 2 and all(t["sha256"] is None for t in table)
    assert any(t["cells"] and t["cells"][0]["class"] for t in table)
    r = cli("scan", root, "-o", tmp_path / "inv.csv")
    import csv

    rows = list(csv.DictReader(open(tmp_path / "inv.csv")))
    assert len(rows) == len(SOURCES) + 2 and any(":LSTM:" in x["cells"] for x in rows)
    inv = tmp_path / "inv.jsonl"
    cli("scan", root, "-o", inv)
    r = cli("scan", root, "-o", inv)
    assert r.returncode == 2 and "already exists" in r.stderr
    extra = os.path.join(root, "set0", "new.h5")
    shutil.copyfile(os.path.join(FIXTURES, "tfkeras", "nested.h5"), extra)
    r = cli("scan", root, "-o", inv, "--resume")
    assert "1 file(s)" in r.stderr and f"{len(SOURCES) + 2:,} unchanged, skipped" in r.stderr, r.stderr
    assert lines(inv)[-1]["path"] == extra


def _children(pid):
    try:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    except FileNotFoundError:
        pytest.skip("no pgrep here")
    return [int(x) for x in out]


def test_a_worker_killed_mid_scan_loses_nothing(tmp_path):
    root = corpus(str(tmp_path / "models"), copies=25)
    inv = tmp_path / "inv.jsonl"
    p = subprocess.Popen([sys.executable, "-m", "lstmtool", "scan", root, "-o", str(inv), "--jobs", "2"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not inv.exists() or len(inv.read_text().splitlines()) < 10):
        time.sleep(0.05)
    workers = [c for c in _children(p.pid) if "spawn" in open(f"/proc/{c}/cmdline").read()
               or "multiprocessing" in open(f"/proc/{c}/cmdline").read()]
    assert workers, "no worker process seen"
    os.kill(workers[0], signal.SIGKILL)
    _, err = p.communicate(timeout=120)
    records = lines(inv)
    paths = [r["path"] for r in records]
    assert len(paths) == len(set(paths)) == 25 * len(SOURCES) + 2, err  # every file, once
    assert sum(r["error"] is not None for r in records) == 2, [r["error"] for r in records if r["error"]][:5]


def _valid(path):
    if path.endswith(".keras"):
        with zipfile.ZipFile(path) as z:
            return z.testzip() is None
    import h5py

    with h5py.File(path, "r"):
        return True


def test_a_client_killed_mid_upgrade_and_rerun_loses_nothing(tmp_path):
    root = corpus(str(tmp_path / "models"), copies=12)
    out = tmp_path / "out"
    manifest = out / "lstmtool-manifest.jsonl"
    p = subprocess.Popen([sys.executable, "-m", "lstmtool", "upgrade", root, "-o", f"{out}/", "--jobs", "2"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not manifest.exists() or
                                           manifest.read_text().count('"finished"') < 15):
        time.sleep(0.02)
    os.killpg(p.pid, signal.SIGKILL)  # the client and its workers, mid-run
    p.wait()
    first = {os.path.join(r, f): os.stat(os.path.join(r, f)).st_mtime_ns for r, _, fs in os.walk(out) for f in fs}
    for r, _, fs in os.walk(out):
        for f in fs:
            if not f.startswith("."):  # hidden: a temporary of the killed run; never a final name
                assert f == "lstmtool-manifest.jsonl" or _valid(os.path.join(r, f)), f
    r = cli("upgrade", root, "-o", f"{out}/", "--jobs", "2")
    assert "unchanged, skipped" in r.stderr, r.stderr
    done = {}
    for entry in lines(manifest):
        done[entry["input"]] = entry
    inputs = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs]
    assert set(done) == set(inputs)
    for entry in done.values():
        assert entry["state"] == "finished" and entry["result"] in ("done", "refused"), entry
        if entry["result"] == "done":
            target = entry.get("real_output") or entry["output"]
            assert _valid(target)
    kept = [f for f, t in first.items() if f.endswith(".keras") and os.stat(f).st_mtime_ns == t]
    assert kept, "the rerun rewrote what the first run had finished"
    import keras

    x = np.load(os.path.join(FIXTURES, "tfkeras", "bidir.expected.npz"))
    m = keras.saving.load_model(str(out / "set3" / "tfkeras_bidir.keras"), compile=False)
    np.testing.assert_allclose(np.asarray(m.predict(x["x"], verbose=0)), x["y"], atol=1e-5)


def test_bulk_refuses_to_replace_what_it_did_not_write(tmp_path):
    root = corpus(str(tmp_path / "models"))
    out = tmp_path / "out"
    (out / "set0").mkdir(parents=True)
    (out / "set0" / "tfkeras_bidir.keras").write_text("someone else's")
    r = cli("upgrade", root, "-o", f"{out}/")
    assert r.returncode == 1 and "this job did not write it" in r.stderr
    assert (out / "set0" / "tfkeras_bidir.keras").read_text() == "someone else's"
    assert (out / "set0" / "tfkeras_lstm_gru.keras").exists()
    r = cli("set-forget-bias", "1.0", root, "-o", f"{tmp_path / 'fb'}/", "--jobs", "2")
    assert (tmp_path / "fb" / "set0" / "tfkeras_bidir.h5").exists(), r.stderr
    doc = json.loads(run_cli("inspect", tmp_path / "fb" / "set0" / "tfkeras_bidir.h5", "--stats", "--json").stdout)
    assert doc["cells"][0]["gate_table"][1]["b"]["stats"]["mean"] == 1.0


# -- a real Dask cluster ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    pytest.importorskip("distributed")
    where = tmp_path_factory.mktemp("dask")
    file = where / "scheduler.json"
    dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    procs = [subprocess.Popen(dask + ["--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file",
                                      str(file)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)]
    deadline = time.monotonic() + 60
    while not file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    for _ in range(2):
        procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file",
                                       str(file), "--nworkers", "1", "--nthreads", "1", "--no-dashboard",
                                       "--host", "127.0.0.1"], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, env=ENV))
    from distributed import Client

    address = json.loads(file.read_text())["address"]
    with Client(address, timeout=60) as c:
        c.wait_for_workers(2, timeout=60)
    yield address, procs
    for p in procs[::-1]:
        p.terminate()
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()


def test_scan_and_upgrade_on_a_dask_cluster(cluster, tmp_path):
    address, procs = cluster
    root = corpus(str(tmp_path / "models"), copies=8)
    local, remote = tmp_path / "local.jsonl", tmp_path / "dask.jsonl"
    cli("scan", root, "-o", local, "--jobs", "2")
    p = subprocess.Popen([sys.executable, "-m", "lstmtool", "scan", root, "-o", str(remote), "--scheduler", address],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not remote.exists() or len(remote.read_text().splitlines()) < 5):
        time.sleep(0.05)
    worker = [c for c in _children(procs[1].pid)] or [procs[1].pid]
    os.kill(worker[0], signal.SIGKILL)  # one worker's process dies mid-scan; the nanny restarts it
    _, err = p.communicate(timeout=180)
    strip = lambda r: {k: v for k, v in r.items() if k != "seconds"}  # noqa: E731
    a = {r["path"]: strip(r) for r in lines(local)}
    b = {r["path"]: strip(r) for r in lines(remote)}
    assert len(b) == len(lines(remote)) == 8 * len(SOURCES) + 2, err
    assert a == b
    out = tmp_path / "out"
    r = cli("upgrade", root, "-o", f"{out}/", "--scheduler", address)
    assert "refused" in r.stderr or r.returncode == 0
    assert _valid(str(out / "set2" / "tfkeras_bidir.keras"))


def test_scheduler_without_the_extra_or_unreachable_says_so(tmp_path):
    r = cli("scan", os.path.join(FIXTURES, "keras3", "lstm_gru.h5"), "--scheduler", "tcp://127.0.0.1:1")
    assert r.returncode == 2 and "cannot reach the Dask scheduler" in r.stderr, r.stderr


# -- moto's S3 server ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bucket():
    pytest.importorskip("moto")
    from motos3 import moto_s3

    with moto_s3() as (client, env):
        client.create_bucket(Bucket="fleet")
        for k in range(30):  # 30 x 7 real models and 2 damaged ones
            for src in SOURCES:
                client.upload_file(os.path.join(FIXTURES, src), "fleet", f"in/{k:02d}/{src.replace('/', '_')}")
        data = open(os.path.join(FIXTURES, "tfkeras", "bidir.h5"), "rb").read()
        client.put_object(Bucket="fleet", Key="in/bad/truncated.h5", Body=data[:9000])
        client.put_object(Bucket="fleet", Key="in/bad/notes.keras", Body=b"not a model")
        yield client, dict(ENV, **env)


def test_scan_and_upgrade_an_s3_prefix(bucket, tmp_path):
    client, env = bucket
    inv = tmp_path / "inv.jsonl"
    r = cli("scan", "s3://fleet/in/", "-o", inv, "--no-hash", "--jobs", "2", env=env)
    records = lines(inv)
    assert len(records) == 30 * len(SOURCES) + 2, r.stderr
    by_name = {}
    for rec in records:
        by_name.setdefault(rec["path"].rsplit("/", 1)[-1], []).append(rec)
    for src in SOURCES:
        name = src.replace("/", "_")
        assert len(by_name[name]) == 30
        doc, _ = single(os.path.join(FIXTURES, src))
        for rec in by_name[name]:
            local = os.path.join(FIXTURES, src)
            assert rec["format"] == doc["format"]
            assert rec["upgrade"] == doc["upgrade"].replace(local, rec["path"])
            assert [c["units"] for c in rec["cells"]] == [c["units"] for c in doc["cells"]]
            assert rec["etag"] and rec["size"] == os.path.getsize(os.path.join(FIXTURES, src))
    assert sum(rec["error"] is not None for rec in records) == 2
    # one folder upgraded onto another prefix: staged keys, moved in whole
    cache = tmp_path / "cache"
    env = dict(env, LSTMTOOL_CACHE_DIR=str(cache))
    r = cli("upgrade", "s3://fleet/in/03/", "-o", "s3://fleet/out/", "--jobs", "2", env=env, cwd=tmp_path)
    assert not list(tmp_path.glob("lstmtool-manifest*")), "a journal left in the working directory"
    assert len(list((cache / "manifests").glob("*.jsonl"))) == 1
    keys = [o["Key"] for o in client.list_objects_v2(Bucket="fleet", Prefix="out/").get("Contents", [])]
    assert "out/tfkeras_bidir.keras" in keys and "out/lstmtool-manifest.jsonl" in keys, (keys, r.stderr)
    assert not [k for k in keys if ".lstmtool-partial-" in k]
    body = client.get_object(Bucket="fleet", Key="out/tfkeras_bidir.keras")["Body"].read()
    (tmp_path / "b.keras").write_bytes(body)
    assert _valid(str(tmp_path / "b.keras"))
    r = cli("upgrade", "s3://fleet/in/03/", "-o", "s3://fleet/out/", env=env)  # rerun: nothing to redo
    assert f"{len(SOURCES)} unchanged, skipped" in r.stderr, r.stderr
    shutil.rmtree(cache)  # another machine, or a cleared cache: the published manifest resumes it
    r = cli("upgrade", "s3://fleet/in/03/", "-o", "s3://fleet/out/", env=env)
    assert f"{len(SOURCES)} unchanged, skipped" in r.stderr, r.stderr


# -- Hugging Face Hub and plain HTTP prefixes ----------------------------------------------------

def test_scan_hf_and_http_prefixes(tmp_path):
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    from rangeserver import RangeServer

    repo = tmp_path / "org" / "repo"
    (repo / "sub").mkdir(parents=True)
    shutil.copyfile(os.path.join(FIXTURES, "tfkeras", "bidir.h5"), repo / "bidir.h5")
    shutil.copyfile(os.path.join(FIXTURES, "keras3", "lstm_gru.keras"), repo / "sub" / "lstm_gru.keras")
    (repo / "README.md").write_text("not a model: not listed")
    want = {"bidir.h5": single(str(repo / "bidir.h5"))[0], "sub/lstm_gru.keras": single(str(repo / "sub" /
                                                                                          "lstm_gru.keras"))[0]}
    with RangeServer(str(tmp_path)) as server:  # the Hub's API, as huggingface_hub's HfFileSystem speaks it
        env = dict(ENV, HF_ENDPOINT=f"http://127.0.0.1:{server.port}", HF_HUB_DISABLE_TELEMETRY="1")
        hub = [json.loads(x) for x in cli("scan", "hf://org/repo/", "--no-hash", env=env).stdout.splitlines()]
        globbed = [json.loads(x) for x in cli("scan", "hf://org/repo/**/*.keras", "--no-hash", env=env).stdout.splitlines()]
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))  # HTML directory listings
    handler.log_message = lambda *a: None
    plain = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=plain.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{plain.server_address[1]}/org/repo/"
        http = [json.loads(x) for x in cli("scan", base, "--no-hash").stdout.splitlines()]
    finally:
        plain.shutdown()
    for records, prefix in ((hub, "hf://org/repo/"), (http, base)):
        assert sorted(r["path"] for r in records) == sorted(prefix + k for k in want), records
        for r in records:
            doc = want[r["path"][len(prefix):]]
            assert r["error"] is None and r["format"] == doc["format"] and r["size"] > 0
            assert [c["path"] for c in r["cells"]] == [c["path"] for c in doc["cells"]]
    assert [r["path"] for r in globbed] == ["hf://org/repo/sub/lstm_gru.keras"]


# -- the other many-file jobs: the edits, verify, trace ------------------------------------------

def _datasets(path):
    import h5py

    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


@pytest.mark.parametrize("edit", [("set", "{m}", "lstm*:b_f", "2.5"), ("scale", "{m}", "*:U_*", "0.5"),
                                  ("chrono-init", "{m}", "--tmax", "40", "--seed", "3")])
def test_bulk_edits_write_what_the_single_file_command_writes(tmp_path, edit):
    root = corpus(str(tmp_path / "models"))
    out = tmp_path / "out"
    args = [a.format(m=root) for a in edit]
    r = cli(*args, "-o", f"{out}/", "--jobs", "2")
    records = lines(out / "lstmtool-manifest.jsonl")
    finished = [e for e in records if e["state"] == "finished"]
    assert len(finished) == len(SOURCES) + 2, r.stderr
    done = [e for e in finished if e["result"] == "done"]
    assert len(done) >= 2, r.stderr
    assert r.returncode == 1  # the damaged files (and files without the target) are refused, each named
    for e in finished:
        if e["result"] != "done":
            assert e["error"] and e["input"] in r.stderr
            continue
        one = tmp_path / "single" / os.path.relpath(e["input"], root)
        one.parent.mkdir(parents=True, exist_ok=True)
        s = run_cli(*[e["input"] if a == root else a for a in args], "-o", str(one))
        assert s.exit_code == 0, s.stderr
        if e["output"].endswith((".h5", ".hdf5")):
            a, b = _datasets(e["output"]), _datasets(str(one))
            assert a.keys() == b.keys()
            for k in a:
                np.testing.assert_array_equal(a[k], b[k], err_msg=k)
            assert any(not np.array_equal(a[k], v) for k, v in _datasets(e["input"]).items() if k in a), \
                "the edit changed nothing"
        else:
            assert _valid(e["output"])
    r = cli(*args, "-o", f"{out}/")  # rerun: nothing redone, the refusals still count
    assert r.returncode == 1 and "refused before" in r.stderr, r.stderr


def test_bulk_edits_refuse_per_file_options(tmp_path):
    root = corpus(str(tmp_path / "models"))
    for args in (("set", root, "lstm:b_f", "1", "--dry-run"), ("scale", root, "lstm:b_f", "2", "--backup"),
                 ("set", root, "lstm:b_f", "--from", __file__)):
        r = cli(*args, "-o", f"{tmp_path / 'o'}/")
        assert r.returncode == 2 and "per-file option" in r.stderr, r.stderr
    assert not (tmp_path / "o").exists()


def test_verify_many_files_equals_each_single_verify(tmp_path):
    root = tmp_path / "models"
    root.mkdir()
    for src in ("tfkeras/bidir.h5", "keras3/lstm_gru.keras", "tfkeras/stacked.wonly.h5"):
        shutil.copyfile(os.path.join(FIXTURES, src), root / src.replace("/", "_"))
    (root / "notes.h5").write_text("not a model")
    r = cli("verify", root, "--jobs", "2", "--json")
    records = {x["input"]: x for x in map(json.loads, r.stdout.splitlines())}
    assert len(records) == 4 and r.returncode == 1, r.stderr
    for path, rec in records.items():
        s = run_cli("verify", path, "--json")
        if s.exit_code:
            assert rec["ok"] is False and rec["error"] == s.stderr.strip().removeprefix("lstmtool: error: ")
            assert rec["result"] == "refused"
            continue
        doc = json.loads(s.stdout)
        assert rec["ok"] and rec["result"] == "done" and rec["keras"] == doc["keras"]
        assert [(x["path"], x["max_abs_diff"]) for x in rec["layers"]] == \
            [(x["path"], x["max_abs_diff"]) for x in doc["layers"]]
    text = cli("verify", root / "tfkeras_bidir.h5", root / "keras3_lstm_gru.keras")
    assert text.returncode == 0 and text.stdout.count("ok ") == 2, text.stderr


def test_verify_and_trace_on_a_dask_cluster(cluster, tmp_path):
    address, _ = cluster
    root = corpus(str(tmp_path / "models"), copies=2)
    local = json.loads(cli("trace", root, "--part", "U", "--stat", "l2", "--json").stdout)
    dask = cli("trace", root, "--part", "U", "--stat", "l2", "--json", "--scheduler", address)
    assert json.loads(dask.stdout) == local, dask.stderr
    assert local["errors"] == 2 and len(local["rows"]) == 2 * len(SOURCES) + 2 and local["cells"]
    one = next(r for r in local["rows"] if r["file"].endswith("set1/tfkeras_bidir.h5"))
    alone = json.loads(cli("trace", one["file"], "--part", "U", "--stat", "l2", "--json").stdout)
    assert alone["rows"][0]["values"] == one["values"]
    lst = tmp_path / "list.txt"
    lst.write_text("\n".join([os.path.join(root, "set0", "tfkeras_bidir.h5"),
                              os.path.join(root, "set0", "keras3_lstm_gru.keras")]))
    r = cli("verify", f"@{lst}", "--scheduler", address, "--json")
    records = [json.loads(x) for x in r.stdout.splitlines()]
    assert r.returncode == 0 and [x["ok"] for x in records] == [True, True], r.stderr
