"""`prune` and `widen`: surgery that changes how many units a recurrent layer has.

Pruning unit set S takes S's columns out of every gate block of the layer (its incoming
weights), S's rows out of its recurrent kernel and out of every consumer that reads it
(its outgoing weights), and S's entries out of per-unit vectors in between. The result
computes what the original computes with S's outgoing weights set to zero: exactly that,
by construction. Widening adds units whose outgoing weights are zero, so the model
computes exactly what it did. Neither Keras nor TensorFlow is imported.
"""
from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field

import h5py
import numpy as np

from ..containers.hdf5 import text
from ..errors import UsageError
from ..reading.reader import load
from .trace import HALVES, Refused, trace
from .units import INCOMING, new_shape, rebuild, scores
from . import reconfig

FORMATS = {"legacy-h5": (".h5", ".hdf5"), "keras-zip": (".keras",)}
NORMS = ("l1", "l2")
INITS = ("zeros", "glorot")


@dataclass
class ShapePlan:
    model: str
    layer: str
    operation: str  # prune or widen
    units_before: int
    units_after: int
    removed: list = field(default_factory=list)
    added: int = 0
    by: str = ""  # l1, l2, dead, or "" when the units were named
    scores: dict = field(default_factory=dict)  # unit -> score of its outgoing weights
    layers: list = field(default_factory=list)  # every layer losing or gaining the units
    ties: list = field(default_factory=list)
    tensors: list = field(default_factory=list)  # {path, layer, role, before, after}
    params_before: int = 0
    params_after: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    init: str = ""
    notes: list = field(default_factory=list)
    written: str = ""

    def as_json(self, dry_run=False) -> dict:
        out = {k: v for k, v in self.__dict__.items()}
        out["scores"] = {str(k): v for k, v in self.scores.items()}
        out.update(dry_run=dry_run, written=self.written or None)
        return out


def prune(src, layer, out=None, units=None, keep=None, by="l1", drop_dead=False, tol=0.0,
          dry_run=False, force=False) -> ShapePlan:
    """Take units out of recurrent layer `layer` of model `src` into `out` (same format).

    Say which units with one of: `units` (indices), `keep` (how many to keep, the
    strongest by the `by` norm, l1 or l2, of their outgoing weights), `drop_dead` (the
    units whose outgoing weights are all within `tol` of zero)."""
    if sum((units is not None, keep is not None, bool(drop_dead))) != 1:
        raise UsageError("say which units go: --units LIST, --keep N or --drop-dead (one of them)")
    if by not in NORMS:
        raise UsageError(f"--by {by!r}: one of {', '.join(NORMS)}")

    def choose(tr, read, plan):
        u = tr.units
        if units is not None:
            chosen = sorted(set(units))
            bad = [j for j in chosen if not 0 <= j < u]
            if bad:
                raise UsageError(f"--units {bad[0]}: {tr.target} has units 0 to {u - 1}")
        elif keep is not None:
            if not 0 < keep <= u:
                raise UsageError(f"--keep {keep}: {tr.target} has {u} units; keep 1 to {u}")
            plan.by, norm = by, scores(tr.sites, read, u, by)
            order = sorted(range(u), key=lambda j: (-norm[j], j))
            chosen = sorted(order[keep:])
            plan.scores = {j: float(norm[j]) for j in range(u)}
        else:
            plan.by, peak = "dead", scores(tr.sites, read, u, "peak")
            chosen = [j for j in range(u) if peak[j] <= tol]
            plan.scores = {j: float(peak[j]) for j in chosen}
        if len(chosen) == u:
            raise UsageError(f"{tr.target}: that takes out all {u} units; keep at least one")
        plan.removed, gone = chosen, set(chosen)
        return [j for j in range(u) if j not in gone]

    return _reshape(src, layer, out, "prune", choose, None, dry_run, force)


def widen(src, layer, to, out=None, init="zeros", seed=None, dry_run=False, force=False) -> ShapePlan:
    """Give recurrent layer `layer` `to` units: the new ones have zero outgoing weights (so
    the model computes exactly what it did) and incoming weights from `init` (zeros, or
    glorot: uniform in +-sqrt(6 / (fan_in + fan_out)), seeded by `seed`); biases are zero."""
    if init not in INITS:
        raise UsageError(f"--init {init!r}: one of {', '.join(INITS)}")
    rng = np.random.default_rng(seed)

    def choose(tr, read, plan):
        if to <= tr.units:
            raise UsageError(f"--to {to}: {tr.target} already has {tr.units} units; widen adds units "
                             "(prune takes them out)")
        plan.added, plan.init = to - tr.units, init if init == "zeros" else f"glorot (seed {seed})"
        return list(range(tr.units)) + [None] * (to - tr.units)

    def fill(site, shape):
        if init == "zeros" or site.role in ("bias",) or len(site.shape) < 2 or site.role.startswith("b"):
            return np.zeros(shape)
        limit = np.sqrt(6.0 / (site.shape[-2] + to))
        return rng.uniform(-limit, limit, size=shape)

    return _reshape(src, layer, out, "widen", choose, fill, dry_run, force)


