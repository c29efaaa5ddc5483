"""Random models written by a real old Keras (1.2.2 .. 2.3.1, Theano backend).

Runs INSIDE one of the venvs `venvs.py` makes, never in lstmtool's own:

    THEANO_FLAGS=mode=FAST_COMPILE,blas.ldflags= KERAS_BACKEND=theano \\
        ~/.cache/lstmtool-oldkeras/keras-2.2.4/bin/python generate.py OUT --seed 1 --count 20

Per case it writes what old projects kept on disk:
  <case>.h5          model.save (full model)
  <case>.wonly.h5    model.save_weights (weights only)
  <case>.json        model.to_json()
  <case>.io.npz      x (the input, or x0, x1, ... for several), y (what this Keras computed)
  <case>.about.json  the choices made, for reading a failure
Weights are random (not the initial ones), so a wrong slice cannot hide.
"""
import argparse
import inspect
import json
import os
import sys

import numpy as np

if os.environ.get("KERAS_BACKEND", "theano") == "theano":
    # Theano 1.0.5's Cython scan does not build on Python 3.11; without it Scan falls
    # back to its Python loop (the same numbers), while other ops still compile to C
    sys.modules["theano.scan_module.scan_perform_ext"] = None
    import theano.ifelse  # noqa: F401  (Keras 1 uses theano.ifelse without importing it)
import keras  # noqa: E402
from keras import layers as L  # noqa: E402
from keras import models  # noqa: E402

VERSION = keras.__version__
K1 = VERSION.startswith("1.")


def has(cls, arg):
    try:
        return arg in inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return False


class Case:
    def __init__(self, rng):
        self.rng = rng
        self.about = {"keras": VERSION, "backend": keras.backend.backend(), "layers": []}

    def pick(self, options, p=None):
        return options[self.rng.choice(len(options), p=p)]

    def chance(self, p):
        return self.rng.rand() < p

    def note(self, what, **kw):
        self.about["layers"].append(dict(kw, what=what))


# ---- options each version offers ------------------------------------------------------

ACTIVATIONS = ["tanh", "sigmoid", "hard_sigmoid", "relu", "linear", "softsign", "softplus", "elu"]
if not K1:
    ACTIVATIONS += ["selu"]
RECURRENT_ACTIVATIONS = ["hard_sigmoid", "sigmoid", "tanh"]
K1_INITS = ["glorot_uniform", "glorot_normal", "he_normal", "he_uniform", "lecun_uniform", "uniform",
            "normal", "orthogonal", "zero", "one"]


def initializer(c, square=False, vector=False):
    """`square`: may be an identity (a SimpleRNN's U); `vector`: for a bias (1-D)."""
    if K1:
        return c.pick((["zero", "one", "uniform", "normal"] if vector else K1_INITS)
                      + (["identity"] if square else []))
    from keras import initializers as I
    if vector:
        return c.pick(["zeros", "ones", I.Constant(0.1), I.RandomNormal(0.0, 0.1), I.RandomUniform(-0.1, 0.1),
                       I.TruncatedNormal(0.0, 0.05)])
    makers = [lambda: "glorot_uniform", lambda: "orthogonal", lambda: "zeros", lambda: "ones",
              lambda: I.RandomNormal(0.0, 0.1), lambda: I.RandomUniform(-0.1, 0.1),
              lambda: I.TruncatedNormal(0.0, 0.05), lambda: I.VarianceScaling(1.5, "fan_avg", "uniform"),
              lambda: I.Constant(0.3), lambda: "lecun_uniform", lambda: "he_normal", lambda: "glorot_normal",
              lambda: I.Orthogonal(gain=1.1)]
    if square:
        makers.append(lambda: I.Identity(gain=0.5))
    return makers[c.rng.randint(len(makers))]()


def regularizer(c):
    from keras import regularizers as R
    return c.pick([None, None, R.l1(0.01), R.l2(0.001), R.l1l2(0.01, 0.02) if K1 else R.l1_l2(0.01, 0.02)])


def constraint(c):
    from keras import constraints as C
    if K1:
        return c.pick([None, None, C.maxnorm(2.0), C.nonneg(), C.unitnorm()])
    return c.pick([None, None, C.max_norm(2.0), C.non_neg(), C.unit_norm(),
                   C.min_max_norm(0.1, 2.0) if hasattr(C, "min_max_norm") else None])


# ---- layers -------------------------------------------------------------------------------

