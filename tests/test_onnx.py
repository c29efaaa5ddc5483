"""lstmtool convert (issue 27): whole models to ONNX without TensorFlow, run in onnxruntime
against the Keras that wrote each file (stored outputs, or that Keras itself), at two batch
sizes and two sequence lengths; every refusal one line naming the layer, nothing written.
Figures over every corpus: python tests/onnx_corpus.py; more random models:
python tests/onnx_models.py DIR --count 100 --seed N (then the same check)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import onnx_corpus
import onnx_models
from conftest import FIXTURES, run_cli

pytest.importorskip("onnxruntime")
# What may be refused, by the words of the refusal: no exact ONNX form, or upgrade's own honest refusals.
HONEST = ("ConvLSTM has no ONNX operator", "only float32 models are converted", "has no ONNX RNN activation",
          "has no ONNX LSTM activation", "has no ONNX GRU activation", "Theano placed the padding",
          "also squashes the cell state", "returns its steps reversed", "weights only (no model config)",
          "LocallyConnected", "Lambda layers", "is not in lstmtool's ONNX table", "channels_first is not converted")


def _check(corpus_cases, tmp_path):
    results = []
    for corpus, name, src, oracle in corpus_cases:
        verdict, detail = onnx_corpus.judge(src, oracle, str(tmp_path))
        results.append((name, verdict, detail))
        if verdict == "refused":
            assert any(h in detail for h in HONEST), (name, detail)
            assert len(detail.splitlines()) == 1
        else:
            assert verdict == "equal", (name, verdict, detail)
    return results


def test_fixtures_convert_and_compute_what_their_keras_computed(tmp_path):
    results = _check(onnx_corpus.cases(["fixtures"]), tmp_path)
    equal = [n for n, v, _ in results if v == "equal"]
    assert len(equal) >= 17, results  # every model without ConvLSTM / float16, in .h5 and .keras


def test_models_written_by_keras_1_2_to_2_3_1(tmp_path):
    results = _check(onnx_corpus.cases(["oldkeras"]), tmp_path)
    assert sum(v == "equal" for _, v, _ in results) >= 45, [r for r in results if r[1] != "equal"]


@pytest.mark.skipif(not os.path.isdir(os.path.join(onnx_corpus.SHARED, "peer")), reason="../shared is not here")
def test_peer_models_with_stored_outputs(tmp_path):
    cases = [c for c in onnx_corpus.cases(["peer"]) if c[0] == "peer-io"]
    results = _check(cases, tmp_path)
    assert sum(v == "equal" for _, v, _ in results) >= 44, results


@pytest.fixture(scope="module")
def population(tmp_path_factory):
    where = tmp_path_factory.mktemp("onnx_population")
    paths = onnx_models.write(str(where), "keras3", 10, seed=11)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    code = f"import sys; sys.path.insert(0, {os.path.dirname(__file__)!r}); import onnx_models; " \
           f"print('\\n'.join(onnx_models.write({str(where)!r}, 'tfkeras', 10, seed=12)))"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    return paths + p.stdout.split()


def test_random_models_of_both_kerases_at_two_batches_and_lengths(population, tmp_path):
    import onnxruntime as ort

    from lstmtool.convert.onnx_model import to_onnx

    from lstmtool.errors import LstmtoolError

    moved, refused = [], []
    for src in population:
        out = str(tmp_path / (os.path.basename(src) + ".onnx"))
        try:
            to_onnx(src, out)
        except LstmtoolError as e:  # only what Keras 3 itself cannot express
            assert "returns its steps reversed" in str(e), (src, str(e))
            refused.append(src)
            continue
        session = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
        io, about = np.load(src + ".io.npz"), json.load(open(src + ".about.json"))
        name, kind = session.get_inputs()[0].name, session.get_inputs()[0].type
        for key in (k for k in io.files if k.startswith("x_")):
            x = io[key].astype(np.int64 if "int64" in kind else np.int32 if "int32" in kind else np.float32)
            y, want = session.run(None, {name: x})[0], io["y_" + key[2:]]
            assert y.shape == want.shape, (src, key, about)
            scale = max(1.0, float(np.max(np.abs(want))))
            assert float(np.max(np.abs(y - want))) / scale <= 1e-5, (src, key, about)
            moved.append(float(np.max(np.abs(want))))
    assert len(refused) <= 2 and len(moved) == 4 * (len(population) - len(refused))
    assert max(moved) > 0.1  # real outputs, not zeros


def test_a_masked_row_that_is_not_post_padded_comes_out_nan(tmp_path):
    """sequence_lens says 'the first n steps': a row whose padding sits elsewhere cannot be
    expressed, so its outputs are NaN, never a silently different number."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import onnxruntime as ort

    x = keras.Input((None,), dtype="int32")
    h = keras.layers.Embedding(7, 3, mask_zero=True)(x)
    model = keras.Model(x, keras.layers.Dense(2)(keras.layers.LSTM(4)(h)))
    model.save(tmp_path / "m.keras")
    r = run_cli("convert", tmp_path / "m.keras", "-o", tmp_path / "m.onnx")
    assert r.exit_code == 0, r.stderr
    ids = np.array([[3, 4, 5, 0, 0], [3, 0, 5, 6, 0]], dtype=np.int32)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    y = session.run(None, {session.get_inputs()[0].name: ids})[0]
    np.testing.assert_allclose(y[0], model.predict(ids[:1], verbose=0)[0], atol=1e-5)
    assert np.all(np.isnan(y[1]))


