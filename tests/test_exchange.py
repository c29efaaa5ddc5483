"""export / import, verified numerically against Keras, PyTorch, ONNX Runtime and a TF1 cell."""
import json
import os
import shutil

import numpy as np
import pytest

import lstmtool
from conftest import FIXTURES, fid, fixture_files, run_cli
from helpers import snapshot

K3 = os.path.join(FIXTURES, "keras3")
ALL = fixture_files()


@pytest.mark.parametrize("fmt", ["npy", "npz", "safetensors"])
@pytest.mark.parametrize("path", ALL, ids=fid)
def test_round_trip_is_bit_identical(tmp_path, path, fmt):
    out = tmp_path / "export"
    r = run_cli("export", path, "-o", out, "--format", fmt)
    assert r.exit_code == 0, r.stderr
    work = tmp_path / os.path.basename(path)
    shutil.copy(path, work)
    with lstmtool.load(path) as m:  # scramble the copy first, so the import has to restore it
        targets = [f"{c.path}:W_*" for c in m.cells]
    for t in targets:
        assert run_cli("scale", work, t, "3").exit_code == 0
    assert snapshot(str(work)) != snapshot(path)
    r = run_cli("import", work, out)
    assert r.exit_code == 0, r.stderr
    assert snapshot(str(work)) == snapshot(path)


def test_npy_names_manifest_and_dtype(tmp_path):
    out = tmp_path / "e"
    assert run_cli("export", os.path.join(K3, "bidir.keras"), "-o", out).exit_code == 0
    assert (out / "bilstm" / "forward" / "W_f.npy").exists()
    assert (out / "bigru" / "backward" / "U_r.npy").exists()
    assert (out / "bigru2" / "forward" / "b_z_input.npy").exists()  # reset_after: two bias rows
    manifest = json.loads((out / "manifest.json").read_text())
    entry = next(a for a in manifest["arrays"] if a["key"] == "bilstm/forward/W_f")
    assert entry["part"] == "W" and entry["gate"] == "f" and entry["class"] == "LSTM"
    assert entry["sources"][0]["ranges"] == [[0, 3], [4, 8]]
    assert len(manifest["sha256"]) == 64 and manifest["layout"] == "keras"
    assert np.load(out / "bilstm" / "forward" / "W_f.npy").dtype == np.float32


def test_float16_stays_float16(tmp_path):
    out = tmp_path / "e"
    assert run_cli("export", os.path.join(K3, "float16.keras"), "-o", out).exit_code == 0
    for name in ("W_f", "U_f", "b_f"):
        assert np.load(out / "lstm16" / f"{name}.npy").dtype == np.float16
    manifest = json.loads((out / "manifest.json").read_text())
    assert {a["dtype"] for a in manifest["arrays"]} == {"float16"}


def test_export_refuses_non_empty_dir_and_torch_gru_reset_after_false(tmp_path):
    (tmp_path / "x").write_text("keep me")
    r = run_cli("export", os.path.join(K3, "bidir.keras"), "-o", tmp_path)
    assert r.exit_code == 2 and "not empty" in r.stderr
    r = run_cli("export", os.path.join(K3, "bidir.keras"), "-o", tmp_path / "t", "--layout", "torch",
                "--layer", "bigru")  # asked for by name: refused, nothing written
    assert r.exit_code == 2 and "reset_after=False" in r.stderr and not (tmp_path / "t").exists()
    r = run_cli("export", os.path.join(K3, "bidir.keras"), "-o", tmp_path / "t", "--layout", "torch")
    assert r.exit_code == 0 and "note: skipped" in r.stderr and "reset_after=False" in r.stderr  # the rest goes
    skipped = json.loads((tmp_path / "t" / "manifest.json").read_text())["skipped"]
    assert all("reset_after=False" in why for why in skipped.values()) and skipped


def test_import_checks_shapes_before_writing(tmp_path):
    out = tmp_path / "e"
    assert run_cli("export", os.path.join(K3, "lstm_gru.keras"), "-o", out).exit_code == 0
    np.save(out / "gru" / "U_h.npy", np.zeros((5, 5), np.float32))
    work = tmp_path / "m.keras"
    shutil.copy(os.path.join(K3, "lstm_gru.keras"), work)
    before = work.read_bytes()
    r = run_cli("import", work, out)
    assert r.exit_code == 2 and "(3, 3)" in r.stderr
    assert work.read_bytes() == before


# ---- Keras side -------------------------------------------------------------------------

def keras_layer(path, layer_name):
    import keras

    model = keras.models.load_model(path, compile=False)
    return model.get_layer(layer_name)


