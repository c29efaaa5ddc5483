"""Legacy layouts checked against real Keras: CuDNN through tf-keras' own conversion,
Keras 1 through tf-keras layers fed the documented concatenation, Windows group names,
and real-world files reloaded after an edit."""
import os
import shutil

import numpy as np
import pytest

import lstmtool
from conftest import FIXTURES, expected, run_cli
from lstmtool.cells import reference

LEGACY = os.path.join(FIXTURES, "legacy")


def tfk():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tf_keras

    return tf_keras


def fused(cell, part):
    views = getattr(cell, part)
    return np.concatenate([views[g].numpy() for g in cell.gates], axis=-1)


def assert_matches_keras_layer(cell, layer):
    kernel, rk, bias = layer.get_weights()
    assert np.array_equal(fused(cell, "W"), kernel)
    assert np.array_equal(fused(cell, "U"), rk)
    assert np.array_equal(fused(cell, "b"), bias)


@pytest.mark.parametrize("name,units,n_in,vocab", [("textgenrnn/textgenrnn_weights.hdf5", 128, 100, 465)])
def test_cudnn_lstm_matches_tf_keras_conversion(realworld, name, units, n_in, vocab):
    k = tfk()
    inp = k.Input((None,))
    h = k.layers.Embedding(vocab, n_in, name="embedding")(inp)
    h = k.layers.LSTM(units, return_sequences=True, name="rnn_1")(h)
    h = k.layers.LSTM(units, return_sequences=True, name="rnn_2")(h)
    model = k.Model(inp, h)
    path = os.path.join(realworld, name)
    model.load_weights(path, by_name=True)  # tf-keras converts CuDNNLSTM -> LSTM here
    with lstmtool.load(path) as m:
        for layer_name in ("rnn_1", "rnn_2"):
            cell = m.cell(layer_name)
            assert cell.class_name == "CuDNNLSTM" and cell.layout == "cudnn"
            assert_matches_keras_layer(cell, model.get_layer(layer_name))


def test_cudnn_lstm_full_model_matches_tf_keras(realworld):
    k = tfk()
    inp = k.Input((None, 74))
    model = k.Model(inp, k.layers.LSTM(84, name="lstm_cell")(inp))
    path = os.path.join(realworld, "depression-cudnn/covarep_cudnnlstm_min_model.h5")
    model.load_weights(path, by_name=True, skip_mismatch=True)
    with lstmtool.load(path) as m:
        assert_matches_keras_layer(m.cell("lstm_cell"), model.get_layer("lstm_cell"))


def test_cudnn_gru_matches_tf_keras_conversion():
    k = tfk()
    inp = k.Input((None, 4))
    model = k.Model(inp, k.layers.GRU(3, reset_after=True, name="rnn_1")(inp))
    path = os.path.join(LEGACY, "cudnngru_weights.h5")
    model.load_weights(path, by_name=True)
    with lstmtool.load(path) as m:
        cell = m.cell("rnn_1")
        assert cell.class_name == "CuDNNGRU" and cell.reset_after
        kernel, rk, bias = model.get_layer("rnn_1").get_weights()
        assert np.array_equal(fused(cell, "W"), kernel)
        assert np.array_equal(fused(cell, "U"), rk)
        assert np.array_equal(np.concatenate([cell.b[g].numpy() for g in cell.gates], axis=1), bias)
        # and the forward pass of the converted layer
        x = np.random.default_rng(1).normal(0, 1, (2, 5, 4)).astype("float32")
        want = np.asarray(model(x))
        got = reference.run_cell(cell, x.astype(np.float64), keras_major=2)[:, -1]
        np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("name,family", [("keras1_lstm_theano.h5", "lstm"), ("keras1_lstm_nobackend.h5", "lstm"),
                                         ("keras1_gru_tensorflow.h5", "gru")])
def test_keras1_gates_by_forward_pass(name, family):
    """Keras 1 stores i,c,f,o; Keras 2 concatenated them as i,f,c,o. A tf-keras layer given that
    concatenation must compute what lstmtool's reference computes from the per-gate views."""
    k = tfk()
    path = os.path.join(LEGACY, name)
    with lstmtool.load(path) as m:
        cell = m.cells[0]
        assert cell.layout == "keras1" and m.keras_major == 1
        layer_name = cell.path
        import h5py

        with h5py.File(path, "r") as f:
            g = f[f"model_weights/{layer_name}"]
            order = "ifco" if family == "lstm" else "zrh"
            kernel = np.concatenate([g[f"{layer_name}_W_{x}"][()] for x in order], axis=1)
            rk = np.concatenate([g[f"{layer_name}_U_{x}"][()] for x in order], axis=1)
            bias = np.concatenate([g[f"{layer_name}_b_{x}"][()] for x in order])
        assert np.array_equal(cell.b["f" if family == "lstm" else "z"].numpy(),
                              bias[cell.units:2 * cell.units] if family == "lstm" else bias[:cell.units])
        if family == "lstm":
            layer = k.layers.LSTM(cell.units, recurrent_activation="hard_sigmoid", unit_forget_bias=False)
        else:
            layer = k.layers.GRU(cell.units, recurrent_activation="hard_sigmoid", reset_after=False)
        x = np.random.default_rng(2).normal(0, 1, (2, 5, cell.input_dim)).astype("float32")
        layer.build(x.shape)
        layer.set_weights([kernel, rk, bias])
        want = np.asarray(layer(x))
        got = reference.run_cell(cell, x.astype(np.float64), keras_major=1)[:, -1]
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_windows_backslash_groups():
    path = os.path.join(LEGACY, "windows_lstm_gru.weights.h5")
    e = expected(os.path.join(FIXTURES, "keras3", "lstm_gru.keras"))
    with lstmtool.load(path) as m:
        assert sorted(c.path for c in m.cells) == ["gru", "lstm"]
        assert np.array_equal(fused(m.cell("lstm"), "W"), e["w|lstm|kernel"])
        assert np.array_equal(np.concatenate([m.cell("gru").b[g].numpy() for g in "zrh"], axis=1), e["w|gru|bias"])


