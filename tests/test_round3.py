"""What a new user hit, round 3 (issue 30): each test failed before its fix."""
import functools
import json
import re
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import h5py
import numpy as np
import pytest

from conftest import FIXTURES, REALWORLD, run_cli, run_subprocess

LSTM_GRU = os.path.join(FIXTURES, "keras3", "lstm_gru.h5")


def _json(*args):
    r = run_cli(*args)
    assert r.exit_code == 0, r.output
    return json.JSONDecoder().raw_decode(r.output)[0]


# -- 1. a truncated file is truncated, a lock is a lock -----------------------------------------

@pytest.mark.parametrize("cut", [9000, 15000, 20000])
def test_a_truncated_h5_is_called_truncated_with_both_sizes(tmp_path, cut):
    t = tmp_path / "t.h5"
    t.write_bytes(open(LSTM_GRU, "rb").read()[:cut])
    before = t.read_bytes()
    for args in (["inspect", t], ["set-forget-bias", "1.0", t], ["export", t, "-o", tmp_path / "x"]):
        r = run_cli(*args)
        assert r.exit_code == 1, r.output
        assert "truncated HDF5 file" in r.output and f"{cut:,} bytes on disk" in r.output, r.output
        assert "lock" not in r.output
    assert t.read_bytes() == before


