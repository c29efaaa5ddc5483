"""Score `convert` (ONNX) on every corpus: onnxruntime's outputs against what the Keras that
wrote each file computed, or a refusal naming the layer.

    python tests/onnx_corpus.py                   # every corpus: counts and every non-equal case
    python tests/onnx_corpus.py fixtures oldkeras # some of them

Oracles, per corpus: fixtures/*/ `<model>.expected.npz` (written by the Keras that wrote the
model); fixtures/oldkeras `<case>.io.npz` (Keras 1.2.2-2.3.1 themselves); the peer corpus's
stored outputs (dl4j-examples-io) and tf-keras on the original file (dl4j-tfkeras, random
inputs); realworld: tf-keras (Keras 2 files) or Keras 3 on the original where one loads it.
Files with a stored output are also run at a second batch size (the batch repeated).
tests/test_onnx.py runs the same judgement.
"""
from __future__ import annotations

import collections
import glob
import json
import os
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "fixtures")
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
TOL = 1e-5


def _stored(path):
    d = np.load(path)
    xs = [d["x"]] if "x" in d.files else [d[f"x{k}"] for k in range(sum(k.startswith("x") for k in d.files))]
    return xs, [d["y"]]


def cases(which=None):
    """(corpus, name, source, oracle): oracle is ("stored", inputs, outputs) or ("keras", None)."""
    which = set(which or ["fixtures", "oldkeras", "peer", "realworld"])
    if "fixtures" in which:
        for exp in sorted(glob.glob(os.path.join(FIXTURES, "*", "*.expected.npz"))):
            stem = exp[: -len(".expected.npz")]
            for ext in (".h5", ".keras"):
                if os.path.exists(stem + ext):
                    yield ("fixtures", os.path.relpath(stem + ext, FIXTURES), stem + ext, ("stored", exp))
    if "oldkeras" in which:
        for io in sorted(glob.glob(os.path.join(FIXTURES, "oldkeras", "*", "*.io.npz"))):
            stem = io[: -len(".io.npz")]
            yield ("oldkeras", os.path.relpath(stem, FIXTURES), stem + ".h5", ("stored", io))
    if "peer" in which:
        for io in sorted(glob.glob(os.path.join(SHARED, "peer", "dl4j-examples-io", "*_inputs_and_outputs.h5"))):
            stem = io[: -len("_inputs_and_outputs.h5")]
            yield ("peer-io", os.path.basename(stem), stem + "_model.h5", ("peer", io))
        for src in sorted(glob.glob(os.path.join(SHARED, "peer", "dl4j-tfkeras", "*.h5"))):
            yield ("peer-tfkeras", os.path.basename(src), src, ("keras",))
    if "realworld" in which:
        for src in sorted(glob.glob(os.path.join(SHARED, "realworld", "*", "*"))):
            if src.endswith((".h5", ".hdf5", ".keras")) or os.path.isdir(src) and \
                    os.path.exists(os.path.join(src, "saved_model.pb")):
                yield ("realworld", os.path.relpath(src, os.path.join(SHARED, "realworld")), src, ("keras",))


def _peer_io(path):
    import h5py

    with h5py.File(path, "r") as f:
        ins = [f["inputs"][k][()] for k in f["inputs"]]
        group = f["predictions"] if "predictions" in f else f["outputs"]
        return ins, [group[k][()] for k in group]


