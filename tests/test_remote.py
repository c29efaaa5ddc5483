"""Remote files against real servers on loopback: a Range-honouring HTTP server that
counts requests and bytes (rangeserver.py), moto's S3 server for s3fs, and the Hub API
that huggingface_hub's HfFileSystem talks to (served by rangeserver.py at HF_ENDPOINT).
"""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import run_cli
from rangeserver import RangeServer

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(os.path.dirname(HERE), "fixtures")
SMALL = {"m.keras": "keras3/lstm_gru.keras", "bidir.h5": "tfkeras/bidir.h5", "stacked.h5": "tfkeras/stacked.h5",
         "org/repo/m.keras": "keras3/lstm_gru.keras"}
MiB = 1 << 20

sys.path.insert(0, os.path.join(os.path.dirname(HERE), "benchmarks"))
from bench import BUILD as BIG  # noqa: E402  (the benchmark's model, built the same way)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    for name, src in SMALL.items():
        os.makedirs(os.path.dirname(root / name), exist_ok=True)
        shutil.copyfile(os.path.join(FIXTURES, src), root / name)
    with RangeServer(str(root)) as server:
        server.dir = root
        yield server


@pytest.fixture(scope="module")
def big(served):
    """The benchmark's model: 3 x LSTM(2048), 340 MB, written by Keras 3 as .h5 and .keras."""
    stem = os.path.join(served.dir, "big")
    subprocess.run([sys.executable, "-c", BIG, stem], check=True, capture_output=True)
    return stem


def _json(*args):
    r = run_cli(*args)
    assert r.exit_code == 0, r.output
    return json.JSONDecoder().raw_decode(r.output)[0]  # warnings (stderr) may follow


def _same_inspect(remote_doc, local_doc):
    for doc in (remote_doc, local_doc):
        doc.pop("file", None)
        doc.pop("filename", None)
        doc.pop("path", None)
    assert remote_doc == local_doc


@pytest.mark.parametrize("ext", [".h5", ".keras"])
def test_inspect_of_the_big_model_stays_within_its_budget(served, big, ext):
    served.reset()
    remote = _json("inspect", served.url("big" + ext), "--json")
    assert served.requests <= 10, served.log
    assert served.bytes_sent <= MiB
    _same_inspect(remote, _json("inspect", big + ext, "--json"))


@pytest.mark.parametrize("ext", [".h5", ".keras"])
def test_exporting_one_layer_reads_that_layer_and_little_more(served, big, ext, tmp_path):
    served.reset()
    r = run_cli("export", served.url("big" + ext), "-o", str(tmp_path / "far"), "--layer", "lstm_1")
    assert r.exit_code == 0, r.output
    layer_bytes = (2048 * 8192 * 2 + 8192) * 4
    assert served.bytes_sent <= layer_bytes + MiB
    assert served.requests <= 10 + 12 * 3  # the inspect budget, and each gate's W, U, b
    assert run_cli("export", big + ext, "-o", str(tmp_path / "near"), "--layer", "lstm_1").exit_code == 0
    for name in ("W_f.npy", "U_o.npy", "b_i.npy"):
        assert np.array_equal(np.load(tmp_path / "far" / "lstm_1" / name), np.load(tmp_path / "near" / "lstm_1" / name))


@pytest.mark.parametrize("name", ["m.keras", "bidir.h5"])
def test_every_read_command_gives_what_the_local_file_gives(served, name, tmp_path):
    local = str(served.dir / name)
    url = served.url(name)
    _same_inspect(_json("inspect", url, "--json"), _json("inspect", local, "--json"))
    cell = _json("inspect", local, "--json")["cells"][0]["path"]
    assert run_cli("show", url, cell, "--gate", "o", "--part", "U", "--format", "csv").output == \
        run_cli("show", local, cell, "--gate", "o", "--part", "U", "--format", "csv").output
    assert run_cli("explain", url, cell).output.replace(url, local) == run_cli("explain", local, cell).output
    r = run_cli("diff", url, local)
    assert r.exit_code == 0, r.output
    r = run_cli("upgrade", url, "-o", str(tmp_path / "u.keras"))
    assert r.exit_code == 0, r.output
    assert run_cli("diff", str(tmp_path / "u.keras"), local).exit_code == 0
    r = run_cli("trace", url, local, "--json")
    assert r.exit_code == 0, r.output
    r = run_cli("plot", url, "-o", str(tmp_path / "gates.png"))
    assert r.exit_code == 0 and os.path.getsize(tmp_path / "gates.png") > 1000, r.output


