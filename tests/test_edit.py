"""Surgery on real Keras 2 and Keras 3 files: only the asked-for bytes change, Keras agrees."""
import os
import shutil

import numpy as np
import pytest

import lstmtool
from conftest import FIXTURES, expected, fid, fixture_files, run_cli
from helpers import assert_only_slices_changed, lstm_cells, predict, snapshot

ALL = fixture_files()
WITH_LSTM = [p for p in ALL if "seq_simple" not in p]  # seq_simple's LSTM has no bias


def forget_slices(path):
    with lstmtool.load(path) as m:
        out = {}
        for c in m.cells:
            if c.family == "lstm" and c.b:
                for t in c.b["f"].terms:
                    out.setdefault(t.tensor.path, []).append(t.index)
        return out


@pytest.mark.parametrize("path", WITH_LSTM, ids=fid)
def test_set_forget_bias_changes_only_forget_slices(tmp_path, path):
    work = tmp_path / os.path.basename(path)
    shutil.copy(path, work)
    r = run_cli("set-forget-bias", "1.5", work)
    assert r.exit_code == 0, r.stderr
    diff = assert_only_slices_changed(path, str(work), forget_slices(path))
    assert diff, "nothing changed"
    with lstmtool.load(work) as m:
        for c in m.cells:
            if c.family == "lstm" and c.b:
                assert np.all(c.b["f"].numpy() == np.float32(1.5))
    assert not [p for p in os.listdir(tmp_path) if "lstmtool-tmp" in p]


@pytest.mark.parametrize("path", WITH_LSTM, ids=fid)
def test_edited_file_computes_what_set_weights_computes(tmp_path, path):
    """Reload in the Keras that wrote it; compare with the same edit done through Keras."""
    work = str(tmp_path / os.path.basename(path))
    assert run_cli("set-forget-bias", "2.0", path, "-o", work).exit_code == 0
    x = expected(path)["x"]
    got, _, _ = predict(work, x, like=path)
    ref_out, model, k = predict(path, x)
    cells = lstm_cells(k, model)
    assert cells
    for cell in cells:
        b = np.array(cell.bias)
        u = b.shape[0] // 4
        b[u:2 * u] = 2.0
        cell.bias.assign(b)
    want = np.asarray(model(x))
    assert not np.allclose(ref_out, want), "the edit should change the output"
    _, edited, _ = predict(work, x, like=path)
    for a, b in zip(edited.get_weights(), model.get_weights()):  # exactly the same weights...
        assert np.array_equal(a, b)
    np.testing.assert_allclose(got, want, atol=1e-5)  # ...so the same outputs (TF threads may reorder sums)


def test_keras_zip_members_and_crc(tmp_path):
    src = os.path.join(FIXTURES, "keras3", "lstm_gru.keras")
    work = tmp_path / "m.keras"
    shutil.copy(src, work)
    assert run_cli("set-forget-bias", "1", work).exit_code == 0
    before, after = snapshot(src), snapshot(str(work))  # snapshot() checks every CRC
    assert before["zip:config.json"] == after["zip:config.json"]
    assert before["zip:metadata.json"] == after["zip:metadata.json"]
    assert os.path.getsize(src) == os.path.getsize(work)


def test_output_option_leaves_model_untouched(tmp_path):
    src = os.path.join(FIXTURES, "tfkeras", "bidir.h5")
    work = tmp_path / "in.h5"
    shutil.copy(src, work)
    before = work.read_bytes()
    r = run_cli("set-forget-bias", "1", work, "-o", tmp_path / "out.h5")
    assert r.exit_code == 0 and work.read_bytes() == before
    assert (tmp_path / "out.h5").read_bytes() != before


def test_dry_run_and_backup(tmp_path):
    src = os.path.join(FIXTURES, "keras3", "bidir.h5")
    work = tmp_path / "m.h5"
    shutil.copy(src, work)
    before = work.read_bytes()
    r = run_cli("set-forget-bias", "3", work, "--dry-run")
    assert r.exit_code == 0 and "dry run" in r.stdout and work.read_bytes() == before
    r = run_cli("set-forget-bias", "3", work, "--backup")
    assert r.exit_code == 0 and (tmp_path / "m.h5.bak").read_bytes() == before
    assert work.read_bytes() != before


