"""What a new user hit, round 2 (issue 18): each test failed before its fix."""
import json
import os
import shutil
import subprocess
import tempfile

import numpy as np
import pytest

from conftest import FIXTURES, REALWORLD, run_cli

BIDIR = os.path.join(FIXTURES, "tfkeras", "bidir.h5")
PEER = os.path.join(os.path.dirname(os.path.dirname(FIXTURES)), "shared", "peer")


def other_filesystem(near):
    """A writable directory on another filesystem than `near`, or None."""
    here = os.stat(near).st_dev
    for candidate in ("/dev/shm", tempfile.gettempdir()):
        if os.path.isdir(candidate) and os.access(candidate, os.W_OK) and os.stat(candidate).st_dev != here:
            return tempfile.mkdtemp(dir=candidate)
    if os.geteuid() == 0 and shutil.which("mount"):  # root: mount a tmpfs of our own
        where = tempfile.mkdtemp()
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", where],
                          capture_output=True).returncode == 0:
            return where
    return None


@pytest.mark.parametrize("name", ["tfkeras/bidir.h5", "tfkeras/bidir.wonly.h5", "legacy/keras1_lstm_theano.h5"])
def test_upgrade_onto_another_filesystem(tmp_path, name):
    src = tmp_path / os.path.basename(name)
    shutil.copy(os.path.join(FIXTURES, name), src)
    where = other_filesystem(str(tmp_path))
    if where is None:
        pytest.skip("no second filesystem here (no /dev/shm on another device, not root to mount a tmpfs)")
    out = os.path.join(where, "new" + (".weights.h5" if "wonly" in name else ".keras"))
    r = run_cli("upgrade", src, "-o", out)
    assert r.exit_code == 0, r.output
    assert os.path.getsize(out) > 0
    import keras

    if name == "tfkeras/bidir.h5":
        m = keras.saving.load_model(out, compile=False)
        x = np.load(os.path.join(FIXTURES, "tfkeras", "bidir.expected.npz"))
        np.testing.assert_allclose(np.asarray(m.predict(x["x"], verbose=0)), x["y"], atol=1e-5)


def test_overflow_is_refused_not_written_as_inf(tmp_path):
    m = tmp_path / "m.h5"
    shutil.copy(BIDIR, m)
    before = m.read_bytes()
    for args in (["set", m, "bilstm/forward:b_f", "1e39"], ["scale", m, "bilstm/forward:W_*", "1e39"],
                 ["set-forget-bias", "1e39", m]):
        r = run_cli(*args)
        assert r.exit_code == 2, r.output
        assert "would be stored as inf" in r.output
        assert "RuntimeWarning" not in r.output
    assert m.read_bytes() == before


def test_float16_overflow(tmp_path):
    m = tmp_path / "f16.keras"
    shutil.copy(os.path.join(FIXTURES, "keras3", "float16.keras"), m)
    import lstmtool

    with lstmtool.load(m) as model:
        cell = model.cells[0].path
    r = run_cli("set", m, f"{cell}:b_f" if model.cells[0].family == "lstm" else f"{cell}:b_z", "70000")
    assert r.exit_code == 2 and "float16" in r.output, r.output


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="no /dev/null")
def test_device_nodes_are_never_replaced(tmp_path):
    m = tmp_path / "m.h5"
    shutil.copy(BIDIR, m)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for target in ("/dev/null", str(fifo)):
        kind = os.stat(target).st_mode
        for args in (["set", m, "bilstm/forward:b_f", "1", "-o", target, "--force"],
                     ["upgrade", m, "-o", target, "--force"],
                     ["export", m, "-o", target, "--force"],
                     ["import", m, str(tmp_path), "-o", target, "--force"]):
            r = run_cli(*args)
            assert r.exit_code == 2, (args, r.output)
            assert "not a regular file" in r.output, r.output
        assert os.stat(target).st_mode == kind  # still the device / FIFO


def test_output_naming_the_input_needs_force(tmp_path):
    m = tmp_path / "m.h5"
    shutil.copy(BIDIR, m)
    before = m.read_bytes()
    r = run_cli("set", m, "bilstm/forward:b_f", "1", "-o", m)
    assert r.exit_code == 2 and "is the input itself" in r.output
    assert m.read_bytes() == before
    assert run_cli("set", m, "bilstm/forward:b_f", "1", "-o", m, "--force").exit_code == 0
    assert m.read_bytes() != before