def _reshape(src, target, out, operation, choose, init, dry_run, force) -> ShapePlan:
    src = os.fspath(src)
    if not dry_run:
        out = _check_output(src, out, force)
    with load(src) as model:
        if model.format not in FORMATS:
            raise Refused(_format_refusal(src, model.format))
        if out and not dry_run and not out.endswith(FORMATS[model.format]):
            raise UsageError(f"{out}: the output keeps the input's format; name it "
                             f"{' or '.join(FORMATS[model.format])}")
        raw = _raw_config(model)
        if raw is None:
            raise Refused(f"{src}: the file holds no model config, so which layers read the units is "
                          "unknown; nothing written")
        work = copy.deepcopy(raw)
        tr = trace(model, work, target)
        def read(path):  # not kept: read again rather than held (memory holds one tensor at a time)
            model.store.check_tensor(path)
            return model.store.h5[path][()]

        plan = ShapePlan(src, target, operation, tr.units, tr.units, layers=list(tr.members), ties=tr.ties)
        keep = choose(tr, read, plan)
        plan.units_after = len(keep)
        if not any(k != j for j, k in enumerate(keep)) and len(keep) == tr.units:
            _count(plan, model)  # the model as it is: nothing planned, so the counts stay
            plan.notes.append("no unit to take out: nothing written (the file already is as asked)")
            return plan
        fill = init or (lambda site, shape: np.zeros(shape))
        by_path = {}
        for site in tr.sites:
            by_path.setdefault(site.path, []).append(site)
        arrays = {}  # path -> a function making the new tensor: one tensor in memory at a time
        for path, sites in by_path.items():
            arrays[path] = _maker(read, path, sites, keep, fill)
            plan.tensors.append({"path": path, "layer": sites[0].layer, "role": sites[0].role,
                                 "before": list(sites[0].shape), "after": list(new_shape(sites[0].shape, sites, keep)),
                                 "dtype": sites[0].dtype})
        reconfig.apply(tr, keep, model.keras_major)
        _count(plan, model)
        if operation == "prune" and any(s.kind == INCOMING for s in tr.sites):
            plan.notes.append("exact: the result computes what the original does with the removed units' "
                              "outgoing weights set to zero")
        if operation == "widen":
            plan.notes.append("exact: the new units' outgoing weights are zero")
        plan.notes.append("optimizer state is not carried over (its slots have the old shapes; compile "
                          "again to train)")
        if dry_run:
            return plan
        from . import rewrite

        note = {"reshaped": {"operation": operation, "layer": target, "units": [tr.units, len(keep)]}}
        rewrite.write(model, out, work, arrays, note)
    plan.written = out
    plan.bytes_after = os.path.getsize(out)
    return plan


def _format_refusal(src, fmt):
    if fmt in ("legacy-h5-weights", "keras3-weights"):
        return (f"{src}: a weights-only file does not say which layers read a layer's units; "
                "prune the full model (.keras or .h5) instead; nothing written")
    return (f"{src}: {fmt} files are not reshaped in place; run `lstmtool upgrade` to get a .keras "
            "file first, then prune that; nothing written")


def _raw_config(model):
    store = model.store
    if store.archive is not None:
        return json.loads(store.archive.config_text) if store.archive.config_text else None
    value = store.h5.attrs.get("model_config")
    return json.loads(text(value)) if value is not None else None


def _maker(read, path, sites, keep, fill):
    return lambda: rebuild(read(path), sites, keep, fill)


def _count(plan, model):
    h5 = model.store.h5
    root = h5["model_weights"] if "model_weights" in h5 else h5
    total = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset) and not name.startswith(("optimizer", "optimizer_weights")):
            total.append(obj.size)

    root.visititems(visit)
    plan.params_before = int(sum(total))
    delta = [(int(np.prod(t["after"])) - int(np.prod(t["before"])), np.dtype(t["dtype"]).itemsize)
             for t in plan.tensors]
    plan.params_after = plan.params_before + sum(n for n, _ in delta)
    remote = getattr(model.store, "remote", None)
    plan.bytes_before = remote.size if remote is not None else os.path.getsize(model.filename)
    plan.bytes_after = plan.bytes_before + sum(n * size for n, size in delta)


def _check_output(src, out, force):
    from .edit import refuse_special

    if not out:
        raise UsageError("say where to write the result: -o FILE (the input is never changed)")
    out = os.fspath(out)
    if os.path.isdir(out) or out.endswith(os.sep):
        raise UsageError(f"{out}: -o takes a file name, not a directory")
    refuse_special(out)
    from ..remote import urls as remote

    if not remote.is_remote(src) and os.path.exists(out) and os.path.samefile(out, src):
        raise UsageError(f"{out}: this would replace the input; choose another -o")
    if os.path.lexists(out) and not force:
        raise UsageError(f"{out}: already exists; pass --force to replace it")
    return out


__all__ = ["prune", "widen", "ShapePlan", "Refused", "HALVES"]
