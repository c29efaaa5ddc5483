"""`diff` and `trace`: numbers about how gates differ between files, as plain data.

Both read one gate view at a time (a slice), never a whole model. Rendering (text,
JSON, CSV, pictures) is the CLI's and pictures.py's job.
"""
from __future__ import annotations

import os
import re

import numpy as np

from ..cells import RECURRENT_GATES
from ..core.names import matches
from ..reading.reader import load
from ..reading.report import effective_bias, stats_of
from ..upgrader.table import HARD_SIGMOID_SCALE

SETTINGS = ("units", "input_dim", "activation", "recurrent_activation", "use_bias", "reset_after")
STATS = ("mean", "std", "min", "max", "l2")
# gates computed with the recurrent activation: those the hard_sigmoid upgrade scales


def natural_key(path: str) -> list:
    """`...-19-1.9435.hdf5` before `...-100-...`: digit runs compare as numbers."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", os.path.basename(path))] + \
        [(1, 0, path)]


def _formula(cell) -> str:
    """hard_sigmoid means 0.2x+0.5 in Keras 1/2 files and x/6+0.5 in Keras 3 files."""
    act = cell.recurrent_activation
    if act == "hard_sigmoid":
        return "hard_sigmoid (Keras 3: x/6+0.5)" if cell.keras_major == 3 else "hard_sigmoid (Keras 1/2: 0.2x+0.5)"
    return act


def _gate_change(va, vb) -> dict:
    a = np.asarray(va.numpy(), dtype=np.float64)
    b = np.asarray(vb.numpy(), dtype=np.float64)
    if a.shape != b.shape:
        return {"shape": [list(a.shape), list(b.shape)], "changed": True}
    with np.errstate(all="ignore"):
        d = b - a
        norm = float(np.sqrt((a * a).sum()))
        out = {"max_abs": float(np.abs(d).max()) if d.size else 0.0,
               "rel_l2": float(np.sqrt((d * d).sum()) / norm) if norm else float(np.sqrt((d * d).sum())),
               "changed": bool(a.tobytes() != b.tobytes())}
        if out["changed"] and np.allclose(b, a * HARD_SIGMOID_SCALE, rtol=1e-6, atol=0):
            out["scaled_by"] = HARD_SIGMOID_SCALE
    return out


def diff(path_a, path_b, patterns=()) -> dict:
    """Per cell, part and gate: max |b - a|, relative L2 change, and setting differences.
    A gate of a Keras 1/2 hard_sigmoid cell that is exactly 1.2x in a Keras 3 file is the
    documented upgrade scaling (docs/upgrade.md): it is marked, and the cell called equivalent."""
    with load(path_a) as a, load(path_b) as b:
        cells_a = {c.path: c for c in a.cells if matches(c.path, patterns)}
        cells_b = {c.path: c for c in b.cells if matches(c.path, patterns)}
        out = {"a": path_a, "b": path_b, "formats": [a.format, b.format], "cells": []}
        for path in list(cells_a) + [p for p in cells_b if p not in cells_a]:
            ca, cb = cells_a.get(path), cells_b.get(path)
            if ca is None or cb is None:
                out["cells"].append({"path": path, "status": "only in a" if cb is None else "only in b"})
                continue
            entry = {"path": path, "class": [ca.class_name, cb.class_name], "settings": {}, "gates": []}
            for key in SETTINGS:
                va, vb = getattr(ca, key), getattr(cb, key)
                if key == "recurrent_activation" and ca.family != "simple_rnn":
                    va, vb = _formula(ca), _formula(cb)
                if va != vb:
                    entry["settings"][key] = [va, vb]
            for part in ("W", "U", "b"):
                views_a, views_b = getattr(ca, part), getattr(cb, part)
                for gate in ca.gates:
                    if gate in views_a and gate in views_b:
                        entry["gates"].append({"part": part, "gate": gate, **_gate_change(views_a[gate], views_b[gate])})
                    elif gate in views_a or gate in views_b:
                        entry["gates"].append({"part": part, "gate": gate, "changed": True, "missing_in":
                                               "b" if gate in views_a else "a"})
            changed = [g for g in entry["gates"] if g["changed"]]
            scaled = RECURRENT_GATES.get(ca.family, ())
            documented = (bool(changed) and ca.recurrent_activation == "hard_sigmoid" and ca.keras_major != 3
                          and cb.keras_major == 3 and set(entry["settings"]) <= {"recurrent_activation"}
                          and all(g.get("scaled_by") and g["gate"] in scaled for g in changed)
                          and {g["gate"] for g in changed} == set(scaled) & set(ca.gates))
            entry["status"] = "same" if not changed and not entry["settings"] and ca.class_name == cb.class_name \
                else "different"
            if documented:
                entry["equivalent"] = ("gates " + ", ".join(sorted(set(scaled) & set(ca.gates))) +
                                       " scaled by 1.2: the documented hard_sigmoid upgrade; "
                                       "both compute the same")
            elif not changed and not entry["settings"] and ca.class_name != cb.class_name \
                    and CUDNN_EQUIVALENT.get(ca.class_name) == cb.class_name:
                entry["equivalent"] = (f"every gate value equal: {ca.class_name} -> {cb.class_name} is the "
                                       "layout change upgrade makes; both compute the same")
            out["cells"].append(entry)
        out["identical"] = all(c["status"] == "same" for c in out["cells"])
        return out


CUDNN_EQUIVALENT = {"CuDNNLSTM": "LSTM", "CuDNNGRU": "GRU", "LSTM": "CuDNNLSTM", "GRU": "CuDNNGRU"}


def trace_row(path, stat, part, gate, patterns):
    """{file, values: {cell path: statistic}[, error]} of one file."""
    from ..errors import LstmtoolError

    values = {}
    try:
        m = load(path)
    except LstmtoolError as e:  # one half-written checkpoint must not hide the others
        return {"file": path, "values": {}, "error": str(e)}
    with m:
        for cell in m.cells:
            if not matches(cell.path, patterns):
                continue
            g = gate if gate in cell.gates else ("z" if gate == "f" and cell.family == "gru" else None)
            views = getattr(cell, part)
            if g is None or g not in views:
                continue
            a = views[g].numpy()
            values[cell.path] = stats_of(effective_bias(a) if part == "b" else a)[stat]
    return {"file": path, "values": values}


def trace(files, stat="mean", part="b", gate="f", patterns=(), progress=None, jobs=1) -> dict:
    """One row per file (natural order), one value per cell: `stat` of PART_GATE. `jobs` files
    are read at once (threads): remote files spend their time waiting on requests."""
    if stat not in STATS:
        raise ValueError(f"unknown statistic {stat!r}")
    files = sorted(files, key=natural_key)
    if jobs > 1 and len(files) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(jobs, len(files))) as pool:
            results = list(pool.map(lambda p: trace_row(p, stat, part, gate, patterns), files))
    else:
        results = [trace_row(p, stat, part, gate, patterns) for p in files]
    for path in files:
        if progress:
            progress(path)
    return assemble(results, stat, part, gate)


def assemble(rows, stat, part, gate) -> dict:
    """trace's result from its rows (one per file, in order): the cells are every cell
    path seen, in the order first seen."""
    cells = []
    for row in rows:
        cells += [c for c in row["values"] if c not in cells]
    if not cells and not any("error" in r for r in rows):
        from ..errors import ModelError

        raise ModelError(f"no recurrent cell in {len(rows)} file(s) has {part}_{gate} "
                         "(or every cell is incomplete); nothing to trace")
    return {"stat": stat, "part": part, "gate": gate, "cells": cells, "rows": rows,
            "errors": sum("error" in r for r in rows)}
