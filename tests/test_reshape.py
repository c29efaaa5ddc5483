"""prune and widen, judged by Keras itself.

Pruning units S must give, in Keras, what the original gives with S's outgoing weights
set to zero (the oracle, zeroed with Keras' own weights in reshape_cases.py); widening
must give the original's predictions. Over a matrix of architecture x consumer cases,
in Keras 3 (.keras) and tf-keras (.h5); old-Keras files through committed cases whose
oracle that Keras computed; refusals one line each, with nothing written.
"""
import glob
import json
import os

import numpy as np
import pytest

import reshape_cases as RC
from conftest import run_cli
from helpers import snapshot

from lstmtool.surgery.prune import prune, widen

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
REALWORLD = os.path.join(ROOT, "..", "shared", "realworld")
FLAVOURS = {"keras3": ".keras", "tfkeras": ".h5"}
S = [1, 4]


def keras_of(flavour):
    if flavour == "keras3":
        import keras

        return keras
    import tf_keras

    return tf_keras


def saved(K, model, path):
    RC.randomize(model, 1)
    model.save(path)
    return path


@pytest.mark.parametrize("flavour", sorted(FLAVOURS))
@pytest.mark.parametrize("build,fam", RC.matrix(), ids=[f"{b.__name__}-{f}" for b, f in RC.matrix()])
def test_prune_matches_the_zeroed_original_and_widen_the_original(build, fam, flavour, tmp_path):
    K = keras_of(flavour)
    ext = FLAVOURS[flavour]
    model, target, zeroed = build(K, fam, 6)
    src = saved(K, model, str(tmp_path / f"m{ext}"))
    before = snapshot(src)
    x = RC.input_for(model)
    y = np.asarray(model(x))
    if flavour == "keras3" and target.endswith(("/forward", "/backward")):
        with pytest.raises(Exception, match="Keras 3 takes a Bidirectional's concat output"):
            prune(src, target, out=str(tmp_path / f"p{ext}"), units=S)
        assert not os.path.exists(tmp_path / f"p{ext}")
        return
    plan = prune(src, target, out=str(tmp_path / f"p{ext}"), units=S)
    assert plan.units_after == 4 and plan.removed == S
    pruned = K.models.load_model(str(tmp_path / f"p{ext}"), compile=False)
    RC.zero_outgoing(model, zeroed, S)
    oracle = np.asarray(model(x))
    assert np.abs(oracle - y).max() > 1e-4, "the zeroing must change the predictions, or the test proves nothing"
    assert np.abs(np.asarray(pruned(x)) - oracle).max() <= 1e-6
    widen(src, target, 9, out=str(tmp_path / f"w{ext}"), init="glorot", seed=3)
    wide = K.models.load_model(str(tmp_path / f"w{ext}"), compile=False)
    assert np.abs(np.asarray(wide(x)) - y).max() <= 1e-6
    assert snapshot(src) == before, "the input must stay byte-identical"


def test_keep_ranks_units_by_the_norm_of_their_outgoing_weights(tmp_path):
    import keras

    model, target, zeroed = RC.stacked(keras, "lstm", 8)
    RC.randomize(model, 2)
    rk = model.get_layer("rnn").get_weights()
    rk[1][[2, 5, 6]] *= 0.01  # three weak units: small recurrent rows and small consumer rows
    model.get_layer("rnn").set_weights(rk)
    top = model.get_layer("top").get_weights()
    top[0][[2, 5, 6]] *= 0.01
    model.get_layer("top").set_weights(top)
    src = str(tmp_path / "m.keras")
    model.save(src)
    for norm in ("l1", "l2"):
        plan = prune(src, "rnn", keep=5, by=norm, dry_run=True)
        rows = np.concatenate([rk[1], top[0]], axis=1).astype(np.float64)
        expect = np.abs(rows).sum(1) if norm == "l1" else np.sqrt((rows ** 2).sum(1))
        assert plan.removed == [2, 5, 6]
        assert np.allclose([plan.scores[j] for j in range(8)], expect, rtol=1e-5)


def test_drop_dead_removes_exactly_the_units_with_zero_outgoing_weights(tmp_path):
    import keras

    model, _, zeroed = RC.flatten_head(keras, "gru", 6)
    RC.randomize(model, 3)
    RC.zero_outgoing(model, zeroed, [0, 3])
    src = str(tmp_path / "m.keras")
    model.save(src)
    x = RC.input_for(model)
    plan = prune(src, "rnn", drop_dead=True, out=str(tmp_path / "p.keras"))
    assert plan.removed == [0, 3] and plan.by == "dead"
    pruned = keras.models.load_model(str(tmp_path / "p.keras"), compile=False)
    assert np.array_equal(np.asarray(pruned(x)), np.asarray(model(x))) or \
        np.abs(np.asarray(pruned(x)) - np.asarray(model(x))).max() <= 1e-6


