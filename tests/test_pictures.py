"""plot, diff and trace (issue 12): the pictures are looked at, not just found."""
import json
import os
import shutil

import numpy as np
import pytest

from conftest import FIXTURES, run_cli

pytest.importorskip("matplotlib")
SRC = os.path.join(FIXTURES, "keras3", "lstm_gru.h5")


def png(path):
    import matplotlib.image

    return matplotlib.image.imread(str(path))[..., :3]


def centre(image, box):
    x0, y0, x1, y1 = box
    return image[(y0 + y1) // 2, (x0 + x1) // 2]


@pytest.fixture
def edited(tmp_path):
    """lstm_gru.h5 with b_f = 5.0 and W_f all positive (0.5)."""
    path = tmp_path / "m.h5"
    shutil.copy(SRC, path)
    assert run_cli("set-forget-bias", "5.0", path).exit_code == 0
    assert run_cli("set", path, "lstm:W_f", "0.5").exit_code == 0
    return path


def test_weights_panels_show_the_known_values_in_the_right_colours(tmp_path, edited):
    out = tmp_path / "w.png"
    r = run_cli("plot", edited, "lstm", "-o", out, "--json")
    assert r.exit_code == 0, r.stderr
    boxes = json.loads(r.stdout)["panels"]
    image = png(out)
    assert image.shape[0] > 300 and image.shape[1] > 300
    red = centre(image, boxes["lstm b_f"])  # 5.0: the top of the bias scale (RdBu_r: dark red)
    assert red[0] > 0.35 and red[1] < 0.15 and red[2] < 0.2
    wf = centre(image, boxes["lstm W_f"])  # all positive: red side of the diverging map
    assert wf[0] > wf[2]
    bi = centre(image, boxes["lstm b_i"])  # small next to 5.0: close to white
    assert bi.min() > 0.8


def test_large_matrices_are_reduced_and_say_so():
    from lstmtool.pictures.draw import reduce_blocks

    a = np.arange(400 * 330, dtype=np.float64).reshape(400, 330)
    r, block = reduce_blocks(a, 160)
    assert block == (3, 3) and r.shape == (134, 110)
    assert r[0, 0] == a[:3, :3].mean()


def test_bias_and_timescales_plots(tmp_path, edited):
    r = run_cli("plot", edited, "--kind", "bias", "-o", tmp_path / "b.png", "--json")
    assert r.exit_code == 0, r.stderr
    assert {"lstm b_f", "gru b_z"} <= set(json.loads(r.stdout)["panels"])
    r = run_cli("plot", edited, "--kind", "timescales", "-o", tmp_path / "t.png", "--json")
    assert r.exit_code == 0 and "lstm timescales" in json.loads(r.stdout)["panels"]
    from lstmtool import load
    from lstmtool.pictures.draw import timescales

    with load(edited) as m:
        t, gate, chrono = timescales(m.cell("lstm"))
        assert gate == "f" and np.allclose(t, 1 + np.exp(5.0)) and chrono is None


def test_chrono_initialised_range_is_recognised(tmp_path):
    path = tmp_path / "c.h5"
    shutil.copy(SRC, path)
    assert run_cli("chrono-init", path, "--tmax", "50", "--seed", "0").exit_code == 0
    from lstmtool import load
    from lstmtool.pictures.draw import timescales

    with load(path) as m:
        t, _, chrono = timescales(m.cell("lstm"))
        assert chrono is not None and chrono[1] <= 50 and t.min() >= 2 - 1e-6


def test_plot_never_overwrites_and_needs_matplotlib_message(tmp_path, edited, monkeypatch):
    out = tmp_path / "w.png"
    out.write_bytes(b"keep")
    r = run_cli("plot", edited, "-o", out)
    assert r.exit_code == 2 and out.read_bytes() == b"keep"
    import builtins

    real = builtins.__import__

    def no_matplotlib(name, *a, **k):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    r = run_cli("plot", edited, "-o", tmp_path / "x.png")
    assert r.exit_code == 2 and "lstmtool[plot]" in r.stderr and not (tmp_path / "x.png").exists()


def test_diff_reports_exactly_the_edited_gates(tmp_path):
    a = tmp_path / "a.h5"
    shutil.copy(SRC, a)
    b = tmp_path / "b.h5"
    assert run_cli("set", a, "gru:U_r", "0.25", "-o", b).exit_code == 0
    r = run_cli("diff", a, b, "--json", "--plot", tmp_path / "d.png")
    assert r.exit_code == 1
    data = json.loads(r.stdout)
    changed = [(c["path"], g["part"], g["gate"]) for c in data["cells"] for g in c.get("gates", []) if g["changed"]]
    assert changed == [("gru", "U", "r")]
    assert (tmp_path / "d.png").stat().st_size > 1000
    assert run_cli("diff", a, a).exit_code == 0
    assert run_cli("diff", a, tmp_path / "missing.h5").exit_code == 2
    (tmp_path / "damaged.h5").write_bytes(a.read_bytes()[:5000])
    r = run_cli("diff", a, tmp_path / "damaged.h5")
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1


def test_diff_of_h5_against_its_upgrade_names_the_documented_scaling(tmp_path):
    src = os.path.join(FIXTURES, "upgrade", "hard_sigmoid.h5")
    up = tmp_path / "up.keras"
    assert run_cli("upgrade", src, "-o", up).exit_code == 0
    r = run_cli("diff", src, up, "--json")
    data = json.loads(r.stdout)
    assert r.exit_code == 1
    for cell in data["cells"]:
        assert "hard_sigmoid upgrade" in cell["equivalent"]
        assert all(g.get("scaled_by") == 1.2 for g in cell["gates"] if g["changed"])


def test_trace_over_forget_bias_copies_in_natural_order(tmp_path):
    names = []
    for k, value in enumerate([0, 1, 2]):
        name = tmp_path / f"weights-improvement-{[100, 19, 2][k]}-1.5.h5"
        shutil.copy(SRC, name)
        assert run_cli("set-forget-bias", str(value), name).exit_code == 0
        names.append(name)
    r = run_cli("trace", *names, "--stat", "mean", "--part", "b", "--gate", "f", "--layer", "lstm", "--json",
                "--plot", tmp_path / "t.png")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert [os.path.basename(row["file"]) for row in data["rows"]] == [
        "weights-improvement-2-1.5.h5", "weights-improvement-19-1.5.h5", "weights-improvement-100-1.5.h5"]
    assert [row["values"]["lstm"] for row in data["rows"]] == [2.0, 1.0, 0.0]
    r = run_cli("trace", *names, "--csv", "--layer", "lstm")
    assert r.stdout.splitlines()[0] == "file,lstm" and r.stdout.splitlines()[1].endswith(",2.0")


def test_a_closed_output_pipe_ends_quietly():
    import subprocess
    import sys

    from conftest import ROOT

    p = subprocess.Popen([sys.executable, "-m", "lstmtool", "inspect", SRC],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    p.stdout.close()  # the reader is gone before the first line is written
    err = p.stderr.read().decode()
    assert p.wait() == 141 and "error" not in err and "Traceback" not in err


def test_typos_get_the_nearest_names(tmp_path):
    r = run_cli("dif", SRC, SRC)
    assert r.exit_code == 2 and "did you mean 'diff'" in r.stderr
    r = run_cli("plot", SRC, "lsmt", "-o", tmp_path / "x.png")
    assert r.exit_code == 2 and "LAYER 'lsmt'" in r.stderr and "'lstm'" in r.stderr
