"""Data for `inspect` and `explain`: plain dicts and strings, no rendering."""
from __future__ import annotations

import numpy as np

from ..core.names import matches


def tensor_info(ref) -> dict:
    return {"dataset": ref.path, "shape": list(ref.shape), "dtype": ref.dtype}


def view_info(view) -> dict:
    return {
        "source": view.source_text(),
        "terms": [{"tensor": t.tensor.name, "ranges": t.ranges(), "transformed": t.transform is not None}
                  for t in view.terms],
        "shape": list(view.shape),
        "dtype": view.dtype,
        **({"label": view.label} if view.label else {}),
    }


def stats_of(a) -> dict:
    """mean/std/min/max/L2 of an array, in float64."""
    a = np.asarray(a, dtype=np.float64)
    with np.errstate(all="ignore"):  # inf/NaN weights give inf/NaN statistics, not warnings
        return {"mean": float(a.mean()), "std": float(a.std()), "min": float(a.min()),
                "max": float(a.max()), "l2": float(np.sqrt((a * a).sum()))}


def view_stats(view) -> dict:
    """mean/std/min/max/L2 of one gate view; reads just that slice."""
    return stats_of(view.numpy())


def effective_bias(rows) -> np.ndarray:
    """A bias as the gate sees it, in float64: GRU reset_after=True (and CuDNNGRU) keep two
    rows, input and recurrent, which the gate adds."""
    a = np.asarray(rows, dtype=np.float64)
    return a.sum(axis=0) if a.ndim == 2 else a


def cell_info(cell, stats=False) -> dict:
    info = {
        "path": cell.path, "class": cell.class_name, "family": cell.family, "units": cell.units,
        "input_dim": cell.input_dim, "activation": cell.activation,
        "recurrent_activation": cell.recurrent_activation if cell.family != "simple_rnn" else None,
        "use_bias": cell.use_bias, "conv": cell.conv,
        "reset_after": cell.reset_after, "layout": cell.layout, "source": cell.source,
        "gates": list(cell.gates),
        "tensors": {name: tensor_info(ref) for name, ref in cell.tensors.items()},
        "gate_table": [], "notes": cell.notes,
    }
    for g in cell.gates:
        row = {"gate": g}
        for part in ("W", "U", "b"):
            views = getattr(cell, part)
            if g in views:
                row[part] = view_info(views[g])
                if stats and part == "b" and len(views[g].shape) == 2:  # two rows the gate adds: their sum
                    row[part]["stats"] = {**stats_of(effective_bias(views[g].numpy())), "of": "input+recurrent"}
                elif stats:
                    row[part]["stats"] = view_stats(views[g])
        info["gate_table"].append(row)
    if cell.stored:
        info["stored"] = {name: view_info(v) for name, v in cell.stored.items()}
    return info


def inspect_model(model, patterns=(), stats=False) -> dict:
    from ..core.names import check_patterns_matched

    paths = [lay.path for lay in model.layers] + [c.path for c in model.cells] + [i.path for i in model.incomplete]
    check_patterns_matched(patterns, paths)
    warnings = list(model.warnings)
    if not model.cells and not model.incomplete:
        warnings.append("no recurrent layers (LSTM, GRU, SimpleRNN, ConvLSTM) in this file")
    return {
        "file": model.filename,
        "format": model.format,
        "keras_version": model.keras_version,
        "backend": model.backend,
        "layers": [{"path": lay.path, "class": lay.class_name, "weights": lay.n_weights,
                    "opaque": lay.opaque} for lay in model.layers if matches(lay.path, patterns)],
        "cells": [cell_info(c, stats) for c in model.cells if matches(c.path, patterns)],
        "incomplete": [{"path": i.path, "class": i.class_name, "problem": i.problem,
                        "present": i.present} for i in model.incomplete if matches(i.path, patterns)],
        "warnings": warnings,
    }


def _operand(view, row=None) -> str:
    texts = []
    for t in view.terms:
        idx = t.index_text()
        if row is not None:
            idx = f"{row}, " + idx.split(", ", 1)[1]
        s = f"{t.tensor.name}[{idx}]" if idx != ":" else t.tensor.name
        texts.append(f"cudnn({s})" if t.transform is not None else s)
    return " + ".join(texts)


def explain_cell(cell) -> list:
    """The cell's equations written with this file's real slices, one string per line."""
    from ..cells import FAMILIES

    fam = FAMILIES[cell.family]
    act, rec = cell.activation, cell.recurrent_activation
    op = "*conv*" if cell.conv else "@"
    gru_rows = cell.family == "gru" and cell.reset_after and cell.layout != "keras1"

    def affine(g):
        W, U = _operand(cell.W[g]), _operand(cell.U[g])
        b = cell.b.get(g)
        if cell.family == "gru" and g == "h":
            if cell.reset_after:
                b0 = f" + {_operand(b, 0)}" if b is not None and gru_rows else (f" + {_operand(b)}" if b else "")
                b1 = f" + {_operand(b, 1)}" if b is not None and gru_rows else ""
                return f"x_t {op} {W}{b0} + r_t * (h_{{t-1}} {op} {U}{b1})"
            bt = f" + {_operand(b)}" if b is not None else ""
            return f"x_t {op} {W}{bt} + (r_t * h_{{t-1}}) {op} {U}"
        if b is None:
            return f"x_t {op} {W} + h_{{t-1}} {op} {U}"
        if gru_rows:
            return f"x_t {op} {W} + h_{{t-1}} {op} {U} + {_operand(b, 0)} + {_operand(b, 1)}"
        return f"x_t {op} {W} + h_{{t-1}} {op} {U} + {_operand(b)}"

    lines = []
    for lhs, fn, g in fam.EQUATIONS:
        lines.append(f"{lhs} = {fn.replace('{act}', act).replace('{rec}', rec)}({affine(g)})")
    if cell.family == "gru":
        lines.append(f"h~_t = {act}({affine('h')})")
    lines += [s.replace("{act}", act) for s in fam.STATE]
    if cell.layout == "cudnn":
        lines.append("where cudnn(k) = k.T.reshape(k.shape, order='F') for kernel blocks and k.T for "
                     "recurrent_kernel blocks (cuDNN -> Keras layout), as tf-keras converts them")
    return lines


def explain_data(model, cell) -> dict:
    return {
        "path": cell.path, "class": cell.class_name, "units": cell.units, "input_dim": cell.input_dim,
        "equations": explain_cell(cell),
        "shapes": {"x_t": ["batch", cell.input_dim], "h_{t-1}": ["batch", cell.units],
                   **{n: list(r.shape) for n, r in cell.tensors.items()}},
        "datasets": {n: r.path for n, r in cell.tensors.items()},
        "notes": cell.notes + [w for w in model.warnings if w.startswith(cell.path + ":")],
    }


def selected_views(cell, gates=(), parts=(), stored=False) -> list:
    """[(name like W_f or stored b_f_input, view)] for `show`, checking the choices."""
    from ..errors import UsageError

    for g in gates:
        if g not in cell.gates:
            raise UsageError(f"{cell.path} has gates {', '.join(cell.gates)}, not {g!r}")
    if stored and not cell.stored:
        raise UsageError(f"{cell.path} is stored in Keras layout already; --stored is for CuDNN cells")
    out = []
    for g in gates or cell.gates:
        for p in parts or ("W", "U", "b"):
            if stored:
                out += [(f"stored {name}", v) for name, v in cell.stored.items() if name.split("_")[:2] == [p, g]]
            elif g in getattr(cell, p):
                out.append((f"{p}_{g}", getattr(cell, p)[g]))
    return out
