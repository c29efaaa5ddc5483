"""The NumPy reference built from gate views matches real Keras on every full-model fixture."""
import numpy as np
import pytest

from conftest import expected, fid, fixture_files, run_cli

FULL = fixture_files(full_only=True)


@pytest.mark.parametrize("path", FULL, ids=fid)
def test_verify_passes(path):
    from lstmtool.reading.verify import verify_file

    result = verify_file(path)
    assert result["ok"], result
    want = "keras 3" if "/keras3/" in path else "tf-keras 2"
    assert result["keras"].startswith(want)
    assert result["layers"] and all(r["max_abs_diff"] <= r["tolerance"] for r in result["layers"])
    if "float16" not in path:
        assert all(r["tolerance"] == 1e-5 for r in result["layers"])


def test_verify_detects_a_wrong_slice(monkeypatch):
    """Swap f and i in lstmtool's views: verify must notice (the test can fail)."""
    from lstmtool.cells import reference
    from lstmtool.reading.verify import verify_file

    real = reference.gate_arrays

    def swapped(cell):
        p = real(cell)
        if cell.family == "lstm":
            p["W"]["i"], p["W"]["f"] = p["W"]["f"], p["W"]["i"]
        return p

    monkeypatch.setattr(reference, "gate_arrays", swapped)
    path = [p for p in FULL if p.endswith("keras3/lstm_gru.keras")][0]
    result = verify_file(path)
    assert not result["ok"]
    assert [r["ok"] for r in result["layers"]] == [False, True]


def test_verify_cli_reports_keras_used():
    path = [p for p in FULL if p.endswith("tfkeras/bidir.h5")][0]
    r = run_cli("verify", path)
    assert r.exit_code == 0, r.stderr
    assert "loaded with tf-keras" in r.stdout and "bigru2" in r.stdout


def test_weights_only_refused_by_verify():
    path = fixture_files("keras3")[2]  # bidir.weights.h5
    assert path.endswith(".weights.h5")
    r = run_cli("verify", path)
    assert r.exit_code == 2 and "weights only" in r.stderr


def test_fixture_outputs_recorded():
    for path in FULL:
        e = expected(path)
        assert np.isfinite(e["y"]).all() and e["x"].shape[0] == 2