def test_skipped_cells_are_listed_and_no_lstm_is_an_error(tmp_path):
    src = os.path.join(FIXTURES, "keras3", "bidir.keras")
    r = run_cli("set-forget-bias", "1", src, "--dry-run")
    assert "GRU has no forget gate" in r.stdout
    g = os.path.join(FIXTURES, "keras3", "seq_simple.keras")
    work = tmp_path / "s.keras"
    shutil.copy(g, work)
    before = work.read_bytes()
    r = run_cli("set-forget-bias", "1", work)
    assert r.exit_code == 1 and "no LSTM cell with a bias" in r.stderr and work.read_bytes() == before


def test_set_and_scale_targets(tmp_path):
    src = os.path.join(FIXTURES, "keras3", "bidir.keras")
    work = str(tmp_path / "m.keras")
    assert run_cli("set", src, "bigru/forward:U_r", "0.25", "-o", work).exit_code == 0
    with lstmtool.load(src) as a, lstmtool.load(work) as b:
        assert np.all(b.cell("bigru/forward").U["r"].numpy() == np.float32(0.25))
        assert np.array_equal(a.cell("bigru/forward").U["z"].numpy(), b.cell("bigru/forward").U["z"].numpy())
    work2 = str(tmp_path / "m2.keras")
    assert run_cli("scale", src, "bilstm:W_*", "-2", "-o", work2).exit_code == 0
    with lstmtool.load(src) as a, lstmtool.load(work2) as b:
        for half in ("forward", "backward"):
            for g in "ifco":
                assert np.array_equal(b.cell(f"bilstm/{half}").W[g].numpy(), a.cell(f"bilstm/{half}").W[g].numpy() * -2)


def test_set_from_npy_checks_shape_dtype_and_nan(tmp_path):
    src = os.path.join(FIXTURES, "keras3", "lstm_gru.h5")
    work = tmp_path / "m.h5"
    shutil.copy(src, work)
    before = work.read_bytes()
    np.save(tmp_path / "bad.npy", np.zeros((5, 5), np.float32))
    r = run_cli("set", work, "lstm:U_f", "--from", tmp_path / "bad.npy")
    assert r.exit_code == 2 and "needs shape (4, 4) dtype float32" in r.stderr
    np.save(tmp_path / "f64.npy", np.zeros((4, 4)))
    assert run_cli("set", work, "lstm:U_f", "--from", tmp_path / "f64.npy").exit_code == 2
    nan = np.full((4, 4), np.nan, np.float32)
    np.save(tmp_path / "nan.npy", nan)
    r = run_cli("set", work, "lstm:U_f", "--from", tmp_path / "nan.npy")
    assert r.exit_code == 2 and "NaN" in r.stderr
    assert work.read_bytes() == before
    good = np.arange(16, dtype=np.float32).reshape(4, 4)
    np.save(tmp_path / "good.npy", good)
    assert run_cli("set", work, "lstm:U_f", "--from", tmp_path / "good.npy").exit_code == 0
    with lstmtool.load(work) as m:
        assert np.array_equal(m.cell("lstm").U["f"].numpy(), good)


def test_unknown_target_suggests(tmp_path):
    src = os.path.join(FIXTURES, "keras3", "lstm_gru.h5")
    r = run_cli("set", src, "lstn:b_f", "1")
    assert r.exit_code == 2 and "did you mean 'lstm'" in r.stderr
    r = run_cli("set", src, "lstm:bf", "1")
    assert r.exit_code == 2 and "LAYERPATH:PART_GATE" in r.stderr


def test_read_only_file_refused(tmp_path):
    work = tmp_path / "ro.h5"
    shutil.copy(os.path.join(FIXTURES, "keras3", "lstm_gru.h5"), work)
    os.chmod(work, 0o444)
    before = work.read_bytes()
    r = run_cli("set-forget-bias", "1", work)
    assert r.exit_code == 1 and "read-only" in r.stderr
    assert work.read_bytes() == before and os.listdir(tmp_path) == ["ro.h5"]


