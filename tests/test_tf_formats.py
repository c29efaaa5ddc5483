"""TF SavedModels and TF-format checkpoints (issue 11), judged by TensorFlow's own reader.

Fixtures are written by tf-keras 2.21 (fixtures/make_tf_fixtures.py); the real-world
directories come from ../shared/realworld.
"""
import json
import os
import shutil
import struct

import numpy as np
import pytest

import lstmtool
from lstmtool.containers import tf_bundle
from conftest import FIXTURES, REALWORLD, run_cli

TF = os.path.join(FIXTURES, "tf")
FIXTURE_DIRS = ["seq_savedmodel", "mix_savedmodel", "mix_ckpt", "sharded_ckpt/ckpt"]
REAL = ["iteam1-savedmodel/lstm_model", "beagle-savedmodel/gru_model", "stockpred-ckpt"]
# what lstmtool must find in each real-world directory (MANIFEST.md)
REAL_CELLS = {
    "iteam1-savedmodel/lstm_model": [("lstm_5", "LSTM", 64)],
    "beagle-savedmodel/gru_model": [("gru", "GRU", 64), ("gru_1", "GRU", 64)],
    "stockpred-ckpt": [("layer_with_weights-0", "LSTM", 128), ("layer_with_weights-1", "LSTM", 64),
                       ("layer_with_weights-2", "LSTM", 32)],
}


def tf_reader(prefix):
    import tensorflow as tf

    return tf.train.load_checkpoint(prefix)


def all_paths():
    out = [os.path.join(TF, d) for d in FIXTURE_DIRS]
    if os.path.isdir(REALWORLD):
        out += [os.path.join(REALWORLD, d) for d in REAL]
    return out


@pytest.mark.parametrize("path", all_paths(), ids=os.path.basename)
def test_every_gate_slice_equals_tensorflows_tensor(path):
    with lstmtool.load(path) as m:
        prefix = m.store.bundle.prefix
        reader = tf_reader(prefix)
        assert m.cells
        for cell in m.cells:
            for part in ("W", "U", "b"):
                for gate, view in getattr(cell, part).items():
                    (term,) = view.terms
                    want = reader.get_tensor(term.tensor.path)[term.index]
                    got = view.numpy()
                    assert got.dtype == want.dtype and got.tobytes() == want.tobytes(), (cell.path, part, gate)


@pytest.mark.parametrize("name", REAL)
def test_realworld_directories_show_the_manifest_cells(realworld, name):
    r = run_cli("inspect", os.path.join(realworld, name), "--json")
    assert r.exit_code == 0, r.stderr
    cells = json.loads(r.stdout)["cells"]
    assert [(c["path"], c["class"], c["units"]) for c in cells] == REAL_CELLS[name]


def test_savedmodel_cells_come_from_the_object_graph_not_key_names(realworld):
    """iteam1 keys its LSTM `trainable_variables/N/...`: only the object graph names the layer."""
    with lstmtool.load(os.path.join(realworld, "iteam1-savedmodel/lstm_model")) as m:
        (cell,) = m.cells
        assert cell.tensors["kernel"].path.startswith("trainable_variables/")
        assert cell.path == "lstm_5" and m.format == "tf-savedmodel" and m.keras_version == "2.6.0"
        assert not any("OPTIMIZER_SLOT" in t.path for c in m.cells for t in c.tensors.values())


def test_every_path_a_user_types(tmp_path):
    ck = os.path.join(TF, "mix_ckpt")
    state = tmp_path / "elsewhere"
    state.mkdir()
    (state / "checkpoint").write_text(f'model_checkpoint_path: "{ck}/ckpt"\n')
    for p in [ck, os.path.join(ck, "ckpt"), os.path.join(ck, "ckpt.index"),
              os.path.join(ck, "ckpt.data-00000-of-00001"), os.path.join(ck, "checkpoint"), str(state),
              os.path.join(TF, "seq_savedmodel"), os.path.join(TF, "seq_savedmodel", "variables", "variables")]:
        with lstmtool.load(p) as m:
            assert len(m.cells) >= 2, p


def test_sharded_and_partitioned_checkpoint_reads_like_tensorflow():
    prefix = os.path.join(TF, "sharded_ckpt", "ckpt")
    b = tf_bundle.Bundle(prefix)
    assert b.num_shards > 1 and b.slice_entries
    reader = tf_reader(prefix)
    for key, e in b.entries.items():
        if e.numeric:
            assert b.array(key).tobytes() == reader.get_tensor(key).tobytes(), key
    b.close()