def keras_out(layer, x):
    return np.asarray(layer(x))


X = np.random.default_rng(5).normal(0, 1, (2, 6, 3)).astype("float32")


def torch_module(family, n_in, units, bidirectional=False):
    import torch

    cls = {"LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU}[family]
    return cls(n_in, units, batch_first=True, bidirectional=bidirectional)


@pytest.mark.parametrize("layer,family,bidir", [("lstm", "LSTM", False), ("gru", "GRU", False),
                                               ("bilstm", "LSTM", True), ("bigru2", "GRU", True)])
def test_torch_export_reproduces_keras(tmp_path, layer, family, bidir):
    import torch
    from safetensors.torch import load_file

    path = os.path.join(K3, "bidir.keras" if bidir else "lstm_gru.keras")
    out = tmp_path / "t"
    assert run_cli("export", path, "-o", out, "--layout", "torch", "--layer", layer).exit_code == 0
    klayer = keras_layer(path, layer)
    n_in = 3
    units = 4 if layer in ("lstm", "bilstm") else (3 if layer == "gru" else 2)
    x = X if layer != "gru" else np.random.default_rng(6).normal(0, 1, (2, 6, 4)).astype("float32")
    n_in = x.shape[-1]
    module = torch_module(family, n_in, units, bidir)
    module.load_state_dict(load_file(str(out / f"{layer}.safetensors")))
    with torch.no_grad():
        y, _ = module(torch.from_numpy(x))
    y = y.numpy()
    want = keras_out(klayer, x)
    if want.ndim == 2:  # return_sequences=False
        if bidir:  # Keras merges the last forward output with the backward output at t=0
            fw, bw = y[:, -1, :units], y[:, 0, units:]
            y = fw * bw  # bigru2 uses merge_mode="mul"
        else:
            y = y[:, -1]
    np.testing.assert_allclose(y, want, atol=1e-5)


@pytest.mark.parametrize("family,layer", [("LSTM", "lstm"), ("GRU", "gru")])
def test_random_torch_weights_imported_make_keras_match_torch(tmp_path, family, layer):
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    n_in, units = (3, 4) if family == "LSTM" else (4, 3)
    module = torch_module(family, n_in, units)
    src = tmp_path / "w"
    src.mkdir()
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(src / f"{layer}.safetensors"))
    work = tmp_path / "m.keras"
    shutil.copy(os.path.join(K3, "lstm_gru.keras"), work)
    r = run_cli("import", work, src, "--layout", "torch", "--layer", layer)
    assert r.exit_code == 0, r.stderr
    x = np.random.default_rng(7).normal(0, 1, (2, 6, n_in)).astype("float32")
    with torch.no_grad():
        want = module(torch.from_numpy(x))[0].numpy()
    got = keras_out(keras_layer(str(work), layer), x)
    seq = want if got.ndim == 3 else want[:, -1]
    np.testing.assert_allclose(got, seq, atol=1e-5)


def onnx_run(kind, W, R, B, x, direction, linear_before_reset=None):
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    hidden = R.shape[-1]
    attrs = {"hidden_size": hidden, "direction": direction}
    if linear_before_reset is not None:
        attrs["linear_before_reset"] = int(linear_before_reset)
    node = helper.make_node(kind, ["X", "W", "R", "B"], ["Y"], **attrs)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(W, "W"), numpy_helper.from_array(R, "R"), numpy_helper.from_array(B, "B")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"X": x})[0]  # [seq, dirs, batch, hidden]


@pytest.mark.parametrize("fixture,layer,kind", [("lstm_gru", "lstm", "LSTM"), ("lstm_gru", "gru", "GRU"),
                                                ("bidir", "bilstm", "LSTM"), ("bidir", "bigru", "GRU")])
def test_onnx_export_reproduces_keras(tmp_path, fixture, layer, kind):
    path = os.path.join(K3, fixture + ".keras")
    out = tmp_path / "o"
    assert run_cli("export", path, "-o", out, "--layout", "onnx", "--layer", layer).exit_code == 0
    W, R, B = (np.load(out / layer / f"{n}.npy") for n in "WRB")
    lbr = None
    if kind == "GRU":
        lbr = int(np.load(out / layer / "linear_before_reset.npy"))
    klayer = keras_layer(path, layer)
    n_in = W.shape[-1]
    x = np.random.default_rng(8).normal(0, 1, (2, 6, n_in)).astype("float32")
    want = keras_out(klayer, x)
    y = onnx_run(kind, W, R, B, np.transpose(x, (1, 0, 2)).copy(),
                 "bidirectional" if W.shape[0] == 2 else "forward", lbr)
    y = np.transpose(y, (2, 0, 1, 3))  # batch, seq, dirs, hidden
    if W.shape[0] == 2:
        merged = np.concatenate([y[:, :, 0], y[:, :, 1]], -1) if layer == "bilstm" else y[:, :, 0] + y[:, :, 1]
        np.testing.assert_allclose(merged, want, atol=1e-5)
    else:
        got = y[:, :, 0]
        np.testing.assert_allclose(got if want.ndim == 3 else got[:, -1], want, atol=1e-5)