def test_chrono_init_lstm_and_gru(tmp_path):
    src = os.path.join(FIXTURES, "keras3", "lstm_gru.keras")
    work = str(tmp_path / "c.keras")
    r = run_cli("chrono-init", src, "--tmax", "100", "--seed", "7", "-o", work)
    assert r.exit_code == 0, r.stderr
    rng = np.random.default_rng(7)
    bf = np.log(rng.uniform(1, 99, 4))
    bz = np.log(rng.uniform(1, 99, 3))
    with lstmtool.load(work) as m:
        lstm, gru = m.cell("lstm"), m.cell("gru")
        np.testing.assert_allclose(lstm.b["f"].numpy(), bf, rtol=1e-6)
        np.testing.assert_allclose(lstm.b["i"].numpy(), -bf, rtol=1e-6)
        b = gru.b["z"].numpy()  # (2, u): effective bias = row 0 + row 1
        np.testing.assert_allclose(b[0] + b[1], bz, rtol=1e-6)
    # Sign check in real Keras: with zero input and zero state, z = sigmoid(b_z) > 1/2 keeps
    # the old state (h_t = z*h_{t-1} + (1-z)*h~_t), i.e. z plays the forget gate's role.
    import keras

    model = keras.models.load_model(work, compile=False)
    gru_layer = model.get_layer("gru")
    z_keras = 1 / (1 + np.exp(-(np.array(gru_layer.cell.bias)[0, :3] + np.array(gru_layer.cell.bias)[1, :3])))
    assert np.all(z_keras > 0.5)


def test_in_place_through_symlink_edits_the_target(tmp_path):
    real = tmp_path / "real.h5"
    shutil.copy(os.path.join(FIXTURES, "keras3", "lstm_gru.h5"), real)
    link = tmp_path / "link.h5"
    link.symlink_to(real)
    assert run_cli("set-forget-bias", "1", link).exit_code == 0
    assert link.is_symlink()
    with lstmtool.load(real) as m:
        assert np.all(m.cell("lstm").b["f"].numpy() == 1)


def test_owner_and_mode_kept(tmp_path):
    work = tmp_path / "m.h5"
    shutil.copy(os.path.join(FIXTURES, "keras3", "lstm_gru.h5"), work)
    os.chmod(work, 0o640)
    if os.geteuid() == 0:
        os.chown(work, 65534, 65534)
    before = os.stat(work)
    assert run_cli("set-forget-bias", "1", work).exit_code == 0
    after = os.stat(work)
    assert (after.st_mode, after.st_uid, after.st_gid) == (before.st_mode, before.st_uid, before.st_gid)
    assert after.st_ino != before.st_ino  # a new file was renamed into place


def test_several_models_and_verify_flag(tmp_path):
    a, b = tmp_path / "a.keras", tmp_path / "b.h5"
    shutil.copy(os.path.join(FIXTURES, "keras3", "lstm_gru.keras"), a)
    shutil.copy(os.path.join(FIXTURES, "tfkeras", "bidir.h5"), b)
    r = run_cli("set-forget-bias", "0.5", a, b, "--verify")
    assert r.exit_code == 0, r.stderr
    for p in (a, b):
        with lstmtool.load(p) as m:
            assert all(np.all(c.b["f"].numpy() == np.float32(0.5)) for c in m.cells if c.family == "lstm")


def test_import_dry_run_writes_nothing(tmp_path):
    src = os.path.join(FIXTURES, "keras3", "lstm_gru.keras")
    assert run_cli("export", src, "-o", tmp_path / "e").exit_code == 0
    work = tmp_path / "m.keras"
    shutil.copy(src, work)
    assert run_cli("scale", work, "lstm:U_*", "2").exit_code == 0
    before = work.read_bytes()
    r = run_cli("import", work, tmp_path / "e", "--dry-run")
    assert r.exit_code == 0 and "dry run" in r.stdout and work.read_bytes() == before


def test_chunked_dataset_edited_through_h5py(tmp_path):
    """Keras never writes chunked datasets, other tools may: edited via h5py on the copy."""
    import h5py

    work = tmp_path / "chunked.h5"
    shutil.copy(os.path.join(FIXTURES, "keras3", "lstm_gru.h5"), work)
    with lstmtool.load(work) as m:
        bias_path = m.cell("lstm").tensors["bias"].path
    with h5py.File(work, "r+") as f:
        data = f[bias_path][()]
        del f[bias_path]
        f.create_dataset(bias_path, data=data, chunks=(4,), compression="gzip")
    before = snapshot(str(work))
    assert run_cli("set-forget-bias", "2", work).exit_code == 0
    after = snapshot(str(work))
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {bias_path.lstrip("/")}
    with lstmtool.load(work) as m:
        b = m.cell("lstm").b
        assert np.all(b["f"].numpy() == 2) and np.array_equal(b["i"].numpy(), data[:4])
