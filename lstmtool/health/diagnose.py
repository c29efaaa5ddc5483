"""`diagnose(path)`: the health of every recurrent cell of one model, as plain data.

{file, format, keras_version, cells: [{path, class, units, gates: {g: {W, U, b stats}},
spectral, memory, saturation, dead}], findings: [...], verdict, counts}. No data, no
TensorFlow: the weights alone, read once per cell."""
from __future__ import annotations

import numpy as np

from . import checks
from .thresholds import THRESHOLDS

SEVERITY = {"info": 0, "warning": 1, "error": 2}


def diagnose(path, outgoing=True, pictures=False) -> dict:
    """`pictures`: also per-gate heatmaps of U (max |U| pooled to at most 48 x 48) and value
    histograms of W, U, b, for the report page."""
    from ..reading.reader import load

    rng = np.random.default_rng(0)  # the power iterations' start: the same answer every run
    with load(path) as model:
        cells, findings = [], []
        first = _first_recurrent(model)
        for cell in model.cells:
            cells.append(_cell(cell, rng, findings, THRESHOLDS["input-reach"]["value"] if cell.path in first else 1.0,
                               pictures))
        for inc in model.incomplete:
            findings.append({"check": "incomplete", "severity": "error", "layer": inc.path, "gate": None,
                             "units": None, "value": None, "threshold": None,
                             "why": f"the file does not hold all of this cell's weights: {inc.problem}", "fix": None})
        doc = {"file": path, "format": model.format, "keras_version": model.keras_version, "cells": cells}
    if outgoing:
        _dead_outgoing(path, doc, findings)
    findings.sort(key=lambda f: (-SEVERITY[f["severity"]], f["layer"], f["check"]))
    counts = {s: sum(f["severity"] == s for f in findings) for s in SEVERITY}
    doc.update(findings=findings, counts=counts,
               verdict="errors" if counts["error"] else "warnings" if counts["warning"] else "healthy")
    return doc


def _first_recurrent(model) -> set:
    """Cells fed by the model's input (their |x| is not tanh-bounded): the first recurrent layer's."""
    if not model.cells:
        return set()
    firsts = {model.cells[0].path}
    head = model.cells[0].path.rsplit("/", 1)[0]
    firsts |= {c.path for c in model.cells if c.path.rsplit("/", 1)[0] == head and c.path.endswith(("forward",
                                                                                                   "backward"))}
    return firsts


def _cell(cell, rng, findings, reach_x, pictures=False) -> dict:
    parts = checks.arrays(cell)
    out = {"path": cell.path, "class": cell.class_name, "family": cell.family, "units": cell.units,
           "activation": cell.activation, "recurrent_activation": cell.recurrent_activation,
           "gates": {g: {p: checks.stats(parts[p][g]) for p in ("W", "U", "b") if g in parts[p]} for g in cell.gates}}
    if pictures:
        out["pictures"] = {g: _pictures(parts, g) for g in cell.gates}
    bad = checks.nonfinite(cell, parts)
    findings += bad
    if bad:
        out["skipped"] = "NaN/inf in the weights: the other checks would read them"
        return out
    if cell.conv:
        out["skipped"] = "ConvLSTM: its kernels are convolutions; only statistics and memory are reported"
        out["memory"] = checks.memory(cell, parts, findings)
        return out
    out["spectral"] = checks.spectral(cell, parts, rng, findings)
    out["rest_growth"] = checks.rest_growth(cell, parts, rng, findings)
    out["memory"] = checks.memory(cell, parts, findings)
    out["saturation"] = checks.saturation(cell, parts, reach_x, findings)
    out["dead"] = checks.dead_incoming(cell, parts, findings)
    return out


def _dead_outgoing(path, doc, findings):
    """Units nobody reads (prune --drop-dead's test, through the model's graph)."""
    from ..errors import LstmtoolError
    from ..surgery.prune import prune

    layers = []
    for c in doc["cells"]:
        layer = c["path"].rsplit("/", 1)[0] if c["path"].endswith(("/forward", "/backward")) else c["path"]
        if layer not in layers and "/cell_" not in c["path"] and not c.get("skipped"):
            layers.append(layer)
    tol = THRESHOLDS["dead"]["value"]
    for layer in layers:
        try:
            plan = prune(path, layer, drop_dead=True, tol=tol, dry_run=True)
        except LstmtoolError:  # units reach the output, or a layer prune cannot follow: no outgoing test
            continue
        except Exception:  # noqa: BLE001 - a graph the tracer does not know: no outgoing test here
            continue
        if plan.removed:
            findings.append({"check": "dead-units", "severity": "warning", "layer": layer, "gate": None,
                             "units": list(plan.removed), "value": len(plan.removed), "threshold": tol,
                             "why": f"{len(plan.removed)} units' outgoing weights are all ~0: nobody reads them",
                             "fix": f"lstmtool prune MODEL {layer} --drop-dead"})


HEAT = 48  # at most this many cells a side in a heatmap
BINS = 24


def _pictures(parts, g) -> dict:
    out = {"hist": {}}
    u = parts["U"].get(g)
    if u is not None and u.ndim == 2 and u.size:
        out["heat"] = _pooled(np.nan_to_num(np.abs(u), nan=0.0, posinf=0.0), HEAT).tolist()
    for part in ("W", "U", "b"):
        a = parts[part].get(g)
        if a is None or not a.size:
            continue
        a = a[np.isfinite(a)].ravel()
        if a.size:
            counts, edges = np.histogram(a, bins=BINS)
            out["hist"][part] = {"counts": counts.tolist(), "edges": [float(e) for e in edges]}
    return out


def _pooled(a, n) -> np.ndarray:
    """max over blocks, so that a few large weights stay visible."""
    rows = np.array_split(np.arange(a.shape[0]), min(n, a.shape[0]))
    cols = np.array_split(np.arange(a.shape[1]), min(n, a.shape[1]))
    return np.array([[a[r[0]:r[-1] + 1, c[0]:c[-1] + 1].max() for c in cols] for r in rows])
