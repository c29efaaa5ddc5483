"""Judge `upgrade` by the Keras that wrote the file: a campaign run by hand.

    python tests/oldkeras/campaign.py --count 100            # 100 models x 5 versions x 3 forms
    python tests/oldkeras/campaign.py --versions 1.2.2 --count 20 --keep /tmp/cases
    python tests/oldkeras/campaign.py --judge fixtures/oldkeras   # judge existing cases only

For every case `generate.py` writes (in the old Keras' own venv, made by venvs.py),
three forms are upgraded without Keras and loaded by Keras 3:
  full     <case>.h5                              -> .keras
  config   <case>.wonly.h5 --config <case>.json   -> .keras
  weights  <case>.wonly.h5 --like <full>.keras    -> .keras
  wonly    <case>.wonly.h5 [--hard-sigmoid]       -> .weights.h5, loaded by load_weights into
           the full form's model (where one --hard-sigmoid fits every gate of the model)
Each verdict: match (max |y3 - y_old| <= tol), MISMATCH, REFUSED (with lstmtool's
reason), or LOAD-FAIL (Keras 3 could not load what lstmtool wrote). Only
match and honest refusals are acceptable; the summary counts each.
"""
from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, HERE)
import venvs  # noqa: E402

TOL = 1e-5
FORMS = ("full", "config", "weights", "wonly")


def generate(version, out, count, seed):
    venvs.make(version)
    env = dict(os.environ, **venvs.ENV)
    run = subprocess.run([venvs.python_of(version), os.path.join(HERE, "generate.py"), out, "--count", str(count),
                          "--seed", str(seed)], env=env, capture_output=True, text=True)
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr[-2000:]
    return summary


def inputs_of(io):
    keys = sorted(k for k in io.files if k[1:].isdigit() and k.startswith("x"))
    xs = [io[k] for k in keys]
    return xs if len(xs) > 1 else xs[0]


def judge_case(base, work, keras, upgrade_fn, forms=FORMS, backend=None):
    """{form: (verdict, detail)} for one case. `backend`: what a Keras 1 case was written with
    (Keras 1 does not record it; the user says it with --backend)."""
    from lstmtool.errors import LstmtoolError

    io = np.load(base + ".io.npz")
    x, y_old = inputs_of(io), io["y"]
    verdicts = {}
    name = os.path.basename(base)
    full_out = os.path.join(work, name + ".full.keras")
    jobs = {"full": (base + ".h5", full_out, {}),
            "config": (base + ".wonly.h5", os.path.join(work, name + ".config.keras"),
                       {"config": base + ".json"}),
            "weights": (base + ".wonly.h5", os.path.join(work, name + ".weights.keras"), {"like": full_out})}
    jobs["wonly"] = (base + ".wonly.h5", os.path.join(work, name + ".weights.h5"), {})
    for form in forms:
        src, out, kw = jobs[form]
        if form == "wonly":
            verdicts[form] = _weights_only(base, src, out, full_out, verdicts, keras, upgrade_fn, x, y_old, backend)
            continue
        if form == "weights" and verdicts.get("full", ("",))[0] != "match":
            verdicts[form] = ("skipped", "needs the full upgrade as its architecture")
            continue
        try:
            upgrade_fn(src, out, force=True, backend=backend, **kw)
        except LstmtoolError as e:
            verdicts[form] = ("REFUSED", str(e).replace(src, "<case>")[:300])
            continue
        except Exception as e:  # a crash in lstmtool is a finding, not a verdict to hide
            verdicts[form] = ("CRASH", f"{type(e).__name__}: {e}"[:300])
            continue
        try:
            model = keras.saving.load_model(out, compile=False)
            y = np.asarray(model.predict(x, verbose=0))
        except Exception as e:
            verdicts[form] = ("LOAD-FAIL", f"{type(e).__name__}: {e}".splitlines()[0][:300])
            continue
        if y.shape != y_old.shape:
            verdicts[form] = ("MISMATCH", f"shape {y.shape} vs {y_old.shape}")
            continue
        diff = float(np.max(np.abs(y - y_old))) if y.size else 0.0
        scale = max(1.0, float(np.max(np.abs(y_old)))) if y.size else 1.0
        verdicts[form] = ("match", f"{diff:.2e}") if diff <= TOL * scale else ("MISMATCH", f"max |diff| {diff:.3g}")
    return verdicts


