"""Weight surgery: plan edits of gate slices, then write them through writeback.

Every operation returns a `Plan` (what changes, before -> after, what was
skipped and why) so the CLI can print it and `--dry-run` can stop there.
"""
from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field

import numpy as np

from ..errors import ModelError, UsageError, WriteError
from ..core.names import check_patterns_matched, matches, suggest
from ..reading.reader import load
from ..reading.report import effective_bias
from .writeback import Edit, apply

PARTS = ("W", "U", "b")


@dataclass
class Change:
    cell: str
    target: str  # e.g. b_f
    before: dict  # mean/min/max
    after: dict
    changed: bool = True  # False when the new values equal the stored ones bit for bit


@dataclass
class Plan:
    model: str
    edits: list = field(default_factory=list)
    changes: list = field(default_factory=list)
    skipped: list = field(default_factory=list)  # (cell path, reason)
    written: str = ""
    unchanged: bool = False  # set by write(): nothing to change, so the file was left alone

    def outcome(self) -> str:
        if self.unchanged:
            return f"{self.model}: already holds these values; file left untouched"
        return f"wrote {self.written} ({len(self.edits)} slice(s), read back and checked)"

    def as_json(self, dry_run=False) -> dict:
        return {
            "model": self.model, "dry_run": dry_run, "written": self.written or None,
            "unchanged": self.unchanged,
            "changes": [{"cell": c.cell, "target": c.target, "before": c.before, "after": c.after,
                         "changed": c.changed} for c in self.changes],
            "skipped": [{"cell": p, "reason": r} for p, r in self.skipped],
        }


def summary(a) -> dict:
    a = np.asarray(a, dtype=np.float64)
    with np.errstate(all="ignore"):
        return {"mean": float(a.mean()), "min": float(a.min()), "max": float(a.max())}


def view_edits(view, value: np.ndarray) -> list:
    """Raw edits that make `view` read back as `value`.

    A view summed from two terms (CuDNN LSTM bias) gets the value in the first
    term and zeros in the others, so the effective sum is the value. Stacked
    views (CuDNN GRU bias rows) give each row to its term.
    """
    value = np.asarray(value)
    edits = []
    for k, term in enumerate(view.terms):
        if view.combine == "stack":
            part = value[k]
        else:
            part = value if k == 0 else np.zeros_like(value)
        if term.transform is not None:
            part = term.inverse(part)
        edits.append(Edit(term.tensor.path, term.index, np.asarray(part, dtype=term.tensor.dtype)))
    return edits


def parse_target(text: str):
    """`LAYERPATH:PART_GATE` -> (layer pattern, part, gate or '*')."""
    layer, sep, pg = text.rpartition(":")
    part, _, gate = pg.partition("_")
    if not sep or not layer or part not in PARTS or not gate:
        raise UsageError(f"target {text!r} is not LAYERPATH:PART_GATE (e.g. lstm:b_f, bigru/forward:U_r, lstm:W_*)")
    return layer, part, gate


def resolve_targets(model, text: str) -> list:
    """[(cell, view)] for a target; names suggestions when nothing matches."""
    layer, part, gate = parse_target(text)
    cells = [c for c in model.cells if matches(c.path, [layer])]
    if not cells:
        known = [c.path for c in model.cells]
        bad = [i.path for i in model.incomplete if matches(i.path, [layer])]
        if bad:
            raise UsageError(f"{layer}: this cell's weights are incomplete in the file; refusing to edit it")
        raise UsageError(f"no recurrent cell matches {layer!r}{suggest(layer, known)}")
    out = []
    for cell in cells:
        views = getattr(cell, part)
        if part == "b" and not views:
            raise UsageError(f"{cell.path} has no bias (use_bias=False)")
        picked = [g for g in cell.gates if fnmatch.fnmatchcase(g, gate)]
        if not picked:
            raise UsageError(f"{cell.path} has gates {', '.join(cell.gates)}; no gate {gate!r}")
        out += [(cell, views[g]) for g in picked]
    return out


