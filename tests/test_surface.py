"""The command line as a new user meets it (issue 13): output, messages, conventions."""
import json
import os
import re
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

import lstmtool
from conftest import FIXTURES, ROOT, run_cli

K3 = os.path.join(FIXTURES, "keras3")
TFK = os.path.join(FIXTURES, "tfkeras")
HARD = os.path.join(FIXTURES, "upgrade", "hard_sigmoid.h5")


def invoke(*args, env=None, color=False):
    from lstmtool.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args], env=env, color=color, catch_exceptions=False)


# --- the README's test command on a long path: nothing depends on path length or width -----

def test_dry_run_title_is_never_wrapped_on_a_long_path(tmp_path):
    deep = tmp_path / ("d" * 120) / ("e" * 120)
    deep.mkdir(parents=True)
    work = deep / "m.h5"
    shutil.copy(os.path.join(K3, "lstm_gru.h5"), work)
    r = run_cli("set-forget-bias", "1", work, "--dry-run")
    assert r.exit_code == 0 and f"{work}  (dry run: nothing written)" in r.stdout


def test_extras_do_not_install_two_tensorflows():
    import tomllib

    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as fh:
        extras = tomllib.load(fh)["project"]["optional-dependencies"]
    for deps in extras.values():
        assert not any(d.startswith("tensorflow-cpu") for d in deps)


# --- wrong or crashing output ------------------------------------------------------------

def test_show_convlstm_kernels(tmp_path):
    r = run_cli("show", os.path.join(K3, "convlstm.keras"), "convlstm1d", "--gate", "f", "--part", "W")
    assert r.exit_code == 0 and "flattened to rows" in r.stdout


def test_show_full_precision():
    path = os.path.join(K3, "lstm_gru.keras")
    r = run_cli("show", path, "lstm", "--gate", "f", "--part", "b", "--format", "csv")
    values = [float(v) for v in r.stdout.splitlines()[1].split(",")]
    with lstmtool.load(path) as m:
        assert np.array_equal(np.array(values, np.float32), m.cell("lstm").b["f"].numpy())
    data = json.loads(run_cli("show", path, "lstm", "--gate", "f", "--part", "b", "--json").stdout)
    assert data[0]["source"] == "bias[4:8]" and len(data[0]["values"]) == 4
    r = run_cli("show", path, "lstm", "--gate", "f", "--part", "b", "--precision", "9")
    assert re.search(r"\d\.\d{7}", r.stdout)


def test_chrono_init_infinite_tmax_is_a_usage_error():
    r = run_cli("chrono-init", os.path.join(K3, "lstm_gru.h5"), "--tmax", "inf", "--dry-run")
    assert r.exit_code == 2 and "finite" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_chrono_init_reports_the_effective_gru_bias():
    path = os.path.join(K3, "lstm_gru.h5")
    r = run_cli("chrono-init", path, "--tmax", "50", "--seed", "1", "--dry-run", "--json", "--layer", "gru")
    change = json.loads(r.stdout)["changes"][0]
    with lstmtool.load(path) as m:
        effective = m.cell("gru").b["z"].numpy().sum(axis=0)
    assert change["before"]["mean"] == pytest.approx(float(effective.astype(np.float64).mean()))
    assert 0 <= change["after"]["min"] and change["after"]["max"] <= np.log(49)


def test_explain_cudnn_names_its_transform(realworld):
    r = run_cli("explain", os.path.join(realworld, "depression-cudnn/covarep_cudnnlstm_min_model.h5"), "lstm_cell")
    assert "cudnn(kernel[:, 0:84])" in r.stdout and "f(kernel" not in r.stdout
    assert "where cudnn(k) =" in r.stdout