def test_refusals_are_one_line_and_write_nothing(tmp_path):
    src = os.path.join(FIXTURES, "tfkeras", "convlstm.h5")
    before = open(src, "rb").read()
    r = run_cli("convert", src, "-o", tmp_path / "c.onnx")
    assert r.exit_code == 1 and "convlstm1d" in r.stderr and "ConvLSTM" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "c.onnx").exists()
    assert open(src, "rb").read() == before
    ok = os.path.join(FIXTURES, "keras3", "lstm_gru.keras")
    (tmp_path / "taken.onnx").write_text("mine")
    for args, words in ((["-o", tmp_path / "taken.onnx"], "already exists"), (["-o", tmp_path / "x.h5"], ".onnx"),
                        ([], "-o MODEL.onnx"), (["-o", tmp_path / "x.onnx", "--opset", "12"], "opset 17 or newer")):
        r = run_cli("convert", ok, *args)
        assert r.exit_code in (1, 2) and words in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
    assert (tmp_path / "taken.onnx").read_text() == "mine"


def test_without_the_onnx_extra_says_which_to_install(tmp_path):
    code = ("import sys; sys.modules['onnx'] = None; from lstmtool.__main__ import main; "
            f"sys.argv = ['lstmtool', 'convert', {os.path.join(FIXTURES, 'keras3', 'lstm_gru.keras')!r}, "
            f"'-o', {str(tmp_path / 'm.onnx')!r}]; main()")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 2 and "lstmtool[onnx]" in p.stderr, p.stderr


def test_opset_static_shape_json_and_dry_run(tmp_path):
    import onnx
    import onnxruntime as ort

    src = os.path.join(FIXTURES, "tfkeras", "bidir.h5")
    r = run_cli("convert", src, "-o", tmp_path / "b.onnx", "--opset", "17", "--static-shape", "2,5", "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["opset"] == 17 and doc["inputs"][0]["shape"] == [2, 5, 3] and doc["written"]
    model = onnx.load(tmp_path / "b.onnx")
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == 17
    assert any(i.name.startswith("bilstm/forward/W") for i in model.graph.initializer)  # the Keras layer path
    x = np.load(os.path.join(FIXTURES, "tfkeras", "bidir.expected.npz"))
    session = ort.InferenceSession(str(tmp_path / "b.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {session.get_inputs()[0].name: x["x"]})[0], x["y"], atol=1e-5)
    r = run_cli("convert", src, "-o", tmp_path / "d.onnx", "--dry-run")
    assert r.exit_code == 0 and "nothing written" in r.stdout and not (tmp_path / "d.onnx").exists()


def test_seq2seq_states_dot_and_stateful(tmp_path):
    """An encoder's return_state feeding a decoder's initial_state, a model input as an initial
    state, Dot (normalized and not), several inputs and outputs; stateful refused."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import onnxruntime as ort

    enc_in, dec_in, h0 = keras.Input((None, 3)), keras.Input((None, 4)), keras.Input((5,))
    _, h, c = keras.layers.LSTM(5, return_state=True)(enc_in)
    dec = keras.layers.LSTM(5, return_sequences=True)(dec_in, initial_state=[h, c])
    gru_seq, gru_h = keras.layers.GRU(5, return_sequences=True, return_state=True, go_backwards=True)(
        dec_in, initial_state=[h0])
    scores = keras.layers.Dot(axes=(2, 2))([dec, gru_seq])
    cosine = keras.layers.Dot(axes=1, normalize=True)([h, gru_h])
    model = keras.Model([enc_in, dec_in, h0], [scores, cosine, keras.layers.Dense(2)(gru_h)])
    model.save(tmp_path / "s2s.keras")
    r = run_cli("convert", tmp_path / "s2s.keras", "-o", tmp_path / "s2s.onnx")
    assert r.exit_code == 0, r.stderr
    session = ort.InferenceSession(str(tmp_path / "s2s.onnx"), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(4)
    for batch, steps in ((1, 4), (3, 7)):
        xs = [rng.normal(0, 1, (batch, steps, 3)).astype("float32"), rng.normal(0, 1, (batch, steps, 4)).astype("float32"),
              rng.normal(0, 1, (batch, 5)).astype("float32")]
        got = session.run(None, {i.name: x for i, x in zip(session.get_inputs(), xs)})
        for g, want in zip(got, model.predict(xs, verbose=0)):
            np.testing.assert_allclose(g, want, atol=1e-5)
    stateful = keras.Sequential([keras.Input((4, 3), batch_size=2), keras.layers.LSTM(3, stateful=True)])
    stateful.save(tmp_path / "st.keras")
    r = run_cli("convert", tmp_path / "st.keras", "-o", tmp_path / "st.onnx")
    assert r.exit_code == 1 and "stateful" in r.stderr and not (tmp_path / "st.onnx").exists(), r.stderr
