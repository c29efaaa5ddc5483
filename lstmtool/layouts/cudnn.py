"""CuDNNLSTM / CuDNNGRU (Keras 2.x, tf.keras 1.x): kernel (in, n*u), recurrent_kernel
(u, n*u), bias (2*n*u,) = [input-side gates ; recurrent-side gates].

The kernels are in cuDNN's layout. Per gate block, the matrix a plain LSTM/GRU uses is
`k.T.reshape(k.shape, order="F")` for an input block and `k.T` for a recurrent block,
which is the conversion tf-keras applies when loading CuDNN weights into LSTM/GRU.
An LSTM adds the two bias halves; a GRU(reset_after=True) keeps them as its two rows.
"""
from __future__ import annotations

import numpy as np

from ..core.model import Cell, GateView, Term
from .fused import column_view, tensor_refs


def input_block(block: np.ndarray) -> np.ndarray:
    return block.T.reshape(block.shape, order="F")


def recurrent_block(block: np.ndarray) -> np.ndarray:
    return block.T


def input_block_inverse(matrix: np.ndarray) -> np.ndarray:
    rows, cols = matrix.shape
    return matrix.reshape((cols, rows), order="F").T


def recurrent_block_inverse(matrix: np.ndarray) -> np.ndarray:
    return matrix.T


def build(found, family, gates, opts, shape_of, dtype_of) -> Cell:
    t = tensor_refs(found, shape_of, dtype_of)
    kernel, rk, bias = t["kernel"], t["recurrent_kernel"], t.get("bias")
    n, units = len(gates), t["recurrent_kernel"].shape[-2]
    if rk.shape != (units, n * units) or kernel.shape[-1] != n * units or bias is None \
            or bias.shape != (2 * n * units,):
        raise ValueError(f"{found.path}: shapes {kernel.shape}, {rk.shape}, "
                         f"{bias.shape if bias else None} do not fit a {found.class_name}")
    W, U, b, stored = {}, {}, {}, {}
    for k, g in enumerate(gates):
        cols = slice(k * units, (k + 1) * units)
        W[g] = GateView("W", g, [Term(kernel, (slice(None), cols), input_block, input_block_inverse)],
                        (kernel.shape[0], units), kernel.dtype, label="LSTM-equivalent")
        U[g] = GateView("U", g, [Term(rk, (slice(None), cols), recurrent_block, recurrent_block_inverse)],
                        (units, units), rk.dtype, label="LSTM-equivalent")
        b_in = Term(bias, (cols,))
        b_rec = Term(bias, (slice(n * units + k * units, n * units + (k + 1) * units),))
        if family == "lstm":
            b[g] = GateView("b", g, [b_in, b_rec], (units,), bias.dtype, label="sum of both halves")
        else:
            b[g] = GateView("b", g, [b_in, b_rec], (2, units), bias.dtype, label="rows: input, recurrent",
                            combine="stack")
        stored[f"W_{g}"] = column_view("W", g, k, kernel, units)
        stored[f"U_{g}"] = column_view("U", g, k, rk, units)
        stored[f"b_{g}_input"] = GateView("b", g, [b_in], (units,), bias.dtype)
        stored[f"b_{g}_recurrent"] = GateView("b", g, [b_rec], (units,), bias.dtype)
    cell = Cell(
        path=found.path, class_name=found.class_name, family=family, gates=gates, units=units,
        input_dim=kernel.shape[0], tensors=t, layout="cudnn", W=W, U=U, b=b, stored=stored,
        activation="tanh", recurrent_activation="sigmoid", use_bias=True,
    )
    if family == "gru":
        cell.reset_after = True
    cell.notes.append("CuDNN layout: W, U and b shown LSTM/GRU-equivalent; `stored` holds the raw blocks")
    return cell