def test_dry_run_and_json_plan(tmp_path):
    import keras

    model, _, _ = RC.seq2seq(keras, "lstm", 6)
    src = saved(keras, model, str(tmp_path / "m.keras"))
    r = run_cli("prune", src, "enc", "--units", "1,4", "--dry-run", "--json")
    assert r.exit_code == 0, r.output
    plan = json.loads(r.output)
    assert plan["dry_run"] and plan["written"] is None and plan["layers"] == ["enc", "dec"]
    assert any("states start" in t for t in plan["ties"])
    shapes = {t["path"]: (t["before"], t["after"]) for t in plan["tensors"]}
    assert shapes["/layers/lstm/cell/vars/1"] == ([6, 24], [4, 16])
    assert plan["params_after"] < plan["params_before"]
    assert os.listdir(tmp_path) == ["m.keras"]
    r = run_cli("prune", src, "enc", "--units", "1,4", "-o", str(tmp_path / "p.keras"))
    assert r.exit_code == 0 and "wrote" in r.output and "tie: dec" in r.output


def _refused(tmp_path, src, *args, code=1, match=""):
    out = str(tmp_path / ("out" + (".keras" if src.endswith(".keras") else ".h5")))
    before = snapshot(src)
    r = run_cli(*args[:1], src, *args[1:], "-o", out) if "-o" not in args else run_cli(*args[:1], src, *args[1:])
    assert r.exit_code == code, r.output
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("lstmtool: error:") and "Traceback" not in r.output
    assert match in lines[0], lines[0]
    assert not os.path.exists(out) or "-o" in args
    assert snapshot(src) == before
    return lines[0]


def _model(tmp_path, make):
    import keras

    L = keras.layers
    x = keras.Input((RC.T, RC.F))
    y = make(keras, L, x)
    path = str(tmp_path / "m.keras")
    keras.Model(x, y).save(path)
    return path


