"""`upgrade`, judged by real Keras 3 (`keras.saving.load_model`, safe_mode on).

For every fixture and every full real-world model: the upgraded file loads in Keras 3,
each recurrent layer in it computes what lstmtool's NumPy reference computes from the
*original* file with the original Keras' formulas (hard_sigmoid 0.2x+0.5 included),
and where tf-keras loads the original, the whole model's outputs agree.
"""
import io
import glob
import json
import os
import zipfile

import numpy as np
import pytest

import lstmtool
from conftest import FIXTURES, fid, run_cli
from lstmtool.core.model import group_cells

FULL = [p for p in sorted(glob.glob(os.path.join(FIXTURES, "*", "*")))
        if not p.endswith((".npz", ".weights.h5", ".wonly.h5")) and "cudnngru_weights" not in p
        and os.sep + "damaged" + os.sep not in p
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
}
# Weights-only real-world files: upgraded to a .weights.h5 (None), or refused with this reason.
REALWORLD_WEIGHTS = {
    "eco-keras1/sherry_turkle-the_second_self_computers_and_the_human_spirit_i10e10s1.h5": None,
    "psi-walk/model.h5": None,
    "textgenrnn/textgenrnn_weights.hdf5": "--layer-class attention=",
    "rnn-congestion/grumodel.weights.h5": "already in Keras 3's weights format",
    "stock-nishe/lstmNishe.weights.h5": "already in Keras 3's weights format",
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
    from lstmtool.reading.verify import find_layer, numpy_output

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


@pytest.mark.parametrize("name", sorted(REALWORLD_WEIGHTS))
def test_realworld_weights_only(realworld, tmp_path, name):
    """Upgraded weights re-read by lstmtool hold the same gates as the original (no config
    there to run them in Keras: that takes the author's code)."""
    path = os.path.join(realworld, name)
    out = tmp_path / "w.weights.h5"
    r = run_cli("upgrade", path, "-o", out)
    if REALWORLD_WEIGHTS[name] is not None:
        assert r.exit_code == 1 and REALWORLD_WEIGHTS[name] in r.stderr and not out.exists(), r.stderr
        return
    assert r.exit_code == 0, r.stderr
    with lstmtool.load(path) as a, lstmtool.load(out) as b:
        assert len(a.cells) == len(b.cells)
        for ca, cb in zip(a.cells, b.cells):
            for part in ("W", "U", "b"):
                for g in ca.gates:
                    assert np.array_equal(getattr(ca, part)[g].numpy(), getattr(cb, part)[g].numpy())


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


# --- weights-only inputs: a Keras 3 .weights.h5 for model.load_weights ---------------------

WONLY = sorted(glob.glob(os.path.join(FIXTURES, "tfkeras", "*.wonly.h5")))


@pytest.mark.parametrize("path", WONLY, ids=fid)
def test_weights_only_loads_into_the_keras3_model(keras3, tmp_path, path):
    """The Keras 3 model comes from upgrading the same model's full file; load_weights then
    takes the upgraded weights-only file, layouts converted and nothing scaled."""
    full = path.replace(".wonly.h5", ".h5")
    weights = tmp_path / "w.weights.h5"
    wrappers = {"extras": ["--layer-class", "td_lstm=TimeDistributed"],  # what the model's code says
                "stacked": ["--layer-class", "rnn_simple=RNN"]}
    r = run_cli("upgrade", path, "-o", weights, *wrappers.get(os.path.basename(path).split(".")[0], []))
    if "nested" in path:  # its recurrent weights sit inside a nested model: refused, said why
        assert r.exit_code == 1 and "nested model" in r.stderr and not weights.exists()
        return
    assert r.exit_code == 0, r.stderr
    plan = json.loads(run_cli("upgrade", full, "-o", tmp_path / "m.keras", "--json").stdout)
    model = keras3.saving.load_model(tmp_path / "m.keras")
    model.load_weights(weights)
    from lstmtool.reading.verify import find_layer

    with lstmtool.load(path) as m:
        for path_, cells in group_cells(m.cells).items():
            layer = find_layer(model, path_)
            got = [w for w in layer.get_weights()]
            want = [np.concatenate([getattr(c, p)[g].numpy() for g in c.gates], axis=-1)
                    for c in cells for p in ("W", "U", "b") if getattr(c, p)]
            assert len(got) == len(want) and all(np.array_equal(a, b) for a, b in zip(got, want)), path_
    if not plan["hard_sigmoid_scaled"]:
        e = np.load(os.path.join(os.path.dirname(full), os.path.basename(full).split(".")[0] + ".expected.npz"))
        np.testing.assert_allclose(model.predict(e["x"], verbose=0), e["y"], atol=1e-5)


def test_textgenrnn_cudnn_weights_load_into_keras3(keras3, realworld, tmp_path):
    """textgenrnn's weights (CuDNNLSTM x2, a custom attention layer) into textgenrnn's
    architecture written in Keras 3; each LSTM computes what the original CuDNN cell did."""
    from lstmtool.reading.verify import numpy_output

    src = os.path.join(realworld, "textgenrnn/textgenrnn_weights.hdf5")
    out = tmp_path / "tg.weights.h5"
    r = run_cli("upgrade", src, "-o", out)
    assert r.exit_code == 1 and "--layer-class attention=" in r.stderr
    assert run_cli("upgrade", src, "-o", out, "--layer-class", "attention=AttentionWeightedAverage").exit_code == 0

    class AttentionWeightedAverage(keras3.layers.Layer):
        def build(self, shape):
            self.W = self.add_weight(shape=(shape[-1], 1), name="attention_W")

        def call(self, x):
            a = keras3.ops.softmax(keras3.ops.squeeze(keras3.ops.matmul(x, self.W), -1), axis=-1)
            return keras3.ops.sum(x * keras3.ops.expand_dims(a, -1), axis=1)

    inp = keras3.Input((40,), name="input")
    emb = keras3.layers.Embedding(465, 100, name="embedding")(inp)
    r1 = keras3.layers.LSTM(128, return_sequences=True, name="rnn_1")(emb)
    r2 = keras3.layers.LSTM(128, return_sequences=True, name="rnn_2")(r1)
    cat = keras3.layers.Concatenate(name="rnn_concat")([emb, r1, r2])
    att = AttentionWeightedAverage(name="attention")(cat)
    model = keras3.Model(inp, keras3.layers.Dense(465, activation="softmax", name="output")(att))
    model.load_weights(out)
    x = np.random.default_rng(0).normal(0, 1, (2, 6, 100))
    with lstmtool.load(src) as m:
        layer = model.get_layer("rnn_1")
        got = np.asarray(layer(x.astype("float32")))
        want = numpy_output(layer, [m.cell("rnn_1")], x, m.keras_major)
        assert float(np.max(np.abs(got - want))) <= 1e-5
        with __import__("h5py").File(src) as f:
            assert np.array_equal(model.get_layer("attention").get_weights()[0], f["attention/attention/attention_W:0"][()])


def test_keras1_convolution1d_sequential(keras3, tmp_path):
    """Keras 1 Convolution1D -> MaxPooling1D -> LSTM(hard_sigmoid) -> Dense, upgraded, run in
    Keras 3, against Keras 1's equations in NumPy on the original file's arrays."""
    import h5py

    from lstmtool.cells import reference

    path = os.path.join(FIXTURES, "legacy", "keras1_conv1d_lstm.h5")
    out = upgrade_ok(path, tmp_path)
    model = keras3.saving.load_model(out)
    x = np.random.default_rng(5).normal(0, 1, (3, 8, 3))
    with h5py.File(path) as f, lstmtool.load(path) as m:
        w = f["model_weights"]
        W, b = w["convolution1d_1/convolution1d_1_W"][()][:, 0], w["convolution1d_1/convolution1d_1_b"][()]
        conv = np.maximum(0, np.stack([np.einsum("bkc,kcf->bf", x[:, t:t + 3], W) for t in range(6)], 1) + b)
        pooled = conv.reshape(3, 3, 2, 4).max(axis=2)
        h = reference.run_cell(m.cell("lstm_1"), pooled, m.keras_major)[:, -1]
        want = h @ w["dense_1/dense_1_W"][()] + w["dense_1/dense_1_b"][()]
    got = model.predict(x.astype("float32"), verbose=0)
    assert float(np.max(np.abs(got - want))) <= 1e-5


def test_theano_convolutions_are_flipped(tmp_path):
    """Theano's Keras convolved (kernel flipped), TensorFlow and Keras 3 cross-correlate: the
    kernel is written flipped on its spatial axis (real Theano files: tests/test_oldkeras.py)."""
    import shutil

    import h5py

    work = tmp_path / "theano.h5"
    shutil.copy(os.path.join(FIXTURES, "legacy", "keras1_conv1d_lstm.h5"), work)
    with h5py.File(work, "r+") as f:
        f.attrs["backend"] = b"theano"
        name = [n for n in f["model_weights"] if "conv" in n.lower()][0]
        group = f["model_weights"][name]
        kernel = group[[k for k in group if k.endswith("_W")][0]][()]
    r = run_cli("upgrade", work, "-o", tmp_path / "o.keras")
    assert r.exit_code == 0, r.output
    import zipfile

    with zipfile.ZipFile(tmp_path / "o.keras") as z, h5py.File(io.BytesIO(z.read("model.weights.h5"))) as f:
        stored = [f[k][()] for k in _datasets(f) if "conv" in k and k.endswith("vars/0")][0]
    np.testing.assert_array_equal(stored, kernel[::-1, 0])
    unknown = tmp_path / "unknown.h5"  # Keras 1 records no backend: the user must say which
    shutil.copy(os.path.join(FIXTURES, "legacy", "keras1_conv1d_lstm.h5"), unknown)
    with h5py.File(unknown, "r+") as f:
        f.attrs.pop("backend", None)
    r = run_cli("upgrade", unknown, "-o", tmp_path / "u.keras")
    assert r.exit_code == 1 and "--backend" in r.stderr and not (tmp_path / "u.keras").exists()


def _datasets(f):
    names = []
    f.visititems(lambda n, o: names.append(n) if hasattr(o, "shape") else None)
    return names


def test_lambda_replaced_by_a_registered_class(tmp_path):
    """--replace: a Lambda becomes a Keras 3 class the user registered; nothing from the file runs."""
    import tf_keras

    inp = tf_keras.Input((4, 3))
    h = tf_keras.layers.LSTM(5, return_sequences=True)(inp)
    h = tf_keras.layers.Lambda(lambda t: t * 2.0, name="double")(h)
    out = tf_keras.layers.GRU(3)(h)
    model = tf_keras.Model(inp, out)
    src = tmp_path / "lambda.h5"
    model.save(src)
    x = np.random.default_rng(0).normal(size=(2, 4, 3)).astype("float32")
    want = model.predict(x, verbose=0)
    r = run_cli("upgrade", src, "-o", tmp_path / "refused.keras")
    assert r.exit_code == 1 and "--replace double=" in r.stderr
    r = run_cli("upgrade", src, "-o", tmp_path / "new.keras", "--replace", "double=lstmtool_test>Double")
    assert r.exit_code == 0, r.output
    import keras

    import replacement_layers  # noqa: F401  (registers lstmtool_test>Double)

    config = json.loads(zipfile.ZipFile(tmp_path / "new.keras").read("config.json"))
    double = next(x for x in config["config"]["layers"] if x["config"].get("name") == "double")
    assert set(double["config"]) <= {"name", "trainable", "dtype"}  # the bytecode stayed behind
    assert double["registered_name"] == "lstmtool_test>Double"
    got = keras.saving.load_model(tmp_path / "new.keras", compile=False).predict(x, verbose=0)
    np.testing.assert_allclose(got, want, atol=1e-6)
    r = run_cli("upgrade", src, "-o", tmp_path / "x.keras", "--replace", "double=lstmtool_test>Double",
                "--replace", "nosuch=lstmtool_test>Double")
    assert r.exit_code == 2 and "nosuch" in r.stderr
