"""Bad input: one line on stderr naming the problem, the right exit status, no traceback."""
import os
import shutil
import zipfile

import pytest

from conftest import FIXTURES, run_cli

K3 = os.path.join(FIXTURES, "keras3")


def one_line_error(r, code, *needles):
    assert r.exit_code == code, (r.exit_code, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lstmtool: error:"), r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    for n in needles:
        assert n in lines[0], lines[0]


def test_missing_file(tmp_path):
    one_line_error(run_cli("inspect", tmp_path / "nope.h5"), 2, "no such file")


def test_directory(tmp_path):
    one_line_error(run_cli("inspect", tmp_path), 2, "is a directory")


def test_not_a_model(tmp_path):
    p = tmp_path / "notes.h5"
    p.write_text("hello, I am not HDF5")
    one_line_error(run_cli("inspect", p), 1, "not a Keras model")


def test_empty_file(tmp_path):
    p = tmp_path / "empty.keras"
    p.write_bytes(b"")
    one_line_error(run_cli("inspect", p), 1, "empty file")


@pytest.mark.parametrize("name", ["lstm_gru.h5", "lstm_gru.keras"])
def test_truncated(tmp_path, name):
    src = os.path.join(K3, name)
    p = tmp_path / name
    p.write_bytes(open(src, "rb").read()[: os.path.getsize(src) // 2])
    before = p.read_bytes()
    one_line_error(run_cli("inspect", p), 1)
    assert p.read_bytes() == before


def test_zip_without_weights(tmp_path):
    p = tmp_path / "model.keras"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("config.json", "{}")
    one_line_error(run_cli("inspect", p), 1, "model.weights.h5")


def test_zip_with_unsafe_member_name(tmp_path):
    p = tmp_path / "evil.keras"
    shutil.copy(os.path.join(K3, "lstm_gru.keras"), p)
    with zipfile.ZipFile(p, "a") as z:
        z.writestr("../../etc/evil", "x")
    one_line_error(run_cli("inspect", p), 1, "unsafe name")


def test_hdf5_but_not_keras(tmp_path):
    import h5py

    p = tmp_path / "data.h5"
    with h5py.File(p, "w") as f:
        f["x"] = [1, 2, 3]
    one_line_error(run_cli("inspect", p), 1, "not a Keras model")


def test_external_link_refused(tmp_path):
    import h5py

    p = tmp_path / "linked.h5"
    shutil.copy(os.path.join(K3, "lstm_gru.h5"), p)
    with h5py.File(p, "r+") as f:
        del f["model_weights/lstm"]
        f["model_weights/lstm"] = h5py.ExternalLink("/etc/passwd", "/x")
    one_line_error(run_cli("inspect", p), 1, "external link")


def test_unknown_layer(tmp_path):
    one_line_error(run_cli("explain", os.path.join(K3, "lstm_gru.h5"), "lstn"), 2, "did you mean 'lstm'")


def test_bad_config_json(tmp_path):
    import h5py

    p = tmp_path / "badcfg.h5"
    shutil.copy(os.path.join(K3, "lstm_gru.h5"), p)
    with h5py.File(p, "r+") as f:
        f.attrs["model_config"] = "{not json"
    one_line_error(run_cli("inspect", p), 1, "not valid JSON")


def test_external_storage_refused(tmp_path):
    import h5py
    import numpy as np

    (tmp_path / "secret.bin").write_bytes(np.zeros(16, np.float32).tobytes())
    p = tmp_path / "ext.h5"
    shutil.copy(os.path.join(K3, "lstm_gru.h5"), p)
    with h5py.File(p, "r+") as f:
        path = "model_weights/lstm/lstm/lstm_cell/bias"
        del f[path]
        f.create_dataset(path, shape=(16,), dtype="f4", external=[(str(tmp_path / "secret.bin"), 0, 64)])
    one_line_error(run_cli("inspect", p), 1, "external file")


def test_zip_bomb_refused(tmp_path):
    p = tmp_path / "bomb.keras"
    with zipfile.ZipFile(p, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("config.json", "{}")
        z.writestr("model.weights.h5", b"\0" * (50 << 20))
    one_line_error(run_cli("inspect", p), 1, "zip bomb")


def test_compressed_weights_member_is_still_readable(tmp_path):
    src = os.path.join(K3, "lstm_gru.keras")
    p = tmp_path / "deflated.keras"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(p, "w", compression=zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info.filename))
    r = run_cli("inspect", p, "--json")
    assert r.exit_code == 0 and '"lstm"' in r.stdout
    r = run_cli("set-forget-bias", "1", p)
    assert r.exit_code == 2 and "compressed" in r.stderr


def test_custom_recurrent_class_is_reported_not_guessed(tmp_path):
    import h5py

    p = tmp_path / "custom.h5"
    shutil.copy(os.path.join(K3, "lstm_gru.h5"), p)
    with h5py.File(p, "r+") as f:
        f.attrs["model_config"] = f.attrs["model_config"].replace('"class_name": "LSTM"', '"class_name": "MyLSTM"')
    r = run_cli("inspect", p, "--json")
    assert r.exit_code == 0
    import json

    assert [c["path"] for c in json.loads(r.stdout)["cells"]] == ["gru"]
    assert "lstm_cell/recurrent_kernel: looks like a recurrent kernel" in r.stderr
