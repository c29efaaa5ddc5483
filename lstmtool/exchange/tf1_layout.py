"""TF1 LSTMCell / BasicLSTMCell: one kernel (in+H, 4H) stacking [x ; h] and one bias (4H,),
gate order i, j, f, o (j = the candidate, Keras c).

TF1 adds `forget_bias` (default 1.0) to the f pre-activation at run time, so the
stored bias_f is Keras' b_f minus forget_bias. The value used is in the manifest.
"""
import numpy as np

from ..errors import UsageError
from .common import bias_halves, bias_writes, refuse_conv, standard_activations

ORDER = ("i", "c", "f", "o")
FORGET_BIAS = 1.0


def only(path, cells):
    if cells[0].family != "lstm":
        raise UsageError(f"{path}: {cells[0].class_name} has no TF1 LSTMCell layout (it holds LSTM cells only)")
    if len(cells) != 1:
        raise UsageError(f"{path}: the TF1 layout holds one LSTM cell; export each half with "
                         f"--layer {cells[0].path}")
    refuse_conv(cells[0], "TF1")
    standard_activations(cells[0], "TF1")
    return cells[0]


def export_group(path, cells):
    cell = only(path, cells)
    kernel = np.concatenate([np.concatenate([cell.W[g].numpy(), cell.U[g].numpy()]) for g in ORDER], axis=1)
    bias = []
    for g in ORDER:
        b_in, b_rec = bias_halves(cell, g)
        b = (b_in + b_rec).astype(b_in.dtype)
        bias.append(b - np.asarray(FORGET_BIAS, b.dtype) if g == "f" else b)
    return {f"{path}/kernel": kernel, f"{path}/bias": np.concatenate(bias)}


def import_group(path, cells, arrays, forget_bias=FORGET_BIAS):
    cell = only(path, cells)
    kernel, bias = arrays.get(f"{path}/kernel"), arrays.get(f"{path}/bias")
    u, n_in = cell.units, cell.input_dim
    if kernel is None or bias is None or kernel.shape != (n_in + u, 4 * u) or bias.shape != (4 * u,):
        raise UsageError(f"{path}: TF1 kernel/bias must be {(n_in + u, 4 * u)} and {(4 * u,)}")
    writes = []
    for k, g in enumerate(ORDER):
        cols = slice(k * u, (k + 1) * u)
        writes += [(cell.W[g], kernel[:n_in, cols]), (cell.U[g], kernel[n_in:, cols])]
        b = bias[cols] + (np.asarray(forget_bias, bias.dtype) if g == "f" else 0)
        writes += bias_writes(cell, g, b, np.zeros_like(b))
    return writes


def check_group(path, cells):
    only(path, cells)
