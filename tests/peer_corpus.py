"""Score `upgrade` on the peer corpus (../shared/peer): every file upgrades and loads in
Keras 3, or is refused for a stated reason; with stored outputs, they must match.

    python tests/peer_corpus.py                 # both corpora, a summary and every non-match
    python tests/peer_corpus.py --json out.json
    python tests/peer_corpus.py --oracle        # and compare the rest with tf-keras' predictions

The test suite runs the same judgement (tests/test_peer.py); this prints the figures.
"""
from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import sys
import tempfile

import h5py
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEER = os.path.join(os.path.dirname(ROOT), "shared", "peer")
TOL = 1e-5
# Honest refusals: what no Keras 3 model can express, by the words lstmtool uses for them.
ACCEPTED_REFUSALS = ("no exact Keras 3 operation", "Lambda layers", "time_major=True", "LocallyConnected")


def stored_io(path):
    """(inputs in input order, outputs) from a DL4J *_inputs_and_outputs.h5."""
    with h5py.File(path, "r") as f:
        ins = [f["inputs"][k][()] for k in f["inputs"]]
        group = f["predictions"] if "predictions" in f else f["outputs"]
        outs = [group[k][()] for k in group]
    return ins, outs


def judge_file(src, work, keras, upgrade, io=None, oracle=None, **kw):
    """`oracle`: a Keras that loads the original (tf_keras): without stored outputs, the
    upgraded model must compute what it computes on random inputs."""
    from lstmtool.errors import LstmtoolError

    out = os.path.join(work, os.path.basename(src) + ".keras")
    try:
        upgrade(src, out, force=True, **kw)
    except LstmtoolError as e:
        reason = str(e)
        return ("refused-ok" if any(r in reason for r in ACCEPTED_REFUSALS) else "REFUSED"), reason[:240]
    except Exception as e:
        return "CRASH", f"{type(e).__name__}: {e}"[:240]
    try:
        model = keras.saving.load_model(out, compile=False)
    except Exception as e:
        return "LOAD-FAIL", f"{type(e).__name__}: {e}".splitlines()[0][:240]
    if io is None and oracle is not None:
        return _against(oracle, src, model)
    if io is None:
        return "loads", ""
    ins, outs = stored_io(io)
    try:
        ys = model.predict(ins if len(ins) > 1 else ins[0], verbose=0)
    except Exception as e:
        return "RUN-FAIL", f"{type(e).__name__}: {e}".splitlines()[0][:240]
    ys = ys if isinstance(ys, list) else [ys]
    worst = 0.0
    for y, want in zip(ys, outs):
        y = np.asarray(y)
        if y.shape != want.shape:
            return "MISMATCH", f"shape {y.shape} vs {want.shape}"
        worst = max(worst, float(np.max(np.abs(y - want))) / max(1.0, float(np.max(np.abs(want)))))
    return ("match", f"{worst:.1e}") if worst <= TOL else ("MISMATCH", f"max rel |diff| {worst:.3g}")


def _against(oracle, src, model):
    try:
        old = oracle.models.load_model(src, compile=False)
    except Exception as e:
        return "loads", f"(the oracle cannot load the original: {type(e).__name__})"
    rng = np.random.default_rng(0)
    shapes = old.input_shape if isinstance(old.input_shape, list) else [old.input_shape]
    dtypes = [getattr(t, "dtype", "float32") for t in old.inputs]
    xs = []
    for shape, dtype in zip(shapes, dtypes):
        dims = (3,) + tuple(d or 5 for d in shape[1:])
        xs.append(rng.integers(0, 2, dims).astype("int32") if "int" in str(dtype)
                  else rng.normal(0, 1, dims).astype("float32"))
    try:
        want = old.predict(xs if len(xs) > 1 else xs[0], verbose=0)
        got = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    except Exception as e:
        return "loads", f"(not run on random inputs: {type(e).__name__})"
    want = want if isinstance(want, list) else [want]
    got = got if isinstance(got, list) else [got]
    worst = 0.0
    for y, w in zip(got, want):
        y, w = np.asarray(y), np.asarray(w)
        if y.shape != w.shape:
            return "MISMATCH", f"shape {y.shape} vs {w.shape}"
        worst = max(worst, float(np.max(np.abs(y - w), initial=0)) / max(1.0, float(np.max(np.abs(w), initial=0))))
    return ("equal", f"{worst:.1e}") if worst <= TOL else ("MISMATCH", f"max rel |diff| {worst:.3g}")


def cases():
    """(corpus, name, source, io, upgrade kwargs) for every peer file and form."""
    for src in sorted(glob.glob(os.path.join(PEER, "dl4j-tfkeras", "*.h5"))):
        yield "dl4j-tfkeras", os.path.basename(src), src, None, {}
    for io in sorted(glob.glob(os.path.join(PEER, "dl4j-examples-io", "*_inputs_and_outputs.h5"))):
        stem = io[: -len("_inputs_and_outputs.h5")]
        yield "dl4j-examples-io", os.path.basename(stem) + " full", stem + "_model.h5", io, {}
        yield "dl4j-examples-io", os.path.basename(stem) + " config", stem + "_weights.h5", io, \
            {"config": stem + "_config.json"}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json")
    ap.add_argument("--oracle", action="store_true", help="files without stored outputs: compare with what "
                                                          "tf-keras computes from the original on random inputs")
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # channels_first convolutions on any CPU (conftest.py)
    import keras

    sys.path.insert(0, ROOT)
    import lstmtool

    oracle = None
    if args.oracle:
        import tf_keras as oracle

    counts, rows = collections.Counter(), []
    with tempfile.TemporaryDirectory() as work:
        for corpus, name, src, io, kw in cases():
            verdict, detail = judge_file(src, work, keras, lstmtool.upgrade, io, oracle, **kw)
            counts[(corpus, verdict)] += 1
            rows.append({"corpus": corpus, "case": name, "verdict": verdict, "detail": detail})
            if verdict not in ("match", "loads", "equal") or detail.startswith("("):
                print(f"{corpus}/{name}: {verdict}: {detail}", flush=True)
    for (corpus, verdict), n in sorted(counts.items()):
        print(f"{corpus:18} {verdict:10} {n}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
