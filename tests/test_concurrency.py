"""Two real processes editing one file: both edits land, the archive stays valid.

And the output-safety rules: -o never replaces a file unasked, backups are never
overwritten, a no-op edit leaves the file alone, live temp files are not "left over".
"""
import os
import shutil
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

import lstmtool
from conftest import FIXTURES, ROOT, run_cli

CASES = [os.path.join(FIXTURES, "keras3", "lstm_gru.keras"), os.path.join(FIXTURES, "keras3", "lstm_gru.h5")]


def start(*args):
    return subprocess.Popen([sys.executable, "-m", "lstmtool", *map(str, args)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("src", CASES, ids=os.path.basename)
def test_two_concurrent_edits_both_land(tmp_path, src):
    work = tmp_path / os.path.basename(src)
    for trial in range(6):
        shutil.copy(src, work)
        a = start("set-forget-bias", "1.0", work)
        time.sleep(0.02 * trial)
        b = start("set", work, "lstm:b_i", "0.5")
        for p in (a, b):
            _, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
        with lstmtool.load(work) as m:
            cell = m.cell("lstm")
            assert np.all(cell.b["f"].numpy() == 1.0), f"trial {trial}: the first edit was lost"
            assert np.all(cell.b["i"].numpy() == 0.5), f"trial {trial}: the second edit was lost"
        if str(work).endswith(".keras"):
            with zipfile.ZipFile(work) as zf:
                assert zf.testzip() is None, "stored CRC-32 does not match the member"
        assert not [n for n in os.listdir(tmp_path) if "lstmtool-tmp" in n]


def test_no_wait_refuses_while_another_run_holds_the_file(tmp_path):
    from lstmtool.surgery.filelock import locked

    work = tmp_path / "m.h5"
    shutil.copy(CASES[1], work)
    before = work.read_bytes()
    with locked([work]):
        p = subprocess.run([sys.executable, "-m", "lstmtool", "set-forget-bias", "1", str(work), "--no-wait"],
                           capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 1 and "another lstmtool run is editing" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    assert work.read_bytes() == before


def test_live_temp_file_is_not_called_abandoned(tmp_path):
    work = tmp_path / "m.h5"
    shutil.copy(CASES[1], work)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        live = tmp_path / f".m.abc.lstmtool-tmp-{sleeper.pid}-.h5"
        live.write_bytes(b"in progress")
        dead = tmp_path / ".m.def.lstmtool-tmp-999999999-.h5"
        dead.write_bytes(b"partial")
        r = run_cli("set-forget-bias", "1", work, "--dry-run")
        assert str(dead) in r.stderr and str(live) not in r.stderr
    finally:
        sleeper.kill()


def test_output_never_replaces_a_file_unasked(tmp_path):
    other = tmp_path / "unrelated.h5"
    other.write_bytes(b"precious")
    r = run_cli("set-forget-bias", "1", CASES[1], "-o", other)
    assert r.exit_code == 2 and "already exists" in r.stderr and other.read_bytes() == b"precious"
    assert run_cli("set-forget-bias", "1", CASES[1], "-o", other, "--force").exit_code == 0
    with lstmtool.load(other) as m:
        assert np.all(m.cell("lstm").b["f"].numpy() == 1.0)
    r = run_cli("set-forget-bias", "1", CASES[1], "-o", tmp_path)
    assert r.exit_code == 2 and "directory" in r.stderr


def test_output_symlink_is_refused(tmp_path):
    real = tmp_path / "real.h5"
    real.write_bytes(b"x")
    link = tmp_path / "link.h5"
    link.symlink_to(real)
    r = run_cli("set-forget-bias", "1", CASES[1], "-o", link, "--force")
    assert r.exit_code == 2 and "symbolic link" in r.stderr and real.read_bytes() == b"x"


def test_second_backup_keeps_the_first(tmp_path):
    work = tmp_path / "m.h5"
    shutil.copy(CASES[1], work)
    original = work.read_bytes()
    assert run_cli("set-forget-bias", "1", work, "--backup").exit_code == 0
    edited_once = work.read_bytes()
    assert run_cli("set-forget-bias", "2", work, "--backup").exit_code == 0
    assert (tmp_path / "m.h5.bak").read_bytes() == original
    assert (tmp_path / "m.h5.bak.2").read_bytes() == edited_once


def test_edit_that_changes_nothing_leaves_the_file_alone(tmp_path):
    work = tmp_path / "m.h5"
    shutil.copy(CASES[1], work)
    assert run_cli("set-forget-bias", "1", work).exit_code == 0
    st = os.stat(work)
    time.sleep(0.01)
    r = run_cli("set-forget-bias", "1", work)
    assert r.exit_code == 0 and "left untouched" in r.stdout
    st2 = os.stat(work)
    assert (st.st_ino, st.st_mtime_ns) == (st2.st_ino, st2.st_mtime_ns)


def test_read_only_model_fails_before_showing_a_change_table(tmp_path):
    work = tmp_path / "m.h5"
    shutil.copy(CASES[1], work)
    os.chmod(work, 0o444)
    r = run_cli("set-forget-bias", "1", work)
    assert r.exit_code == 1 and "read-only" in r.stderr and "->" not in r.stdout
