"""ONNX LSTM / GRU operator inputs W, R, B (forward then backward on the direction axis).

LSTM: W [D, 4H, in], R [D, 4H, H], B [D, 8H] = [Wb ; Rb], gate order i, o, f, c.
GRU:  W [D, 3H, in], R [D, 3H, H], B [D, 6H], gate order z, r, h; linear_before_reset=1
matches Keras reset_after=True, 0 matches reset_after=False (then Rb_h is zero).
"""
import numpy as np

from ..errors import UsageError
from .common import bias_halves, bias_writes, halves, refuse_conv, standard_activations

ORDER = {"lstm": ("i", "o", "f", "c"), "gru": ("z", "r", "h")}


def directions(path, cells):
    pairs = halves(path, cells)
    if len(cells) > 1 and pairs[1][0] != "_reverse":
        raise UsageError(f"{path}: stacked cells are several ONNX nodes; export each cell with --layer")
    for _, c in pairs:
        refuse_conv(c, "ONNX")
        standard_activations(c, "ONNX")
        if c.family not in ORDER:
            raise UsageError(f"{c.path}: ONNX layout covers LSTM and GRU only")
    return [c for _, c in pairs]


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
