"""Valid models off the beaten path (issue 9), each written by real tf-keras in the test."""
import os
import shutil

import h5py
import numpy as np
import pytest

import lstmtool
from conftest import run_cli
from helpers import changed, snapshot


@pytest.fixture(scope="module")
def tfk():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tf_keras

    return tf_keras


def scrambled_copy(src, dst, cells):
    """A copy whose recurrent datasets all hold other (random) values."""
    shutil.copy(src, dst)
    rng = np.random.default_rng(0)
    with h5py.File(dst, "r+") as f:
        for c in cells:
            for t in c.tensors.values():
                ds = f[t.path]
                ds[...] = rng.normal(size=ds.shape).astype(ds.dtype)


def assert_roundtrip(path, tmp_path, layout="keras"):
    """export -> import into a scrambled copy restores every dataset bit for bit."""
    with lstmtool.load(path) as m:
        paths = [c.path for c in m.cells]
        assert len(paths) == len(set(paths)), paths
        scrambled_copy(path, tmp_path / "scrambled.h5", m.cells)
    out = tmp_path / f"export-{layout}"
    r = run_cli("export", path, "-o", out, "--layout", layout)
    assert r.exit_code == 0, r.stderr
    restored = tmp_path / "restored.h5"
    r = run_cli("import", tmp_path / "scrambled.h5", out, "-o", restored)
    assert r.exit_code == 0, r.stderr
    assert not changed(snapshot(path), snapshot(restored))


def test_bidirectional_stacked_cells_weights_only_paths_unique(tfk, tmp_path):
    """Issue 9.2: four cells came out as bi/forward x2, bi/backward x2; import then wrote
    values into the wrong tensors."""
    inp = tfk.Input((5, 3))
    cells = [tfk.layers.LSTMCell(3), tfk.layers.LSTMCell(3)]
    x = tfk.layers.Bidirectional(tfk.layers.RNN(tfk.layers.StackedRNNCells(cells)), name="bi")(inp)
    model = tfk.Model(inp, x)
    path = str(tmp_path / "bi.wonly.h5")
    model.save_weights(path)
    with lstmtool.load(path) as m:
        assert [c.path for c in m.cells] == ["bi/forward/cell_0", "bi/forward/cell_1",
                                             "bi/backward/cell_0", "bi/backward/cell_1"]
        fw0 = m.cell("bi/forward/cell_1").W["f"].numpy()
    want = model.get_layer("bi").forward_layer.cell.cells[1].kernel.numpy()[:, 3:6]
    np.testing.assert_array_equal(fw0, want)
    assert_roundtrip(path, tmp_path)


def test_cells_a_file_cannot_name_apart_get_unique_paths():
    from lstmtool.reading.reader import unique_paths

    class C:
        def __init__(self, p):
            self.path = p

    cells, warnings = [C("a"), C("a"), C("b")], []
    unique_paths(cells, [], warnings)
    assert [c.path for c in cells] == ["a", "a~2", "b"] and len(warnings) == 1


@pytest.fixture(scope="module")
def k3():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    return keras


def nested_two_deep(k):
    bi = k.Input((5, 3))
    b = k.Model(bi, k.layers.LSTM(4, name="l")(bi), name="b")
    a = k.Sequential([k.Input((5, 3)), b], name="a")
    oi = k.Input((5, 3))
    return k.Model(oi, a(oi), name="outer")


@pytest.mark.parametrize("which", ["tf_keras", "keras3"])
def test_legacy_h5_nested_two_deep(tfk, k3, tmp_path, which):
    """Issue 9.1: outer -> Sequential a -> Functional b -> LSTM l crashed every command
    (KeyError: 'kernel'): a model's weights are named after its layers, never itself."""
    k = tfk if which == "tf_keras" else k3
    model = nested_two_deep(k)
    path = tmp_path / "nested.h5"
    model.save(path)
    with lstmtool.load(path) as m:
        assert [c.path for c in m.cells] == ["a/b/l"] and not m.incomplete
        got = m.cell("a/b/l").W["f"].numpy()
    np.testing.assert_array_equal(got, model.get_layer("a").get_layer("b").get_layer("l").cell.kernel.numpy()[:, 4:8])
    out = tmp_path / "up.keras"
    assert run_cli("upgrade", path, "-o", out).exit_code == 0
    x = np.random.default_rng(0).normal(0, 1, (2, 5, 3)).astype("float32")
    np.testing.assert_allclose(k3.saving.load_model(out).predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-5)