def test_verify_tolerance_must_be_a_number():
    for bad in ("nan", "-1", "inf"):
        r = run_cli("verify", BIDIR, "--tolerance", bad)
        assert r.exit_code == 2, (bad, r.output)


def test_verify_bidirectional_convlstm_halves():
    path = os.path.join(PEER, "dl4j-tfkeras", "convlstm2d_2.h5")
    if not os.path.exists(path):
        pytest.skip("../shared/peer is not beside this checkout")
    from lstmtool.reading.verify import verify_file

    result = verify_file(path)
    assert result["ok"], result  # was 0.647: each half compared with the forward weights
    assert all(r["max_abs_diff"] == 0 for r in result["layers"])


def test_verify_cudnn_on_a_cpu():
    path = os.path.join(REALWORLD, "depression-cudnn", "covarep_cudnnlstm_min_model.h5")
    if not os.path.exists(path):
        pytest.skip("../shared/realworld is not beside this checkout")
    from lstmtool.reading.verify import verify_file

    result = verify_file(path)  # was NotFoundError: CudnnRNNV3 needs a GPU
    assert result["ok"] and result["layers"][0]["max_abs_diff"] < 1e-5, result


def test_one_bad_file_does_not_end_the_batch(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("not a model")
    r = run_cli("inspect", BIDIR, bad, BIDIR)
    assert r.exit_code == 1
    assert r.stdout.count("bilstm/forward  LSTM") == 2  # the third file is shown
    assert "bad.txt: not a Keras model" in r.stderr
    r = run_cli("inspect", BIDIR, bad, "--json")
    assert r.exit_code == 1
    docs = json.loads(r.stdout)
    assert docs[0]["file"].endswith("bidir.h5") and "error" in docs[1]


def test_trace_goes_on_past_a_half_written_checkpoint(tmp_path):
    for k in (1, 2, 3):
        shutil.copy(BIDIR, tmp_path / f"w-{k}.h5")
    with open(tmp_path / "w-2.h5", "r+b") as fh:
        fh.truncate(2000)
    r = run_cli("trace", str(tmp_path / "w-*.h5"))
    assert r.exit_code == 1
    assert "w-1.h5" in r.stdout and "w-3.h5" in r.stdout
    assert "1 of 3 file(s)" in r.stderr


def test_trace_with_nothing_to_trace_is_exit_1():
    r = run_cli("trace", BIDIR, "--gate", "q")
    assert r.exit_code == 1, r.output


def test_import_of_unchanged_values_leaves_the_file_alone(tmp_path):
    m = tmp_path / "m.h5"
    shutil.copy(BIDIR, m)
    assert run_cli("export", m, "-o", tmp_path / "g").exit_code == 0
    st = os.stat(m)
    r = run_cli("import", m, tmp_path / "g", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert not any(c["changed"] for c in doc["changes"])
    after = os.stat(m)
    assert (after.st_ino, after.st_mtime_ns) == (st.st_ino, st.st_mtime_ns)


def test_plot_force_exists_on_diff_and_trace(tmp_path):
    png = tmp_path / "d.png"
    png.write_bytes(b"old")
    r = run_cli("diff", BIDIR, BIDIR, "--plot", png)
    assert r.exit_code == 2 and "--force" in r.output
    pytest.importorskip("matplotlib")
    assert run_cli("diff", BIDIR, BIDIR, "--plot", png, "--force").exit_code == 0
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_upgrade_dry_run_needs_no_output():
    r = run_cli("upgrade", BIDIR, "--dry-run")
    assert r.exit_code == 0, r.output
    assert "dry run" in r.output


def test_special_kind():
    from lstmtool.core.files import special_kind

    assert special_kind("/dev/null") == "character device"
    assert special_kind(BIDIR) is None
    assert special_kind("/nonexistent/x") is None
    assert special_kind(os.path.dirname(BIDIR)) == "directory"
    assert special_kind(os.path.dirname(BIDIR), directory_ok=True) is None


def test_a_waiting_edit_says_whom_it_waits_for(tmp_path):
    import sys
    import time

    m = tmp_path / "m.h5"
    shutil.copy(BIDIR, m)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from lstmtool.surgery.filelock import locked\n"
        f"with locked([{str(m)!r}]):\n    print('held', flush=True); time.sleep(2.5)")],
        stdout=subprocess.PIPE, text=True, cwd=os.path.dirname(FIXTURES))
    try:
        assert holder.stdout.readline().strip() == "held"
        start = time.monotonic()
        r = subprocess.run([sys.executable, "-m", "lstmtool", "set", str(m), "bilstm/forward:b_f", "1"],
                           capture_output=True, text=True, cwd=os.path.dirname(FIXTURES))
        assert r.returncode == 0, r.stderr
        assert time.monotonic() - start > 1.0  # it did wait
        assert "waiting:" in r.stderr and f"pid {holder.pid}" in r.stderr, r.stderr
    finally:
        holder.wait(timeout=30)