def tf1_lstm(kernel, bias, x, forget_bias):
    """TF1 LSTMCell (no peepholes, no projection): [x, h] @ kernel + bias -> i, j, f, o."""
    units = bias.shape[0] // 4
    h = np.zeros((x.shape[0], units))
    c = np.zeros_like(h)
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    outs = []
    for t in range(x.shape[1]):
        z = np.concatenate([x[:, t], h], axis=1) @ kernel + bias
        i, j, f, o = np.split(z, 4, axis=1)
        c = sig(f + forget_bias) * c + sig(i) * np.tanh(j)
        h = sig(o) * np.tanh(c)
        outs.append(h)
    return np.stack(outs, 1)


def test_tf1_layout_reproduces_keras(tmp_path):
    path = os.path.join(K3, "lstm_gru.keras")
    out = tmp_path / "t"
    assert run_cli("export", path, "-o", out, "--layout", "tf1", "--layer", "lstm").exit_code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    kernel, bias = np.load(out / "lstm" / "kernel.npy"), np.load(out / "lstm" / "bias.npy")
    want = keras_out(keras_layer(path, "lstm"), X)
    got = tf1_lstm(kernel.astype(np.float64), bias.astype(np.float64), X.astype(np.float64), manifest["forget_bias"])
    np.testing.assert_allclose(got, want, atol=1e-5)
    # and back: importing the TF1 arrays restores the original bytes
    work = tmp_path / "m.keras"
    shutil.copy(path, work)
    assert run_cli("import", work, out, "--layer", "lstm").exit_code == 0
    with lstmtool.load(path) as a, lstmtool.load(work) as b:
        for g in "ifco":
            np.testing.assert_allclose(a.cell("lstm").b[g].numpy(), b.cell("lstm").b[g].numpy(), atol=1e-6)
            assert np.array_equal(a.cell("lstm").W[g].numpy(), b.cell("lstm").W[g].numpy())


def test_realworld_exports(realworld, tmp_path):
    from test_realworld import FILES

    for name in FILES:
        d, f = os.path.split(os.path.join(realworld, name))
        out = tmp_path / name.replace("/", "_")
        if True:
            r = run_cli("export", os.path.join(d, f), "-o", out)
            if "praali" in d:
                assert r.exit_code == 1 and "no recurrent cell" in r.stderr
            else:
                assert r.exit_code == 0, (f, r.stderr)


def test_torch_simple_rnn_reproduces_keras(tmp_path):
    import torch
    from safetensors.torch import load_file

    path = os.path.join(K3, "seq_simple.keras")
    out = tmp_path / "t"
    assert run_cli("export", path, "-o", out, "--layout", "torch", "--layer", "srnn").exit_code == 0
    module = torch.nn.RNN(2, 3, batch_first=True, nonlinearity="tanh")
    module.load_state_dict(load_file(str(out / "srnn.safetensors")))
    x = np.random.default_rng(9).normal(0, 1, (2, 6, 2)).astype("float32")
    with torch.no_grad():
        y = module(torch.from_numpy(x))[0].numpy()
    np.testing.assert_allclose(y, keras_out(keras_layer(path, "srnn"), x), atol=1e-5)


def test_import_refuses_lossy_dtype(tmp_path):
    src = os.path.join(K3, "lstm_gru.keras")
    out = tmp_path / "e"
    assert run_cli("export", src, "-o", out, "--layer", "lstm").exit_code == 0
    exact = np.load(out / "lstm" / "W_f.npy").astype(np.float64)  # float64 holding float32 values: exact
    np.save(out / "lstm" / "W_f.npy", exact)
    work = tmp_path / "m.keras"
    shutil.copy(src, work)
    assert run_cli("import", work, out).exit_code == 0
    np.save(out / "lstm" / "W_f.npy", exact + 1e-12)  # not representable in float32
    r = run_cli("import", work, out)
    assert r.exit_code == 2 and "lose precision" in r.stderr