def test_weights_only_names_inside_nested_models(tfk, tmp_path):
    """Issue 9.7: two layers in one nested model were a/l/cell_0 and a/g/cell_1; a layer named
    `forward` became forward/forward. Names come from the file; what it cannot tell is said."""
    inner_in = tfk.Input((5, 3))
    h = tfk.layers.LSTM(4, return_sequences=True, name="l")(inner_in)
    inner = tfk.Model(inner_in, tfk.layers.GRU(2, name="g")(h), name="a")
    x = tfk.Input((5, 3))
    model = tfk.Model(x, tfk.layers.Dense(1)(tfk.layers.RepeatVector(5)(inner(x))), name="outer")
    fw_in = tfk.Input((5, 3))
    fw = tfk.Model(fw_in, tfk.layers.LSTM(2, name="forward")(fw_in))
    for m_, want in ((model, ["a/l", "a/g"]), (fw, ["forward"])):
        path = tmp_path / "w.h5"
        m_.save_weights(path)
        with lstmtool.load(path) as m:
            assert [c.path for c in m.cells] == want
            if want[0].startswith("a/"):
                assert any("not named in the file" in n for n in m.cells[0].notes)


def test_backslash_and_colon_in_layer_names_round_trip(k3, tmp_path):
    """Issue 9.3: `a\\lstm` went to DIR/a/lstm/ and could not be imported; with a nested a -> lstm
    both wrote a/lstm/W_i.npy. `lstm:0` was refused. Names map to files one to one, and back."""
    inner_in = k3.Input((5, 2))
    inner = k3.Model(inner_in, k3.layers.LSTM(2, return_sequences=True, name="lstm")(inner_in), name="a")
    x = k3.Input((5, 3))
    h = k3.layers.LSTM(2, return_sequences=True, name="a\\lstm")(x)
    h = k3.layers.GRU(2, return_sequences=True, name="gru:0")(inner(h))
    model = k3.Model(x, h)
    path = tmp_path / "odd.keras"
    model.save(path)
    with lstmtool.load(path) as m:
        assert sorted(c.path for c in m.cells) == ["a/lstm", "a\\lstm", "gru:0"]
    out = tmp_path / "e"
    r = run_cli("export", path, "-o", out)
    assert r.exit_code == 0, r.stderr
    files = sorted(os.path.relpath(os.path.join(d, f), out) for d, _, fs in os.walk(out) for f in fs)
    assert "a%5Clstm/W_i.npy" in files and "a/lstm/W_i.npy" in files and "gru%3A0/W_z.npy" in files
    scrambled = tmp_path / "s.keras"
    assert run_cli("set", path, "a\\lstm:W_*", "0", "-o", scrambled).exit_code == 0
    assert run_cli("set", scrambled, "gru:0:U_*", "0", "-o", tmp_path / "s2.keras").exit_code == 0
    restored = tmp_path / "r.keras"
    r = run_cli("import", tmp_path / "s2.keras", out, "-o", restored)
    assert r.exit_code == 0, r.stderr
    with lstmtool.load(path) as a, lstmtool.load(restored) as b:
        for ca in a.cells:
            for part in "WUb":
                for g in ca.gates:
                    assert np.array_equal(getattr(ca, part)[g].numpy(), getattr(b.cell(ca.path), part)[g].numpy())


def test_verify_on_valid_models_it_used_to_fail(k3, tmp_path):
    """Issue 9.6: return_state, Bidirectional(RNN(StackedRNNCells)), stacked go_backwards,
    layers named forward / cell_0 inside a nested model, merge_mode=None."""
    from lstmtool.reading.verify import verify_file

    L = k3.layers
    x = k3.Input((6, 3))
    o, h, c = L.LSTM(4, return_state=True, return_sequences=True, name="stateful_out")(x)
    bi = L.Bidirectional(L.RNN(L.StackedRNNCells([L.LSTMCell(3), L.GRUCell(2)]), return_sequences=True),
                         name="bistack")(o)
    back = L.RNN(L.StackedRNNCells([L.LSTMCell(2), L.LSTMCell(3)]), go_backwards=True, return_sequences=True,
                 name="backstack")(bi)
    inner_in = k3.Input((6, 3))
    f = L.LSTM(3, return_sequences=True, name="forward")(inner_in)
    inner = k3.Model(inner_in, L.GRU(3, return_sequences=True, name="cell_0")(f), name="inner")
    pair = L.Bidirectional(L.GRU(2, return_sequences=True), merge_mode=None, name="pair")(inner(back))
    model = k3.Model(x, [pair[0], pair[1], h])
    path = tmp_path / "tail.keras"
    model.save(path)
    result = verify_file(str(path))
    rows = {r["path"]: r for r in result["layers"]}
    assert set(rows) == {"stateful_out", "bistack", "backstack", "inner/forward", "inner/cell_0", "pair"}
    assert result["ok"], [(r["path"], r["max_abs_diff"]) for r in result["layers"]]