def test_simple_rnn_and_convlstm_labels():
    r = run_cli("inspect", os.path.join(K3, "seq_simple.keras"))
    line = next(x for x in r.stdout.splitlines() if x.startswith("srnn"))
    assert "recurrent_activation" not in line
    data = json.loads(run_cli("inspect", os.path.join(K3, "seq_simple.keras"), "--json").stdout)
    assert [c["recurrent_activation"] for c in data["cells"] if c["family"] == "simple_rnn"] == [None]
    assert "filters=" in run_cli("inspect", os.path.join(K3, "convlstm.keras")).stdout
    layers = {x["path"]: x["weights"] for x in data["layers"]}
    assert layers["srnn"] == 3 and layers["lstm_nobias"] == 2


# --- messages that mislead ---------------------------------------------------------------

def test_mistyped_option_is_named_and_negative_numbers_still_work(tmp_path):
    work = tmp_path / "m.h5"
    shutil.copy(os.path.join(K3, "lstm_gru.h5"), work)
    r = run_cli("set-forget-bias", "1", work, "--dryrun")
    assert r.exit_code == 2 and "No such option" in r.stderr and "--dry-run" in r.stderr
    r = run_cli("set", work, "lstm:b_i", "-1.5")
    assert r.exit_code == 0, r.stderr
    with lstmtool.load(work) as m:
        assert np.all(m.cell("lstm").b["i"].numpy() == -1.5)


def test_nan_forget_bias_does_not_suggest_a_missing_flag():
    r = run_cli("set-forget-bias", "nan", os.path.join(K3, "lstm_gru.h5"), "--dry-run")
    assert r.exit_code == 2 and "--allow-nonfinite" not in r.stderr


def test_natural_argument_order_gets_a_hint():
    path = os.path.join(K3, "lstm_gru.h5")
    r = run_cli("set-forget-bias", path, "1.0")
    assert r.exit_code == 2 and "VALUE comes first" in r.stderr


def test_layer_pattern_matching_nothing_is_a_usage_error():
    path = os.path.join(K3, "lstm_gru.h5")
    for args in (["inspect", path], ["set-forget-bias", "1", path, "--dry-run"]):
        r = run_cli(*args, "--layer", "nope*")
        assert r.exit_code == 2 and "no " in r.stderr and "nope*" in r.stderr


def test_model_without_recurrent_layers_says_so(tmp_path):
    import h5py

    path = tmp_path / "dense.h5"
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [b"dense"]
        g = f.create_group("dense")
        g.attrs["weight_names"] = [b"dense/kernel:0"]
        g.create_dataset("dense/kernel:0", data=np.zeros((2, 2), np.float32))
    r = run_cli("inspect", path)
    assert r.exit_code == 0 and "no recurrent layers" in r.stderr


def test_exit_codes_are_published():
    r = run_cli("--help")
    assert "Exit status" in r.stdout and "130" in r.stdout


# --- conventions -------------------------------------------------------------------------

def long_lines(text, width=80):
    """Lines over `width` that hold more than one token (a single path may be longer)."""
    return [x for x in text.splitlines() if len(x) > width and len(x.split()) > 1]


@pytest.mark.parametrize("args", [["inspect", "bidir.keras"], ["inspect", "bidir.keras", "--stats"],
                                  ["explain", "bidir.keras", "bigru/forward"], ["inspect", "convlstm.keras"]])
def test_output_fits_80_columns_without_cutting_tokens(args):
    args = [os.path.join(K3, a) if a.endswith(".keras") else a for a in args]
    wide = invoke(*args, env={"COLUMNS": "1000"}).stdout
    narrow = invoke(*args, env={"COLUMNS": "80"}).stdout
    assert not long_lines(narrow)
    for token in re.findall(r"(?:recurrent_kernel|kernel|bias)\[[^\]]*\]", wide):
        assert token in narrow, token


def test_colour_follows_no_color_and_flags():
    path = os.path.join(K3, "lstm_gru.keras")
    assert "\x1b[" in invoke("--color", "inspect", path, color=True).stdout
    assert "\x1b[" not in invoke("inspect", path, env={"NO_COLOR": "1"}, color=True).stdout
    assert "\x1b[" not in invoke("--no-color", "inspect", path, color=True).stdout


