"""Architecture x consumer cases for prune and widen, built by real Keras (3 or tf-keras).

Each case returns (model, target, zeroed): `zeroed(S)` says, in Keras' own terms, which
weights carry the outgoing connections of units S: [(layer name, weight index, axis,
positions)]. The oracle is the original model with those set to zero; it is written here,
from the architecture, independently of lstmtool's tracing.
"""
from __future__ import annotations

import numpy as np

T, F = 5, 3  # time steps and input features of every case
FAMILIES = ("lstm", "gru", "gru_ra0", "simple")


def rnn(K, fam, u, **kw):
    L = K.layers
    if fam == "lstm":
        return L.LSTM(u, **kw)
    if fam == "gru":
        return L.GRU(u, reset_after=True, **kw)
    if fam == "gru_ra0":
        return L.GRU(u, reset_after=False, **kw)
    return L.SimpleRNN(u, **kw)


def rows(S):
    return list(S)


def shifted(offset):
    return lambda S: [offset + j for j in S]


def every_step(u, steps):
    return lambda S: [t * u + j for t in range(steps) for j in S]


# Each builder: (K, fam, u) -> (model, target, [(layer, weight index, axis, positions of S)])

def seq_dense(K, fam, u):
    x = K.Input((T, F))
    h = rnn(K, fam, u, name="rnn")(x)
    return K.Model(x, K.layers.Dense(2, name="head")(h)), "rnn", [("rnn", 1, 0, rows), ("head", 0, 0, rows)]


def stacked(K, fam, u):
    x = K.Input((T, F))
    h = rnn(K, fam, u, return_sequences=True, name="rnn")(x)
    h = K.layers.Dropout(0.3)(h)
    h = rnn(K, fam, 4, name="top")(h)
    return (K.Model(x, K.layers.Dense(2, name="head")(h)), "rnn",
            [("rnn", 1, 0, rows), ("top", 0, 0, rows)])


def flatten_head(K, fam, u):
    x = K.Input((T, F))
    h = rnn(K, fam, u, return_sequences=True, name="rnn")(x)
    y = K.layers.Dense(2, name="head")(K.layers.Flatten()(h))
    return K.Model(x, y), "rnn", [("rnn", 1, 0, rows), ("head", 0, 0, every_step(u, T))]


def time_distributed(K, fam, u):
    x = K.Input((T, F))
    h = rnn(K, fam, u, return_sequences=True, name="rnn")(x)
    y = K.layers.TimeDistributed(K.layers.Dense(3), name="td")(h)
    return K.Model(x, y), "rnn", [("rnn", 1, 0, rows), ("td", 0, 0, rows)]


def batchnorm(K, fam, u):
    x = K.Input((T, F))
    h = rnn(K, fam, u, return_sequences=True, name="rnn")(x)
    h = K.layers.BatchNormalization(name="bn")(h)
    h = K.layers.GlobalAveragePooling1D()(h)
    return K.Model(x, K.layers.Dense(2, name="head")(h)), "rnn", [("rnn", 1, 0, rows), ("head", 0, 0, rows)]


def conv1d(K, fam, u):
    x = K.Input((T, F))
    h = rnn(K, fam, u, return_sequences=True, name="rnn")(x)
    h = K.layers.Conv1D(4, 2, name="conv")(h)
    h = K.layers.GlobalMaxPooling1D()(h)
    return K.Model(x, K.layers.Dense(2, name="head")(h)), "rnn", [("rnn", 1, 0, rows), ("conv", 0, 1, rows)]


def concat(K, fam, u):
    x = K.Input((T, F))
    a = rnn(K, fam, 4, name="other")(x)
    b = rnn(K, fam, u, name="rnn")(x)
    y = K.layers.Dense(2, name="head")(K.layers.Concatenate()([a, b]))
    return K.Model(x, y), "rnn", [("rnn", 1, 0, rows), ("head", 0, 0, shifted(4))]


def bidir(mode, half=None):
    def build(K, fam, u):
        x = K.Input((T, F))
        h = K.layers.Bidirectional(rnn(K, fam, u), merge_mode=mode, name="bi")(x)
        y = K.layers.Dense(2, name="head")(h)
        zero = [("bi", 1, 0, rows)] if half != "backward" else []
        if half != "forward":
            zero.append(("bi", 4, 0, rows))
        if mode != "concat":
            head = rows
        elif half == "forward":
            head = rows
        elif half == "backward":
            head = shifted(u)
        else:
            head = lambda S: list(S) + [u + j for j in S]  # noqa: E731
        target = "bi" if half is None else f"bi/{half}"
        return K.Model(x, y), target, zero + [("head", 0, 0, head)]

    build.__name__ = f"bidir_{mode}" + (f"_{half}" if half else "")
    return build


def seq2seq(K, fam, u):
    L = K.layers
    enc_in, dec_in = K.Input((T, F)), K.Input((T - 1, 2))
    if fam == "lstm":
        _, h, c = L.LSTM(u, return_state=True, name="enc")(enc_in)
        states = [h, c]
        dec = L.LSTM(u, return_sequences=True, name="dec")
    else:
        _, h = rnn(K, fam, u, return_state=True, name="enc")(enc_in)
        states = [h]
        dec = rnn(K, fam, u, return_sequences=True, name="dec")
    y = L.TimeDistributed(L.Dense(3), name="td")(dec(dec_in, initial_state=states))
    return (K.Model([enc_in, dec_in], y), "enc",
            [("enc", 1, 0, rows), ("dec", 1, 0, rows), ("td", 0, 0, rows)])