def test_a_real_hdf5_lock_is_still_called_a_lock(tmp_path):
    m = tmp_path / "m.h5"
    shutil.copy(LSTM_GRU, m)
    env = dict(os.environ, HDF5_USE_FILE_LOCKING="TRUE")
    holder = subprocess.Popen([sys.executable, "-c", "import h5py, sys, time\n"
                               "f = h5py.File(sys.argv[1], 'a'); print('open', flush=True); time.sleep(60)", str(m)],
                              stdout=subprocess.PIPE, env=env, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        r = run_subprocess("inspect", str(m), env=env)
        if r.returncode == 0:
            pytest.skip("this filesystem does not honour HDF5 file locks")
        assert "HDF5 file lock" in r.stderr, r.stderr
    finally:
        holder.kill()
        holder.wait()


# -- 2-4. remote: a server without Range, network failures, checkpoint directories --------------

@pytest.fixture(scope="module")
def plain_http(tmp_path_factory):
    """Python's own http.server: no Range support, the server a user starts first."""
    root = tmp_path_factory.mktemp("plain")
    shutil.copytree(os.path.join(FIXTURES, "tf"), root / "tf")
    if os.path.isdir(REALWORLD):
        for name in ("beagle-savedmodel", "stockpred-ckpt"):
            shutil.copytree(os.path.join(REALWORLD, name), root / name)
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.base = f"http://127.0.0.1:{server.server_address[1]}"
    server.root = root
    yield server
    server.shutdown()


def _same(remote, local):
    a, b = _json("inspect", remote, "--json"), _json("inspect", local, "--json")
    for d in (a, b):
        d.pop("file")
    assert a == b


@pytest.mark.parametrize("name", ["beagle-savedmodel/gru_model/", "beagle-savedmodel/gru_model",
                                  "stockpred-ckpt/cp.ckpt", "stockpred-ckpt/", "tf/mix_ckpt/",
                                  "tf/mix_savedmodel/"])
def test_savedmodels_and_checkpoints_from_a_server_without_range_are_read_whole(plain_http, name):
    local = os.path.join(plain_http.root, name)
    if not os.path.exists(local.rstrip("/")) and not os.path.exists(local + ".index"):
        pytest.skip("../shared/realworld is not beside this checkout")
    r = run_cli("inspect", f"{plain_http.base}/{name}")
    assert r.exit_code == 0, r.output
    assert "4,611,686" not in r.output
    _same(f"{plain_http.base}/{name}", local)


def test_a_shard_too_big_to_read_whole_names_its_real_size(plain_http, monkeypatch):
    from lstmtool.remote import rangefile

    if not os.path.isdir(os.path.join(plain_http.root, "stockpred-ckpt")):
        pytest.skip("../shared/realworld is not beside this checkout")
    monkeypatch.setattr(rangefile, "SMALL_FILE", 1 << 20)  # the 1.5 MB shard is then "big"
    r = run_cli("inspect", f"{plain_http.base}/stockpred-ckpt/cp.ckpt")
    assert r.exit_code == 1
    assert "ignores Range requests" in r.output and "1,556,399-byte file" in r.output, r.output


@pytest.fixture
def closing_port():
    """A server that accepts each connection and closes it at once."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    s.settimeout(0.2)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                c, _ = s.accept()
                c.close()
            except OSError:
                pass

    threading.Thread(target=serve, daemon=True).start()
    yield s.getsockname()[1]
    stop.set()
    s.close()


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_network_failures_are_not_called_404(plain_http, closing_port):
    r = run_cli("inspect", f"http://127.0.0.1:{_free_port()}/m.h5")
    assert r.exit_code == 1 and "connection refused" in r.output and "404" not in r.output, r.output
    r = run_cli("inspect", f"http://127.0.0.1:{closing_port}/m.h5")
    assert r.exit_code == 1 and "closed the connection" in r.output and "404" not in r.output, r.output
    r = run_cli("inspect", f"https://127.0.0.1:{plain_http.server_address[1]}/m.h5")  # TLS to a plain server
    assert r.exit_code == 1 and "TLS" in r.output and "404" not in r.output, r.output
    r = run_cli("inspect", f"{plain_http.base}/no-such.h5")
    assert r.exit_code == 1 and "no such remote file (404)" in r.output, r.output


# -- 5. import's own example ---------------------------------------------------------------------

def test_import_finds_the_layer_from_the_exported_file_name(tmp_path):
    out = tmp_path / "pt"
    assert run_cli("export", LSTM_GRU, "--layout", "torch", "-o", out).exit_code == 0
    for layer, other in (("lstm", "gru"), ("gru", "lstm")):
        r = run_cli("import", LSTM_GRU, out / f"{layer}.safetensors", "--layout", "torch", "--dry-run")
        assert r.exit_code == 0, r.output
        assert "skipped" in r.output and "not in the source" in r.output, r.output
        assert re.search(rf"\b{layer}\s+W_", r.output), r.output
    lone = tmp_path / "weights.safetensors"  # a name that says nothing: still asks
    shutil.copy(out / "lstm.safetensors", lone)
    r = run_cli("import", LSTM_GRU, lone, "--layout", "torch", "--dry-run")
    assert r.exit_code == 2 and "--layer" in r.output


# -- 6, 8. diff after prune; a prune with nothing to do ------------------------------------------

def test_diff_text_names_changed_shapes_and_a_no_op_prune_counts_truly(tmp_path):
    pruned = tmp_path / "p.h5"
    assert run_cli("prune", LSTM_GRU, "lstm", "--units", "1,2", "-o", pruned).exit_code == 0
    r = run_cli("diff", LSTM_GRU, pruned)
    assert "nan" not in r.output and "shape 3x4 -> 3x2" in r.output and "shape 4x4 -> 2x2" in r.output, r.output
    r = run_cli("prune", LSTM_GRU, "lstm", "--drop-dead", "-o", tmp_path / "q.h5")
    assert r.exit_code == 0, r.output
    with h5py.File(LSTM_GRU) as f:
        params = sum(o.size for o in _datasets(f["model_weights"]))
    assert f"parameters {params:,} -> {params:,}" in r.output and params > 0
    size = os.path.getsize(LSTM_GRU)
    assert f"file {size:,} -> {size:,} bytes" in r.output
    assert not (tmp_path / "q.h5").exists()


def _datasets(group):
    out = []
    group.visititems(lambda n, o: out.append(o) if isinstance(o, h5py.Dataset) else None)
    return out


def test_exit_table_and_behaviour_agree_on_nothing_to_do(tmp_path):
    m = tmp_path / "m.h5"
    shutil.copy(LSTM_GRU, m)
    assert run_cli("set-forget-bias", "1.0", m).exit_code == 0
    before = m.read_bytes()
    r = run_cli("set-forget-bias", "1.0", m)  # already as asked: 0, and said
    assert r.exit_code == 0 and "already holds these values" in r.output
    assert m.read_bytes() == before
    r = run_cli("set-forget-bias", "1.0", m, "--layer", "gru")  # nothing it applies to: 1
    assert r.exit_code == 1 and "no LSTM cell" in r.output
    help_text = run_cli("--help").output
    assert "already as asked" in help_text and "has nothing the" in help_text


# -- 7. a checkpoint directory without a `checkpoint` file ---------------------------------------

def test_a_checkpoint_directory_without_a_state_file(tmp_path):
    r = run_cli("inspect", os.path.join(FIXTURES, "tf", "sharded_ckpt"))
    assert r.exit_code == 0, r.output
    assert "format tf-checkpoint" in r.output
    two = tmp_path / "two"
    two.mkdir()
    for name in os.listdir(os.path.join(FIXTURES, "tf", "mix_ckpt")):
        if name.startswith("ckpt."):
            for prefix in ("a", "b"):
                shutil.copy(os.path.join(FIXTURES, "tf", "mix_ckpt", name), two / (prefix + name))
    r = run_cli("inspect", two)
    assert r.exit_code == 2 and "2 TensorFlow checkpoints" in r.output and "ackpt, bckpt" in r.output, r.output


# -- 9. one warning per message, naming the files ------------------------------------------------

def test_many_files_say_each_warning_once_naming_the_files():
    r = run_subprocess("inspect", os.path.join(FIXTURES, "keras3", "*.h5"), "--json")
    assert r.returncode == 0, r.stderr
    said = " ".join(r.stderr.split())  # lines may wrap
    assert said.count("no config in a .weights.h5 file") == 1, r.stderr
    assert "bidir.weights.h5" in r.stderr and "more" in r.stderr


# -- 10, 11. export tf1 with a GRU; scale by NaN ------------------------------------------------

def test_tf1_export_skips_a_gru_with_one_note(tmp_path):
    r = run_cli("export", LSTM_GRU, "--layout", "tf1", "-o", tmp_path / "tf1")
    assert r.exit_code == 0, r.output
    assert r.output.count("GRU has no TF1 LSTMCell layout") == 1 and "halves" not in r.output
    manifest = json.load(open(tmp_path / "tf1" / "manifest.json"))
    assert list(manifest["layers"]) == ["lstm"] and "gru" in manifest["skipped"]
    r = run_cli("export", LSTM_GRU, "--layout", "tf1", "-o", tmp_path / "g", "--layer", "gru")
    assert r.exit_code == 2 and "GRU has no TF1" in r.output
    assert not (tmp_path / "g").exists()


def test_scale_by_nan_says_why_in_its_own_words(tmp_path):
    m = tmp_path / "m.h5"
    shutil.copy(LSTM_GRU, m)
    r = run_cli("scale", m, "lstm:W_*", "nan")
    assert r.exit_code == 2 and "scale factor" in r.output and "bias" not in r.output, r.output


# -- 12. a two-row GRU bias: one definition, labelled ---------------------------------------------

def test_gru_b_z_is_the_same_number_everywhere(tmp_path):
    out = tmp_path / "pt"
    run_cli("export", LSTM_GRU, "--layout", "torch", "-o", out)
    with h5py.File(LSTM_GRU) as f:
        bias = f["model_weights/gru/gru/gru_cell/bias"][()]
    u = bias.shape[1] // 3
    b_z = bias[:, :u].astype(np.float64).sum(axis=0)  # Keras' GRU gate order z, r, h
    shown = f"{b_z.mean():.4g}"
    imported = run_cli("import", LSTM_GRU, out / "gru.safetensors", "--layout", "torch", "--dry-run").output
    assert f"b_z (input+recurrent)  {shown}" in imported, imported
    stats = _json("inspect", LSTM_GRU, "--stats", "--json")
    gru = next(c for c in stats["cells"] if c["path"] == "gru")
    row = next(r for r in gru["gate_table"] if r["gate"] == "z")
    assert row["b"]["stats"]["of"] == "input+recurrent"
    assert abs(row["b"]["stats"]["mean"] - b_z.mean()) < 1e-9
    m = tmp_path / "m.h5"
    shutil.copy(LSTM_GRU, m)
    chrono = run_cli("chrono-init", m, "--tmax", "10", "--seed", "0", "--dry-run").output
    assert f"b_z (input+recurrent)  {shown}" in chrono, chrono


# -- 13. timescales: the axis the picture really has ---------------------------------------------

def test_timescales_axis_is_log_only_when_the_memories_span_a_decade(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from lstmtool.pictures import draw

    seen = {}
    real = draw._save

    def keep(fig, out, axes):
        seen.update({t: ax.get_xscale() for t, ax in axes.items()})
        return real(fig, out, axes)

    draw._save = keep
    try:
        draw.plot_timescales(LSTM_GRU, str(tmp_path / "a.png"))
        assert seen["lstm timescales"] == "linear"  # T between 1.4 and 3: one decade
        m = tmp_path / "m.h5"
        shutil.copy(LSTM_GRU, m)
        np.save(tmp_path / "b_f.npy", np.array([0.0, 2.0, 5.0, 8.0], np.float32))  # T = 2 ... 2982
        assert run_cli("set", m, "lstm:b_f", "--from", tmp_path / "b_f.npy").exit_code == 0
        draw.plot_timescales(str(m), str(tmp_path / "b.png"))
        assert seen["lstm timescales"] == "log"
    finally:
        draw._save = real


# -- 14. piped output is laid out for the terminal the user sits at ----------------------------

def test_piped_output_takes_the_width_of_the_terminal_on_stderr():
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()  # an 80-column terminal, as a tmux pane: stdout piped to `tail`
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    cmd = [sys.executable, "-m", "lstmtool", "inspect", os.path.join(FIXTURES, "keras3", "bidir.h5")]
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=slave, text=True, env=env, start_new_session=True)
    finally:
        os.close(slave)
        os.close(master)
    assert r.returncode == 0
    long = [x for x in r.stdout.splitlines() if len(x) > 80 and " " in x.strip()]
    assert not long, long[:3]
    free = subprocess.run(cmd, capture_output=True, text=True, env=env, start_new_session=True)
    assert max(map(len, free.stdout.splitlines())) > 80  # no terminal anywhere: whole lines, for grep
    wide = subprocess.run(cmd, capture_output=True, text=True, env=dict(env, COLUMNS="60"), start_new_session=True)
    assert max(len(x) for x in wide.stdout.splitlines() if " " in x.strip()) <= 60


# -- 15. Ctrl-C at any moment ---------------------------------------------------------------------

def test_ctrl_c_at_any_moment_says_interrupted_and_exits_130(tmp_path):
    src = os.path.join(FIXTURES, "tfkeras", "bidir.h5")
    cmd = [sys.executable, "-m", "lstmtool", "upgrade", src, "-o"]
    start = time.monotonic()
    subprocess.run(cmd + [str(tmp_path / "whole.keras")], check=True, capture_output=True)
    whole = time.monotonic() - start  # the signal lands at moments spread over one whole run, and after it
    outcomes = []
    shares = [0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.9, 0.95, 1.0, 1.05] + [0.3, 0.4, 0.5, 0.6] * 3
    for k, share in enumerate(shares):
        if k >= 10 and 130 in outcomes:
            break  # a busy machine can make the first ten land after the work: then a few more, earlier
        out = tmp_path / f"o{k}.keras"
        p = subprocess.Popen(cmd + [str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(share * whole)
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=60)
        outcomes.append(p.returncode)
        assert p.returncode in (0, 130), (share, p.returncode, err)
        assert "Traceback" not in err, err
        if p.returncode == 130:
            assert "interrupted" in err
        if out.exists():  # never half-written
            with zipfile.ZipFile(out) as z:
                assert z.testzip() is None
    assert 130 in outcomes, outcomes
