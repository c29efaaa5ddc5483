"""Hostile and damaged inputs (issue 10), the cases the fuzz campaign does not make on its own."""
import os
import shutil
import subprocess
import sys
import time
import zipfile

import h5py
import numpy as np
import pytest

import lstmtool
from conftest import FIXTURES, run_cli

K3 = os.path.join(FIXTURES, "keras3")


def test_string_kernel_is_incomplete_never_exported_as_objects(tmp_path):
    work = tmp_path / "m.h5"
    shutil.copy(os.path.join(K3, "lstm_gru.weights.h5"), work)
    with h5py.File(work, "r+") as f:
        del f["layers/lstm/cell/vars/0"]
        f["layers/lstm/cell/vars/0"] = np.array([b"abc", b"def"])
    with lstmtool.load(work) as m:
        assert "lstm" not in [c.path for c in m.cells]
        bad = [i for i in m.incomplete if i.path == "lstm"]
        assert bad and "not floating point" in bad[0].problem
    r = run_cli("export", work, "-o", tmp_path / "e")
    assert r.exit_code == 0 and not (tmp_path / "e" / "lstm").exists()


def test_recurrent_weights_that_fit_no_cell_are_listed_not_dropped(tmp_path):
    work = tmp_path / "m.h5"
    shutil.copy(os.path.join(K3, "lstm_gru.weights.h5"), work)
    with h5py.File(work, "r+") as f:
        del f["layers/lstm/cell/vars/1"]
        f["layers/lstm/cell/vars/1"] = np.ones((4, 7), np.float32)  # 7 columns: no cell has that
    with lstmtool.load(work) as m:
        assert [i.path for i in m.incomplete] == ["lstm"]
        assert "fit no recurrent cell" in m.incomplete[0].problem


def test_keras_archive_without_config_says_so(tmp_path):
    work = tmp_path / "noconfig.keras"
    with zipfile.ZipFile(os.path.join(K3, "lstm_gru.keras")) as src, zipfile.ZipFile(work, "w") as out:
        for info in src.infolist():
            if info.filename != "config.json":
                out.writestr(info, src.read(info))
    r = run_cli("inspect", work)
    assert r.exit_code == 0 and "no config.json" in r.stderr


def test_failed_export_leaves_no_partial_directory(tmp_path, monkeypatch):
    from lstmtool.exchange import gates as exchange

    calls = []

    def failing_save(path, array):
        calls.append(path)
        if len(calls) > 2:
            raise OSError(28, "No space left on device")
        with open(path, "wb") as fh:
            np.lib.format.write_array(fh, array)

    monkeypatch.setattr(exchange.np, "save", failing_save)
    out = tmp_path / "gates"
    from lstmtool.errors import WriteError

    with pytest.raises(WriteError, match="disk full"):  # one line naming the output, not numpy's words
        exchange.export_model(os.path.join(K3, "lstm_gru.h5"), str(out))
    assert os.listdir(tmp_path) == [] and len(calls) == 3


def test_file_held_open_for_writing_is_not_called_damaged(tmp_path):
    work = tmp_path / "m.h5"
    shutil.copy(os.path.join(K3, "lstm_gru.h5"), work)
    holder = subprocess.Popen([sys.executable, "-c", "import h5py, sys, time\n"
                               "f = h5py.File(sys.argv[1], 'a'); print('open', flush=True); time.sleep(30)",
                               str(work)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        r = subprocess.run([sys.executable, "-m", "lstmtool", "inspect", str(work)], capture_output=True, text=True,
                           env={**os.environ, "HDF5_USE_FILE_LOCKING": "TRUE"})
        if r.returncode == 0:
            pytest.skip("this filesystem does not lock HDF5 files")
        assert "another program" in r.stderr and "damaged" not in r.stderr
    finally:
        holder.kill()


def test_zip_bomb_in_config_is_refused_without_expanding_it(tmp_path):
    import resource

    work = tmp_path / "bomb.keras"
    with zipfile.ZipFile(os.path.join(K3, "lstm_gru.keras")) as src, zipfile.ZipFile(work, "w") as out:
        for info in src.infolist():
            if info.filename == "config.json":
                z = zipfile.ZipInfo("config.json")
                z.compress_type = zipfile.ZIP_DEFLATED
                with out.open(z, "w") as w:
                    for _ in range(300):
                        w.write(b" " * (1 << 20))
                    w.write(src.read(info))
            else:
                out.writestr(info, src.read(info))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    r = run_cli("inspect", work)
    assert r.exit_code == 1 and "zip bomb" in r.stderr
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100 << 10  # KB: under 100 MB more


def test_deeply_nested_config_and_link_cycles(tmp_path):
    work = tmp_path / "deep.h5"
    shutil.copy(os.path.join(K3, "lstm_gru.h5"), work)
    with h5py.File(work, "r+") as f:
        f.attrs["model_config"] = '{"class_name": "Sequential", "config": ' + '{"layer": ' * 50000 + "1" + "}" * 50001
        f["model_weights"]["loop"] = f["model_weights"]  # a hard link cycle
    r = run_cli("inspect", work)
    assert r.exit_code == 1 and "nested too deeply" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_endless_hdf5_read_is_ended_by_the_watchdog():
    """The HDF5 library loops forever on this file's damaged attribute (found by the fuzz
    campaign); the CLI gives up at the deadline with one line, exit status 137."""
    path = os.path.join(FIXTURES, "damaged", "endless_attribute_read.h5")
    start = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "lstmtool", "inspect", path], capture_output=True, text=True,
                       env={**os.environ, "LSTMTOOL_LOAD_TIMEOUT": "3"}, timeout=60)
    assert r.returncode in (137, -9) and time.monotonic() - start < 30
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and "does not finish" in r.stderr


def test_metadata_that_declares_gigabytes_is_refused_in_bounded_memory():
    """A fuzz mutant (seed 11, case 231) whose `layer_names` heap object claims ~1 GB: the
    HDF5 library allocated it before finding it wrong. The CLI caps the address space while
    metadata is read, so the allocation fails inside the library: one line, small RSS."""
    path = os.path.join(FIXTURES, "damaged", "huge_vlen_attribute.h5")
    before = open(path, "rb").read()
    proc = subprocess.Popen([sys.executable, "-m", "lstmtool", "inspect", path], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "damaged HDF5 file" in err and len(err.strip().splitlines()) == 1
    assert open(path, "rb").read() == before
    r = subprocess.run([sys.executable, "-c", "import resource, subprocess, sys; "
                        "subprocess.run([sys.executable, '-m', 'lstmtool', 'inspect', sys.argv[1]], "
                        "capture_output=True); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)", path],
                       capture_output=True, text=True, timeout=60)
    assert int(r.stdout) < 300 * 1024, f"peak RSS {int(r.stdout) // 1024} MB"