def _plan(model_path, fn) -> Plan:
    with load(model_path) as model:
        plan = Plan(model_path)
        fn(model, plan)
        return plan


def _record(plan, cell, view, new, allow_nonfinite=False):
    """`new` as the file will store it: a value past the dtype's range would be stored as inf."""
    if not allow_nonfinite and not np.all(np.isfinite(np.asarray(new, dtype=np.float64))):
        limit = np.finfo(np.dtype(view.dtype)).max
        raise UsageError(f"{cell.path}:{view.part}_{view.gate}: the new values do not fit {view.dtype} (largest "
                         f"finite {limit:.5g}), so they would be stored as inf; nothing written")
    before = view.numpy()
    plan.edits += view_edits(view, new)
    same = before.shape == np.shape(new) and before.tobytes() == np.asarray(new, dtype=before.dtype).tobytes()
    effective = effective_bias if view.part == "b" else np.asarray
    plan.changes.append(Change(cell.path, target_label(view), summary(effective(before)),
                               summary(effective(new)), not same))


def target_label(view, label=None) -> str:
    """b_z, or `b_z (input+recurrent)` where the bias has two rows the gate adds (GRU
    reset_after, CuDNN): its figures are then of the sum, the one definition every command uses."""
    label = label or f"{view.part}_{view.gate}"
    two_rows = view.part == "b" and len(view.shape) == 2
    return f"{label} (input+recurrent)" if two_rows else label


def check_finite(values, allow_nonfinite, what, why=None):
    """`why`: the reason a command never writes a non-finite value (no --allow-nonfinite then)."""
    if not allow_nonfinite and not np.all(np.isfinite(np.asarray(values, dtype=np.float64))):
        hint = f" ({why})" if why else "; pass --allow-nonfinite to write it anyway"
        raise UsageError(f"{what} contains NaN or inf{hint}")


def plan_set(model_path, target, value=None, npy=None, allow_nonfinite=False) -> Plan:
    if npy is not None:
        array = _read_npy(npy)
        check_finite(array, allow_nonfinite, npy)
    else:
        check_finite(value, allow_nonfinite, "VALUE")

    def fn(model, plan):
        views = resolve_targets(model, target)
        if npy is not None and len(views) > 1:
            raise UsageError(f"{target} names {len(views)} slices; --from takes one (name a single gate)")
        for cell, view in views:
            if npy is not None:
                if tuple(array.shape) != tuple(view.shape) or str(array.dtype) != view.dtype:
                    raise UsageError(f"{npy}: shape {array.shape} dtype {array.dtype}; {cell.path}:"
                                     f"{view.part}_{view.gate} needs shape {tuple(view.shape)} dtype {view.dtype}")
                new = array
            else:
                with np.errstate(over="ignore", invalid="ignore"):
                    new = np.full(view.shape, value, dtype=view.dtype)
            _record(plan, cell, view, new, allow_nonfinite)

    return _plan(model_path, fn)


def _read_npy(path):
    """One array saved by np.save; never unpickled (and numpy's advice to unpickle is not passed on)."""
    try:
        with open(path, "rb") as fh:
            magic = fh.read(6)
        array = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except (OSError, ValueError, EOFError) as e:
        why = "not a .npy array file" if magic != b"\x93NUMPY" else \
            ("holds Python objects, which lstmtool never unpickles" if "pickle" in str(e) else f"damaged ({e})")
        raise UsageError(f"{path}: {why}; --from takes one array saved with numpy.save") from None
    if not isinstance(array, np.ndarray):  # an .npz archive
        names = ", ".join(list(array.files)[:5])
        array.close()
        raise UsageError(f"{path}: an .npz archive ({names}); --from takes one .npy array (numpy.save)")
    if array.dtype.kind != "f":
        raise UsageError(f"{path}: holds {array.dtype} values; --from takes floating point numbers")
    return array


def plan_scale(model_path, target, factor) -> Plan:
    check_finite(factor, False, "FACTOR", why="a scale factor must be a finite number")

    def fn(model, plan):
        for cell, view in resolve_targets(model, target):
            old = view.numpy()
            with np.errstate(over="ignore", invalid="ignore"):
                new = (old.astype(np.float64) * factor).astype(view.dtype)
            _record(plan, cell, view, new, allow_nonfinite=not np.all(np.isfinite(old)))

    return _plan(model_path, fn)