def test_import_labels_each_half_by_its_own_name(tmp_path):
    for name in ("tfkeras/bidir.h5", "legacy/cudnngru_weights.h5"):
        m = tmp_path / os.path.basename(name)
        shutil.copy(os.path.join(FIXTURES, name), m)
        assert run_cli("export", m, "-o", tmp_path / (m.name + ".g")).exit_code == 0
        r = run_cli("import", m, tmp_path / (m.name + ".g"), "--dry-run", "--json")
        assert r.exit_code == 0, r.output
        labels = {(c["cell"], c["target"]) for c in json.loads(r.stdout)["changes"]}
        assert len(labels) == len(json.loads(r.stdout)["changes"])  # no two alike
        if "bidir" in name:
            assert ("bilstm/forward", "W_i") in labels and ("bilstm/backward", "W_i") in labels
        else:
            assert any(t.endswith("_input") for _, t in labels) and any(t.endswith("_recurrent") for _, t in labels)


def test_80_columns(tmp_path):
    """Every table at 80 columns fits, keeps its header, and is no record-per-value list."""
    import sys

    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    shutil.copy(BIDIR, a)
    assert run_cli("scale", a, "bilstm/*:W_*", "1.5", "-o", b).exit_code == 0
    for k in (1, 2, 3):
        shutil.copy(os.path.join(FIXTURES, "keras3", "stacked.h5"), tmp_path / f"w-{k}.h5")
    shutil.copy(BIDIR, tmp_path / "w-4.h5")
    cudnn = os.path.join(REALWORLD, "depression-cudnn", "covarep_cudnnlstm_min_model.h5")
    runs = {"diff": ["diff", a, b], "edit": ["scale", a, "bilstm/*:W_*", "2", "--dry-run"],
            "trace": ["trace", str(tmp_path / "w-*.h5")], "explain": ["explain", BIDIR, "bigru/forward"]}
    if os.path.exists(cudnn):
        runs["explain-cudnn"] = ["explain", cudnn, "lstm_cell"]
    env = dict(os.environ, COLUMNS="80")
    for what, args in runs.items():
        r = subprocess.run([sys.executable, "-m", "lstmtool", *map(str, args)], capture_output=True, text=True,
                           env=env, cwd=os.path.dirname(FIXTURES))
        lines = r.stdout.splitlines()
        assert lines, (what, r.stderr)
        assert max(map(len, lines)) <= 80, (what, [x for x in lines if len(x) > 80])
        if what == "trace":
            assert sum(x.strip().startswith("file ") for x in lines) >= 2  # each part keeps its header
        if what == "diff":
            assert len(lines) <= 12, lines  # one line per gate, not a block per value
        if what == "edit":
            assert sum("->" in x for x in lines) == 8, lines
        if what.startswith("explain"):
            assert not any(x.strip().startswith("+ ") and "blocks" in x for x in lines)  # prose has no "+"


def test_pictures_round2(tmp_path):
    pytest.importorskip("matplotlib")
    import lstmtool
    from lstmtool.pictures.draw import timescales, trace_axis

    with lstmtool.load(os.path.join(FIXTURES, "upgrade", "hard_sigmoid.h5")) as m:
        cell = next(c for c in m.cells if c.family == "lstm")
        t, gate, _ = timescales(cell)
        b = cell.b["f"].numpy().astype(np.float64)
        want = 1.0 / (1.0 - np.clip(0.2 * b + 0.5, 0.0, 1.0))  # the gate Keras 2 computed
        np.testing.assert_allclose(t, want)
        assert not np.allclose(t, 1.0 + np.exp(b))  # what the sigmoid formula would have said
    x, kind = trace_axis(["w-03-0.41.hdf5", "w-10-0.22.hdf5", "w-7-0.30.hdf5"])
    assert kind == "epoch" and list(x) == [3, 10, 7]
    assert trace_axis(["best.h5", "last.h5"])[1] == "index"
    r = run_cli("plot", BIDIR, "-o", tmp_path / "x.jpg")
    assert r.exit_code == 2 and ".png, .svg or .pdf" in r.output and not (tmp_path / "x.jpg").exists()
    assert run_cli("plot", BIDIR, "-o", tmp_path / "x.svg").exit_code == 0
    assert b"<svg" in (tmp_path / "x.svg").read_bytes()[:400]