def recurrent(c, units, return_sequences, input_shape=None):
    kind = c.pick(["LSTM", "GRU", "SimpleRNN"], p=[0.45, 0.35, 0.2])
    cls = getattr(L, kind)
    kw = {"return_sequences": return_sequences, "go_backwards": c.chance(0.25),
          "unroll": c.chance(0.1)}
    act = c.pick(ACTIVATIONS, p=None)
    if K1:
        kw.update(activation=act, init=initializer(c), inner_init=initializer(c, square=kind == "SimpleRNN"),
                  W_regularizer=regularizer(c), U_regularizer=regularizer(c), b_regularizer=regularizer(c),
                  dropout_W=c.pick([0.0, 0.2]), dropout_U=c.pick([0.0, 0.1]),
                  consume_less=c.pick(["cpu", "mem", "gpu"]))
        if kind != "SimpleRNN":
            kw["inner_activation"] = c.pick(RECURRENT_ACTIVATIONS)
        if kind == "LSTM":
            kw["forget_bias_init"] = c.pick(["one", "zero"])
    else:
        kw.update(activation=act, use_bias=c.chance(0.85), kernel_initializer=initializer(c),
                  recurrent_initializer=initializer(c, square=kind == "SimpleRNN" or not VERSION.startswith("2.0")),
                  bias_initializer=initializer(c, vector=True),
                  kernel_regularizer=regularizer(c), recurrent_regularizer=regularizer(c),
                  bias_regularizer=regularizer(c), activity_regularizer=regularizer(c),
                  kernel_constraint=constraint(c), recurrent_constraint=constraint(c),
                  bias_constraint=constraint(c), dropout=c.pick([0.0, 0.2]), recurrent_dropout=c.pick([0.0, 0.1]))
        if has(cls, "implementation"):
            kw["implementation"] = c.pick([1, 2])
        if kind != "SimpleRNN":
            kw["recurrent_activation"] = c.pick(RECURRENT_ACTIVATIONS)
        if kind == "LSTM":
            kw["unit_forget_bias"] = c.chance(0.7)
        if kind == "GRU" and has(cls, "reset_after"):
            kw["reset_after"] = c.chance(0.5)
            if kw["reset_after"]:
                kw["recurrent_activation"] = c.pick(["sigmoid", "hard_sigmoid"])
    if input_shape is not None:
        kw["input_shape"] = input_shape
    layer = cls(units, **kw)
    c.note(kind, units=units, **{k: v if isinstance(v, (int, float, str, bool, type(None))) else type(v).__name__
                                 for k, v in kw.items()})
    if c.chance(0.3):  # Bidirectional in every merge mode
        mode = c.pick(["concat", "sum", "mul", "ave"])
        c.note("Bidirectional", merge_mode=mode)
        if input_shape is not None:
            layer = cls(units, **{k: v for k, v in kw.items() if k != "input_shape"})
            return L.Bidirectional(layer, merge_mode=mode, input_shape=input_shape)
        return L.Bidirectional(layer, merge_mode=mode)
    return layer


def dense(c, units, activation=None):
    act = activation or c.pick(["linear", "tanh", "sigmoid", "softmax", "relu"])
    if K1:
        return L.Dense(units, activation=act, init=initializer(c), W_regularizer=regularizer(c),
                       W_constraint=constraint(c), bias=c.chance(0.85))
    return L.Dense(units, activation=act, kernel_initializer=initializer(c), use_bias=c.chance(0.85),
                   kernel_regularizer=regularizer(c), kernel_constraint=constraint(c))


def conv1d(c, filters):
    size, pad = c.pick([1, 2, 3]), c.pick(["same", "valid", "valid"])
    c.note("Conv1D", filters=filters, size=size, padding=pad)
    act = c.pick(["relu", "linear", "tanh"])
    if K1:
        return L.Convolution1D(filters, size, border_mode=pad, activation=act, init=initializer(c))
    return L.Conv1D(filters, size, padding=pad, activation=act, kernel_initializer=initializer(c),
                    dilation_rate=c.pick([1, 2]) if pad == "same" or True else 1)


def activation_layer(c):
    options = ["Activation", "LeakyReLU", "ELU", "ThresholdedReLU", "PReLU"]
    options += [n for n in ("ReLU", "Softmax") if hasattr(L, n)]
    kind = c.pick(options)
    c.note(kind)
    if kind == "Activation":
        return L.Activation(c.pick(ACTIVATIONS))
    if kind == "LeakyReLU":
        return L.LeakyReLU(alpha=c.pick([0.1, 0.3]))
    if kind == "ELU":
        return L.ELU(alpha=c.pick([1.0, 0.5]))
    if kind == "ThresholdedReLU":
        return L.ThresholdedReLU(theta=c.pick([0.1, 0.5]))
    if kind == "PReLU":
        return L.PReLU()
    if kind == "ReLU":
        return L.ReLU(**c.pick([{}, {"max_value": 1.0}, {"negative_slope": 0.1, "threshold": 0.05}])) \
            if has(L.ReLU, "threshold") else L.ReLU(max_value=c.pick([None, 1.0]))
    return L.Softmax(axis=-1)


