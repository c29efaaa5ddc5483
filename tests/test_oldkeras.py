"""Upgrade judged by the Keras that wrote the file (issue 17).

fixtures/oldkeras/<version>/ holds models written by real Keras 1.2.2, 2.0.8, 2.1.6,
2.2.4 and 2.3.1 (Theano backend) through tests/oldkeras/generate.py, with the
predictions that Keras computed. Every case, in its three forms (full .h5; weights
+ to_json config; weights + a Keras 3 architecture), upgrades without Keras and
reproduces those predictions in Keras 3, or is refused for a reason the campaign
accepts (Theano's own padding rules, LSTM activation=hard_sigmoid). The larger
campaign runs by hand: python tests/oldkeras/campaign.py --count 100.
"""
import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import FIXTURES, run_cli

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "oldkeras"))
import campaign  # noqa: E402

CASES = sorted(p[: -len(".io.npz")] for p in glob.glob(os.path.join(FIXTURES, "oldkeras", "*", "*.io.npz")))
HONEST = ("Theano placed the padding", "also squashes the cell state", "returns its steps reversed")


def case_id(base):
    return os.path.relpath(base, os.path.join(FIXTURES, "oldkeras"))


def test_every_version_has_cases():
    versions = {os.path.basename(os.path.dirname(b)) for b in CASES}
    assert versions >= {"1.2.2", "2.0.8", "2.1.6", "2.2.4", "2.3.1"}, versions


@pytest.mark.parametrize("base", CASES, ids=case_id)
def test_upgrade_reproduces_the_old_keras(base, tmp_path):
    import keras

    import lstmtool

    about = json.load(open(base + ".about.json"))
    backend = about.get("backend") if about["keras"].startswith("1.") else None
    verdicts = campaign.judge_case(base, str(tmp_path), keras, lstmtool.upgrade, backend=backend)
    for form, (verdict, detail) in verdicts.items():
        if verdict == "REFUSED":
            assert any(h in detail for h in HONEST), (form, detail)
        else:
            assert verdict in ("match", "skipped"), (form, verdict, detail)
    assert verdicts["full"][0] == verdicts["config"][0], verdicts  # the same model, two layouts on disk


def test_keras1_fused_gpu_cells_are_complete_and_editable(tmp_path):
    """consume_less='gpu' stores W, U, b fused (i, f, c, o): read, edit, upgrade."""
    import h5py

    gpu = [b for b in CASES if b.split(os.sep)[-2] == "1.2.2"
           and '"consume_less": "gpu"' in open(b + ".json").read()]
    assert gpu, "no consume_less='gpu' case among the Keras 1 fixtures"
    import lstmtool

    src = gpu[0] + ".h5"
    with lstmtool.load(src) as m:
        assert not m.incomplete, m.incomplete
        fused = [c for c in m.cells if "fused" in " ".join(c.notes)]
        assert fused
        cell = fused[0]
        W = cell.tensors["W"]
        with h5py.File(src, "r") as f:
            kernel = f[W.path][()]
        u = cell.units
        for k, g in enumerate(cell.gates):  # gate k owns columns k*u..(k+1)*u, Keras 2's order
            np.testing.assert_array_equal(cell.W[g].numpy(), kernel[:, k * u:(k + 1) * u])
    out = tmp_path / "edited.h5"
    target = f"{cell.path}:b_f" if cell.family == "lstm" else f"{cell.path}:b_z"
    assert run_cli("set", src, target, "0.75", "-o", out).exit_code == 0
    with lstmtool.load(out) as m2:
        edited = next(c for c in m2.cells if c.path == cell.path)
        gate = "f" if cell.family == "lstm" else "z"
        assert np.all(edited.b[gate].numpy() == np.float32(0.75))


BACKENDS_SCRIPT = """
import os, sys, json
import numpy as np
import keras
m = keras.saving.load_model(sys.argv[1], compile=False)
io = np.load(sys.argv[2])
keys = sorted(k for k in io.files if k.startswith("x") and k[1:].isdigit())
xs = [io[k] for k in keys]
y = m.predict(xs if len(xs) > 1 else xs[0], verbose=0)
print(json.dumps({"backend": keras.backend.backend(),
                  "diff": float(np.max(np.abs(np.asarray(y) - io["y"]))),
                  "is_torch_module": keras.backend.backend() == "torch" and __import__("torch").nn.Module in type(m).__mro__}))
"""


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_upgraded_files_compute_the_same_on_every_keras3_backend(backend, tmp_path):
    pytest.importorskip({"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}[backend])
    import lstmtool

    picked = []
    for base in CASES:
        out = tmp_path / (os.path.basename(base) + ".keras")
        try:
            lstmtool.upgrade(base + ".h5", out, backend="theano" if "/1.2.2/" in base else None)
        except lstmtool.LstmtoolError:
            continue
        picked.append((base, out))
        if len(picked) == 6:
            break
    assert picked
    script = tmp_path / "run.py"
    script.write_text(BACKENDS_SCRIPT)
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    for base, out in picked:
        r = subprocess.run([sys.executable, str(script), str(out), base + ".io.npz"], capture_output=True, text=True,
                           env=env, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        doc = json.loads(r.stdout.strip().splitlines()[-1])
        assert doc["backend"] == backend
        assert doc["diff"] <= 1e-5 * max(1.0, float(np.max(np.abs(np.load(base + ".io.npz")["y"])))), (base, doc)
        if backend == "torch":
            assert doc["is_torch_module"]  # an upgraded model on the torch backend is a torch.nn.Module
