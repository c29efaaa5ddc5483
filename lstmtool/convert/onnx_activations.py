"""Keras 3's activations as ONNX operators (a layer's `activation`, or an Activation layer)."""
from __future__ import annotations

import math

import numpy as np

from .errors import Unconvertible
from .onnx_recurrent import activation_name


def activation(b, name, x, path):
    """Keras 3's activation `name` applied to x."""
    r = b.rank.get(x)
    name = activation_name(name)
    simple = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "softplus": "Softplus", "softsign": "Softsign",
              "exponential": "Exp", "selu": "Selu"}  # ONNX Selu's defaults are Keras' constants
    if name == "linear":
        return x
    if name in simple:
        return b.op(simple[name], [x], f"{path}/{name}", rank=r)
    if name == "softmax":
        return b.op("Softmax", [x], f"{path}/softmax", rank=r, axis=-1)
    if name == "log_softmax":
        return b.op("LogSoftmax", [x], f"{path}/log_softmax", rank=r, axis=-1)
    if name == "elu":
        return b.op("Elu", [x], f"{path}/elu", rank=r, alpha=1.0)
    if name == "leaky_relu":
        return b.op("LeakyRelu", [x], f"{path}/leaky_relu", rank=r, alpha=0.2)
    if name == "hard_sigmoid":  # Keras 3: relu6(x + 3) / 6
        return b.op("HardSigmoid", [x], f"{path}/hard_sigmoid", rank=r, alpha=1 / 6, beta=0.5)
    if name == "relu6":
        return b.op("Clip", [x, scalar(b, path, 0.0), scalar(b, path, 6.0)], f"{path}/relu6", rank=r)
    if name in ("silu", "swish"):
        return b.op("Mul", [x, b.op("Sigmoid", [x], f"{path}/silu", rank=r)], f"{path}/silu", rank=r)
    if name == "hard_silu":
        hs = b.op("HardSigmoid", [x], f"{path}/hard_silu", rank=r, alpha=1 / 6, beta=0.5)
        return b.op("Mul", [x, hs], f"{path}/hard_silu", rank=r)
    if name == "gelu":  # Keras 3's activations.gelu: the exact (erf) form
        erf = b.op("Erf", [b.op("Mul", [x, scalar(b, path, 1 / math.sqrt(2))], f"{path}/gelu", rank=r)],
                   f"{path}/gelu", rank=r)
        one = b.op("Add", [erf, scalar(b, path, 1.0)], f"{path}/gelu", rank=r)
        return b.op("Mul", [b.op("Mul", [x, scalar(b, path, 0.5)], f"{path}/gelu", rank=r), one], f"{path}/gelu",
                    rank=r)
    if name == "mish":
        t = b.op("Tanh", [b.op("Softplus", [x], f"{path}/mish", rank=r)], f"{path}/mish", rank=r)
        return b.op("Mul", [x, t], f"{path}/mish", rank=r)
    raise Unconvertible(f"layer {path!r}: activation {name} has no ONNX equivalent here")


def scalar(b, path, value):
    return b.const(f"{path}/const", np.asarray(value, dtype=np.float32))