def test_prune_and_edit_with_a_local_output(served, tmp_path):
    url = served.url("m.keras")
    r = run_cli("prune", url, "lstm", "--units", "1", "-o", str(tmp_path / "p.keras"))
    assert r.exit_code == 0, r.output
    r = run_cli("set-forget-bias", "1.0", url)
    assert r.exit_code == 2 and "never edited in place" in r.output
    r = run_cli("set-forget-bias", "1.0", url, "-o", str(tmp_path / "e.keras"))
    assert r.exit_code == 0, r.output
    with __import__("lstmtool").load(str(tmp_path / "e.keras")) as m:
        assert np.allclose(m.cell("lstm").b["f"].numpy(), 1.0)
    assert sorted(os.listdir(tmp_path)) == ["e.keras", "p.keras"], "no download left behind"
    r = run_cli("upgrade", served.url("bidir.h5"), "-o", "s3://bucket/out.keras")
    assert r.exit_code == 2 and "writes local files only" in r.output


@pytest.mark.parametrize("mode,match", [(404, "no such remote file (404)"), (403, "access denied (403)"),
                                        ("truncate", "truncated"), ("hang", "did not answer in time")])
def test_failures_are_one_line(served, mode, match, monkeypatch):
    monkeypatch.setenv("LSTMTOOL_REMOTE_TIMEOUT", "1.5")
    served.mode["bidir.h5"] = mode
    try:
        r = run_cli("inspect", served.url("bidir.h5"))
    finally:
        served.mode.clear()
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert r.exit_code == 1 and len(lines) == 1 and match in lines[0], r.output


def test_a_server_that_ignores_range_is_refused_for_a_big_file_and_read_whole_for_a_small_one(served, big):
    served.mode["big.h5"] = served.mode["bidir.h5"] = "ignore-range"
    try:
        served.reset()
        r = run_cli("inspect", served.url("big.h5"))
        assert r.exit_code == 1 and "ignores Range requests" in r.output and "download it first" in r.output
        assert served.bytes_sent < 8 * MiB, "detected, not downloaded"
        r = run_cli("inspect", served.url("bidir.h5"))
        assert r.exit_code == 0, r.output
    finally:
        served.mode.clear()


def test_cache_directory_makes_a_repeated_command_fetch_nothing_but_the_size(served, tmp_path):
    url = served.url("bidir.h5")
    served.reset()
    first = run_cli("--cache", str(tmp_path / "c"), "inspect", url).output
    fetched = served.requests
    served.reset()
    again = run_cli("inspect", url, "--cache", str(tmp_path / "c")).output
    assert again == first and served.requests == 1 < fetched and served.bytes_sent == 0


def test_credentials_and_signatures_are_never_printed(served):
    r = run_cli("inspect", served.url("nope.h5").replace("http://", "http://alice:s3cret@") + "?X-Amz-Signature=abc")
    assert r.exit_code == 1
    assert "s3cret" not in r.output and "Signature" not in r.output and "alice" not in r.output


