"""Every file in ../shared/realworld (MANIFEST.md): inspect, edit, export.

Skips cleanly when the folder is absent (a user's clone)."""
import json
import os
import shutil

import numpy as np
import pytest

import lstmtool
from conftest import run_cli
from helpers import assert_only_slices_changed

# file -> [(family, units)] in order, as MANIFEST.md describes; None units = not stated there
MANIFEST = {
    "aashmit-tfk213/GRU.h5": [("gru", 50), ("gru", 60)],
    "aind-vui/model_2.h5": [("simple_rnn", 200)],
    "bi_lstm/lstm_model.keras": [("lstm", 50), ("lstm", 50)],
    "cse5393-lab9/gru.h5": [("gru", 50)],
    "depression-cudnn/covarep_cudnnlstm_min_model.h5": [("lstm", 84)],
    "dl4j-fixtures/bidirectional_lstm_theano_1.h5": [("lstm", 10), ("lstm", 10)],
    "dl4j-fixtures/simple_rnn_theano_1.h5": [("simple_rnn", 6)],
    "dot-res-lstm/bilstm.h5": [("lstm", 40)] * 4,
    "dot-res-lstm/gru.h5": [("gru", 64), ("gru", 64)],
    "eco-keras1/sherry_turkle-the_second_self_computers_and_the_human_spirit_i10e10s1.h5": [("lstm", 128)],
    "grammarVAE/eq_vae_grammar_h100_c234_L25_E50_batchB.hdf5": [("gru", 100)] * 3,
    "har-convlstm/LRCN_model.h5": [("lstm", 32)],
    "har-convlstm/convlstm.h5": [("lstm", None)] * 4,
    "praali/bilstm_model.h5": [],  # damaged: both halves incomplete
    "psi-walk/model.h5": [("lstm", 16)],
    "rnn-congestion/grumodel.weights.h5": [("gru", 70)] * 5,
    "stock-nishe/lstmNishe.weights.h5": [("lstm", 64)],
    "textgenrnn/textgenrnn_weights.hdf5": [("lstm", 128), ("lstm", 128)],
    "ts-bilstm/bilstm_model.keras": [("lstm", 64), ("lstm", 64)],
    "xauusd-gru/gru_model.keras": [("gru", 64), ("gru", 32)],
}
EXTRA = {  # what else the manifest says, checked per file
    "aashmit-tfk213/GRU.h5": lambda cells: all(c["reset_after"] is True for c in cells),
    "cse5393-lab9/gru.h5": lambda cells: cells[0]["reset_after"] is False,
    "dot-res-lstm/gru.h5": lambda cells: all(c["reset_after"] is False for c in cells),
    "depression-cudnn/covarep_cudnnlstm_min_model.h5": lambda cells: cells[0]["class"] == "CuDNNLSTM",
    "textgenrnn/textgenrnn_weights.hdf5": lambda cells: [c["path"] for c in cells] == ["rnn_1", "rnn_2"]
    and all(c["class"] == "CuDNNLSTM" and "inferred" in c["source"] for c in cells),
    "dot-res-lstm/bilstm.h5": lambda cells: [c["path"] for c in cells] == [
        "bidirectional_5/forward", "bidirectional_5/backward", "bidirectional_6/forward", "bidirectional_6/backward"],
    "har-convlstm/convlstm.h5": lambda cells: all(c["class"] == "ConvLSTM2D" for c in cells),
    "xauusd-gru/gru_model.keras": lambda cells: all(c["reset_after"] is True for c in cells),
    "dl4j-fixtures/bidirectional_lstm_theano_1.h5": lambda cells: all(c["layout"] == "keras1" for c in cells),
    "grammarVAE/eq_vae_grammar_h100_c234_L25_E50_batchB.hdf5": lambda cells: all(
        c["reset_after"] is False and c["layout"] == "keras1" for c in cells),
}
FILES = sorted(MANIFEST)
# TensorFlow SavedModel directories and TF-format checkpoints: read without TensorFlow
# (their cells and slices are checked in test_tf_formats.py).
TF_FORMATS = ["beagle-savedmodel/gru_model", "iteam1-savedmodel/lstm_model", "stockpred-ckpt/cp.ckpt"]


def test_manifest_covers_every_file(realworld):
    on_disk = sorted(os.path.relpath(os.path.join(d, f), realworld)
                     for d, _, fs in os.walk(realworld) for f in fs if f != "MANIFEST.md")
    tf_parts = [p for p in on_disk if any(p.startswith(t.rsplit("/", 1)[0] + "/") for t in TF_FORMATS)]
    assert sorted(set(on_disk) - set(tf_parts)) == FILES
    assert tf_parts, "the TF-format entries of the manifest are on disk"


@pytest.mark.parametrize("name", TF_FORMATS)
def test_tf_formats_are_read(realworld, name):
    r = run_cli("inspect", os.path.join(realworld, name), "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["format"] in ("tf-savedmodel", "tf-checkpoint")


@pytest.mark.parametrize("name", FILES)
def test_inspect_lists_the_manifest_cells(realworld, name):
    r = run_cli("inspect", os.path.join(realworld, name), "--json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    cells = data["cells"]
    got = [(c["family"], c["units"] if MANIFEST[name] and MANIFEST[name][0][1] is not None else None) for c in cells]
    assert got == MANIFEST[name]
    if name in EXTRA:
        assert EXTRA[name](cells)


def test_damaged_file_says_what_is_missing(realworld):
    path = os.path.join(realworld, "praali/bilstm_model.h5")
    r = run_cli("inspect", path, "--json")
    data = json.loads(r.stdout)
    assert [i["path"] for i in data["incomplete"]] == ["bidirectional/forward", "bidirectional/backward"]
    assert any("4 of 5 layer groups" in w for w in data["warnings"])
    assert any("6 names but only 3 distinct" in w for w in data["warnings"])
    assert run_cli("inspect", path, "--strict").exit_code == 1


@pytest.mark.parametrize("name", FILES)
def test_set_forget_bias_on_a_copy(realworld, tmp_path, name):
    src = os.path.join(realworld, name)
    work = tmp_path / os.path.basename(name)
    shutil.copy(src, work)
    os.chmod(work, 0o644)
    lstm = [c for c in MANIFEST[name] if c[0] == "lstm"]
    r = run_cli("set-forget-bias", "1.0", work)
    if not lstm:
        assert r.exit_code == 1 and "no LSTM cell" in r.stderr
        assert work.read_bytes() == open(src, "rb").read()
        return
    assert r.exit_code == 0, r.stderr
    with lstmtool.load(src) as m:
        slices = {}
        for c in m.cells:
            for t in c.b["f"].terms:
                slices.setdefault(t.tensor.path, []).append(t.index)
    assert_only_slices_changed(src, str(work), slices)
    with lstmtool.load(work) as m:
        for c in m.cells:
            np.testing.assert_array_equal(c.b["f"].numpy(), np.ones(c.units, np.float32))
            for term in c.b["f"].terms[1:]:  # CuDNN: the recurrent half of f is zero
                assert not np.any(m.store.read(term.tensor.path, term.index))
