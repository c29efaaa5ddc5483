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


def standard_activations(cell, layout, allow_mismatch=False):
    """The layout runs tanh/sigmoid (SimpleRNN: tanh or relu in PyTorch). Anything else is
    refused, unless the user accepts the mismatch (recorded in the manifest)."""
    if cell.family == "simple_rnn":
        ok = cell.activation == "tanh" or (layout == "PyTorch" and cell.activation == "relu")
    else:
        ok = cell.activation == "tanh" and cell.recurrent_activation == "sigmoid"
    if ok or allow_mismatch:
        return
    acts = cell.activation if cell.family == "simple_rnn" else f"{cell.activation}/{cell.recurrent_activation}"
    hint = ""
    if cell.recurrent_activation == "hard_sigmoid" and cell.family != "simple_rnn":
        hint = ("; --layout onnx carries hard_sigmoid exactly (HardSigmoid), or pass "
                "--allow-activation-mismatch to export PyTorch weights anyway (recorded in the manifest)")
    raise UsageError(f"{cell.path}: activations {acts} cannot be expressed in the {layout} layout "
                     f"(it fixes tanh/sigmoid){hint}")


def mismatch(cell) -> str:
    """What a layout with tanh/sigmoid computes differently for this cell ('' if nothing)."""
    if cell.family == "simple_rnn":
        return "" if cell.activation in ("tanh", "relu") else f"activation {cell.activation} runs as tanh"
    out = []
    if cell.activation != "tanh":
        out.append(f"activation {cell.activation} runs as tanh")
    if cell.recurrent_activation != "sigmoid":
        out.append(f"recurrent_activation {cell.recurrent_activation} runs as sigmoid")
    return "; ".join(out)


def refuse_conv(cell, layout):
    if cell.conv:
        raise UsageError(f"{cell.path}: {cell.class_name} has no {layout} equivalent")


def halves(path, cells):
    """[(direction suffix, cell)]: forward first; a lone cell is forward."""
    if len(cells) == 2 and cells[0].path.endswith("/forward"):
        return [("", cells[0]), ("_reverse", cells[1])]
    return [("", c) for c in cells]
