"""The CLI, driven through CliRunner, and its JSON schema."""
import json
import os
import subprocess
import sys


from conftest import FIXTURES, ROOT, run_cli

K3 = os.path.join(FIXTURES, "keras3")
TFK = os.path.join(FIXTURES, "tfkeras")


def test_inspect_json_schema():
    r = run_cli("inspect", os.path.join(K3, "bidir.keras"), "--json")
    assert r.exit_code == 0
    data = json.loads(r.stdout)
    assert data["format"] == "keras-zip" and data["keras_version"].startswith("3.")
    paths = [c["path"] for c in data["cells"]]
    assert paths == ["bilstm/forward", "bilstm/backward", "bigru/forward", "bigru/backward",
                     "bigru2/forward", "bigru2/backward"]
    for c in data["cells"]:
        assert {"path", "class", "units", "gates", "tensors"} <= set(c)
        for t in c["tensors"].values():
            assert {"dataset", "shape", "dtype"} <= set(t)
    gru = data["cells"][2]
    assert gru["class"] == "GRU" and gru["reset_after"] is False and gru["gates"] == ["z", "r", "h"]


def test_inspect_layer_filter_and_stats():
    r = run_cli("inspect", os.path.join(TFK, "lstm_gru.h5"), "--layer", "gru", "--stats", "--json")
    data = json.loads(r.stdout)
    assert [c["path"] for c in data["cells"]] == ["gru"]
    s = data["cells"][0]["gate_table"][0]["W"]["stats"]
    assert set(s) == {"mean", "std", "min", "max", "l2"} and s["min"] <= s["mean"] <= s["max"]


def test_inspect_table_shows_column_ranges():
    r = run_cli("inspect", os.path.join(TFK, "lstm_gru.h5"))
    assert r.exit_code == 0
    assert "kernel[:, 4:8]" in r.stdout and "recurrent_kernel[:, 4:8]" in r.stdout and "bias[4:8]" in r.stdout


def test_explain_lstm_writes_real_slices():
    r = run_cli("explain", os.path.join(K3, "lstm_gru.keras"), "lstm")
    assert r.exit_code == 0
    assert "f_t = sigmoid(x_t @ kernel[:, 4:8] + h_{t-1} @ recurrent_kernel[:, 4:8] + bias[4:8])" in r.stdout
    assert "c_t = f_t * c_{t-1} + i_t * c~_t" in r.stdout


def test_explain_gru_reset_after_rows():
    r = run_cli("explain", os.path.join(K3, "lstm_gru.keras"), "gru")
    assert "h~_t = tanh(x_t @ kernel[:, 6:9] + bias[0, 6:9] + r_t * (h_{t-1} @ recurrent_kernel[:, 6:9] + bias[1, 6:9]))" in r.stdout


def test_show_prints_matrix():
    r = run_cli("show", os.path.join(K3, "lstm_gru.h5"), "lstm", "--gate", "f", "--part", "b")
    assert r.exit_code == 0 and "b_f = bias[4:8]" in r.stdout


def test_show_bad_gate_is_usage_error():
    r = run_cli("show", os.path.join(K3, "lstm_gru.h5"), "lstm", "--gate", "z")
    assert r.exit_code == 2 and "gates i, f, c, o" in r.stderr


def test_no_tensorflow_import_on_read_path():
    code = ("import sys; from lstmtool.cli import main\n"
            "try: main(['inspect', sys.argv[1], '--json', '--stats'])\n"
            "except SystemExit: pass\n"
            "heavy = [m for m in ('tensorflow', 'keras', 'tf_keras', 'torch') if m in sys.modules]\n"
            "print('HEAVY', heavy, file=sys.stderr)")
    for f in ("bidir.keras", "bidir.h5"):
        out = subprocess.run([sys.executable, "-c", code, os.path.join(K3, f)], capture_output=True, text=True, cwd=ROOT)
        assert "HEAVY []" in out.stderr, out.stderr


def test_help_is_light():
    code = "import sys; from lstmtool.cli import cli; print(sorted(m for m in ('h5py','numpy','rich') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
