"""Random recurrent models for the ONNX proof (tests/test_onnx.py), written by real Keras 3 or
tf-keras: an input (float sequences, or token ids through an Embedding, masked or not), one
or two recurrent layers (LSTM / GRU / SimpleRNN, plain, Bidirectional or RNN over cells, with
random activations, go_backwards, return_sequences, use_bias, reset_after), and a head
(Dense, TimeDistributed(Dense), pooling, normalization). Every model is saved, and its
predictions at two batch sizes and two sequence lengths are the oracle.

    python tests/onnx_models.py OUT_DIR --keras keras3|tfkeras --count 20 --seed 1
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np

ACTIVATIONS = ["tanh", "sigmoid", "relu", "linear", "softsign", "elu"]
GATES = ["sigmoid", "hard_sigmoid"]  # gates in (0, 1): tanh or linear ones make z*h + (1-z)*h~ unstable


def _recurrent(k, rng, units, return_sequences, tfkeras):
    kind = rng.choice(["LSTM", "GRU", "SimpleRNN"])
    kw = {"units": units, "return_sequences": return_sequences, "go_backwards": bool(rng.random() < 0.3),
          "use_bias": bool(rng.random() < 0.8), "activation": str(rng.choice(ACTIVATIONS))}
    if kind != "SimpleRNN":
        kw["recurrent_activation"] = str(rng.choice(GATES))
    if kind == "GRU":
        kw["reset_after"] = bool(rng.random() < 0.6)
    init = {"kernel_initializer": k.initializers.RandomNormal(0, 0.5, seed=int(rng.integers(1 << 30))),
            "recurrent_initializer": k.initializers.RandomNormal(0, 0.5, seed=int(rng.integers(1 << 30))),
            "bias_initializer": k.initializers.RandomNormal(0, 0.5, seed=int(rng.integers(1 << 30)))}
    return kind, kw, init


def build(k, rng, tfkeras=False):
    """One model and a description of it (for the failure message)."""
    features, units = int(rng.integers(2, 6)), int(rng.integers(2, 6))
    masked = rng.random() < 0.4
    tokens = masked and rng.random() < 0.6
    about = {"masked": bool(masked), "tokens": bool(tokens), "layers": []}
    if tokens:
        x = inp = k.Input((None,), dtype="int32")
        h = k.layers.Embedding(9, features, mask_zero=True,
                               embeddings_initializer=k.initializers.RandomNormal(0, 1, seed=3))(x)
    else:
        x = inp = k.Input((None, features))
        h = k.layers.Masking(0.0)(x) if masked else x
        if not masked and rng.random() < 0.3:
            h = k.layers.Conv1D(features, int(rng.integers(1, 4)), padding=str(rng.choice(["same", "causal", "valid"])),
                                activation="relu")(h)
            about["layers"].append("Conv1D")
    depth = int(rng.integers(1, 3))
    for d in range(depth):
        last = d == depth - 1
        seq = (not last) or bool(rng.random() < 0.5)
        kind, kw, init = _recurrent(k, rng, units, seq, tfkeras)
        wrap = rng.random()
        if wrap < 0.35 and not tfkeras:
            kw["go_backwards"] = False  # Keras 3 builds no Bidirectional around a go_backwards layer
        layer = getattr(k.layers, kind)(**kw, **init)
        if wrap < 0.35:
            mode = str(rng.choice(["concat", "sum", "mul", "ave"]))
            h = k.layers.Bidirectional(layer, merge_mode=mode)(h)
            about["layers"].append(f"Bidirectional({kind} {kw}, {mode})")
        elif wrap < 0.5 and kind != "SimpleRNN":
            cell_kw = {key: v for key, v in kw.items() if key not in ("return_sequences", "go_backwards")}
            cells = [getattr(k.layers, kind + "Cell")(**cell_kw, **init) for _ in range(2)]
            h = k.layers.RNN(cells, return_sequences=seq, go_backwards=kw["go_backwards"])(h)
            about["layers"].append(f"RNN(2x{kind}Cell {cell_kw})")
        else:
            h = layer(h)
            about["layers"].append(f"{kind} {kw}")
    if len(h.shape) == 3:
        head = rng.choice(["td", "pool", "norm"])
        if (head == "td" or masked) and tfkeras:
            h = k.layers.TimeDistributed(k.layers.Dense(3, activation="tanh"))(h)
        elif head == "td" or masked:
            # Keras 3.15's TimeDistributed over an unknown time axis returns the wrong number of
            # steps at batch > 1 (measured here: (3, 8, 2) in, (3, 3, 3) out); Dense acts per step too
            h = k.layers.Dense(3, activation="tanh")(h)
        elif head == "pool":
            h = k.layers.GlobalAveragePooling1D()(h)
        else:
            h = k.layers.LayerNormalization()(h)
        about["layers"].append(str(head))
    else:
        h = k.layers.BatchNormalization(
            moving_mean_initializer=k.initializers.RandomNormal(0, 0.3, seed=5),
            moving_variance_initializer=k.initializers.RandomUniform(0.5, 1.5, seed=6))(h) if rng.random() < 0.4 else h
        h = k.layers.Dense(3, activation=str(rng.choice(["softmax", "linear", "sigmoid"])))(h)
    return k.Model(inp, h), about


def inputs(model_about, batch, steps, features, rng):
    """Post-padded where masked: real steps first, then padding (0 ids / all-zero steps)."""
    if model_about["tokens"]:
        x = rng.integers(1, 9, (batch, steps)).astype("int32")
    else:
        x = rng.normal(0, 1, (batch, steps, features)).astype("float32")
    if model_about["masked"]:
        for row in range(batch):
            n = int(rng.integers(1, steps + 1))
            x[row, n:] = 0
    return x


def write(out, which, count, seed):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if which == "tfkeras":
        import tf_keras as k
    else:
        import keras as k
    rng = np.random.default_rng(seed)
    made = []
    for n in range(count):
        model, about = build(k, rng, tfkeras=which == "tfkeras")
        path = os.path.join(out, f"{which}_{seed}_{n}.h5" if which == "tfkeras" else f"{which}_{seed}_{n}.keras")
        model.save(path)
        features = None if about["tokens"] else int(model.input_shape[-1])
        io = {}
        for batch, steps in ((1, 5), (1, 8), (3, 5), (3, 8)):
            x = inputs(about, batch, steps, features, rng)
            io[f"x_{batch}_{steps}"] = x
            io[f"y_{batch}_{steps}"] = np.asarray(model.predict(x, verbose=0))
        np.savez(path + ".io.npz", **io)
        with open(path + ".about.json", "w") as fh:
            json.dump(about, fh)
        made.append(path)
    return made


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--keras", choices=["keras3", "tfkeras"], default="keras3")
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    print("\n".join(write(args.out, args.keras, args.count, args.seed)))
