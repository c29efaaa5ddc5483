"""Prune cases written, and judged, by a real old Keras (1.2.2 .. 2.3.1, Theano backend).

Runs INSIDE one of the venvs `venvs.py` makes (see generate.py for the environment):

    python reshape_cases.py make OUT --seed 1 --count 6
        per case: <case>.h5 (model.save), <case>.prune.json (the layer, the units S, and
        which weights carry S's outgoing connections) and <case>.prune.npz (x; y, what
        this Keras computes; y_zeroed, what it computes with S's outgoing weights zeroed:
        the oracle a pruned file must reproduce)
    python reshape_cases.py judge CASE PRUNED.h5
        loads the pruned file in this Keras and prints the largest |difference| from y_zeroed

Zeroing is written here from the weights' own names in this Keras, independently of
lstmtool: recurrent kernels (`recurrent_kernel`, Keras 1 `U`, `U_i`...) lose rows S in
the pruned layer; input kernels (`kernel`, Keras 1 `W`, `W_i`...) lose rows S in the consumer.
"""
import argparse
import inspect
import json
import os
import re
import sys
from collections import namedtuple

import numpy as np

if os.environ.get("KERAS_BACKEND", "theano") == "theano":
    sys.modules["theano.scan_module.scan_perform_ext"] = None  # see generate.py
    import theano.ifelse  # noqa: F401
if not hasattr(inspect, "getargspec"):  # old Keras' has_arg on Python 3.11
    _ArgSpec = namedtuple("ArgSpec", "args varargs keywords defaults")
    inspect.getargspec = lambda f: _ArgSpec(*inspect.getfullargspec(f)[:4])
import keras  # noqa: E402
from keras import layers as L  # noqa: E402
from keras import models  # noqa: E402

VERSION = keras.__version__
K1 = VERSION.startswith("1.")
T, F = 5, 3


def kind(weight_name):
    base = weight_name.split("/")[-1].split(":")[0]
    if base == "recurrent_kernel" or re.search(r"(^|_)U(_[a-z])?$", base):
        return "recurrent"
    if base == "kernel" or re.search(r"(^|_)W(_[a-z])?$", base):
        return "input"
    return "other"


def rnn(fam, u, rng, **kw):
    cls = {"lstm": L.LSTM, "gru": L.GRU, "simple": L.SimpleRNN}[fam]
    if K1:
        kw["consume_less"] = ["cpu", "mem", "gpu"][rng.randint(3)]
        return cls(output_dim=u, **kw)
    if fam == "gru" and VERSION >= "2.1" and rng.rand() < 0.5:
        kw["reset_after"] = True
    return cls(u, **kw)


def dense(n, **kw):
    return L.Dense(output_dim=n, **kw) if K1 else L.Dense(n, **kw)


def build(rng, k):
    """A Sequential model; returns (model, target layer index, [(layer index, kind, positions of S)])."""
    fam = ["lstm", "gru", "simple"][(k + k // 4) % 3]
    u = int(rng.randint(4, 8))
    shape = dict(input_shape=(T, F))
    shape_kw = dict(input_dim=F, input_length=T) if K1 else shape
    form = ["stacked", "dense", "bidir", "td"][k % 4]
    m = models.Sequential()
    if form == "bidir":
        mode = ["concat", "sum"][rng.randint(2)]
        m.add(L.Bidirectional(rnn(fam, u, rng), merge_mode=mode, **shape))
        m.add(dense(2))
        heads = (lambda S: list(S) + [u + j for j in S]) if mode == "concat" else (lambda S: list(S))
        return m, 0, [(0, "recurrent", list), (1, "input", heads)], f"{fam}-bidir-{mode}"
    m.add(rnn(fam, u, rng, return_sequences=form != "dense", **shape_kw))
    if form == "stacked":
        m.add(L.Dropout(0.2))
        m.add(rnn(fam, 3, rng))
        m.add(dense(2))
        return m, 0, [(0, "recurrent", list), (2, "input", list)], f"{fam}-stacked"
    if form == "td":
        m.add(L.TimeDistributed(dense(3)))
        m.add(L.Flatten())
        m.add(dense(2))
        return m, 0, [(0, "recurrent", list), (1, "input", list)], f"{fam}-td"
    m.add(dense(2))
    return m, 0, [(0, "recurrent", list), (1, "input", list)], f"{fam}-dense"


def zero(model, spec, S):
    for index, what, positions in spec:
        layer = model.layers[index]
        values = layer.get_weights()
        for k, w in enumerate(layer.weights):
            if kind(w.name) == what:
                values[k] = values[k].copy()
                values[k][positions(S)] = 0
        layer.set_weights(values)


def make(out, seed, count):
    os.makedirs(out, exist_ok=True)
    rng = np.random.RandomState(seed + int(VERSION.replace(".", "")))
    for k in range(count):
        model, target, spec, form = build(rng, k)
        for layer in model.layers:  # random weights, so a wrong slice cannot hide
            layer.set_weights([rng.normal(size=w.shape).astype("float32") * 0.5 for w in layer.get_weights()])
        name = f"px{k:03d}"
        model.save(os.path.join(out, name + ".h5"))
        u = model.layers[target].get_weights()[0].shape[-1]
        u = getattr(model.layers[target], "forward_layer", model.layers[target])
        u = getattr(u, "units", getattr(u, "output_dim", None))
        S = sorted(rng.choice(u, size=2, replace=False).tolist())
        x = rng.normal(size=(2, T, F)).astype("float32")
        y = model.predict(x)
        zero(model, spec, S)
        y_zeroed = model.predict(x)
        np.savez(os.path.join(out, name + ".prune.npz"), x=x, y=y, y_zeroed=y_zeroed)
        with open(os.path.join(out, name + ".prune.json"), "w") as fh:
            json.dump({"keras": VERSION, "form": form, "layer": model.layers[target].name, "units": S}, fh)
        print(name, form, model.layers[target].name, S)


def as_h5py2_saw_it(path):
    """A copy whose string attributes read back as bytes, as they did under the h5py 2 these
    Kerases were written for (h5py 3 returns str, which their loaders call .decode on)."""
    import shutil
    import tempfile

    import h5py

    copy = tempfile.mktemp(suffix=".h5")
    shutil.copyfile(path, copy)
    with h5py.File(copy, "r+") as f:
        def fix(obj):
            for key, value in list(obj.attrs.items()):
                if isinstance(value, str):
                    obj.attrs[key] = np.bytes_(value.encode("utf-8"))
                elif isinstance(value, np.ndarray) and value.dtype.kind == "O":
                    obj.attrs[key] = np.array([v.encode("utf-8") if isinstance(v, str) else v for v in value],
                                              dtype="S")
        fix(f)
        f.visititems(lambda name, obj: fix(obj))
    return copy


def judge(case, pruned):
    io = np.load(case + ".prune.npz")
    model = models.load_model(as_h5py2_saw_it(pruned))
    y = model.predict(io["x"])
    print(json.dumps({"max_diff": float(np.abs(y - io["y_zeroed"]).max()),
                      "moved": float(np.abs(io["y"] - io["y_zeroed"]).max())}))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["make", "judge"])
    ap.add_argument("where")
    ap.add_argument("pruned", nargs="?")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count", type=int, default=12)
    a = ap.parse_args()
    make(a.where, a.seed, a.count) if a.mode == "make" else judge(a.where, a.pruned)
