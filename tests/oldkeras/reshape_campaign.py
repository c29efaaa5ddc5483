"""By hand: prune models that old Kerases wrote and judge each result twice, by the Keras
that wrote it (it loads the pruned .h5 and must compute the zeroed original) and by
Keras 3 (the pruned file upgraded). Needs the venvs of `venvs.py`.

    python tests/oldkeras/reshape_campaign.py --seed 1 --count 12 [--keep DIR]
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from venvs import ENV, VERSIONS, python_of  # noqa: E402


def in_venv(version, *args):
    r = subprocess.run([python_of(version), os.path.join(HERE, "reshape_cases.py"), *args],
                       capture_output=True, text=True, env=dict(os.environ, **ENV), timeout=1800)
    if r.returncode:
        raise RuntimeError(r.stderr.strip().splitlines()[-1])
    return r.stdout


def keras3_predict(path, x):
    import keras

    return np.asarray(keras.models.load_model(path, compile=False)(x))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count", type=int, default=12)
    ap.add_argument("--versions", nargs="*", default=list(VERSIONS))
    ap.add_argument("--keep", help="write the cases here (fixtures) instead of a temporary directory")
    a = ap.parse_args()
    from lstmtool.surgery.prune import prune
    from lstmtool.upgrader.keras3 import upgrade

    totals = {"cases": 0, "ok": 0, "bad": []}
    for version in a.versions:
        where = os.path.join(a.keep, version) if a.keep else tempfile.mkdtemp(prefix=f"prune-{version}-")
        in_venv(version, "make", where, "--seed", str(a.seed), "--count", str(a.count))
        for case in sorted(glob.glob(os.path.join(where, "px*.prune.json"))):
            base = case[: -len(".prune.json")]
            about = json.load(open(case))
            io = np.load(base + ".prune.npz")
            with tempfile.TemporaryDirectory() as tmp:
                pruned = os.path.join(tmp, "pruned.h5")
                prune(base + ".h5", about["layer"], out=pruned, units=about["units"])
                own = json.loads(in_venv(version, "judge", base, pruned).strip().splitlines()[-1])
                up = os.path.join(tmp, "pruned.keras")
                upgrade(pruned, up, backend="theano")
                k3 = float(np.abs(keras3_predict(up, io["x"]) - io["y_zeroed"]).max())
            ok = own["max_diff"] <= 1e-5 and k3 <= 1e-5 and own["moved"] > 1e-4
            totals["cases"] += 1
            totals["ok"] += ok
            if not ok:
                totals["bad"].append(base)
            print(f"{'ok ' if ok else 'BAD'} {version} {os.path.basename(base)} {about['form']:22s} "
                  f"own Keras {own['max_diff']:.1e}  Keras 3 {k3:.1e}  (zeroing moved {own['moved']:.1e})")
    print(json.dumps(totals))


if __name__ == "__main__":
    main()
