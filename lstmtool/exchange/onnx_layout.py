"""ONNX LSTM / GRU operator inputs W, R, B (forward then backward on the direction axis).

LSTM: W [D, 4H, in], R [D, 4H, H], B [D, 8H] = [Wb ; Rb], gate order i, o, f, c.
GRU:  W [D, 3H, in], R [D, 3H, H], B [D, 6H], gate order z, r, h; linear_before_reset=1
matches Keras reset_after=True, 0 matches reset_after=False (then Rb_h is zero).
"""
import numpy as np

from ..errors import UsageError
from .common import bias_halves, bias_writes, halves, refuse_conv

ORDER = {"lstm": ("i", "o", "f", "c"), "gru": ("z", "r", "h")}

# Keras activation -> (ONNX recurrent-operator activation, alpha, beta): what ONNX's LSTM / GRU /
# RNN accept. hard_sigmoid depends on the Keras that wrote the file: Keras 1/2 clip(0.2x + 0.5),
# Keras 3 clip(x/6 + 0.5); ONNX's HardSigmoid takes both.
ACTIVATIONS = {"sigmoid": ("Sigmoid",), "tanh": ("Tanh",), "relu": ("Relu",), "softsign": ("Softsign",),
               "softplus": ("Softplus",), "linear": ("Affine", 1.0, 0.0), "elu": ("Elu", 1.0)}


def recurrent_activation(name, keras_major=3):
    """The ONNX form of Keras activation `name` inside a recurrent operator, or None."""
    if name == "hard_sigmoid":
        return ("HardSigmoid", 1 / 6 if (keras_major or 3) >= 3 else 0.2, 0.5)
    return ACTIVATIONS.get(name)


def activation_attributes(acts) -> dict:
    """activations / activation_alpha / activation_beta for a list of ACTIVATIONS entries:
    onnxruntime takes alphas and betas in order, only for the activations that have them."""
    attrs = {"activations": [a[0] for a in acts]}
    alpha = [x for a in acts for x in a[1:2]]
    beta = [x for a in acts for x in a[2:3]]
    if alpha:
        attrs["activation_alpha"] = alpha
    if beta:
        attrs["activation_beta"] = beta
    return attrs


def onnx_activation(cell, name):
    act = recurrent_activation(name, cell.keras_major)
    if act is None:
        raise UsageError(f"{cell.path}: activation {name} has no ONNX LSTM/GRU equivalent")
    return act


def activations(cells) -> dict:
    """The node's activations / activation_alpha / activation_beta attributes, per direction
    (f, g, h for LSTM; f, g for GRU)."""
    acts = []
    for cell in cells:
        kinds = [cell.recurrent_activation, cell.activation] + ([cell.activation] if cell.family == "lstm" else [])
        acts += [onnx_activation(cell, k) for k in kinds]
    attrs = activation_attributes(acts)
    return {"activations": attrs["activations"], "activation_alpha": attrs.get("activation_alpha", []),
            "activation_beta": attrs.get("activation_beta", [])}


def node_attributes(path, cells) -> dict:
    """Everything besides W, R, B that the ONNX node needs to compute what Keras computed."""
    cells = directions(path, cells)
    attrs = {"op": "LSTM" if cells[0].family == "lstm" else "GRU", "hidden_size": cells[0].units,
             "direction": "bidirectional" if len(cells) == 2 else "forward", **activations(cells)}
    if cells[0].family == "gru":
        attrs["linear_before_reset"] = int(bool(cells[0].reset_after))
    return attrs


def directions(path, cells):
    pairs = halves(path, cells)
    if len(cells) > 1 and pairs[1][0] != "_reverse":
        raise UsageError(f"{path}: stacked cells are several ONNX nodes; export each cell with --layer")
    for _, c in pairs:
        refuse_conv(c, "ONNX")
        if c.family not in ORDER:
            raise UsageError(f"{c.path}: ONNX layout covers LSTM and GRU only")
    cells = [c for _, c in pairs]
    if len(cells) == 2 and (cells[0].family, cells[0].units, cells[0].input_dim, cells[0].activation,
                            cells[0].recurrent_activation, cells[0].reset_after) != (
            cells[1].family, cells[1].units, cells[1].input_dim, cells[1].activation,
            cells[1].recurrent_activation, cells[1].reset_after):
        raise UsageError(f"{path}: the two directions differ (kind, size or settings); one ONNX node "
                         "runs both with the same; export each half with --layer")
    activations(cells)  # refuses activations ONNX cannot express
    return cells


def export_group(path, cells):
    W, R, B = [], [], []
    cells = directions(path, cells)
    for cell in cells:
        order = ORDER[cell.family]
        W.append(np.concatenate([cell.W[g].numpy().T for g in order]))
        R.append(np.concatenate([cell.U[g].numpy().T for g in order]))
        hs = [bias_halves(cell, g) for g in order]
        B.append(np.concatenate([h[0] for h in hs] + [h[1] for h in hs]))
    out = {f"{path}/W": np.stack(W), f"{path}/R": np.stack(R), f"{path}/B": np.stack(B)}
    if cells[0].family == "gru":
        out[f"{path}/linear_before_reset"] = np.array(int(bool(cells[0].reset_after)), dtype=np.int64)
    return out


def import_group(path, cells, arrays):
    cells = directions(path, cells)
    try:
        W, R, B = arrays[f"{path}/W"], arrays[f"{path}/R"], arrays[f"{path}/B"]
    except KeyError as e:
        raise UsageError(f"source has no {e.args[0]}") from None
    writes = []
    for d, cell in enumerate(cells):
        order, u = ORDER[cell.family], cell.units
        n = len(order) * u
        if W.shape[0] != len(cells) or W.shape[1:] != (n, cell.input_dim) or R.shape[1:] != (n, u):
            raise UsageError(f"{path}: W {W.shape}, R {R.shape} do not fit {cell.path} "
                             f"(needs [{len(cells)}, {n}, {cell.input_dim}], [{len(cells)}, {n}, {u}])")
        for k, g in enumerate(order):
            rows = slice(k * u, (k + 1) * u)
            writes += [(cell.W[g], W[d][rows].T), (cell.U[g], R[d][rows].T)]
            writes += bias_writes(cell, g, B[d][:n][rows], B[d][n:][rows])
    return writes


def check_group(path, cells):
    directions(path, cells)
