"""Cell layouts: how each family's gates sit in what a file stores.

fused   Keras 2/3: kernel, recurrent_kernel, bias with gates on the last axis
keras1  Keras 1: one array per gate and part (W_i, U_i, b_i, ...)
cudnn   CuDNNLSTM / CuDNNGRU: fused, but in cuDNN's kernel layout with two biases
"""
from __future__ import annotations

from ..containers.found import FUSED_ROLES
from ..core.config import activation_name, family_of, units_of
from ..core.model import Cell
from . import fused

def is_keras1(found) -> bool:
    return any(role not in FUSED_ROLES for role in found.tensors)


GATES = {"lstm": ("i", "f", "c", "o"), "gru": ("z", "r", "h"), "simple_rnn": ("h",)}


def settings(found, family: str, keras_major) -> dict:
    """Activations and flags from the config, with the defaults of the Keras that wrote it."""
    cfg = found.spec.config if found.spec is not None else {}
    old_default = "hard_sigmoid" if keras_major is not None and keras_major <= 1 else "sigmoid"
    rec = cfg.get("recurrent_activation", cfg.get("inner_activation"))
    out = {
        "activation": activation_name(cfg.get("activation"), "tanh"),
        "recurrent_activation": activation_name(rec, old_default),
        "use_bias": bool(cfg.get("use_bias", cfg.get("bias", True))),
        "units": units_of(cfg),
    }
    if family == "gru":
        # Keras 1 and Keras <= 2.2 GRUs compute like reset_after=False; their configs lack the key
        out["reset_after"] = bool(cfg.get("reset_after", False)) if cfg else None
    return out


def build_cell(found, shape_of, dtype_of, reader, keras_major, check=None) -> Cell:
    """A Cell with lazy views, or raise ValueError naming what does not fit.

    `check(path)` raises ValueError for a tensor that is not a real, non-empty array of
    floating point numbers the file can hold (the reader's job: it sees the file)."""
    class_name = found.class_name
    family = family_of(class_name)
    if found.ambiguous:
        raise ValueError(f"{found.path}: {found.ambiguous}")
    if family is None:
        raise ValueError(f"{found.path}: unknown recurrent class {class_name!r}")
    opts = settings(found, family, keras_major)
    missing = [role for role, path in found.tensors.items() if path is None]
    if missing:
        raise ValueError(f"{found.path}: weights missing from the file: {', '.join(missing)}")
    if found.ambiguous:
        raise ValueError(f"{found.path}: {found.ambiguous}")
    if check is not None:
        for role, path in found.tensors.items():
            try:
                check(path)
            except ValueError as e:
                raise ValueError(f"{found.path}: {role} {e}") from None
    try:
        return _build(found, family, class_name, opts, shape_of, dtype_of, reader, keras_major)
    except (IndexError, KeyError, TypeError, ZeroDivisionError) as e:  # shapes no layout can split
        raise ValueError(f"{found.path}: tensors do not fit a {class_name} ({type(e).__name__}: {e})") from None


def _build(found, family, class_name, opts, shape_of, dtype_of, reader, keras_major) -> Cell:
    if is_keras1(found):
        from . import keras1 as module
    elif class_name.startswith("CuDNN"):
        from . import cudnn as module
    else:
        module = fused
    cell = module.build(found, family, GATES[family], opts, shape_of, dtype_of)
    if found.source != "config" and family == "gru" and cell.reset_after is None:
        # a (2, 3u) bias means reset_after=True, (3u,) False; with no bias the file cannot
        # tell, and the note says so: assume the Keras 3 / TF2 default, True
        bias = cell.tensors.get("bias")
        cell.reset_after = len(bias.shape) == 2 if bias is not None else True
    if opts["units"] is not None and opts["units"] != cell.units:
        raise ValueError(f"{found.path}: config says {opts['units']} units, tensors hold {cell.units}")
    for views in (cell.W, cell.U, cell.b, cell.stored):
        for v in views.values():
            v.reader = reader
    cell.source = found.source
    cell.keras_major = keras_major
    cell.notes = list(found.notes) + cell.notes
    return cell