def batchnorm(c):
    c.note("BatchNormalization")
    if K1:
        return L.BatchNormalization(epsilon=c.pick([1e-3, 2e-5]), momentum=0.9)
    return L.BatchNormalization(epsilon=c.pick([1e-3, 2e-5]), center=c.chance(0.8), scale=c.chance(0.8),
                                gamma_regularizer=regularizer(c), beta_constraint=constraint(c))


def noise(c):
    kind = c.pick(["Dropout", "GaussianNoise", "GaussianDropout", "SpatialDropout1D"])
    c.note(kind)
    if kind == "Dropout":
        return L.Dropout(0.3)
    if kind == "GaussianNoise":
        return L.GaussianNoise(0.1)
    if kind == "GaussianDropout":
        return L.GaussianDropout(0.2)
    return L.SpatialDropout1D(0.2)


# ---- models ---------------------------------------------------------------------------

def sequence_trunk(c, T, F):
    """A list of layers turning (T, F) floats into a sequence, for both model kinds."""
    out = []
    if c.chance(0.25):
        out.append(L.Masking(mask_value=0.0))
        c.note("Masking")
        masked = True
    else:
        masked = False
    if not masked and c.chance(0.3):
        out.append(conv1d(c, c.pick([3, 4])))
        if c.chance(0.5):
            pool = c.pick(["MaxPooling1D", "AveragePooling1D"])
            c.note(pool)
            pad = c.pick(["valid", "valid", "same"])
            out.append(getattr(L, pool)(2, padding=pad) if not K1
                       else getattr(L, pool)(pool_length=2, border_mode=pad))
    if not masked and c.chance(0.2):
        out.append(noise(c))
    return out, masked


def head(c, seq_out, n_out):
    """Layers after the last recurrent layer."""
    out = []
    if seq_out:
        choice = c.pick(["td", "global", "flatten"])
        c.note("head", kind=choice)
        if choice == "td":
            out.append(L.TimeDistributed(dense(c, n_out)))
            return out
        if choice == "global":
            out.append(c.pick([L.GlobalMaxPooling1D, L.GlobalAveragePooling1D])())
        else:
            out.append(L.Flatten())
    if c.chance(0.3):
        out.append(batchnorm(c))
    if c.chance(0.3):
        out.append(activation_layer(c))
    out.append(dense(c, n_out))
    return out


def sequential(c):
    T, F = c.pick([3, 4, 5]), c.pick([2, 3, 4])
    m = models.Sequential()
    trunk, masked = [], False
    if c.chance(0.3):
        vocab = 12
        emb_kw = {"mask_zero": c.chance(0.5), "input_length": T}
        if K1:
            emb = L.Embedding(vocab, c.pick([3, 4]), init=initializer(c), **emb_kw)
        else:
            emb = L.Embedding(vocab, c.pick([3, 4]), embeddings_initializer=initializer(c), **emb_kw)
        c.note("Embedding", mask_zero=emb_kw["mask_zero"])
        m.add(emb)
        inputs = {"kind": "int", "shape": (T,), "vocab": vocab}
        masked = emb_kw["mask_zero"]
        first_shape = None
    else:
        inputs = {"kind": "float", "shape": (T, F)}
        trunk, masked = sequence_trunk(c, T, F)
        first_shape = (T, F)
        if trunk:
            trunk[0] = _with_input_shape(trunk[0], first_shape)
            first_shape = None
    for layer in trunk:
        m.add(layer)
    n_rnn = c.pick([1, 1, 2])
    for k in range(n_rnn):
        last = k == n_rnn - 1
        seq = (not last) or c.chance(0.4)
        if masked and seq and last:
            seq = False  # a mask reaching Flatten/pooling fails in old Keras; keep the head simple
        m.add(recurrent(c, c.pick([2, 3, 4, 5]), seq, first_shape if k == 0 else None))
        if not last and c.chance(0.25) and not masked:
            m.add(L.TimeDistributed(dense(c, c.pick([3, 4]))))
            c.note("TimeDistributed(Dense)")
    seq_out = m.layers[-1].output_shape[1:] is not None and len(m.layers[-1].output_shape) == 3
    for layer in head(c, seq_out, c.pick([1, 2, 3])):
        m.add(layer)
    return m, [inputs], masked


def _with_input_shape(layer, shape):
    cfg = layer.get_config()
    cfg["batch_input_shape"] = (None,) + tuple(shape)
    return layer.__class__.from_config(cfg)


