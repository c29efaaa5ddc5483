"""lstmtool health (issue 28): planted defects in real Keras 3 and tf-keras models are found in
the right layer, gate and units and nothing else is flagged; a cell flagged exploding really
grows a perturbation of its state in Keras itself; the report page opens in a real headless
Chromium at desktop and phone widths. More models: python tests/health_models.py ... (note)."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import health_models
from conftest import FIXTURES, run_cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    where = tmp_path_factory.mktemp("health")
    cases = health_models.write(str(where), "keras3", 12, seed=21)
    code = f"import sys, json; sys.path.insert(0, {os.path.dirname(__file__)!r}); import health_models; " \
           f"print(json.dumps(health_models.write({str(where)!r}, 'tfkeras', 12, seed=22)))"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert p.returncode == 0, p.stderr[-2000:]
    return cases + json.loads(p.stdout.strip().splitlines()[-1])


def _match(finding, want):
    return (finding["check"] == want["check"] and finding["layer"] == want["layer"]
            and (want["gate"] is None or finding["gate"] == want["gate"])
            and (want["units"] is None or finding["units"] == want["units"]))


def test_each_planted_defect_is_found_where_it_was_planted_and_nothing_else(planted):
    from lstmtool.health.diagnose import diagnose

    assert {c["defect"] for c in planted} == set(health_models.DEFECTS)
    for case in planted:
        doc = diagnose(case["path"])
        flagged = [f for f in doc["findings"] if f["severity"] != "info"]
        want = case["planted"]
        if want is None:
            assert not flagged and doc["verdict"] == "healthy", (case, flagged)
            continue
        hits = [f for f in flagged if _match(f, want)]
        assert hits, (case, flagged)
        if case["defect"] == "exploding":  # the same defect, measured: the state grows at rest
            hits += [f for f in flagged if f["check"] == "unstable-rest" and f["layer"] == want["layer"]]
        assert flagged == hits, (case, [f for f in flagged if f not in hits])
        assert doc["verdict"] == ("errors" if case["defect"] == "nan" else "warnings")


def test_a_cell_flagged_unstable_really_grows_its_state_in_keras(planted):
    """The unstable-rest finding, checked by Keras itself on every cell of the Keras 3 models:
    from a tiny state and zero input, a flagged cell's state grows, an unflagged one's does not."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    from lstmtool.health.diagnose import diagnose

    verdicts = []
    for case in planted:
        if not case["path"].endswith(".keras") or case["defect"] == "nan":
            continue
        doc = diagnose(case["path"], outgoing=False)
        unstable = {f["layer"] for f in doc["findings"] if f["check"] == "unstable-rest"}
        model = keras.saving.load_model(case["path"], compile=False)
        for n in range(len(case["kinds"])):
            layer = model.get_layer(f"rnn{n}")
            rng = np.random.default_rng(n)
            h0 = (1e-7 * rng.normal(size=(1, layer.units))).astype("float32")
            states = [h0, np.zeros_like(h0)] if isinstance(layer, keras.layers.LSTM) else [h0]
            x = np.zeros((1, 12, layer.get_weights()[0].shape[0]), dtype="float32")
            probe = type(layer).from_config(dict(layer.get_config(), return_sequences=True, name="probe"))
            probe(x, initial_state=states)
            probe.set_weights(layer.get_weights())
            hs = np.asarray(probe(x, initial_state=states))[0].astype("float64")
            rate = float((np.linalg.norm(hs[11]) / np.linalg.norm(hs[5])) ** (1 / 6))
            flagged = f"rnn{n}" in unstable
            verdicts.append(flagged)
            assert (rate > 1.005) if flagged else (rate < 1.04), (case["path"], n, flagged, rate)
    assert any(verdicts) and not all(verdicts)


def test_cli_json_strict_exit_statuses_and_several_files(planted, tmp_path):
    clean = next(c["path"] for c in planted if c["defect"] == "clean")
    forget = next(c["path"] for c in planted if c["defect"] == "forget")
    nan = next(c["path"] for c in planted if c["defect"] == "nan")
    r = run_cli("health", clean, "--json", "--strict")
    assert r.exit_code == 0 and json.loads(r.stdout)["verdict"] == "healthy", r.stderr
    r = run_cli("health", forget)
    assert r.exit_code == 0 and "forget-bias-memory" in r.stdout and "set-forget-bias" in r.stdout or \
        "chrono-init" in r.stdout, r.stdout
    r = run_cli("health", forget, "--strict")
    assert r.exit_code == 1 and "(--strict)" in r.stderr
    r = run_cli("health", nan, clean, "--json")
    docs = json.loads(r.stdout)
    assert r.exit_code == 1 and [d["verdict"] for d in docs] == ["errors", "healthy"]
    f = docs[0]["findings"][0]
    assert set(f) == {"check", "severity", "layer", "gate", "units", "value", "threshold", "why", "fix"}
    r = run_cli("health", os.path.join(FIXTURES, "tfkeras", "convlstm.h5"), "--json")
    assert r.exit_code == 0 and "ConvLSTM" in json.loads(r.stdout)["cells"][0]["skipped"]
    (tmp_path / "taken.html").write_text("mine")
    r = run_cli("health", clean, "--html", tmp_path / "taken.html")
    assert r.exit_code == 2 and (tmp_path / "taken.html").read_text() == "mine"


def _chromium(url, width, out, user_dir):
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                           "--no-first-run", "--disable-background-networking", "--disable-component-update",
                           "--disable-sync", f"--user-data-dir={user_dir}", "--hide-scrollbars",
                           "--enable-logging=stderr", "--v=0", f"--window-size={width},1600",
                           f"--screenshot={out}", url], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium here (Debian package chromium; .ci/run installs it)")
def test_the_report_page_in_a_real_headless_chromium(planted, tmp_path):
    from PIL import Image

    paths = [next(c["path"] for c in planted if c["defect"] == d) for d in ("clean", "exploding", "forget")]
    page = tmp_path / "report.html"
    r = run_cli("health", *paths, "--html", page)
    assert r.exit_code == 0, r.stderr
    text = page.read_text()
    assert "http://" not in text and "https://" not in text and "<script" not in text  # self-contained
    assert text.count("<svg") >= 6 and "recurrent-spectral-norm" in text and "Comparison" in text
    for width in (1280, 390):
        shot = tmp_path / f"shot-{width}.png"
        p = _chromium(page.as_uri(), width, shot, tmp_path / f"profile-{width}")
        assert p.returncode == 0 and shot.exists(), p.stderr[-2000:]
        console = [line for line in p.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line
                   or "Failed to load" in line or "net::ERR" in line]
        assert not console, console
        image = Image.open(shot).convert("RGB")
        assert image.size[0] == width
        pixels = np.asarray(image)
        colours = len(np.unique(pixels.reshape(-1, 3), axis=0))
        inked = float(np.mean(np.any(np.abs(pixels.astype(int) - pixels[0, 0].astype(int)) > 40, axis=2)))
        assert colours > 50 and inked > 0.05, (width, colours, inked)  # text, badges and figures drawn
