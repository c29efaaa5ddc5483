"""TF-op layers (issue 29): tf-keras models calling each TF function of lstmtool's table, and
TF 1.x TensorFlowOpLayer models, upgraded and run on all three Keras 3 backends, against what
tf-keras computes from the original file. The table is checked against Keras 3's own classes."""
import inspect
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import tfops_models
from conftest import run_cli

BACKENDS = ("tensorflow", "jax", "torch")
RUN = """
import json, os, sys
import numpy as np
import keras
x = np.load(sys.argv[1])
out = {}
for path in sys.argv[2:]:
    m = keras.saving.load_model(path, compile=False)
    ys = m([x["i"], x["j"]])  # a call, not predict: some outputs have no batch axis to concatenate
    ys = ys if isinstance(ys, (list, tuple)) else [ys]
    out[path] = [np.asarray(keras.ops.convert_to_numpy(y), dtype="float64").tolist() for y in ys]
print(json.dumps(out))
"""


def test_the_table_matches_keras3s_own_operations():
    import importlib

    from lstmtool.upgrader import tfops

    for name, op in {**tfops.TF_FUNCTIONS, **tfops.TF1_OPS}.items():
        cls = getattr(importlib.import_module(op.module), op.cls)
        init = set(inspect.signature(cls.__init__).parameters) - {"self", "name"}
        call = [p for p in inspect.signature(cls.call).parameters if p != "self"]
        settings = set(op.fixed) | (set(op.settings.values()) if isinstance(op, tfops.Op) else
                                    {r for r in op.call if r not in ("x", "*x")} | set(op.attrs.values()))
        assert settings <= init, (name, settings - init)
        arguments = [r for r in op.call if r in ("x", "*x", "y", "b", "slice_spec")] if isinstance(op, tfops.RawOp) \
            else list(op.call)
        assert len(arguments) == len(call), (name, arguments, call)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    where = tmp_path_factory.mktemp("tfops")
    paths = tfops_models.tfkeras_models(str(where))
    paths["raw_ops"] = tfops_models.raw_models(str(where))
    rng = np.random.default_rng(7)
    x = {k: rng.normal(0, 1.5, (5, 3, 4)).astype("float32") for k in ("i", "j")}
    np.savez(where / "x.npz", **x)
    import tf_keras

    oracle = {}
    for name, path in paths.items():
        m = tf_keras.models.load_model(path, compile=False)
        ys = m([x["i"], x["j"]])
        oracle[name] = [np.asarray(y, dtype="float64") for y in (ys if isinstance(ys, (list, tuple)) else [ys])]
    return where, paths, oracle


def test_tf_op_models_upgrade_and_compute_the_same_on_every_backend(models):
    where, paths, oracle = models
    upgraded = {}
    for name, path in paths.items():
        out = str(where / f"{name}.keras")
        r = run_cli("upgrade", path, "-o", out, "--json")
        assert r.exit_code == 0, (name, r.stderr)
        doc = json.loads(r.stdout)
        ops = [s for s in doc["layers"] if s["class_to"].startswith("ops.")]
        assert ops, name
        upgraded[name] = out
    for backend in BACKENDS:
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
        p = subprocess.run([sys.executable, "-c", RUN, str(where / "x.npz"), *upgraded.values()],
                           capture_output=True, text=True, env=env, timeout=600)
        assert p.returncode == 0, (backend, p.stderr[-2000:])
        got = json.loads(p.stdout.strip().splitlines()[-1])
        for name, out in upgraded.items():
            ys = [np.asarray(y) for y in got[out]]
            assert len(ys) == len(oracle[name]), (backend, name)
            for k, (y, want) in enumerate(zip(ys, oracle[name])):
                assert y.shape == want.shape, (backend, name, k, y.shape, want.shape)
                scale = max(1.0, float(np.max(np.abs(want))))
                assert float(np.max(np.abs(y - want))) / scale <= 1e-5, (backend, name, k)


@pytest.mark.parametrize("name", sorted(tfops_models.REFUSED))
def test_tf_ops_without_an_exact_translation_are_refused_by_name(name, tmp_path):
    build, words = tfops_models.REFUSED[name]
    path = tfops_models.tfkeras_models(str(tmp_path), {name: build})[name]
    before = open(path, "rb").read()
    r = run_cli("upgrade", path, "-o", str(tmp_path / "out.keras"))
    assert r.exit_code == 1 and words in r.stderr and "nothing written" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out.keras").exists() and open(path, "rb").read() == before


