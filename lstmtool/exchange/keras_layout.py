"""Keras layout: one array per gate and part, named `<PART>_<gate>`.

W_<g>: input kernel slice (in, u); U_<g>: recurrent kernel slice (u, u); b_<g>: bias (u,).
Cells with two biases name them `b_<g>_input` (added to x W) and `b_<g>_recurrent`
(added to h U): GRU with reset_after=True (its bias rows 0 and 1) and CuDNN cells (the
two stored halves). CuDNN W and U are exported LSTM/GRU-equivalent.
"""
import numpy as np

from ..errors import UsageError
from .common import bias_halves


def two_biases(cell):
    return cell.layout == "cudnn" or (cell.b and len(next(iter(cell.b.values())).shape) == 2)


def cell_keys(cell):
    keys = []
    for g in cell.gates:
        keys += [f"W_{g}", f"U_{g}"]
        if cell.b:
            keys += [f"b_{g}_input", f"b_{g}_recurrent"] if two_biases(cell) else [f"b_{g}"]
    return keys


def export_group(path, cells):
    out = {}
    for cell in cells:
        for g in cell.gates:
            out[f"{cell.path}/W_{g}"] = cell.W[g].numpy()
            out[f"{cell.path}/U_{g}"] = cell.U[g].numpy()
            if cell.b:
                if two_biases(cell):
                    b_in, b_rec = bias_halves(cell, g)
                    out[f"{cell.path}/b_{g}_input"] = b_in
                    out[f"{cell.path}/b_{g}_recurrent"] = b_rec
                else:
                    out[f"{cell.path}/b_{g}"] = cell.b[g].numpy()
    return out


def import_group(path, cells, arrays):
    writes = []
    for cell in cells:
        for key in cell_keys(cell):
            if f"{cell.path}/{key}" not in arrays:
                raise UsageError(f"source has no {cell.path}/{key}")
        for g in cell.gates:
            writes += [(cell.W[g], arrays[f"{cell.path}/W_{g}"]), (cell.U[g], arrays[f"{cell.path}/U_{g}"])]
            if not cell.b:
                continue
            if cell.layout == "cudnn":
                writes += [(cell.stored[f"b_{g}_input"], arrays[f"{cell.path}/b_{g}_input"]),
                           (cell.stored[f"b_{g}_recurrent"], arrays[f"{cell.path}/b_{g}_recurrent"])]
            elif two_biases(cell):
                writes.append((cell.b[g], np.stack([arrays[f"{cell.path}/b_{g}_input"],
                                                    arrays[f"{cell.path}/b_{g}_recurrent"]])))
            else:
                writes.append((cell.b[g], arrays[f"{cell.path}/b_{g}"]))
    return writes


def check_group(path, cells):
    """Every cell has a Keras layout."""