def add_tie(K, fam, u):
    x = K.Input((T, F))
    a = rnn(K, fam, u, name="rnn")(x)
    b = rnn(K, fam, u, name="twin")(x)
    y = K.layers.Dense(2, name="head")(K.layers.Add()([a, K.layers.Dropout(0.2)(b)]))
    return (K.Model(x, y), "rnn", [("rnn", 1, 0, rows), ("twin", 1, 0, rows), ("head", 0, 0, rows)])


def state_to_dense(K, fam, u):
    x = K.Input((T, F))
    outs = rnn(K, fam, u, return_sequences=True, return_state=True, name="rnn")(x)
    seq, h = outs[0], outs[1]
    a = K.layers.Dense(2, name="head")(h)
    b = K.layers.Dense(2, name="seqhead")(K.layers.GlobalAveragePooling1D()(seq))
    return (K.Model(x, K.layers.Add()([a, b])), "rnn",
            [("rnn", 1, 0, rows), ("head", 0, 0, rows), ("seqhead", 0, 0, rows)])


def nested_inner(K, fam, u):
    """The recurrent layer inside a nested Sequential; its consumer inside too."""
    inner = K.Sequential([K.Input((T, F)), rnn(K, fam, u, name="rnn"), K.layers.Dense(3, name="proj")],
                         name="inner")
    x = K.Input((T, F))
    y = K.layers.Dense(2, name="head")(inner(x))
    return K.Model(x, y), "inner/rnn", [("inner/rnn", 1, 0, rows), ("inner/proj", 0, 0, rows)]


def nested_consumer(K, fam, u):
    """The consumer of the recurrent layer is inside a nested Sequential."""
    x = K.Input((T, F))
    h = rnn(K, fam, u, return_sequences=True, name="rnn")(x)
    head = K.Sequential([K.Input((T, u)), K.layers.TimeDistributed(K.layers.Dense(3), name="td"),
                         K.layers.Flatten(), K.layers.Dense(2, name="out")], name="head")
    return K.Model(x, head(h)), "rnn", [("rnn", 1, 0, rows), ("head/td", 0, 0, rows)]


def sequential_model(K, fam, u):
    m = K.Sequential([K.Input((T, F)), rnn(K, fam, u, return_sequences=True, name="rnn"),
                      rnn(K, fam, 3, name="top"), K.layers.Dense(2, name="head")])
    return m, "rnn", [("rnn", 1, 0, rows), ("top", 0, 0, rows)]


def convlstm(K, fam, u):
    x = K.Input((T, 4, 4, 2))
    h = K.layers.ConvLSTM2D(u, 3, padding="same", name="rnn")(x)
    y = K.layers.Dense(2, name="head")(K.layers.Flatten()(h))
    return K.Model(x, y), "rnn", [("rnn", 1, 2, rows), ("head", 0, 0, every_step(u, 16))]


EVERY_FAMILY = [seq_dense, stacked, flatten_head, bidir("concat"), bidir("sum"), seq2seq, add_tie]
LSTM_ONLY = [time_distributed, batchnorm, conv1d, concat, bidir("concat", "forward"),
             bidir("concat", "backward"), bidir("mul"), bidir("ave"), state_to_dense, nested_inner,
             nested_consumer, sequential_model, convlstm]


def matrix():
    out = [(b, fam) for b in EVERY_FAMILY for fam in FAMILIES]
    out += [(b, "lstm") for b in LSTM_ONLY]
    return out


def input_for(model, seed=0):
    rng = np.random.default_rng(seed)
    shapes = [tuple(int(d) for d in t.shape[1:]) for t in model.inputs]
    xs = [rng.normal(size=(2,) + s).astype("float32") for s in shapes]
    return xs if len(xs) > 1 else xs[0]


def randomize(model, seed=0):
    """Random weights everywhere (biases and BatchNormalization statistics too)."""
    rng = np.random.default_rng(seed)
    for layer in _all_layers(model):
        ws = layer.get_weights()
        if not ws:
            continue
        new = []
        for w, v in zip(layer.weights, ws):
            name = w.name.split("/")[-1]
            if "variance" in name:
                new.append(rng.uniform(0.5, 2.0, size=v.shape).astype(v.dtype))
            else:
                new.append((rng.normal(size=v.shape) * 0.5).astype(v.dtype))
        layer.set_weights(new)


def _all_layers(model):
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers and not hasattr(layer, "cell"):
            yield from _all_layers(layer)
        else:
            yield layer


def layer_at(model, path):
    layer = model
    for name in path.split("/"):
        layer = layer.get_layer(name)
    return layer


def zero_outgoing(model, zeroed, S):
    """The oracle's model: the original with the outgoing connections of units S zeroed."""
    for name, index, axis, positions in zeroed:
        layer = layer_at(model, name)
        ws = layer.get_weights()
        w = np.moveaxis(ws[index], axis, 0).copy()
        w[positions(S)] = 0
        ws[index] = np.moveaxis(w, 0, axis)
        layer.set_weights(ws)