def test_hard_sigmoid_and_gelu_activation_layers_keep_their_formula(tmp_path):
    """Activation('hard_sigmoid') of Keras 2 is clip(0.2x + 0.5): a Rescaling(1.2) in front
    keeps it in Keras 3; 'gelu' is exact (erf) in both."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tf_keras as k

    i = k.Input((6,))
    h = k.layers.Activation("hard_sigmoid", name="hs")(k.layers.Dense(6)(i))
    g = k.layers.Dense(3, activation="gelu")(k.layers.Activation("gelu")(h))
    seq = k.Sequential([k.Input((6,)), k.layers.Dense(6), k.layers.Activation("hard_sigmoid"), k.layers.Dense(2)])
    x = np.random.default_rng(1).normal(0, 4, (64, 6)).astype("float32")
    for n, model in enumerate([k.Model(i, g), seq]):
        path, out = str(tmp_path / f"m{n}.h5"), str(tmp_path / f"m{n}.keras")
        model.save(path)
        r = run_cli("upgrade", path, "-o", out)
        assert r.exit_code == 0, r.stderr
        m3 = keras.saving.load_model(out, compile=False)
        assert any(layer.__class__.__name__ == "Rescaling" for layer in m3.layers)
        want = model.predict(x, verbose=0)
        np.testing.assert_allclose(m3.predict(x, verbose=0), want, atol=1e-5)
        assert float(np.max(np.abs(keras.activations.hard_sigmoid(x) - np.clip(0.2 * x + 0.5, 0, 1)))) > 0.05


def test_the_peer_corpus_tf_op_files_compute_what_tf_keras_computes(tmp_path):
    import peer_corpus

    names = ["act_3.h5", "permute.h5", "reshape.h5", "tfop_0.h5", "tfop_1.h5"]
    sources = [os.path.join(peer_corpus.PEER, "dl4j-tfkeras", n) for n in names]
    if not all(os.path.exists(s) for s in sources):
        pytest.skip("../shared/peer is not beside this checkout")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tf_keras

    for src in sources:
        out = str(tmp_path / (os.path.basename(src) + ".keras"))
        assert run_cli("upgrade", src, "-o", out).exit_code == 0, src
        old = tf_keras.models.load_model(src, compile=False)
        x = np.random.default_rng(3).normal(0, 3, (6, *old.input_shape[1:])).astype("float32")
        np.testing.assert_allclose(keras.saving.load_model(out, compile=False).predict(x, verbose=0),
                                   old.predict(x, verbose=0), atol=1e-5, err_msg=src)


def test_the_translator_knows_the_tf_op_classes_without_importing_the_tables():
    from lstmtool.upgrader import tfops, translate

    assert translate.TF_OP_CLASSES == tfops.CLASSES


def test_a_config_with_bytes_that_are_not_utf8_is_refused_not_crashed(tmp_path):
    """Found by the fuzz campaign (seed 4242): a lone surrogate in a layer name (JSON allows
    the escape) reached the HDF5 writer and ended in an internal error."""
    import shutil

    import h5py

    src = tmp_path / "bad.h5"
    shutil.copyfile(os.path.join(os.path.dirname(__file__), "..", "fixtures", "tfkeras", "lstm_gru.h5"), src)
    with h5py.File(src, "r+") as f:
        text = f.attrs["model_config"]
        text = text.decode() if isinstance(text, bytes) else text
        name = json.loads(text)["config"]["layers"][-1]["config"]["name"]
        # a JSON escape of half a surrogate pair: valid JSON, a string no UTF-8 file can hold
        f.attrs["model_config"] = text.replace(f'"{name}"', f'"{name}\\udcf9"')
    for args in (("upgrade", src, "-o", tmp_path / "out.keras"), ("convert", src, "-o", tmp_path / "out.onnx")):
        r = run_cli(*args)
        assert r.exit_code == 1 and "not valid UTF-8" in r.stderr and "internal error" not in r.stderr, r.stderr
    assert not list(tmp_path.glob("out.*"))