REFUSALS = {
    "reaches the output": (lambda K, L, x: L.LSTM(4, name="rnn")(x), "reach the model output directly"),
    "layer normalization": (lambda K, L, x: L.Dense(2)(L.LayerNormalization()(L.LSTM(4, name="rnn")(x))),
                            "mean and variance span all units"),
    "attention": (lambda K, L, x: L.Dense(2)(L.Flatten()(L.Attention()([L.LSTM(4, return_sequences=True,
                                                                                 name="rnn")(x)] * 2))),
                  "scores are dot products"),
    "reshape": (lambda K, L, x: L.Dense(2)(L.Reshape((2, 2))(L.LSTM(4, name="rnn")(x))), "moves units"),
    "add with a dense": (lambda K, L, x: L.Add()([L.LSTM(4, name="rnn")(x), L.Dense(4)(L.Flatten()(x))]),
                         "can only take the same units out of recurrent layers"),
    "masking": (lambda K, L, x: L.LSTM(2)(L.Masking()(L.LSTM(4, return_sequences=True, name="rnn")(x))),
                "units"),  # Keras 3 records the mask's not_equal op as the first reader
    "softmax": (lambda K, L, x: L.Dense(2)(L.Activation("softmax")(L.LSTM(4, name="rnn")(x))),
                "normalises over all units"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refusals_are_one_line_and_write_nothing(case, tmp_path):
    make, match = REFUSALS[case]
    src = _model(tmp_path, make)
    _refused(tmp_path, src, "prune", "rnn", "--units", "1", match=match)


def test_shared_layer_and_bidirectional_sum_half_are_refused(tmp_path):
    import keras

    L = keras.layers
    x = keras.Input((RC.T, RC.F))
    shared = L.LSTM(4, return_sequences=True, name="rnn")
    h = shared(L.Dense(4)(shared(x)))
    keras.Model(x, L.Dense(2)(L.Flatten()(h))).save(str(tmp_path / "shared.keras"))
    _refused(tmp_path, str(tmp_path / "shared.keras"), "prune", "rnn", "--units", "1", match="shared layer")
    model, _, _ = RC.bidir("sum")(keras, "lstm", 4)
    model.save(str(tmp_path / "bi.keras"))
    _refused(tmp_path, str(tmp_path / "bi.keras"), "prune", "bi/forward", "--units", "1",
             match="both must lose the same units")


def test_usage_errors(tmp_path):
    import keras

    model, _, _ = RC.seq_dense(keras, "lstm", 4)
    src = saved(keras, model, str(tmp_path / "m.keras"))
    assert "has units 0 to 3" in _refused(tmp_path, src, "prune", "rnn", "--units", "7", code=2)
    assert "all 4 units" in _refused(tmp_path, src, "prune", "rnn", "--units", "0,1,2,3", code=2)
    assert "one of them" in _refused(tmp_path, src, "prune", "rnn", "--units", "1", "--keep", "2", code=2)
    assert "no recurrent layer named 'rn'" in _refused(tmp_path, src, "prune", "rn", "--units", "1", code=2)
    assert "already has 4" in _refused(tmp_path, src, "widen", "rnn", "--to", "3", code=2)
    assert "-o FILE" in _refused(tmp_path, src, "prune", "rnn", "--units", "1", "-o", "", code=2)
    assert "replace the input" in _refused(tmp_path, src, "prune", "rnn", "--units", "1", "-o", src, code=2)
    open(tmp_path / "taken.keras", "w").write("mine")
    assert "already exists" in _refused(tmp_path, src, "prune", "rnn", "--units", "1", "-o",
                                        str(tmp_path / "taken.keras"), code=2)
    assert open(tmp_path / "taken.keras").read() == "mine"
    assert "device" in _refused(tmp_path, src, "prune", "rnn", "--units", "1", "-o", "/dev/null", "--force",
                                code=2)
    assert "keeps the input's format" in _refused(tmp_path, src, "prune", "rnn", "--units", "1", "-o",
                                                  str(tmp_path / "x.h5"), code=2)


def test_weights_only_and_tf_formats_are_refused_with_the_way_forward(tmp_path):
    import keras

    model, _, _ = RC.seq_dense(keras, "lstm", 4)
    model.save_weights(str(tmp_path / "m.weights.h5"))
    assert "weights-only" in _refused(tmp_path, str(tmp_path / "m.weights.h5"), "prune", "rnn", "--units", "1")
    tf_dirs = sorted(glob.glob(os.path.join(ROOT, "fixtures", "tf", "*", "saved_model.pb")))
    if tf_dirs:
        d = os.path.dirname(tf_dirs[0])
        r = run_cli("prune", d, "lstm", "--units", "1", "-o", str(tmp_path / "o.keras"))
        assert r.exit_code in (1, 2) and "upgrade" in r.output or "no recurrent layer" in r.output


OLD = sorted(glob.glob(os.path.join(ROOT, "fixtures", "oldkeras-prune", "*", "px*.prune.json")))


@pytest.mark.parametrize("case", OLD, ids=[os.path.relpath(c, ROOT) for c in OLD])
def test_old_keras_files_prune_to_what_that_keras_computes_zeroed(case, tmp_path):
    """The oracle was computed by the old Keras that wrote the file (tests/oldkeras/reshape_cases.py);
    the pruned file is judged in Keras 3 through lstmtool's exact upgrade."""
    import keras

    from lstmtool.upgrader.keras3 import upgrade

    base = case[: -len(".prune.json")]
    about = json.load(open(case))
    io = np.load(base + ".prune.npz")
    prune(base + ".h5", about["layer"], out=str(tmp_path / "p.h5"), units=about["units"])
    upgrade(str(tmp_path / "p.h5"), str(tmp_path / "p.keras"), backend="theano")
    y = np.asarray(keras.models.load_model(str(tmp_path / "p.keras"), compile=False)(io["x"]))
    assert np.abs(y - io["y_zeroed"]).max() <= 1e-5


needs_realworld = pytest.mark.skipif(not os.path.isdir(REALWORLD), reason="../shared/realworld is absent")


@needs_realworld
def test_realworld_keras3_gru_prune_and_widen(tmp_path):
    import keras

    src = os.path.join(REALWORLD, "xauusd-gru", "gru_model.keras")
    plan = prune(src, "gru", keep=48, by="l2", out=str(tmp_path / "p.keras"))
    model = keras.models.load_model(src, compile=False)
    x = np.random.default_rng(0).normal(size=(3,) + tuple(model.inputs[0].shape[1:])).astype("float32")
    y = np.asarray(model(x))
    gone = plan.removed
    g = model.get_layer("gru").get_weights()
    g[1][gone] = 0
    model.get_layer("gru").set_weights(g)
    nxt = model.get_layer("gru_1").get_weights()
    nxt[0][gone] = 0
    model.get_layer("gru_1").set_weights(nxt)
    pruned = keras.models.load_model(str(tmp_path / "p.keras"), compile=False)
    assert np.abs(np.asarray(pruned(x)) - np.asarray(model(x))).max() <= 1e-6
    widen(src, "gru", 80, out=str(tmp_path / "w.keras"), init="glorot", seed=0)
    wide = keras.models.load_model(str(tmp_path / "w.keras"), compile=False)
    assert np.abs(np.asarray(wide(x)) - y).max() <= 1e-6


@needs_realworld
def test_realworld_cudnn_lstm_prunes_in_its_own_layout(tmp_path):
    """CuDNNLSTM (Keras 2.1.2, cuDNN-ordered kernels, 8u bias): the pruned file keeps its
    layout; judged in Keras 3 through the exact upgrade of both files."""
    import keras

    from lstmtool.upgrader.keras3 import upgrade

    src = os.path.join(REALWORLD, "depression-cudnn", "covarep_cudnnlstm_min_model.h5")
    plan = prune(src, "lstm_cell", keep=60, out=str(tmp_path / "p.h5"))
    assert len(plan.removed) == 24
    upgrade(src, str(tmp_path / "o.keras"))
    upgrade(str(tmp_path / "p.h5"), str(tmp_path / "p.keras"))
    model = keras.models.load_model(str(tmp_path / "o.keras"), compile=False)
    rng = np.random.default_rng(0)
    xs = [rng.normal(size=(2,) + tuple(t.shape[1:])).astype("float32") for t in model.inputs]
    lstm = model.get_layer("lstm_cell").get_weights()
    lstm[1][plan.removed] = 0
    model.get_layer("lstm_cell").set_weights(lstm)
    dense = model.get_layer("dense_1").get_weights()
    dense[0][plan.removed] = 0  # the LSTM comes first in the Concatenate
    model.get_layer("dense_1").set_weights(dense)
    pruned = keras.models.load_model(str(tmp_path / "p.keras"), compile=False)
    assert np.abs(np.asarray(pruned(xs)) - np.asarray(model(xs))).max() <= 1e-6
    with open(src, "rb") as a, open(tmp_path / "p.h5", "rb") as b:
        assert a.read(8) == b.read(8)


@needs_realworld
def test_realworld_keras1_gru_per_gate_layout(tmp_path):
    """grammarVAE (Keras 1.2.1, per-gate GRU arrays W_z, U_z, b_z...): every per-gate array
    changes shape and the file still reads as the same architecture."""
    from lstmtool import load

    src = os.path.join(REALWORLD, "grammarVAE", "eq_vae_grammar_h100_c234_L25_E50_batchB.hdf5")
    plan = prune(src, "gru_1", units=[0, 99], out=str(tmp_path / "p.h5"))
    assert len(plan.tensors) == 9 + 3  # W, U, b of three gates, and W of gru_2's three gates
    with load(str(tmp_path / "p.h5")) as m, load(src) as o:
        before = {c.path: c for c in o.cells}
        after = {c.path: c for c in m.cells}
        assert after["gru_1"].units == 98 and after["gru_2"].input_dim == 98
        keep = [j for j in range(100) if j not in (0, 99)]
        for g in ("z", "r", "h"):
            assert np.array_equal(after["gru_1"].U[g].numpy(), before["gru_1"].U[g].numpy()[np.ix_(keep, keep)])
            assert np.array_equal(after["gru_2"].W[g].numpy(), before["gru_2"].W[g].numpy()[keep])


@needs_realworld
def test_realworld_keras3_legacy_h5_prunes_and_loads_in_keras3(tmp_path):
    """LRCN (Keras 3.3.3 legacy .h5: TimeDistributed convolutions, LSTM 32, Dense)."""
    import keras

    src = os.path.join(REALWORLD, "har-convlstm", "LRCN_model.h5")
    prune(src, "lstm", units=[0, 5], out=str(tmp_path / "p.h5"))
    model = keras.models.load_model(src, compile=False)
    x = np.random.default_rng(0).normal(size=(1,) + tuple(model.inputs[0].shape[1:])).astype("float32")
    for name, k in (("lstm", 1), ("dense_1", 0)):
        w = model.get_layer(name).get_weights()
        w[k][[0, 5]] = 0
        model.get_layer(name).set_weights(w)
    pruned = keras.models.load_model(str(tmp_path / "p.h5"), compile=False)
    assert np.abs(np.asarray(pruned(x)) - np.asarray(model(x))).max() <= 1e-6


def test_halves_of_different_sizes_after_an_earlier_prune(tmp_path):
    """tf-keras: prune the forward half, then the backward half of the result: the backward
    half's units start after the (now smaller) forward half in the concat."""
    K = keras_of("tfkeras")
    model, _, _ = RC.bidir("concat", "forward")(K, "lstm", 6)
    src = saved(K, model, str(tmp_path / "m.h5"))
    prune(src, "bi/forward", out=str(tmp_path / "a.h5"), units=[0, 1])
    prune(str(tmp_path / "a.h5"), "bi/backward", out=str(tmp_path / "b.h5"), units=[2])
    first = K.models.load_model(str(tmp_path / "a.h5"), compile=False)
    x = RC.input_for(first)
    RC.zero_outgoing(first, [("bi", 4, 0, RC.rows), ("head", 0, 0, RC.shifted(4))], [2])
    second = K.models.load_model(str(tmp_path / "b.h5"), compile=False)
    assert np.abs(np.asarray(second(x)) - np.asarray(first(x))).max() <= 1e-6
