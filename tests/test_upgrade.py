"""`upgrade`, judged by real Keras 3 (`keras.saving.load_model`, safe_mode on).

For every fixture and every full real-world model: the upgraded file loads in Keras 3,
each recurrent layer in it computes what lstmtool's NumPy reference computes from the
*original* file with the original Keras' formulas (hard_sigmoid 0.2x+0.5 included),
and where tf-keras loads the original, the whole model's outputs agree.
"""
import glob
import json
import os
import zipfile

import numpy as np
import pytest

import lstmtool
from conftest import FIXTURES, fid, run_cli
from lstmtool.model import group_cells

FULL = [p for p in sorted(glob.glob(os.path.join(FIXTURES, "*", "*")))
        if not p.endswith((".npz", ".weights.h5", ".wonly.h5")) and "cudnngru_weights" not in p
        and "windows_lstm_gru" not in p and os.path.isfile(p)]

# Real-world full models: None = upgrades; a string = refused, with that reason in the message.
REALWORLD = {
    "aashmit-tfk213/GRU.h5": None,
    "aind-vui/model_2.h5": "Lambda layers hold Python bytecode",
    "bi_lstm/lstm_model.keras": None,
    "cse5393-lab9/gru.h5": None,
    "depression-cudnn/covarep_cudnnlstm_min_model.h5": None,
    "dl4j-fixtures/bidirectional_lstm_theano_1.h5": None,
    "dl4j-fixtures/simple_rnn_theano_1.h5": None,
    "dot-res-lstm/bilstm.h5": None,
    "dot-res-lstm/gru.h5": None,
    "grammarVAE/eq_vae_grammar_h100_c234_L25_E50_batchB.hdf5": "Lambda layers hold Python bytecode",
    "har-convlstm/LRCN_model.h5": None,
    "har-convlstm/convlstm.h5": None,
    "praali/bilstm_model.h5": "incomplete in the file",
    "ts-bilstm/bilstm_model.keras": None,
    "xauusd-gru/gru_model.keras": None,
    "eco-keras1/sherry_turkle-the_second_self_computers_and_the_human_spirit_i10e10s1.h5": "weights only",
    "psi-walk/model.h5": "weights only",
    "textgenrnn/textgenrnn_weights.hdf5": "weights only",
    "rnn-congestion/grumodel.weights.h5": "weights only",
    "stock-nishe/lstmNishe.weights.h5": "weights only",
}


@pytest.fixture(scope="module")
def keras3():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    return keras


def sample_inputs(kmodel, rng, steps=7):
    """Inputs for a model: random integers below input_dim where an Embedding reads them."""
    embed = {}
    for layer in kmodel.layers:
        if type(layer).__name__ == "Embedding":
            for node in layer._inbound_nodes:
                for t in node.input_tensors:
                    embed[id(t)] = layer.input_dim
    xs = []
    for t in kmodel.inputs:
        shape = [3] + [steps if d is None else d for d in t.shape[1:]]
        if id(t) in embed or "int" in str(t.dtype):
            xs.append(rng.integers(0, embed.get(id(t), 10), shape).astype(str(t.dtype).replace("float32", "float32")))
        else:
            xs.append(rng.normal(0, 1, shape).astype("float32"))
    return xs


def check_layers_against_reference(keras3, original, upgraded):
    """Each recurrent layer of the upgraded file vs the NumPy reference of the original."""
    from lstmtool.verify import find_layer, numpy_output

    kmodel = keras3.saving.load_model(upgraded)
    rng = np.random.default_rng(0)
    worst = 0.0
    with lstmtool.load(original) as m:
        for path, cells in group_cells(m.cells).items():
            layer = find_layer(kmodel, path)
            if cells[0].conv:  # ConvLSTM: no NumPy forward pass; the gates must equal the scaled originals
                worst = max(worst, _conv_weights_diff(layer, cells, m.keras_major))
                continue
            x = rng.normal(0, 1, (3, 7, cells[0].input_dim))
            got = np.asarray(layer(x.astype("float32")))
            want = numpy_output(layer, cells, x, m.keras_major)
            worst = max(worst, float(np.max(np.abs(got - want))))
    return kmodel, worst


def _conv_weights_diff(layer, cells, major):
    kernel = layer.get_weights()[0] if type(layer).__name__ != "Bidirectional" else None
    cell = cells[0]
    factor = 1.2 if major and major < 3 and cell.recurrent_activation == "hard_sigmoid" else 1.0
    u = cell.units
    return max(float(np.max(np.abs(kernel[..., k * u:(k + 1) * u]
                                   - cell.W[g].numpy() * (factor if g != "c" else 1.0))))
               for k, g in enumerate(cell.gates))


def upgrade_ok(path, tmp_path):
    out = tmp_path / (os.path.basename(path) + ".upgraded.keras")
    r = run_cli("upgrade", path, "-o", out)
    assert r.exit_code == 0, r.stderr
    return str(out)


@pytest.mark.parametrize("path", FULL, ids=fid)
def test_fixture_upgrades_and_computes_the_same(keras3, tmp_path, path):
    out = upgrade_ok(path, tmp_path)
    kmodel, worst = check_layers_against_reference(keras3, path, out)
    tol = 1e-2 if "float16" in path else 1e-5
    assert worst <= tol, worst
    npz = os.path.join(os.path.dirname(path), os.path.basename(path).split(".")[0] + ".expected.npz")
    if os.path.exists(npz):  # the whole model, against the outputs its own Keras computed
        e = np.load(npz)
        y = kmodel.predict([e["x0"], e["x1"]] if "x0" in e else e["x"], verbose=0)
        np.testing.assert_allclose(np.asarray(y), e["y"], atol=tol)