def plan_forget_bias(model_path, value, patterns=()) -> Plan:
    check_finite(value, False, "VALUE", why="a forget bias must be a finite number")

    def fn(model, plan):
        check_patterns_matched(patterns, [c.path for c in model.cells] + [i.path for i in model.incomplete], "cell")
        for cell in model.cells:
            if not matches(cell.path, patterns):
                continue
            if cell.family != "lstm":
                plan.skipped.append((cell.path, f"{cell.class_name} has no forget gate"))
            elif not cell.b:
                plan.skipped.append((cell.path, "no bias (use_bias=False)"))
            else:
                view = cell.b["f"]
                with np.errstate(over="ignore", invalid="ignore"):
                    new = np.full(view.shape, value, dtype=view.dtype)
                _record(plan, cell, view, new)
        for inc in model.incomplete:
            if matches(inc.path, patterns):
                plan.skipped.append((inc.path, f"incomplete in the file: {inc.problem}"))
        if not plan.changes:  # nothing to do is a property of the model, not a usage error: exit 1
            raise ModelError(f"{model_path}: no LSTM cell with a bias to edit"
                             + (f" (skipped: {'; '.join(p + ': ' + r for p, r in plan.skipped)})" if plan.skipped else ""))

    return _plan(model_path, fn)


def plan_chrono(model_path, tmax, seed=None, patterns=()) -> Plan:
    """Chrono initialisation (Tallec & Ollivier 2018): b_f = log(U[1, tmax-1]), b_i = -b_f.

    GRU: Keras computes h_t = z*h_{t-1} + (1-z)*h~_t, so z is the gate that keeps the
    old state (the forget gate's role): b_z = log(U[1, tmax-1]), positive, z near 1.
    """
    if not np.isfinite(tmax) or tmax <= 2:
        raise UsageError("--tmax must be a finite number greater than 2 (chrono draws from U[1, tmax-1])")
    rng = np.random.default_rng(seed)

    def fn(model, plan):
        check_patterns_matched(patterns, [c.path for c in model.cells] + [i.path for i in model.incomplete], "cell")
        for cell in model.cells:
            if not matches(cell.path, patterns):
                continue
            if not cell.b:
                plan.skipped.append((cell.path, "no bias (use_bias=False)"))
                continue
            if cell.family == "lstm":
                bf = np.log(rng.uniform(1, tmax - 1, cell.units))
                _record(plan, cell, cell.b["f"], bf.astype(cell.b["f"].dtype))
                _record(plan, cell, cell.b["i"], (-bf).astype(cell.b["i"].dtype))
            elif cell.family == "gru":
                bz = np.log(rng.uniform(1, tmax - 1, cell.units))
                view = cell.b["z"]
                new = np.zeros(view.shape) if view.shape != (cell.units,) else bz
                if view.shape != (cell.units,):
                    new[0] = bz  # reset_after: effective bias = row 0 + row 1
                _record(plan, cell, view, new.astype(view.dtype))
            else:
                plan.skipped.append((cell.path, "SimpleRNN has no gates"))
        if not plan.changes:
            raise ModelError(f"{model_path}: no LSTM or GRU cell with a bias to initialise")

    return _plan(model_path, fn)


def write(plan: Plan, out=None, backup=False, verify=False) -> Plan:
    """Write a plan atomically (in place, or to `out`). An in-place plan that changes
    nothing leaves the file alone (same inode, same mtime)."""
    if out is None and plan.changes and not any(c.changed for c in plan.changes):
        plan.unchanged = True
        return plan
    from ..containers.tf_locate import locate

    if locate(plan.model) is not None:
        from ..containers import tf_writeback

        plan.written = tf_writeback.apply(plan.model, plan.edits, out=out, backup=backup,
                                          check=_keras_check if verify else None)
        return plan
    plan.written = apply(plan.model, plan.edits, out=out, backup=backup, check=_keras_check if verify else None)
    return plan