def test_table_writer_output_reads_back_and_tensorflow_reads_it(tmp_path):
    src = os.path.join(TF, "mix_ckpt", "ckpt")
    for name in os.listdir(os.path.dirname(src)):
        shutil.copy(os.path.join(os.path.dirname(src), name), tmp_path)
    rows, _ = tf_bundle.read_table(open(src + ".index", "rb").read())
    rebuilt = tf_bundle.write_table([(k, v) for k, v, _ in rows])
    assert [(k, v) for k, v, _ in tf_bundle.read_table(rebuilt)[0]] == [(k, v) for k, v, _ in rows]
    (tmp_path / "ckpt.index").write_bytes(rebuilt)
    reader = tf_reader(str(tmp_path / "ckpt"))
    for k, _, _ in rows[1:]:
        reader.get_tensor(k.decode())


def copy_dir(name, tmp_path):
    dst = tmp_path / name.split("/")[0]
    shutil.copytree(os.path.join(TF, name.split("/")[0]), dst)
    return dst


@pytest.mark.parametrize("name", ["seq_savedmodel", "mix_ckpt", "sharded_ckpt"])
def test_edit_in_place_changes_only_the_tensor_and_its_crc(tmp_path, name):
    work = copy_dir(name, tmp_path)
    target = work / "ckpt" if "ckpt" in name else work
    before = {f: (work / f).read_bytes() for f in os.listdir(work) if os.path.isfile(work / f)}
    with lstmtool.load(target) as m:
        prefix = m.store.bundle.prefix
        lstm = next(c for c in m.cells if c.family == "lstm")
        term = lstm.b["f"].terms[0]
        key, index = term.tensor.path, term.index
        old = m.store.bundle.array(key)
    r = run_cli("set-forget-bias", "1.25", target)
    assert r.exit_code == 0, r.stderr
    reader = tf_reader(prefix)
    new = reader.get_tensor(key)  # TensorFlow checks every CRC32C it reads
    want = old.copy()
    want[index] = 1.25
    assert new.tobytes() == want.tobytes()
    for k in reader.get_variable_to_shape_map():
        reader.get_tensor(k)
    idx_before = open(os.path.join(TF, os.path.relpath(prefix, tmp_path)) + ".index", "rb").read()
    idx_after = open(prefix + ".index", "rb").read()
    assert len(idx_before) == len(idx_after)
    changed = [i for i in range(len(idx_after)) if idx_before[i] != idx_after[i]]
    assert 0 < len(changed) <= 8 * (1 + len(tf_bundle.Bundle(prefix).block_handles))
    for f, data in before.items():  # no leftovers; shards keep their length
        if ".data-" in f:
            assert len((work / f).read_bytes()) == len(data)
    assert not [n for n in os.listdir(work) if "lstmtool-tmp" in n]


def test_edited_savedmodel_loads_in_tf_keras_with_the_new_values(tmp_path):
    import tf_keras

    work = copy_dir("seq_savedmodel", tmp_path)
    out = tmp_path / "edited_model"
    assert run_cli("set", work, "lstm_hs:b_f", "2.5", "-o", out).exit_code == 0
    assert run_cli("set", work, "lstm_hs:b_f", "2.5", "-o", out).exit_code == 2  # never overwritten silently
    m = tf_keras.models.load_model(str(out), compile=False)
    bias = m.get_layer("lstm_hs").get_weights()[2]
    assert np.all(bias[4:8] == 2.5)
    orig = tf_keras.models.load_model(str(work), compile=False).get_layer("lstm_hs").get_weights()[2]
    assert np.array_equal(np.delete(bias, range(4, 8)), np.delete(orig, range(4, 8)))


def test_edit_to_a_new_checkpoint_prefix(tmp_path):
    out = tmp_path / "new" / "ckpt"
    out.parent.mkdir()
    r = run_cli("set-forget-bias", "0.5", os.path.join(TF, "mix_ckpt"), "-o", out)
    assert r.exit_code == 0, r.stderr
    reader = tf_reader(str(out))
    assert np.all(reader.get_tensor("layer_with_weights-1/cell/cells/0/bias/.ATTRIBUTES/VARIABLE_VALUE")[4:8] == 0.5)


def test_partitioned_tensors_are_refused_for_editing(tmp_path):
    work = copy_dir("sharded_ckpt", tmp_path)
    before = {f: (work / f).read_bytes() for f in os.listdir(work)}
    with lstmtool.load(work / "ckpt") as m:
        sliced = [c for c in m.cells if c.family == "lstm"
                  and m.store.bundle.entries[c.tensors["kernel"].path].sliced]
    assert sliced
    r = run_cli("set", work / "ckpt", f"{sliced[0].path}:W_f", "0")
    assert r.exit_code == 2 and "partitioned" in r.stderr
    assert {f: (work / f).read_bytes() for f in os.listdir(work)} == before


