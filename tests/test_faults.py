"""Fault injection on the write path: SIGKILL at random moments, disk full, no permission.

Whatever happens, the original is byte-identical to before or is the complete new file.
"""
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np
import pytest

from conftest import FIXTURES, ROOT

SRC = os.path.join(FIXTURES, "keras3", "lstm_gru.h5")
CMD = [sys.executable, "-m", "lstmtool", "set-forget-bias", "1.0"]


@pytest.fixture(scope="module")
def big_model(tmp_path_factory):
    """A real Keras file grown with a 48 MB non-Keras top-level dataset (which must survive),
    so that killing lands inside the copy often enough."""
    d = tmp_path_factory.mktemp("big")
    path = d / "big.h5"
    shutil.copy(SRC, path)
    with h5py.File(path, "r+") as f:
        f.create_dataset("extra_data/blob", data=np.random.default_rng(0).integers(0, 255, 48 << 20, dtype=np.uint8))
    ref = d / "ref.h5"
    subprocess.run(CMD + [str(path), "-o", str(ref)], check=True, capture_output=True, cwd=ROOT)
    return path.read_bytes(), ref.read_bytes()


def timeline(work):
    """(seconds until the temp file appears, seconds until the command exits)."""
    start = time.monotonic()
    proc = subprocess.Popen(CMD + [str(work)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    appear = None
    while proc.poll() is None:
        if appear is None and any("lstmtool-tmp" in n for n in os.listdir(work.parent)):
            appear = time.monotonic() - start
        time.sleep(0.001)
    return appear, time.monotonic() - start


def test_sigkill_never_leaves_a_half_written_model(tmp_path, big_model):
    original, new = big_model
    work = tmp_path / "m.h5"
    work.write_bytes(original)
    appear, end = timeline(work)
    assert appear is not None and work.read_bytes() == new
    rng = random.Random(1234)
    outcomes = {"original": 0, "new": 0}
    killed_with_temp = 0
    trials = 60
    for trial in range(trials):
        for leftover in tmp_path.iterdir():
            leftover.unlink()
        work.write_bytes(original)
        proc = subprocess.Popen(CMD + [str(work)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
        kind = trial % 3
        if kind == 1:  # inside the copy/write: wait for the temporary file, then a little more
            deadline = time.monotonic() + 10
            while proc.poll() is None and time.monotonic() < deadline and \
                    not any("lstmtool-tmp" in n for n in os.listdir(tmp_path)):
                time.sleep(0.0005)
            time.sleep(rng.uniform(0, 0.6 * max(0.0, end - appear)))
        else:  # anywhere, or around the rename at the end (a wide window: timings drift under load)
            time.sleep(rng.uniform(0, end) if kind == 0 else rng.uniform(0.9 * end, 1.5 * end))
        temp_present = any("lstmtool-tmp" in n for n in os.listdir(tmp_path))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        data = work.read_bytes()
        assert data in (original, new), f"trial {trial}: model is neither the original nor the new file"
        outcomes["original" if data == original else "new"] += 1
        killed_with_temp += temp_present and data == original
    stale = [n for n in os.listdir(tmp_path) if "lstmtool-tmp" in n]
    if not stale:  # make one, as a kill during the copy does
        (tmp_path / ".m.1234.lstmtool-tmp.h5").write_bytes(b"partial")
    work.write_bytes(original)
    r = subprocess.run(CMD + [str(work)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and "left by an interrupted lstmtool run" in r.stderr
    print(f"\nSIGKILL trials: {trials}; original kept {outcomes['original']}, new complete {outcomes['new']}, "
          f"killed while the temporary copy existed {killed_with_temp}")
    assert killed_with_temp >= 5 and outcomes["new"] >= 1 and outcomes["original"] >= 5


def test_disk_full_leaves_original_and_no_temp(tmp_path):
    import resource

    work = tmp_path / "m.h5"
    shutil.copy(SRC, work)
    before = work.read_bytes()
    limit = len(before) // 2  # like a full disk: writes beyond this fail (EFBIG)

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    r = subprocess.run(CMD + [str(work)], capture_output=True, text=True, preexec_fn=small_files, cwd=ROOT)
    assert r.returncode == 1, r.stderr
    assert r.stderr.strip().count("\n") == 0 and "disk full" in r.stderr and "Traceback" not in r.stderr
    assert work.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.h5"]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to an unprivileged user")
def test_directory_not_writable(tmp_path):
    d = tempfile.mkdtemp(prefix="lstmtool-ro-", dir="/tmp")
    try:
        os.chmod(d, 0o755)
        work = os.path.join(d, "m.h5")
        shutil.copy(SRC, work)
        os.chmod(work, 0o666)  # the file is writable; its directory is not
        os.chmod(d, 0o555)
        before = open(work, "rb").read()
        code = (
            "import os, sys\n"
            "import lstmtool.cli, lstmtool.surgery.edit, lstmtool.cli.render, lstmtool.reading.reader, lstmtool.surgery.writeback\n"
            "import lstmtool.containers.tf_checkpoint, mmap, google_crc32c\n"
            "import h5py, numpy, rich.table, rich.console, tempfile, zipfile, difflib, fnmatch, json, errno\n"
            "os.setgid(65534); os.setuid(65534)\n"
            "lstmtool.cli.main(['set-forget-bias', '1', sys.argv[1]])\n"
        )
        r = subprocess.run([sys.executable, "-c", code, work], capture_output=True, text=True, cwd=ROOT)
        assert r.returncode == 1, r.stderr
        assert "directory is not writable" in r.stderr and r.stderr.count("\n") == 1
        assert open(work, "rb").read() == before and os.listdir(d) == ["m.h5"]
    finally:
        os.chmod(d, 0o755)
        shutil.rmtree(d)
