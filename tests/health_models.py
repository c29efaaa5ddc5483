"""Planted defects for `lstmtool health` (tests/test_health.py): real Keras 3 and tf-keras
models with Keras' default initialisation (clean), or with one defect planted in one layer,
gate and set of units by editing the weights in Keras before saving:

    nan         a NaN in W of one gate                         -> nonfinite (error)
    exploding   U of one gate scaled until sigma*gamma is 3    -> recurrent-spectral-norm
    forget      b_f (GRU: b_z) = -3 on a third of the units    -> forget-bias-memory
    dead        every W and U column of some units zeroed      -> dead-units
    saturated   LSTM b_i = -30 / GRU b_z = +30 on some units   -> saturation (pinned shut / open)

    python tests/health_models.py OUT --keras keras3|tfkeras --count 100 --seed 1   # + a JSON of the plants
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np

DEFECTS = ("clean", "nan", "exploding", "forget", "dead", "saturated")
GATES = {"LSTM": "ifco", "GRU": "zrh", "SimpleRNN": "h"}
EXPECTED = {"nan": "nonfinite", "exploding": "recurrent-spectral-norm", "forget": "forget-bias-memory",
            "dead": "dead-units", "saturated": "saturation"}


def build(k, rng, gated=False):
    kinds = [str(rng.choice(["LSTM", "GRU", "SimpleRNN"])) for _ in range(int(rng.integers(1, 3)))]
    if gated and "SimpleRNN" in kinds and all(kind == "SimpleRNN" for kind in kinds):
        kinds[0] = str(rng.choice(["LSTM", "GRU"]))  # forget / saturated defects need a gate
    units = [int(rng.integers(4, 12)) for _ in kinds]
    x = inp = k.Input((None, int(rng.integers(2, 6))))
    for n, (kind, u) in enumerate(zip(kinds, units)):
        kw = {"return_sequences": n < len(kinds) - 1, "name": f"rnn{n}"}
        if kind == "GRU":
            kw["reset_after"] = bool(rng.random() < 0.5)
        x = getattr(k.layers, kind)(u, **kw)(x)
    return k.Model(inp, k.layers.Dense(2, name="head")(x)), kinds


def _gate_block(kind, gate, units):
    k = GATES[kind].index(gate)
    return slice(k * units, (k + 1) * units)


def plant(model, kinds, defect, rng):
    """Edit the weights in Keras; return what health must find: {check, layer, gate, units}."""
    if defect == "clean":
        return None
    choices = [n for n, kind in enumerate(kinds) if defect not in ("forget", "saturated") or kind != "SimpleRNN"]
    n = int(rng.choice(choices))
    kind, layer = kinds[n], model.get_layer(f"rnn{n}")
    W, U, *rest = [np.array(w) for w in layer.get_weights()]
    b = rest[0] if rest else None
    u = U.shape[0]
    some = sorted(int(j) for j in rng.choice(u, size=max(1, -(-u // 3)), replace=False))  # a third, rounded up
    gate = str(rng.choice(list(GATES[kind])))
    if defect == "nan":
        W[0, _gate_block(kind, gate, u)][some[0]] = np.nan
        found = {"gate": gate, "units": None}
    elif defect == "exploding":
        gate = {"LSTM": "c", "GRU": "h", "SimpleRNN": "h"}[kind]  # the candidate: a path of the state itself
        block = _gate_block(kind, gate, u)
        sigma = np.linalg.norm(U[:, block], 2)
        U[:, block] *= 3.0 / sigma  # sigma * gamma = 3 (tanh: gamma 1)
        found = {"gate": gate, "units": None}
    elif defect == "forget":
        gate = "f" if kind == "LSTM" else "z"
        rows = b if b.ndim == 1 else b[0]
        rows[_gate_block(kind, gate, u)][some] = -3.0
        if b.ndim == 2:
            b[1, _gate_block(kind, gate, u)][some] = 0.0
        found = {"gate": gate, "units": some}
    elif defect == "dead":
        for g in GATES[kind]:
            cols = np.arange(u)[some] + GATES[kind].index(g) * u
            W[:, cols] = 0.0
            U[:, cols] = 0.0
        found = {"gate": None, "units": some}
    else:  # saturated
        gate, value = ("i", -30.0) if kind == "LSTM" else ("z", 30.0)
        rows = b if b.ndim == 1 else b[0]
        rows[_gate_block(kind, gate, u)][some] = value
        found = {"gate": gate, "units": some}
    layer.set_weights([W, U] + ([b] if b is not None else []))
    return {"check": EXPECTED[defect], "layer": f"rnn{n}", **found}


def write(out, which, count, seed):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras as k3

    k = __import__("tf_keras") if which == "tfkeras" else k3
    if which != "tfkeras":
        k3.utils.set_random_seed(seed)
    else:
        import tensorflow as tf

        tf.random.set_seed(seed)
    rng = np.random.default_rng(seed)
    made = []
    for n in range(count):
        defect = DEFECTS[n % len(DEFECTS)]
        model, kinds = build(k, rng, gated=defect in ("forget", "saturated"))
        planted = plant(model, kinds, defect, rng)
        path = os.path.join(out, f"{which}_{seed}_{n}_{defect}" + (".h5" if which == "tfkeras" else ".keras"))
        model.save(path)
        made.append({"path": path, "defect": defect, "kinds": kinds, "planted": planted})
    return made


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--keras", choices=["keras3", "tfkeras"], default="keras3")
    ap.add_argument("--count", type=int, default=30)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    print(json.dumps(write(args.out, args.keras, args.count, args.seed)))
