"""The NumPy reference forward pass, built only from lstmtool's per-gate views.

`verify` runs it beside Keras: if a gate slice were wrong, the outputs would differ.
"""
from __future__ import annotations

import numpy as np

from . import FAMILIES, activation
from ..errors import UsageError


def gate_arrays(cell) -> dict:
    """{"W": {gate: array}, "U": {...}, "b": {...}} in float64."""
    return {part: {g: np.asarray(v.numpy(), dtype=np.float64) for g, v in views.items()}
            for part, views in (("W", cell.W), ("U", cell.U), ("b", cell.b))}


def run_cell(cell, x, keras_major=3, reverse=False, params=None):
    """Outputs (batch, T, units) of one cell over x (batch, T, input_dim)."""
    if cell.conv:
        raise UsageError(f"{cell.path}: ConvLSTM has no NumPy forward pass; its gate slices are compared instead")
    family = FAMILIES[cell.family]
    p = params or gate_arrays(cell)
    act = activation(cell.activation, keras_major)
    rec = activation(cell.recurrent_activation, keras_major)
    state = family.initial_state(x.shape[0], cell.units)
    steps = range(x.shape[1] - 1, -1, -1) if reverse else range(x.shape[1])
    outs = [None] * x.shape[1]
    for t in steps:
        if cell.family == "gru":
            out, state = family.step(x[:, t], state, p, act, rec, reset_after=bool(cell.reset_after))
        else:
            out, state = family.step(x[:, t], state, p, act, rec)
        outs[t] = out
    return np.stack(outs, axis=1)


def run_stack(cells, x, keras_major=3):
    """RNN(StackedRNNCells): each time step runs through the cells in order."""
    params = [gate_arrays(c) for c in cells]
    states, outs = [None] * len(cells), []
    for t in range(x.shape[1]):
        h = x[:, t]
        for k, cell in enumerate(cells):
            fam = FAMILIES[cell.family]
            if states[k] is None:
                states[k] = fam.initial_state(x.shape[0], cell.units)
            act = activation(cell.activation, keras_major)
            rec = activation(cell.recurrent_activation, keras_major)
            kw = {"reset_after": bool(cell.reset_after)} if cell.family == "gru" else {}
            h, states[k] = fam.step(h, states[k], params[k], act, rec, **kw)
        outs.append(h)
    return np.stack(outs, axis=1)


def merge(forward, backward, mode):
    """Bidirectional merge of two (batch, T, u) or (batch, u) outputs."""
    if mode == "concat":
        return np.concatenate([forward, backward], axis=-1)
    if mode == "sum":
        return forward + backward
    if mode == "mul":
        return forward * backward
    if mode == "ave":
        return (forward + backward) / 2
    raise UsageError(f"Bidirectional merge_mode {mode!r} has no NumPy reference")