def test_quiet_and_grouped_warnings(realworld):
    path = os.path.join(realworld, "dot-res-lstm/bilstm.h5")
    r = run_cli("inspect", path)
    warnings = [x for x in r.stderr.splitlines() if x.startswith("warning:")]
    assert len(warnings) == 2 and "bidirectional_5/forward, bidirectional_5/backward" in warnings[0]
    assert run_cli("-q", "inspect", path).stderr == ""


def test_inspect_several_files_and_globs():
    r = run_cli("inspect", os.path.join(K3, "lstm_gru.keras"), os.path.join(K3, "*.h5"), "--json")
    docs = json.loads(r.stdout)
    assert isinstance(docs, list) and len(docs) == 1 + len([f for f in os.listdir(K3) if f.endswith(".h5")])
    assert run_cli("inspect", os.path.join(K3, "nothing*.h5")).exit_code == 2


def test_json_on_edits_export_and_import(tmp_path):
    src = os.path.join(K3, "lstm_gru.h5")
    out = tmp_path / "e"
    r = run_cli("export", src, "-o", out, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["layout"] == "keras"
    r = run_cli("import", src, out, "-o", tmp_path / "x.h5", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["written"]
    r = run_cli("set-forget-bias", "1", src, "-o", tmp_path / "y.h5", "--json")
    doc = json.loads(r.stdout)
    assert doc["changes"][0]["target"] == "b_f" and doc["written"].endswith("y.h5")


def all_commands():
    from lstmtool.cli import cli

    ctx = cli.make_context("lstmtool", ["--help"], resilient_parsing=True)
    return [(name, cli.get_command(ctx, name)) for name in cli.list_commands(ctx)]


def test_every_help_has_an_example_and_every_option_help_text():
    for name, command in all_commands():
        r = run_cli(name, "--help")
        assert "Example:" in r.stdout, name
        for param in command.params:
            if param.param_type_name == "option":
                assert param.help, (name, param.name)


def test_license_and_metadata():
    assert os.path.exists(os.path.join(ROOT, "LICENSE"))
    assert "license" in open(os.path.join(ROOT, "pyproject.toml")).read()


# --- export layouts: what PyTorch and ONNX can express -------------------------------------

def test_onnx_runs_keras2_hard_sigmoid_exactly(tmp_path):
    """Keras 2's hard_sigmoid (0.2x + 0.5) is ONNX's HardSigmoid default: the exported node,
    run in onnxruntime, equals lstmtool's reference of the original file."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from lstmtool.cells import reference

    out = tmp_path / "o"
    r = run_cli("export", HARD, "-o", out, "--layout", "onnx", "--json")
    assert r.exit_code == 0, r.stderr
    manifest = json.loads(r.stdout)
    x = np.random.default_rng(3).normal(0, 2, (2, 6, 3))
    with lstmtool.load(HARD) as m:
        for path, attrs in manifest["layers"].items():
            W, R, B = (np.load(out / path / f"{n}.npy") for n in "WRB")
            cell = m.cell(path)
            inp = x if path == "lstm_hs" else reference.run_cell(m.cell("lstm_hs"), x, m.keras_major)
            kw = {k: attrs[k] for k in ("hidden_size", "direction", "activations", "activation_alpha",
                                        "activation_beta", "linear_before_reset") if k in attrs}
            assert "HardSigmoid" in kw["activations"]
            node = helper.make_node(attrs["op"], ["X", "W", "R", "B"], ["Y"], **kw)
            graph = helper.make_graph(
                [node], "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, None)],
                [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
                [numpy_helper.from_array(a, n) for a, n in ((W, "W"), (R, "R"), (B, "B"))])
            model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
            model.ir_version = 8
            sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
            y = sess.run(None, {"X": np.transpose(inp, (1, 0, 2)).astype(np.float32)})[0][:, 0]
            want = reference.run_cell(cell, inp, m.keras_major)
            assert float(np.max(np.abs(np.transpose(y, (1, 0, 2)) - want))) <= 1e-5


def test_torch_refuses_hard_sigmoid_unless_asked_and_records_it(tmp_path):
    r = run_cli("export", HARD, "-o", tmp_path / "t", "--layout", "torch", "--layer", "lstm_hs")
    assert r.exit_code == 2 and "--layout onnx" in r.stderr and "--allow-activation-mismatch" in r.stderr
    r = run_cli("export", HARD, "-o", tmp_path / "t", "--layout", "torch", "--layer", "lstm_hs",
                "--allow-activation-mismatch", "--json")
    entry = json.loads(r.stdout)["layers"]["lstm_hs"]
    assert "hard_sigmoid runs as sigmoid" in entry["activation_mismatch"]["lstm_hs"]


@pytest.fixture(scope="module")
def keras3():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    return keras


def test_torch_module_built_from_the_manifest_alone(keras3, tmp_path):
    """relu SimpleRNN and a Bidirectional LSTM: build the torch module from the manifest's
    constructor arguments, load the state_dict, and match Keras."""
    import torch
    from safetensors.torch import load_file

    inp = keras3.Input((5, 3))
    a = keras3.layers.SimpleRNN(4, activation="relu", return_sequences=True, name="srelu")(inp)
    b = keras3.layers.Bidirectional(keras3.layers.LSTM(2, return_sequences=True), name="bi")(a)
    model = keras3.Model(inp, b)
    path = tmp_path / "m.keras"
    model.save(path)
    out = tmp_path / "t"
    r = run_cli("export", path, "-o", out, "--layout", "torch", "--json")
    assert r.exit_code == 0, r.stderr
    manifest = json.loads(r.stdout)
    x = np.random.default_rng(0).normal(0, 1, (2, 5, 3)).astype("float32")
    h = torch.from_numpy(x)
    for name in ("srelu", "bi"):
        entry = manifest["layers"][name]
        module = getattr(torch.nn, entry["module"].split(".")[-1])(**entry["kwargs"])
        module.load_state_dict(load_file(out / f"{name}.safetensors"))
        h = module(h)[0]
        want = keras3.Model(inp, model.get_layer(name).output)(x)
        np.testing.assert_allclose(h.detach().numpy(), np.asarray(want), atol=1e-5)
    assert manifest["layers"]["srelu"]["kwargs"]["nonlinearity"] == "relu"


def test_torch_and_onnx_refuse_what_one_module_cannot_hold(keras3, tmp_path):
    """Issue 9.4/9.5: stacked cells of different sizes, halves of different kinds."""
    inp = keras3.Input((5, 3))
    s = keras3.layers.RNN(keras3.layers.StackedRNNCells([keras3.layers.LSTMCell(2), keras3.layers.LSTMCell(3)]),
                          name="stack")(inp)
    b = keras3.layers.Bidirectional(keras3.layers.LSTM(2), backward_layer=keras3.layers.GRU(2, go_backwards=True),
                                    name="mixed")(inp)
    path = tmp_path / "m.keras"
    keras3.Model(inp, [s, b]).save(path)
    for layer, layout, words in (("stack", "torch", "different sizes"), ("mixed", "torch", "different kinds"),
                                 ("mixed", "onnx", "two directions differ")):
        r = run_cli("export", path, "-o", tmp_path / f"{layer}{layout}", "--layout", layout, "--layer", layer)
        assert r.exit_code == 2 and words in r.stderr, (layer, layout, r.stderr)
        assert "internal error" not in r.stderr


def test_show_at_80_columns_elides_whole_values_never_cuts_them():
    path = os.path.join(TFK, "bidir.h5")
    out = invoke("show", path, "bilstm/forward", "--gate", "f", "--part", "U", env={"COLUMNS": "80"}).stdout
    assert not re.search(r"\d…", out)
    with lstmtool.load(path) as m:
        first = m.cell("bilstm/forward").U["f"].numpy()[0, 0]
    assert f"{first:.4g}" in out