def _oracle_keras(src):
    """The Keras that loads the original: tf-keras, else Keras 3 (None if neither does)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    for name in ("tf_keras", "keras"):
        try:
            k = __import__(name)
            return k.models.load_model(src, compile=False)
        except Exception:  # noqa: BLE001 - the next Keras, or no oracle
            continue
    return None


def _random_inputs(session, batch, steps, rng, model_proto=None):
    """Random inputs; float inputs that the graph casts to ids (an Embedding's) get small ids."""
    ids = set()
    if model_proto is not None:
        ids = {n.input[0] for n in model_proto.graph.node if n.op_type == "Cast"
               and any(a.name == "to" and a.i == 7 for a in n.attribute)}
    feed = []
    for i in session.get_inputs():
        if i.name in ids:
            dims = [batch if k == 0 else steps if isinstance(d, str) or d is None else d for k, d in enumerate(i.shape)]
            feed.append(rng.integers(0, 2, dims).astype(np.float32 if "float" in i.type else np.int64
                                                         if "int64" in i.type else np.int32))
            continue
        dims = [batch if k == 0 else steps if isinstance(d, str) or d is None else d for k, d in enumerate(i.shape)]
        if "int" in i.type:
            feed.append(rng.integers(0, 2, dims).astype(np.int64 if "int64" in i.type else np.int32))
        elif "float" in i.type and "double" not in i.type:
            feed.append(rng.normal(0, 1, dims).astype(np.float32))
        else:
            feed.append(rng.normal(0, 1, dims))
    return feed


def _worst(got, want):
    worst = 0.0
    for y, w in zip(got, want):
        y, w = np.asarray(y, dtype=np.float64), np.asarray(w, dtype=np.float64)
        if y.shape != w.shape:
            return None, f"shape {y.shape} vs {w.shape}"
        worst = max(worst, float(np.max(np.abs(y - w), initial=0)) / max(1.0, float(np.max(np.abs(w), initial=0))))
    return worst, f"{worst:.1e}"


def judge(src, oracle, work):
    """(verdict, detail): equal / refused / WRONG / CRASH / RUN-FAIL / no-oracle."""
    import onnxruntime as ort

    from lstmtool.convert.onnx_model import to_onnx
    from lstmtool.errors import LstmtoolError

    out = os.path.join(work, "m.onnx")
    try:
        to_onnx(src, out, force=True)
    except LstmtoolError as e:
        return "refused", str(e)
    except Exception as e:  # noqa: BLE001 - a bug: the harness says which
        return "CRASH", f"{type(e).__name__}: {e}"[:300]
    session = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    if oracle[0] in ("stored", "peer"):
        xs, ys = _stored(oracle[1]) if oracle[0] == "stored" else _peer_io(oracle[1])
        types = [i.type for i in session.get_inputs()]
        xs = [x.astype(np.float32) if "float)" in t else x.astype(np.int64) if "int64" in t else x
              for x, t in zip(xs, types)]
        try:
            got = session.run(None, dict(zip(names, xs)))
            twice = session.run(None, {n: np.concatenate([x, x]) for n, x in zip(names, xs)})
        except Exception as e:  # noqa: BLE001
            return "RUN-FAIL", str(e).splitlines()[0][:300]
        worst, detail = _worst(got[:len(ys)], ys)
        again, _ = _worst(twice[:len(ys)], [np.concatenate([y, y]) for y in ys])
        if worst is None or again is None:
            return "WRONG", detail
        return ("equal", detail) if max(worst, again) <= TOL else ("WRONG", f"max rel |diff| {max(worst, again):.3g}")
    model, via = _oracle_keras(src), ""
    if model is None or not _runs(model):
        model, via = _upgraded(src, work), " (vs the upgraded Keras 3 model: no installable Keras runs the original)"
        if model is None:
            return "no-oracle", "no installable Keras loads the original or its upgrade"
    rng = np.random.default_rng(0)
    worst = 0.0
    steps_of = [s for s in (model.input_shape if isinstance(model.input_shape, list) else [model.input_shape])]
    fixed_time = all(len(s) < 2 or s[1] is not None for s in steps_of)
    for batch, steps in ((1, 6), (3, 9)):
        import onnx

        feed = _random_inputs(session, batch, steps, rng, onnx.load(out))
        try:
            got = session.run(None, dict(zip(names, feed)))
            want = model.predict(feed if len(feed) > 1 else feed[0], verbose=0)
        except Exception as e:  # noqa: BLE001
            return "RUN-FAIL", str(e).splitlines()[0][:300]
        want = want if isinstance(want, list) else [want]
        w, detail = _worst(got[:len(want)], want)
        if w is None:
            return "WRONG", detail
        worst = max(worst, w)
        if fixed_time and batch == 3:
            break
    return ("equal", f"{worst:.1e}{via}") if worst <= TOL else ("WRONG", f"max rel |diff| {worst:.3g}{via}")


def _runs(model):
    try:
        shapes = model.input_shape if isinstance(model.input_shape, list) else [model.input_shape]
        xs = [np.zeros((1,) + tuple(d or 4 for d in s[1:]), dtype=np.float32) for s in shapes]
        model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
        return True
    except Exception:  # noqa: BLE001 - e.g. a CuDNN kernel without a GPU
        return False


def _upgraded(src, work):
    import keras

    import lstmtool

    out = os.path.join(work, "oracle.keras")
    try:
        lstmtool.upgrade(src, out, force=True)
        return keras.saving.load_model(out, compile=False)
    except Exception:  # noqa: BLE001
        return None


def main():
    sys.path.insert(0, ROOT)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    which = [a for a in sys.argv[1:] if not a.startswith("-")]
    counts, rows, reasons = collections.Counter(), [], collections.Counter()
    with tempfile.TemporaryDirectory() as work:
        for corpus, name, src, oracle in cases(which):
            verdict, detail = judge(src, oracle, work)
            counts[(corpus, verdict)] += 1
            rows.append({"corpus": corpus, "case": name, "verdict": verdict, "detail": detail})
            if verdict == "refused":
                import re

                reasons[re.sub(r"layer '[^']*': |'[^']*/forward': ", "", detail.split(": ", 1)[-1])[:100]] += 1
            if verdict not in ("equal", "refused"):
                print(f"{corpus}/{name}: {verdict}: {detail}", flush=True)
    for (corpus, verdict), n in sorted(counts.items()):
        print(f"{corpus:14} {verdict:10} {n}")
    print("\nrefusals by reason:")
    for reason, n in reasons.most_common():
        print(f"  {n:4}  {reason}")
    if "--json" in sys.argv:
        json.dump(rows, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