def test_diff_of_a_cudnn_upgrade_says_it_is_equivalent(tmp_path):
    src = os.path.join(REALWORLD, "depression-cudnn", "covarep_cudnnlstm_min_model.h5")
    if not os.path.exists(src):
        pytest.skip("../shared/realworld is not beside this checkout")
    assert run_cli("upgrade", src, "-o", tmp_path / "u.keras").exit_code == 0
    r = run_cli("diff", src, tmp_path / "u.keras")
    assert r.exit_code == 1
    assert "CuDNNLSTM -> LSTM" in r.stdout and "all equivalent" in r.stdout


def test_show_and_explain_name_an_incomplete_cell(tmp_path):
    m = tmp_path / "m.h5"
    shutil.copy(BIDIR, m)
    import h5py

    with h5py.File(m, "r+") as f:
        group = f["model_weights/bilstm"]
        victims = []
        group.visititems(lambda n, o: victims.append(n) if n.endswith("recurrent_kernel:0") else None)
        del group[next(v for v in victims if "forward" in v)]
    r = run_cli("inspect", m)
    assert "incomplete" in (r.stdout + r.stderr).lower()
    for args in (["show", m, "bilstm/forward"], ["explain", m, "bilstm/forward"]):
        r = run_cli(*args)
        assert r.exit_code == 1 and "is incomplete" in r.stderr and "no recurrent cell named" not in r.stderr, r.stderr


def test_quiet_and_color_flags_after_the_command():
    r = run_cli("inspect", BIDIR, "-q", "--no-color")
    assert r.exit_code == 0, r.output
    assert "warning" not in r.stderr


def test_messages_of_round2(tmp_path):
    import sys

    m = tmp_path / "m.h5"
    shutil.copy(BIDIR, m)
    np.savez(tmp_path / "z.npz", a=np.zeros(4, "float32"))
    (tmp_path / "notes.txt").write_text("hello")
    np.save(tmp_path / "o.npy", np.array([{}], dtype=object), allow_pickle=True)
    for name, words in (("z.npz", "an .npz archive"), ("notes.txt", "not a .npy array file"),
                        ("o.npy", "never unpickles")):
        r = run_cli("set", m, "bilstm/forward:b_f", "--from", tmp_path / name)
        assert r.exit_code == 2 and words in r.stderr and "allow_pickle" not in r.stderr, r.stderr
    saved = os.path.join(FIXTURES, "tf", "seq_savedmodel")
    for part in ("saved_model.pb", "variables"):
        r = run_cli("inspect", os.path.join(saved, part))
        assert r.exit_code == 2 and "one part of the TensorFlow SavedModel" in r.stderr, r.stderr
    if os.path.exists("/dev/full"):
        r = subprocess.run(f"{sys.executable} -m lstmtool --help > /dev/full", shell=True, capture_output=True,
                           text=True)
        assert r.returncode == 1 and "Traceback" not in r.stderr and "cannot write" in r.stderr, r.stderr


def test_export_onto_a_full_disk_names_the_output(tmp_path):
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tiny tmpfs needs root")
    where = tmp_path / "tiny"
    where.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(where)],
                      capture_output=True).returncode:
        pytest.skip("this machine does not let the test mount a tmpfs")
    try:
        r = run_cli("export", BIDIR, "-o", where / "gates")
        assert r.exit_code == 1 and "disk full" in r.stderr and str(where / "gates") in r.stderr, r.stderr
        assert os.listdir(where) == []
    finally:
        subprocess.run(["umount", str(where)], capture_output=True)


def test_bidirectional_with_a_backward_layer_of_another_class(tmp_path):
    """Found by the random-model generator with a new seed (43, model 3): Bidirectional(LSTM,
    backward_layer=SimpleRNN(use_bias=False)) in a legacy .h5, whose halves are not named
    forward_/backward_: split as the config says (3 + 2 weights), not half and half."""
    import generator as G

    k = G.keras_module("keras3")
    model = G.Builder(k, np.random.default_rng([43, 3, True])).model()
    kcells = G.keras_cells(k, model)
    for path in G.save_all(k, model, str(tmp_path / "g3"), "keras3"):
        work = tmp_path / (os.path.basename(path) + ".work")
        work.mkdir()
        assert G.check_file(path, kcells, "keras3", str(work)) == [], path