def _hard_sigmoid_everywhere(config_text):
    """True / False where every gated layer agrees on recurrent_activation=hard_sigmoid, None if
    they differ or another activation is hard_sigmoid (one flag cannot say that)."""
    cfg = json.loads(config_text)
    seen = set()

    def walk(d):
        if isinstance(d, dict):
            c = d.get("config") if isinstance(d.get("config"), dict) else {}
            cls = d.get("class_name", "")
            if cls in ("LSTM", "GRU"):
                seen.add(c.get("recurrent_activation", c.get("inner_activation", "hard_sigmoid")) == "hard_sigmoid")
            if c.get("activation") == "hard_sigmoid":
                seen.add(None)
            for v in d.values():
                walk(v)
        elif isinstance(d, list):
            for v in d:
                walk(v)
    walk(cfg)
    return None if None in seen or len(seen) > 1 else (True in seen)


def _weights_only(base, src, out, full_out, verdicts, keras, upgrade_fn, x, y_old, backend=None):
    from lstmtool.errors import LstmtoolError

    if verdicts.get("full", ("",))[0] != "match":
        return "skipped", "needs the full upgrade as its architecture"
    flag = _hard_sigmoid_everywhere(open(base + ".json").read())
    if flag is None:
        return "skipped", "one --hard-sigmoid flag cannot describe this model's activations"
    try:
        upgrade_fn(src, out, force=True, hard_sigmoid=flag, backend=backend)
    except LstmtoolError as e:
        return "REFUSED", str(e)[:300]
    try:
        model = keras.saving.load_model(full_out, compile=False)
        model.load_weights(out)
        y = np.asarray(model.predict(x, verbose=0))
    except Exception as e:
        return "LOAD-FAIL", f"{type(e).__name__}: {e}".splitlines()[0][:300]
    diff = float(np.max(np.abs(y - y_old)))
    return ("match", f"{diff:.2e}") if diff <= TOL * max(1.0, float(np.max(np.abs(y_old)))) \
        else ("MISMATCH", f"max |diff| {diff:.3g}")


def judge(dirs, forms=FORMS, verbose=True):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    import lstmtool

    table = collections.Counter()
    problems = []
    with tempfile.TemporaryDirectory() as work:
        for d in dirs:
            for io_path in sorted(glob.glob(os.path.join(d, "*.io.npz"))):
                base = io_path[: -len(".io.npz")]
                about = json.load(open(base + ".about.json"))
                backend = about.get("backend", "theano") if about["keras"].startswith("1.") else None
                for form, (verdict, detail) in judge_case(base, work, keras, lstmtool.upgrade, forms,
                                                          backend).items():
                    table[(about["keras"], form, verdict)] += 1
                    if verdict not in ("match", "skipped"):
                        problems.append((base, form, verdict, detail))
                        if verbose:
                            print(f"{base} [{form}] {verdict}: {detail}", flush=True)
    return table, problems


def report(table):
    versions = sorted({v for v, _, _ in table})
    verdicts = sorted({w for _, _, w in table})
    print(f"{'keras':8} {'form':8} " + " ".join(f"{w:>9}" for w in verdicts))
    for v in versions:
        for form in FORMS:
            row = [table.get((v, form, w), 0) for w in verdicts]
            if any(row):
                print(f"{v:8} {form:8} " + " ".join(f"{n:9d}" for n in row))
    total = sum(table.values())
    print(f"cases x forms: {total}, match: {sum(n for (_, _, w), n in table.items() if w == 'match')}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--versions", nargs="*", default=list(venvs.VERSIONS))
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", help="write the cases here (default: a temporary directory)")
    ap.add_argument("--judge", nargs="*", help="only judge the cases in these directories (recursively)")
    args = ap.parse_args()
    if args.judge:
        dirs = sorted({os.path.dirname(p) for d in args.judge for p in glob.glob(f"{d}/**/*.io.npz", recursive=True)})
        table, _ = judge(dirs)
        report(table)
        return
    root = args.keep or tempfile.mkdtemp(prefix="oldkeras-")
    dirs = []
    for v in args.versions:
        out = os.path.join(root, v)
        print(v, generate(v, out, args.count, args.seed), flush=True)
        dirs.append(out)
    table, _ = judge(dirs)
    report(table)


if __name__ == "__main__":
    main()