@pytest.mark.parametrize("name", sorted(REALWORLD))
def test_realworld_upgrades_or_is_refused_with_its_reason(keras3, realworld, tmp_path, name):
    path = os.path.join(realworld, name)
    out = tmp_path / "out.keras"
    r = run_cli("upgrade", path, "-o", out)
    if REALWORLD[name] is not None:
        assert r.exit_code == 1 and REALWORLD[name] in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and not out.exists()
        assert not [n for n in os.listdir(tmp_path) if "lstmtool-tmp" in n]
        return
    assert r.exit_code == 0, r.stderr
    kmodel, worst = check_layers_against_reference(keras3, path, str(out))
    assert worst <= 1e-5, worst
    tfk_model = _tf_keras_load(path)
    if tfk_model is not None:  # where tf-keras loads (and runs) the original, whole-model outputs agree
        xs = sample_inputs(kmodel, np.random.default_rng(1))
        try:
            want = tfk_model.predict(xs, verbose=0)
        except Exception:  # e.g. CuDNNLSTM: tf-keras has no CPU kernel for it
            return
        got = kmodel.predict(xs, verbose=0)
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-5)


def _tf_keras_load(path):
    import tf_keras

    try:
        return tf_keras.models.load_model(path, compile=False)
    except Exception:
        return None


def test_hard_sigmoid_scaling_is_what_makes_it_exact(keras3, tmp_path):
    """The Keras 2 file's GRU uses hard_sigmoid: its z and r gates are scaled by 1.2, h is not,
    and the metadata says so."""
    path = os.path.join(FIXTURES, "tfkeras", "convlstm.h5")
    out = upgrade_ok(path, tmp_path)
    with zipfile.ZipFile(out) as zf:
        meta = json.loads(zf.read("metadata.json"))
    assert meta["lstmtool"]["hard_sigmoid_scaled"] == ["convlstm1d", "convlstm2d"]
    with lstmtool.load(path) as a, lstmtool.load(out) as b:
        for ca, cb in zip(a.cells, b.cells):
            for g in ca.gates:
                factor = np.float32(1.2) if g != "c" else 1
                np.testing.assert_allclose(cb.W[g].numpy(), ca.W[g].numpy() * factor, rtol=1e-6)
                if g == "c":
                    assert np.array_equal(cb.W[g].numpy(), ca.W[g].numpy())


def test_upgrading_again_changes_nothing(tmp_path):
    path = os.path.join(FIXTURES, "legacy", "keras1_lstm_theano.h5")
    once = upgrade_ok(path, tmp_path)
    twice = tmp_path / "twice.keras"
    assert run_cli("upgrade", once, "-o", twice).exit_code == 0
    with zipfile.ZipFile(once) as a, zipfile.ZipFile(twice) as b:
        assert json.loads(a.read("config.json")) == json.loads(b.read("config.json"))
    with lstmtool.load(once) as a, lstmtool.load(twice) as b:
        for ca, cb in zip(a.cells, b.cells):
            for part in "WUb":
                for g in ca.gates:
                    assert np.array_equal(getattr(ca, part)[g].numpy(), getattr(cb, part)[g].numpy())


def test_dry_run_writes_nothing_and_reports_the_plan(tmp_path):
    path = os.path.join(FIXTURES, "legacy", "keras1_lstm_theano.h5")
    out = tmp_path / "o.keras"
    r = run_cli("upgrade", path, "-o", out, "--dry-run", "--json")
    assert r.exit_code == 0 and not out.exists()
    plan = json.loads(r.stdout)
    assert plan["hard_sigmoid_scaled"] == ["lstm_1"]
    assert any("output_dim -> units" in c for c in plan["layers"][0]["changes"])


def test_existing_output_is_refused_without_force(tmp_path):
    path = os.path.join(FIXTURES, "tfkeras", "lstm_gru.h5")
    out = tmp_path / "o.keras"
    out.write_bytes(b"mine")
    r = run_cli("upgrade", path, "-o", out)
    assert r.exit_code == 2 and "already exists" in r.stderr and out.read_bytes() == b"mine"


def _legacy_with_config(tmp_path, mutate):
    import shutil

    import h5py

    src = os.path.join(FIXTURES, "tfkeras", "lstm_gru.h5")
    work = tmp_path / "m.h5"
    shutil.copy(src, work)
    with h5py.File(work, "r+") as f:
        cfg = json.loads(f.attrs["model_config"])
        mutate(cfg)
        f.attrs["model_config"] = json.dumps(cfg)
    return work


def _first_lstm(cfg):
    return next(layer for layer in cfg["config"]["layers"] if layer["class_name"] == "LSTM")


@pytest.mark.parametrize("mutate, words", [
    (lambda c: _first_lstm(c)["config"].update(time_major=True), "time_major=True"),
    (lambda c: c["config"]["layers"][-1].update(class_name="MyAttention"), "MyAttention"),
    (lambda c: _first_lstm(c)["config"].update(activation="hard_sigmoid"), "hard_sigmoid"),
], ids=["time_major", "custom_class", "hard_sigmoid_activation"])
def test_refusals_are_one_line_and_write_nothing(tmp_path, mutate, words):
    work = _legacy_with_config(tmp_path, mutate)
    out = tmp_path / "o.keras"
    r = run_cli("upgrade", work, "-o", out)
    assert r.exit_code == 1 and words in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not out.exists() and not [n for n in os.listdir(tmp_path) if "lstmtool-tmp" in n]