def test_the_local_path_imports_no_remote_filesystem():
    code = ("import sys; from lstmtool.cli import main; sys.argv = ['lstmtool', 'inspect', sys.argv[1]];\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "assert not [m for m in sys.modules if m.split('.')[0] in ('fsspec', 'aiohttp', 's3fs', 'huggingface_hub')]")
    r = subprocess.run([sys.executable, "-c", code, os.path.join(FIXTURES, "tfkeras", "bidir.h5")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    from motos3 import moto_s3

    with moto_s3() as (client, _):
        client.create_bucket(Bucket="models")
        for key, src in (("a/m.keras", "keras3/lstm_gru.keras"), ("bidir.h5", "tfkeras/bidir.h5")):
            client.upload_file(os.path.join(FIXTURES, src), "models", key)
        yield "s3://models"


def test_s3_through_s3fs_against_moto(s3, tmp_path):
    for key, src in (("a/m.keras", "keras3/lstm_gru.keras"), ("bidir.h5", "tfkeras/bidir.h5")):
        _same_inspect(_json("inspect", f"{s3}/{key}", "--json"), _json("inspect", os.path.join(FIXTURES, src), "--json"))
    r = run_cli("export", f"{s3}/bidir.h5", "-o", str(tmp_path / "x"))
    assert r.exit_code == 0, r.output
    r = run_cli("inspect", f"{s3}/missing.h5")
    assert r.exit_code == 1 and "no such remote file" in r.output


def test_hf_through_huggingface_hub_against_a_local_endpoint(served):
    """HfFileSystem (the real client) at HF_ENDPOINT: repo info, paths-info and resolve with
    Range are served by rangeserver.py, which reads files from ORG/REPO/ directories."""
    code = ("import sys, json; from lstmtool.cli import main; sys.argv = ['lstmtool', 'inspect', sys.argv[1], "
            "'--json']; main()")
    env = dict(os.environ, HF_ENDPOINT=f"http://127.0.0.1:{served.port}", HF_HUB_DISABLE_TELEMETRY="1")
    served.reset()
    r = subprocess.run([sys.executable, "-c", code, "hf://org/repo/m.keras"], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    _same_inspect(json.loads(r.stdout), _json("inspect", os.path.join(FIXTURES, "keras3", "lstm_gru.keras"), "--json"))
    assert any("/resolve/" in path and rng for _, path, rng in served.log), "read by range requests"
    r = subprocess.run([sys.executable, "-c", code, "hf://org/repo/nope.keras"], capture_output=True, text=True,
                       env=env)
    assert r.returncode == 1 and "no such remote file" in r.stderr


@pytest.fixture(scope="module")
def tf_served(tmp_path_factory):
    root = tmp_path_factory.mktemp("tf")
    for name in ("mix_savedmodel", "seq_savedmodel", "mix_ckpt", "sharded_ckpt"):
        shutil.copytree(os.path.join(FIXTURES, "tf", name), root / name)
    for k in range(30):
        shutil.copytree(os.path.join(FIXTURES, "tf", "mix_ckpt"), root / "many" / f"c{k:02d}")
    with RangeServer(str(root)) as server:
        server.dir = root
        yield server


@pytest.mark.parametrize("name", ["mix_savedmodel/", "seq_savedmodel", "mix_ckpt/ckpt", "sharded_ckpt/ckpt.index"])
def test_savedmodels_and_checkpoints_read_by_their_index_and_only_the_tensors_asked_for(tf_served, name):
    local = str(tf_served.dir / name)
    tf_served.reset()
    remote = _json("inspect", tf_served.url(name), "--json")
    assert tf_served.requests <= 8, tf_served.log
    assert all("saved_model.pb" not in path for _, path, _ in tf_served.log)
    _same_inspect(remote, _json("inspect", local, "--json"))
    assert run_cli("diff", tf_served.url(name), local).exit_code == 0


def test_trace_overlaps_the_requests_of_many_remote_checkpoints(tf_served):
    import time

    urls = [tf_served.url(f"many/c{k:02d}/ckpt") for k in range(30)]
    tf_served.latency = 0.05
    try:
        run_cli("trace", urls[0])
        t = time.perf_counter()
        assert run_cli("trace", urls[0]).exit_code == 0
        one = time.perf_counter() - t
        tf_served.reset()
        t = time.perf_counter()
        r = run_cli("trace", *urls, "--jobs", "30", "--json")
        many = time.perf_counter() - t
    finally:
        tf_served.latency = 0.0
    assert r.exit_code == 0 and len(json.loads(r.output)["rows"]) == 30
    assert tf_served.requests <= 2 * 30, "the index and one block of the data shard per checkpoint"
    # one after another would take 30 x one; overlapped, the requests of many files wait together
    assert many < 0.5 * 30 * one, f"{many:.2f} s for 30 files against {one:.2f} s for one: not overlapped"


def test_gs_through_gcsfs_against_a_local_endpoint(served):
    """gcsfs (the real client) at STORAGE_EMULATOR_HOST: object metadata and media downloads
    with Range are served by rangeserver.py, which reads BUCKET/OBJECT from its root."""
    code = "import sys; from lstmtool.cli import main; sys.argv = ['lstmtool', 'inspect', sys.argv[1], '--json']; main()"
    env = dict(os.environ, STORAGE_EMULATOR_HOST=f"http://127.0.0.1:{served.port}")
    r = subprocess.run([sys.executable, "-c", code, "gs://org/repo/m.keras"], capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    _same_inspect(json.loads(r.stdout), _json("inspect", os.path.join(FIXTURES, "keras3", "lstm_gru.keras"), "--json"))
    assert not r.stderr.strip(), r.stderr
    r = subprocess.run([sys.executable, "-c", code, "gs://org/repo/nope.keras"], capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.returncode == 1 and "no such remote file" in r.stderr
