"""Activations by the names Keras configs use. hard_sigmoid depends on the Keras era."""
import numpy as np

from ..errors import UsageError


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def activation(name: str, keras_major=3):
    if name == "hard_sigmoid":
        if keras_major is not None and keras_major >= 3:
            return lambda x: np.clip(x / 6.0 + 0.5, 0.0, 1.0)
        return lambda x: np.clip(0.2 * x + 0.5, 0.0, 1.0)
    table = {
        "tanh": np.tanh,
        "sigmoid": sigmoid,
        "relu": lambda x: np.maximum(x, 0),
        "linear": lambda x: x,
        None: lambda x: x,
    }
    if name not in table:
        raise UsageError(f"activation {name!r} has no NumPy reference in lstmtool")
    return table[name]
