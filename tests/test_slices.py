"""Every gate view equals the matching block of Keras' own arrays, bit for bit."""
import numpy as np
import pytest

import lstmtool
from conftest import expected, fid, fixture_files, model_name

FILES = fixture_files()


def keras_arrays(path):
    """{cell path: {kernel|recurrent_kernel|bias: array}} as Keras reported them."""
    out = {}
    for key in expected(path).files:
        if key.startswith("w|"):
            _, cell, name = key.split("|")
            out.setdefault(cell, {})[name] = expected(path)[key]
    return out


@pytest.mark.parametrize("path", FILES, ids=fid)
def test_gate_views_equal_keras_arrays(path):
    arrays = keras_arrays(path)
    config_less = path.endswith(".weights.h5")
    with lstmtool.load(path) as model:
        if config_less and model_name(path) == "stacked":
            # without a config the stacking order is unknown: match cells by shapes instead
            assert sorted(c.units for c in model.cells) == sorted(a["recurrent_kernel"].shape[0] for a in arrays.values())
            return
        assert sorted(c.path for c in model.cells) == sorted(arrays)
        for cell in model.cells:
            ka = arrays[cell.path]
            u = cell.units
            assert u == ka["recurrent_kernel"].shape[-2]
            for k, g in enumerate(cell.gates):
                cols = slice(k * u, (k + 1) * u)
                assert np.array_equal(cell.W[g].numpy(), ka["kernel"][..., cols]), (cell.path, "W", g)
                assert np.array_equal(cell.U[g].numpy(), ka["recurrent_kernel"][..., cols]), (cell.path, "U", g)
                if "bias" in ka:
                    assert np.array_equal(cell.b[g].numpy(), ka["bias"][..., cols]), (cell.path, "b", g)
                else:
                    assert cell.b == {} and not cell.use_bias
                assert cell.W[g].numpy().dtype == ka["kernel"].dtype


def test_lstm_forget_gate_ranges_are_exact():
    with lstmtool.load(fixture_files("keras3")[0].replace("bidir", "lstm_gru").replace(".h5", ".keras")) as m:
        cell = m.cell("lstm")
        assert cell.gates == ("i", "f", "c", "o")
        assert cell.W["f"].terms[0].ranges() == [[0, 3], [4, 8]]
        assert cell.U["f"].terms[0].ranges() == [[0, 4], [4, 8]]
        assert cell.b["f"].terms[0].ranges() == [[4, 8]]
        assert cell.W["f"].source_text() == "kernel[:, 4:8]"
        gru = m.cell("gru")
        assert gru.gates == ("z", "r", "h") and gru.reset_after is True
        assert gru.b["h"].source_text() == "bias[:, 6:9]"
        assert gru.b["h"].shape == (2, 3)


def test_views_are_lazy_and_read_only_their_slice():
    path = [p for p in FILES if p.endswith("keras3/lstm_gru.h5")][0]
    with lstmtool.load(path) as m:
        cell = m.cell("lstm")
        reads = []
        inner = cell.W["f"].reader
        cell.W["f"].reader = lambda p, idx: reads.append((p, idx)) or inner(p, idx)
        cell.W["f"].numpy()
        assert reads == [(cell.tensors["kernel"].path, (slice(None), slice(4, 8)))]


def test_stacked_cells_follow_config_order_not_alphabetical():
    for path in [p for p in FILES if model_name(p) == "stacked" and not p.endswith(".weights.h5")]:
        with lstmtool.load(path) as m:
            assert [c.family for c in m.cells[:3]] == ["lstm", "gru", "lstm"], path
