"""Helpers shared by the layouts: per-gate arrays and the two halves of a bias."""
import numpy as np

from ..errors import UsageError


def bias_halves(cell, g):
    """(input-side, recurrent-side) bias of gate g as stored; recurrent zeros for one bias."""
    if not cell.b:
        return np.zeros(cell.units, cell.W[g].dtype), np.zeros(cell.units, cell.W[g].dtype)
    if cell.layout == "cudnn":
        return cell.stored[f"b_{g}_input"].numpy(), cell.stored[f"b_{g}_recurrent"].numpy()
    b = cell.b[g].numpy()
    if b.ndim == 2:  # GRU reset_after: row 0 with x W, row 1 with h U
        return b[0], b[1]
    return b, np.zeros_like(b)


def bias_writes(cell, g, b_in, b_rec):
    """[(view, value)] that store input/recurrent bias halves the way this cell keeps them."""
    if not cell.b:
        if np.any(b_in) or np.any(b_rec):
            raise UsageError(f"{cell.path} has no bias (use_bias=False) but the source has non-zero biases")
        return []
    if cell.layout == "cudnn":
        return [(cell.stored[f"b_{g}_input"], b_in), (cell.stored[f"b_{g}_recurrent"], b_rec)]
    view = cell.b[g]
    if len(view.shape) == 2:
        return [(view, np.stack([b_in, b_rec]))]
    return [(view, b_in + b_rec)]


def standard_activations(cell, layout):
    if cell.activation != "tanh" or cell.recurrent_activation not in ("sigmoid",) and cell.family != "simple_rnn":
        raise UsageError(f"{cell.path}: activations {cell.activation}/{cell.recurrent_activation} "
                         f"cannot be expressed in the {layout} layout (it fixes tanh/sigmoid)")


def refuse_conv(cell, layout):
    if cell.conv:
        raise UsageError(f"{cell.path}: {cell.class_name} has no {layout} equivalent")


def halves(path, cells):
    """[(direction suffix, cell)]: forward first; a lone cell is forward."""
    if len(cells) == 2 and cells[0].path.endswith("/forward"):
        return [("", cells[0]), ("_reverse", cells[1])]
    return [("", c) for c in cells]