def _keras_check(tmp):
    from ..reading.verify import verify_file

    if not verify_file(tmp)["ok"]:
        raise UsageError("--verify: NumPy reference and Keras disagree on the edited file; nothing written")


def check_outputs(models, out, force=False) -> list:
    """Where each model's result goes (None: in place). `-o` never silently replaces a file."""
    from ..containers.tf_locate import locate

    if out is not None and len(models) > 1:
        raise UsageError("-o/--output takes one MODEL")
    from ..remote import urls as remote

    for m in models:
        if remote.is_remote(m) and out is None:
            raise UsageError(f"{remote.shown(m)}: a remote file is never edited in place; write the edited "
                             "copy to a local file with -o FILE")
        if remote.is_remote(m):
            refuse_special(out)
            if os.path.lexists(out) and not force:
                raise UsageError(f"{out}: already exists; pass --force to replace it")
            return [out]
    tf = [locate(m) for m in models]
    for m, loc in zip(models, tf):
        if loc is None and not os.path.exists(m):
            raise UsageError(f"{m}: no such file")
    if out is not None and tf[0] is not None:
        refuse_special(out, directory_ok=tf[0].savedmodel is not None)
        taken = os.path.lexists(out) or (tf[0].savedmodel is None and os.path.lexists(out + ".index"))
        same = os.path.realpath(out) == os.path.realpath(models[0])
        if taken and not force:
            raise UsageError(f"{out}: is the input itself; drop -o to edit in place, or pass --force" if same
                             else f"{out}: already exists; pass --force to replace it")
        return [None] if same else [out]
    if out is not None:
        if os.path.isdir(out) or out.endswith(os.sep):
            raise UsageError(f"{out}: -o takes a file name, not a directory")
        refuse_special(out)
        same = os.path.lexists(out) and os.path.realpath(out) == os.path.realpath(models[0])
        if os.path.lexists(out) and not force:
            raise UsageError(f"{out}: is the input itself; drop -o to edit in place, or pass --force" if same
                             else f"{out}: already exists; pass --force to replace it")
        if same:
            return [None]  # -o MODEL --force is an in-place edit
        if os.path.islink(out):
            raise UsageError(f"{out}: is a symbolic link; lstmtool does not write through links given to -o")
    return [out] if out else [None] * len(models)


def check_new_output(src, out, force, command):
    """`out` may be written by `command` as a new file: not a directory, a device node or a
    remote URL, not the input, not an existing file unless `force`."""
    if os.path.isdir(out) or out.endswith(os.sep):
        raise UsageError(f"{out}: -o takes a file name, not a directory")
    refuse_special(out)
    if os.path.realpath(out) == os.path.realpath(src):
        raise UsageError(f"{out}: {command} never replaces its input; choose another -o")
    if os.path.lexists(out) and not force:
        raise UsageError(f"{out}: already exists; pass --force to replace it")


def refuse_special(out, directory_ok=False):
    """-o never replaces a device node, FIFO or socket (not even with --force: root could turn
    /dev/full into a file)."""
    from ..remote import urls as remote
    from ..core.files import special_kind

    if remote.is_remote(out):
        raise UsageError(f"{remote.shown(out)}: -o writes local files only; lstmtool reads remote stores, "
                         "it never writes to them")
    kind = special_kind(out, directory_ok)
    if kind:
        raise UsageError(f"{out}: is a {kind}, not a regular file; lstmtool writes only regular files")


def check_writable(plan: Plan, out=None):
    """Refuse before anything is shown as done when the result cannot replace its target."""
    target = out or plan.model
    if out is None and os.path.exists(target) and not (os.stat(target).st_mode & 0o222 and os.access(target, os.W_OK)):
        raise WriteError(f"{target}: file is read-only; nothing written")
    directory = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(directory):
        raise WriteError(f"{directory}: no such directory; nothing written")
    if not os.access(directory, os.W_OK):
        raise WriteError(f"{directory}: directory is not writable; nothing written")