def test_export_import_round_trip_restores_every_byte(tmp_path):
    work = copy_dir("mix_ckpt", tmp_path)
    original = {f: (work / f).read_bytes() for f in os.listdir(work)}
    assert run_cli("export", work, "-o", tmp_path / "gates").exit_code == 0
    assert run_cli("set-forget-bias", "7", work).exit_code == 0
    assert {f: (work / f).read_bytes() for f in os.listdir(work)} != original
    assert run_cli("import", work, tmp_path / "gates").exit_code == 0
    assert {f: (work / f).read_bytes() for f in os.listdir(work)} == original


@pytest.mark.parametrize("damage", ["tensor", "index_block", "truncated_index", "missing_shard", "short_shard"])
def test_damaged_checkpoints_give_one_line_errors(tmp_path, damage):
    work = copy_dir("mix_ckpt", tmp_path)
    shard, index = work / "ckpt.data-00000-of-00001", work / "ckpt.index"
    if damage == "tensor":
        data = bytearray(shard.read_bytes())
        b = tf_bundle.Bundle(str(work / "ckpt"))
        e = b.entries["layer_with_weights-1/cell/cells/0/bias/.ATTRIBUTES/VARIABLE_VALUE"]
        b.close()
        data[e.offset + 3] ^= 0x40
        shard.write_bytes(bytes(data))
    elif damage == "index_block":
        data = bytearray(index.read_bytes())
        data[40] ^= 1
        index.write_bytes(bytes(data))
    elif damage == "truncated_index":
        index.write_bytes(index.read_bytes()[:-20])
    elif damage == "missing_shard":
        shard.unlink()
    else:
        shard.write_bytes(shard.read_bytes()[:1000])
    before = {f: (work / f).read_bytes() for f in os.listdir(work)}
    for args in (["show", work / "ckpt", "layer_with_weights-1/cell_0", "--part", "b"],
                 ["set-forget-bias", "1", work / "ckpt"]):
        r = run_cli(*args)
        assert r.exit_code in (1, 2), (args, r.stdout)
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr
    assert {f: (work / f).read_bytes() for f in os.listdir(work)} == before
    if damage == "tensor":
        assert "CRC32C" in r.stderr and "cells/0/bias" in r.stderr


@pytest.mark.parametrize("name", ["seq_savedmodel", "mix_savedmodel"])
def test_savedmodel_upgrades_and_matches_tf_keras(tmp_path, name):
    import keras
    import tf_keras

    out = tmp_path / f"{name}.keras"
    r = run_cli("upgrade", os.path.join(TF, name), "-o", out)
    assert r.exit_code == 0, r.stderr
    exp = np.load(os.path.join(TF, f"{name}.expected.npz"))
    m3 = keras.saving.load_model(str(out))
    assert np.abs(m3.predict(exp["x"], verbose=0) - exp["y"]).max() <= 1e-5
    m2 = tf_keras.models.load_model(os.path.join(TF, name), compile=False)
    assert np.abs(m2.predict(exp["x"], verbose=0) - exp["y"]).max() <= 1e-6


@pytest.mark.parametrize("name", ["iteam1-savedmodel/lstm_model", "beagle-savedmodel/gru_model"])
def test_realworld_savedmodels_upgrade_and_match_tf_keras(realworld, tmp_path, name):
    import keras
    import tf_keras

    out = tmp_path / "up.keras"
    assert run_cli("upgrade", os.path.join(realworld, name), "-o", out).exit_code == 0
    m2 = tf_keras.models.load_model(os.path.join(realworld, name), compile=False)
    m3 = keras.saving.load_model(str(out))
    x = np.random.default_rng(0).normal(0, 1, [3] + [d or 4 for d in m2.input_shape[1:]]).astype("float32")
    assert np.abs(m3.predict(x, verbose=0) - m2.predict(x, verbose=0)).max() <= 1e-5