def test_windows_backslash_edit(tmp_path):
    work = tmp_path / "w.weights.h5"
    shutil.copy(os.path.join(LEGACY, "windows_lstm_gru.weights.h5"), work)
    assert run_cli("set-forget-bias", "1", work).exit_code == 0
    with lstmtool.load(work) as m:
        assert np.all(m.cell("lstm").b["f"].numpy() == 1)


def test_incomplete_cell_is_never_edited(realworld, tmp_path):
    work = tmp_path / "p.h5"
    shutil.copy(os.path.join(realworld, "praali/bilstm_model.h5"), work)
    before = work.read_bytes()
    r = run_cli("set", work, "bidirectional/forward:b_f", "1")
    assert r.exit_code == 2 and "incomplete" in r.stderr
    r = run_cli("set-forget-bias", "1", work)
    assert r.exit_code == 1 and "incomplete" in r.stderr
    assert work.read_bytes() == before


def test_activation_drift_warnings(realworld):
    r = run_cli("inspect", os.path.join(realworld, "cse5393-lab9/gru.h5"))
    assert "hard_sigmoid" in r.stderr and "Keras >= 2.3 defaults to sigmoid" in r.stderr
    r = run_cli("explain", os.path.join(realworld, "dl4j-fixtures/bidirectional_lstm_theano_1.h5"),
                "bidirectional_1/forward")
    assert "hard_sigmoid" in r.stdout and "0.2x+0.5" in r.stdout


def test_lambda_bytecode_never_evaluated(realworld):
    r = run_cli("inspect", os.path.join(realworld, "aind-vui/model_2.h5"))
    assert r.exit_code == 0 and "opaque" in r.stdout


# Real-world files a current Keras still loads (measured: see tests/test_realworld.py MANIFEST)
LOADABLE = {
    "bi_lstm/lstm_model.keras": "keras3", "har-convlstm/LRCN_model.h5": "keras3",
    "har-convlstm/convlstm.h5": "keras3", "dot-res-lstm/bilstm.h5": "tfkeras",
    "ts-bilstm/bilstm_model.keras": "tfkeras", "depression-cudnn/covarep_cudnnlstm_min_model.h5": "tfkeras",
}


def keras_module(flavour):
    if flavour == "keras3":
        import keras

        return keras
    return tfk()


def inputs_for(model, rng):
    shapes = model.input_shape if isinstance(model.input_shape, list) else [model.input_shape]
    xs = [rng.normal(0, 1, tuple(2 if i == 0 else (4 if d is None else d) for i, d in enumerate(s))).astype("float32")
          for s in shapes]
    return xs if len(xs) > 1 else xs[0]


@pytest.mark.parametrize("name", sorted(LOADABLE))
def test_realworld_edit_matches_set_weights(realworld, tmp_path, name):
    k = keras_module(LOADABLE[name])
    src = os.path.join(realworld, name)
    out = str(tmp_path / os.path.basename(name))
    assert run_cli("set-forget-bias", "1.0", src, "-o", out).exit_code == 0
    edited = k.models.load_model(out, compile=False)
    model = k.models.load_model(src, compile=False)
    changed = 0
    with lstmtool.load(src) as m:
        for cell in m.cells:
            parts = cell.path.split("/")
            layer = model.get_layer(parts[0])
            if len(parts) > 1:
                layer = getattr(layer, f"{parts[1]}_layer")
            weights = layer.get_weights()
            b = weights[-1]
            u = cell.units
            b[u:2 * u] = 1.0
            if cell.layout == "cudnn":
                b[4 * u + u:4 * u + 2 * u] = 0.0
            layer.set_weights(weights[:-1] + [b])
            changed += 1
    assert changed
    for a, b in zip(edited.get_weights(), model.get_weights()):
        assert np.array_equal(a, b)
    if "cudnn" in name:
        return  # CuDNNLSTM cannot run on a CPU; its weights were compared exactly above
    x = inputs_for(model, np.random.default_rng(3))
    np.testing.assert_allclose(np.asarray(edited(x)), np.asarray(model(x)), atol=1e-5)


@pytest.mark.parametrize("name", ["bi_lstm/lstm_model.keras", "xauusd-gru/gru_model.keras",
                                  "har-convlstm/LRCN_model.h5", "dot-res-lstm/bilstm.h5",
                                  "aashmit-tfk213/GRU.h5", "ts-bilstm/bilstm_model.keras"])
def test_verify_realworld(realworld, name):
    from lstmtool.reading.verify import verify_file

    result = verify_file(os.path.join(realworld, name))
    assert result["ok"], result


def test_cudnn_shows_stored_and_equivalent(realworld):
    path = os.path.join(realworld, "depression-cudnn/covarep_cudnnlstm_min_model.h5")
    r = run_cli("inspect", path)
    assert "bias[84:168] + bias[420:504]" in r.stdout and "b_f_recurrent  bias[420:504]" in r.stdout
    r = run_cli("show", path, "lstm_cell", "--gate", "f", "--part", "b", "--stored")
    assert r.exit_code == 0 and "stored b_f_input = bias[84:168]" in r.stdout
    with lstmtool.load(path) as m:
        cell = m.cell("lstm_cell")
        summed = cell.stored["b_f_input"].numpy() + cell.stored["b_f_recurrent"].numpy()
        assert np.array_equal(cell.b["f"].numpy(), summed)
