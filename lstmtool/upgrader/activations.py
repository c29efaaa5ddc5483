"""Where Keras 3 changed an activation's formula (hard_sigmoid: 0.2x + 0.5 -> x/6 + 0.5), and
how each place it appears is kept exact: gates and linear layers by scaling their weights by
1.2, an Activation layer by a Rescaling(1.2) in front; what no scaling reaches is refused."""
from __future__ import annotations

from . import table as T
from .objects import Untranslatable, activation
from .translate_facts import GATED, SCALABLE, SIGMOID_GATES, Refused


def recurrent_settings(cls, cfg, step, ctx):
    if cls in ("GRU", "GRUCell") and "reset_after" not in cfg:
        cfg["reset_after"] = False  # Keras 1 and Keras 2 before 2.3 had no reset_after: it was False
        step.changes.append("reset_after=False stated (the file's Keras had no reset_after)")
    if cls in GATED and ctx.weights_major < 3:
        if "recurrent_activation" not in cfg and ctx.keras_major < 3:
            cfg["recurrent_activation"] = "hard_sigmoid"  # Keras 1: inner_activation defaulted to it
        if cfg.get("recurrent_activation") == "hard_sigmoid":
            step.scaled_gates += list(SIGMOID_GATES["LSTM" if "LSTM" in cls else "GRU"])
    if cls in ("SimpleRNN", "SimpleRNNCell"):
        cfg.pop("recurrent_activation", None)
    if cfg.get("activation") == "hard_sigmoid" and ctx.weights_major < 3:
        if cls.startswith(("LSTM", "ConvLSTM")):
            raise Refused(f"layer {step.path!r}: activation=hard_sigmoid changed formula in Keras 3, and in an "
                          "LSTM it also squashes the cell state, which no scaling of weights reaches; "
                          "nothing written")
        step.scaled_gates.append("h")  # GRU's candidate, SimpleRNN's output: its own W, U, b
    if step.scaled_gates:
        step.scaled = True
        step.changes.append(f"hard_sigmoid kept exact: W, U, b of gates {','.join(step.scaled_gates)} "
                            "scaled by 1.2 (Keras 3's x/6+0.5 of 1.2z is Keras 1/2's 0.2z+0.5)")


def check_activations(cls, cfg, path, ctx):
    for key in ("activation", "recurrent_activation"):
        value = cfg.get(key)
        if isinstance(value, dict):
            try:
                value = cfg[key] = activation(value, key)
            except Untranslatable as e:
                raise Refused(f"layer {path!r}: {e}") from None
        if value == "hard_sigmoid" and ctx.weights_major < 3 and not (
                key == "recurrent_activation" and cls in GATED
                or key == "activation" and cls in SCALABLE | {"Activation"}
                or key == "activation" and cls in ("GRU", "GRUCell", "SimpleRNN", "SimpleRNNCell", "LSTM",
                                                   "LSTMCell", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D")):
            raise Refused(f"layer {path!r}: {key}=hard_sigmoid changed formula in Keras 3 and cannot be "
                          "kept exact here (only a gate's recurrent_activation can)")


def rescaled_hard_sigmoid(cls, cfg, name, dtype, step, ctx):
    """An Activation('hard_sigmoid') of Keras 1/2: the Rescaling(1.2) layer to put in front of
    it (hs2(x) = clip(0.2x + 0.5, 0, 1) = hs3(1.2x)), or None."""
    if not (cls == "Activation" and cfg.get("activation") == "hard_sigmoid" and ctx.weights_major < 3):
        return None
    step.changes.append(f"hard_sigmoid kept exact: Rescaling({T.HARD_SIGMOID_SCALE}) {name}_scale in front "
                        "(Keras 3's x/6+0.5 of 1.2x is Keras 1/2's 0.2x+0.5)")
    return {"module": T.LAYER_MODULE, "class_name": "Rescaling", "registered_name": None,
            "config": {"name": f"{name}_scale", "scale": T.HARD_SIGMOID_SCALE, "offset": 0.0,
                       "trainable": cfg.get("trainable", True), "dtype": dtype}}