def test_bare_checkpoint_needs_a_model_for_verify_and_says_so():
    r = run_cli("verify", os.path.join(TF, "mix_ckpt"))
    assert r.exit_code == 2 and "SavedModel directory" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_verify_a_savedmodel_named_by_its_variables_prefix():
    r = run_cli("verify", os.path.join(TF, "mix_savedmodel", "variables", "variables"), "--json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["ok"] and len(data["layers"]) == 3


def test_string_tensor_crc_is_checked(tmp_path):
    work = copy_dir("mix_ckpt", tmp_path)
    b = tf_bundle.Bundle(str(work / "ckpt"))
    e = b.entries["_CHECKPOINTABLE_OBJECT_GRAPH"]
    b.close()
    data = bytearray((work / "ckpt.data-00000-of-00001").read_bytes())
    data[e.offset + e.size - 5] ^= 1
    (work / "ckpt.data-00000-of-00001").write_bytes(bytes(data))
    r = run_cli("inspect", work)
    assert r.exit_code == 1 and "_CHECKPOINTABLE_OBJECT_GRAPH" in r.stderr and "CRC32C" in r.stderr


def test_masked_crc_matches_tensorflows_definition():
    assert tf_bundle.crc32c(b"123456789") == 0xE3069283
    assert tf_bundle.mask(0) == 0xA282EAD8
    assert struct.pack("<I", tf_bundle.mask(0x12345678))  # fits 32 bits


@pytest.fixture(scope="module")
def big_checkpoint(tmp_path_factory):
    """A tf-keras checkpoint with an LSTM and a 64 MB Dense, so that kills land mid-edit."""
    import tf_keras

    d = tmp_path_factory.mktemp("bigckpt")
    m = tf_keras.Sequential([tf_keras.layers.LSTM(8, input_shape=(3, 2), name="lstm"),
                             tf_keras.layers.Dense(1 << 21, name="wide")])
    m.save_weights(str(d / "ckpt"), save_format="tf")
    return d


def test_sigkill_at_any_instant_leaves_a_checkpoint_tensorflow_loads(tmp_path, big_checkpoint):
    """>= 50 SIGKILLs at random instants of an in-place edit: TensorFlow's reader (which
    checks every CRC32C) always loads the checkpoint, with b_f all old or all new."""
    import random
    import signal
    import subprocess
    import sys
    import time

    from conftest import ROOT

    originals = {f: (big_checkpoint / f).read_bytes() for f in os.listdir(big_checkpoint)}
    work = tmp_path / "ck"
    key = "layer_with_weights-0/cell/bias/.ATTRIBUTES/VARIABLE_VALUE"
    old_bias = tf_reader(str(big_checkpoint / "ckpt")).get_tensor(key)
    cmd = [sys.executable, "-m", "lstmtool", "set-forget-bias", "3.0", str(work / "ckpt")]

    def reset():
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        for f, data in originals.items():
            (work / f).write_bytes(data)

    reset()
    start = time.monotonic()
    subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
    end = time.monotonic() - start
    rng = random.Random(11)
    outcomes = {"old": 0, "new": 0, "mid": 0}
    shard = "ckpt.data-00000-of-00001"
    for trial in range(50):
        reset()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
        began = time.monotonic()
        if trial % 2:  # inside the write protocol: from the first temporary file on
            while proc.poll() is None and not any("lstmtool-tmp" in n for n in os.listdir(work)) \
                    and time.monotonic() - began < 10:
                time.sleep(0.0005)
            time.sleep(rng.uniform(0, max(0.0, end - (time.monotonic() - began))))
        else:
            time.sleep(rng.uniform(0.2 * end, 1.1 * end))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        mid = len((work / shard).read_bytes()) != len(originals[shard]) or \
            any("lstmtool-tmp" in n for n in os.listdir(work))
        reader = tf_reader(str(work / "ckpt"))
        for k in reader.get_variable_to_shape_map():
            reader.get_tensor(k)  # raises on any CRC mismatch
        bias = reader.get_tensor(key)
        if np.array_equal(bias, old_bias):
            state = "old"
        else:
            assert np.all(bias[8:16] == 3.0) and np.array_equal(np.delete(bias, range(8, 16)),
                                                                np.delete(old_bias, range(8, 16))), trial
            state = "new"
        outcomes[state] += 1
        outcomes["mid"] += mid
    print(f"\nTF checkpoint SIGKILL trials: 50; {outcomes}")
    assert outcomes["old"] >= 1 and outcomes["new"] >= 1 and outcomes["mid"] >= 5


def test_bare_checkpoint_upgrade_is_refused_with_the_reason(tmp_path):
    r = run_cli("upgrade", os.path.join(TF, "mix_ckpt"), "-o", tmp_path / "x.weights.h5")
    assert r.exit_code == 1 and "without a model config" in r.stderr and not (tmp_path / "x.weights.h5").exists()


def test_state_file_naming_no_file_and_graph_naming_missing_tensors(tmp_path):
    """Two causes the TF fuzz campaign found: a `checkpoint` file whose path holds NUL bytes,
    and an object graph that names a tensor the index lacks (a config-less checkpoint)."""
    work = copy_dir("mix_ckpt", tmp_path)
    (work / "checkpoint").write_bytes(b'model_checkpoint_path: "ck\x00pt"\n')
    r = run_cli("inspect", work)
    assert r.exit_code == 1 and "not a file name" in r.stderr
    (work / "checkpoint").write_text('model_checkpoint_path: "ckpt"\n')
    index = work / "ckpt.index"
    rows, _ = tf_bundle.read_table(index.read_bytes())
    kept = [(k, v) for k, v, _ in rows if b"forward_layer/cell/kernel" not in k]
    index.write_bytes(tf_bundle.write_table(kept))
    r = run_cli("inspect", work, "--json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert [i["path"] for i in data["incomplete"]] == ["layer_with_weights-0/forward"]
    assert "not in the checkpoint" in data["incomplete"][0]["problem"]