def functional(c):
    T, F = c.pick([3, 4, 5]), c.pick([2, 3, 4])
    mode = c.pick(["concat", "sum", "mul", "ave", "max"])
    c.note("merge", mode=mode)
    inp = L.Input(shape=(T, F), name="seq_in")
    specs = [{"kind": "float", "shape": (T, F)}]
    branches = []
    units = c.pick([2, 3, 4])
    for b in range(2):
        h = inp
        if c.chance(0.3) and not K1:
            h = conv1d(c, 3)(h)
        h = recurrent(c, units, False)(h)
        if isinstance(h, list):
            h = h[0]
        branches.append(h)
    # the merged widths must agree for sum/mul/ave/max: project each branch to the same width
    width = c.pick([3, 4])
    branches = [dense(c, width, activation=c.pick(["tanh", "linear"]))(h) for h in branches]
    if c.chance(0.3):  # a second input joining late
        aux = L.Input(shape=(width,), name="aux_in")
        specs.append({"kind": "float", "shape": (width,)})
        branches.append(aux)
        inputs = [inp, aux]
    else:
        inputs = [inp]
    merged = merge(branches, mode)
    out = dense(c, c.pick([1, 2]))(merged)
    if K1:
        return models.Model(input=inputs, output=out), specs, False
    return models.Model(inputs=inputs, outputs=out), specs, False


def merge(tensors, mode):
    if K1:
        return L.merge(tensors, mode=mode)
    return {"concat": L.concatenate, "sum": L.add, "mul": L.multiply, "ave": L.average,
            "max": L.maximum}[mode](tensors)


# ---- weights, inputs, files --------------------------------------------------------------

def randomize(m, rng):
    for layer in m.layers:
        ws = layer.get_weights()
        if not ws:
            continue
        new = []
        for w in ws:
            a = rng.normal(0.0, 0.5, w.shape).astype(w.dtype)
            new.append(a)
        if type(layer).__name__ == "BatchNormalization":
            new[-1] = rng.uniform(0.5, 2.0, ws[-1].shape).astype(ws[-1].dtype)  # a variance
        layer.set_weights(new)


def make_inputs(specs, rng, n=4):
    xs = []
    for s in specs:
        if s["kind"] == "int":
            x = rng.randint(1, s["vocab"], size=(n,) + s["shape"])
            x[:, : rng.randint(0, 2)] = 0  # leading padding, masked where mask_zero
            xs.append(x.astype("int32"))
        else:
            x = rng.normal(0.0, 1.0, (n,) + s["shape"]).astype("float32")
            xs.append(x)
    return xs


def write_case(out, name, seed):
    rng = np.random.RandomState(seed)
    c = Case(rng)
    m, specs, masked = (functional if c.chance(0.3) else sequential)(c)
    m.compile("sgd", "mse")
    randomize(m, np.random.RandomState(seed + 1))
    xs = make_inputs(specs, np.random.RandomState(seed + 2))
    if masked:  # whole padded timesteps, so Masking has something to skip
        for x in xs:
            if x.ndim == 3:
                x[:, 0, :] = 0.0
    y = m.predict(xs if len(xs) > 1 else xs[0])
    base = os.path.join(out, name)
    m.save(base + ".h5")
    m.save_weights(base + ".wonly.h5")
    with open(base + ".json", "w") as fh:
        fh.write(m.to_json())
    arrays = {"y": np.asarray(y)}
    if len(xs) == 1:
        arrays["x"] = xs[0]
    for k, x in enumerate(xs):
        arrays[f"x{k}"] = x
    np.savez(base + ".io.npz", **arrays)
    c.about["inputs"] = [s["kind"] for s in specs]
    with open(base + ".about.json", "w") as fh:
        json.dump(c.about, fh, indent=1, default=str)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count", type=int, default=10)
    ap.add_argument("--prefix", default="case")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    failed = 0
    for k in range(args.count):
        name = f"{args.prefix}{k:03d}"
        # the version is mixed in, so each Keras draws its own models
        seed = (args.seed * 100003 + k * 7919 + sum(ord(ch) * 31 ** i for i, ch in enumerate(VERSION))) % (2 ** 31)
        try:
            write_case(args.out, name, seed)
        except Exception as e:  # a combination this Keras itself rejects: not a case
            failed += 1
            import traceback

            where = traceback.extract_tb(e.__traceback__)[-1]
            print(f"{name}: Keras {VERSION} refused to build it: {type(e).__name__}: {str(e)[:200]} "
                  f"({os.path.basename(where.filename)}:{where.lineno})", file=sys.stderr)
    print(json.dumps({"keras": VERSION, "written": args.count - failed, "unbuildable": failed}))


if __name__ == "__main__":
    main()
