"""PyTorch nn.LSTM / nn.GRU / nn.RNN state_dict, one per Keras layer.

weight_ih_l0 (G*H, in), weight_hh_l0 (G*H, H), bias_ih_l0, bias_hh_l0; `_reverse` for the
backward half of a Bidirectional; l<k> for stacked cells. Gate blocks on the first axis:
LSTM i, f, g, o (g = Keras c), GRU r, z, n (Keras z, r, h with the first two swapped).
Keras' single LSTM bias goes to bias_ih (bias_hh zero: PyTorch adds the two).
A Keras GRU with reset_after=False has no PyTorch equivalent.
"""
import numpy as np

from ..errors import UsageError
from .common import bias_halves, bias_writes, halves, refuse_conv, standard_activations

ORDER = {"lstm": ("i", "f", "c", "o"), "gru": ("r", "z", "h"), "simple_rnn": ("h",)}
MODULE = {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "RNN"}


ALLOW_MISMATCH = False  # set by export --allow-activation-mismatch


def check(cell):
    refuse_conv(cell, "PyTorch")
    standard_activations(cell, "PyTorch", ALLOW_MISMATCH)
    if cell.family == "gru" and not cell.reset_after:
        raise UsageError(f"{cell.path}: GRU with reset_after=False applies r before U_h; "
                         "PyTorch's GRU cannot express that (it matches reset_after=True only)")


def suffixes(path, cells):
    """[(layer, direction suffix, cell)], refusing what one torch module cannot hold:
    one module has one kind of cell, one hidden size and one nonlinearity."""
    pairs = halves(path, cells)
    if len({c.family for c in cells}) > 1:
        raise UsageError(f"{path}: cells of different kinds ({', '.join(c.class_name for c in cells)}) "
                         "have no single PyTorch module")
    if len({c.units for c in cells}) > 1:
        raise UsageError(f"{path}: cells of different sizes ({', '.join(str(c.units) for c in cells)} units) "
                         "have no single PyTorch module (its layers share hidden_size)")
    if len({c.activation for c in cells}) > 1:
        raise UsageError(f"{path}: cells with different activations have no single PyTorch module")
    if len(cells) > 1 and pairs[0][0] == pairs[1][0]:  # stacked cells: layers l0, l1, ...
        return [(f"l{k}", "", c) for k, c in enumerate(cells)]
    if len({c.input_dim for c in cells}) > 1:
        raise UsageError(f"{path}: the two directions read inputs of different sizes")
    return [("l0", sfx, c) for sfx, c in pairs]


def constructor(path, cells) -> dict:
    """The keyword arguments that build the torch module this state_dict loads into."""
    rows = suffixes(path, cells)
    first = rows[0][2]
    args = {"input_size": first.input_dim, "hidden_size": first.units,
            "num_layers": len({layer for layer, _, _ in rows}), "bias": True, "batch_first": True,
            "bidirectional": any(sfx for _, sfx, _ in rows)}
    if first.family == "simple_rnn":
        args["nonlinearity"] = "relu" if first.activation == "relu" else "tanh"
    return {"module": f"torch.nn.{MODULE[first.family]}", "kwargs": args}


def export_group(path, cells):
    out = {}
    for layer, sfx, cell in suffixes(path, cells):
        check(cell)
        order = ORDER[cell.family]
        out[f"weight_ih_{layer}{sfx}"] = np.concatenate([cell.W[g].numpy().T for g in order])
        out[f"weight_hh_{layer}{sfx}"] = np.concatenate([cell.U[g].numpy().T for g in order])
        halves_ = [bias_halves(cell, g) for g in order]
        out[f"bias_ih_{layer}{sfx}"] = np.concatenate([h[0] for h in halves_])
        out[f"bias_hh_{layer}{sfx}"] = np.concatenate([h[1] for h in halves_])
    return out


def import_group(path, cells, arrays):
    writes = []
    for layer, sfx, cell in suffixes(path, cells):
        check(cell)
        order, u = ORDER[cell.family], cell.units
        try:
            w_ih, w_hh = arrays[f"weight_ih_{layer}{sfx}"], arrays[f"weight_hh_{layer}{sfx}"]
            b_ih = arrays.get(f"bias_ih_{layer}{sfx}", np.zeros(len(order) * u, w_ih.dtype))
            b_hh = arrays.get(f"bias_hh_{layer}{sfx}", np.zeros(len(order) * u, w_ih.dtype))
        except KeyError as e:
            raise UsageError(f"{path}: source has no {e.args[0]}") from None
        want = (len(order) * u, cell.input_dim)
        if w_ih.shape != want or w_hh.shape != (len(order) * u, u):
            raise UsageError(f"{path}: weight_ih_{layer}{sfx} {w_ih.shape} / weight_hh {w_hh.shape}; "
                             f"{cell.path} needs {want} / {(len(order) * u, u)}")
        for k, g in enumerate(order):
            rows = slice(k * u, (k + 1) * u)
            writes += [(cell.W[g], w_ih[rows].T), (cell.U[g], w_hh[rows].T)]
            writes += bias_writes(cell, g, b_ih[rows], b_hh[rows])
    return writes


def check_group(path, cells):
    for _, _, cell in suffixes(path, cells):
        check(cell)
