"""export / import of gate matrices in the keras, torch, onnx and tf1 layouts.

Export reads one gate view at a time. Import checks every shape against the
file before planning any write, then goes through the same atomic write-back
as the surgery commands.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil

import numpy as np

from ..errors import ModelError, UsageError, WriteError
from ..reading.report import effective_bias
from ..surgery.edit import Change, Plan, summary, target_label, view_edits
from . import LAYOUTS
from . import safetensors_io as st
from ..core.model import group_cells
from ..core.names import matches
from ..reading.reader import load

DEFAULT_FORMAT = {"keras": "npy", "torch": "safetensors", "onnx": "npy", "tf1": "npy"}
BUNDLE = "gates"  # npz / safetensors bundle name in DIR


def sha256(path) -> str:
    """Of the file; of a TF checkpoint or SavedModel, of its .index (which holds every
    tensor's CRC32C, so it changes whenever a weight does)."""
    from ..containers.tf_locate import locate

    loc = locate(path)
    if loc is not None:
        path = loc.prefix + ".index"
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


# Characters a layer name may hold that a file name must not (or that would make the
# mapping ambiguous): written as %XX, so that every layer path has one file name and back.
UNSAFE = set('%\\:*?"<>|') | {chr(c) for c in range(32)}


def encode_component(name: str) -> str:
    if name in ("", ".", ".."):
        return "".join(f"%{ord(ch):02X}" for ch in name) or "%"
    return "".join(f"%{ord(ch):02X}" if ch in UNSAFE else ch for ch in name)


def decode_component(name: str) -> str:
    from urllib.parse import unquote

    return "" if name == "%" else unquote(name)


def safe_relpath(key: str) -> str:
    """A key (`layer/path/W_f`) as a relative file path inside DIR: `/` separates the layer
    path's parts; anything else a file name cannot hold is %-encoded, reversibly."""
    return os.path.join(*[encode_component(p) for p in key.split("/")])


def key_of(relpath: str) -> str:
    """The inverse of safe_relpath for a path relative to DIR (with `/` separators)."""
    return "/".join(decode_component(p) for p in relpath.split("/"))


def describe(cells, key, array, layout):
    """Manifest entry: where an exported array came from."""
    entry = {"key": key, "shape": list(array.shape), "dtype": str(array.dtype), "layout": layout}
    cell = next((c for c in cells if key.startswith(c.path + "/")), cells[0])
    entry.update({"layer": cell.path, "class": cell.class_name})
    name = key[len(cell.path) + 1:] if key.startswith(cell.path + "/") else key.rsplit("/", 1)[-1]
    part, _, gate = name.partition("_")
    if layout == "keras" and part in ("W", "U", "b"):
        g = gate.split("_")[0]
        view = cell.stored.get(f"b_{gate}") if part == "b" and "_" in gate and cell.stored else None
        view = view or getattr(cell, part).get(g)
        entry.update({"part": part, "gate": g, "sources": [
            {"dataset": t.tensor.path, "ranges": t.ranges(), "transformed": t.transform is not None}
            for t in view.terms]})
    else:
        entry["sources"] = [{"dataset": t.path, "shape": list(t.shape)} for c in cells for t in c.tensors.values()]
    return entry


def export_model(model_path, out_dir, patterns=(), fmt=None, layout="keras", force=False, progress=None,
                 allow_activation_mismatch=False) -> dict:
    """Export; with `allow_activation_mismatch`, the torch layout takes cells whose activations
    PyTorch cannot run (hard_sigmoid ...) and the manifest records what differs."""
    from . import torch_layout

    torch_layout.ALLOW_MISMATCH = allow_activation_mismatch
    from ..surgery.edit import refuse_special

    refuse_special(out_dir, directory_ok=True)
    fresh = not os.path.exists(out_dir)
    # A new directory is written under a temporary name and renamed when complete, so a
    # failed export leaves nothing behind (into an existing one, the files it wrote are removed).
    target = f"{out_dir.rstrip(os.sep)}.lstmtool-tmp-{os.getpid()}" if fresh else out_dir
    before = set() if fresh else {os.path.join(r, f) for r, _, fs in os.walk(out_dir) for f in fs}
    try:
        manifest = _export(model_path, target, patterns, fmt, layout, force, progress)
        if fresh:
            os.rename(target, out_dir)
        return manifest
    except BaseException as e:
        if fresh:
            shutil.rmtree(target, ignore_errors=True)
        else:
            for r, _, fs in os.walk(out_dir):
                for f in fs:
                    if os.path.join(r, f) not in before:
                        os.unlink(os.path.join(r, f))
        if isinstance(e, OSError):  # numpy's own words ("16384 requested and 8160 written") name no file
            full = e.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT) or "requested and" in str(e)
            reason = "disk full" if full else (e.strerror or str(e))
            raise WriteError(f"exporting to {out_dir} failed ({reason}); nothing written") from None
        raise
    finally:
        torch_layout.ALLOW_MISMATCH = False


def _labels(cells) -> dict:
    """id(view) -> (cell path, name): each Bidirectional half and each CuDNN bias half by its own name."""
    out = {}
    for cell in cells:
        for part in ("W", "U", "b"):
            for g, view in getattr(cell, part).items():
                out[id(view)] = (cell.path, f"{part}_{g}")
        for key, view in cell.stored.items():
            out[id(view)] = (cell.path, key)
    return out


def _export(model_path, out_dir, patterns, fmt, layout, force, progress) -> dict:
    if layout not in LAYOUTS:
        raise UsageError(f"unknown layout {layout!r}; choose from {', '.join(LAYOUTS)}")
    fmt = fmt or DEFAULT_FORMAT[layout]
    if layout == "torch" and fmt != "safetensors":
        raise UsageError("the torch layout is written as safetensors (one state_dict per layer)")
    if os.path.isdir(out_dir) and os.listdir(out_dir) and not force:
        raise UsageError(f"{out_dir} is not empty; pass --force to write into it")
    module = LAYOUTS[layout]
    with load(model_path) as model:
        groups = [(p, cs) for p, cs in group_cells([c for c in model.cells if matches(c.path, patterns)]).items()]
        if not groups:
            if patterns:
                from ..core.names import check_patterns_matched

                check_patterns_matched(patterns, [c.path for c in model.cells], "cell")
            raise ModelError(f"{model_path}: no recurrent cell to export")
        skipped = []  # (path, why): layers this layout cannot hold, left out when no --layer chose them
        for path, cells in groups:  # refuse before writing anything
            try:
                module.check_group(path, cells)
            except UsageError as e:
                if patterns:  # asked for by name: say why it cannot be done
                    raise
                skipped.append((path, str(e)))
        if skipped:
            groups = [(p, cs) for p, cs in groups if p not in dict(skipped)]
            if not groups:
                raise UsageError("; ".join(why for _, why in skipped))
        total = sum(int(np.prod(r.shape)) * np.dtype(r.dtype).itemsize
                    for _, cs in groups for c in cs for r in c.tensors.values())
        if progress:
            progress.start(total)
        from ..remote import urls as remote

        far = remote.is_remote(model_path)  # its sha256 would read all of it
        manifest = {"source": remote.shown(model_path) if far else os.path.abspath(model_path),
                    "sha256": None if far else sha256(model_path), "layout": layout,
                    "format": fmt, "keras_version": model.keras_version, "arrays": []}
        if layout == "tf1":
            manifest["forget_bias"] = module.FORGET_BIAS
            manifest["note"] = "TF1 adds forget_bias to the f gate at run time: stored bias_f = Keras b_f - forget_bias"
        if layout == "torch":
            manifest["note"] = ("one safetensors state_dict per layer; build the module from layers[path] "
                                "(module, kwargs) and load_state_dict")
        manifest["layers"] = {path: _layer_entry(module, layout, path, cells) for path, cells in groups}
        if skipped:
            manifest["skipped"] = {path: why for path, why in skipped}
        os.makedirs(out_dir, exist_ok=True)
        bundle = {}
        for path, cells in groups:
            arrays = module.export_group(path, cells)
            for key, array in arrays.items():
                entry = describe(cells, f"{path}/{key}" if layout == "torch" else key, array, layout)
                if fmt == "npy" and layout != "torch":
                    entry["file"] = safe_relpath(key) + ".npy"
                    os.makedirs(os.path.dirname(os.path.join(out_dir, entry["file"])) or out_dir, exist_ok=True)
                    np.save(os.path.join(out_dir, entry["file"]), array)
                else:
                    entry["file"] = (safe_relpath(path) + ".safetensors") if layout == "torch" else f"{BUNDLE}.{fmt}"
                manifest["arrays"].append(entry)
                if progress:
                    progress.advance(array.nbytes)
            if layout == "torch":
                target = os.path.join(out_dir, safe_relpath(path) + ".safetensors")
                os.makedirs(os.path.dirname(target) or out_dir, exist_ok=True)
                st.save(target, arrays, {"format": "pt", "module": module.MODULE[cells[0].family]})
            else:
                bundle.update(arrays)
        if fmt == "npz" and layout != "torch":
            np.savez(os.path.join(out_dir, f"{BUNDLE}.npz"), **bundle)
        elif fmt == "safetensors" and layout != "torch":
            st.save(os.path.join(out_dir, f"{BUNDLE}.safetensors"), bundle)
        elif fmt not in ("npy", "npz", "safetensors"):
            raise UsageError(f"unknown format {fmt!r}")
    with open(os.path.join(out_dir, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=2)
    return manifest


def _layer_entry(module, layout, path, cells) -> dict:
    """What else a layer needs besides its arrays: torch constructor arguments, ONNX node
    attributes, and any activation a layout runs differently (only with the user's consent)."""
    from .common import mismatch

    entry = {"cells": [c.path for c in cells], "class": cells[0].class_name}
    if layout == "torch":
        entry.update(module.constructor(path, cells))
        differs = {c.path: mismatch(c) for c in cells if mismatch(c)}
        if differs:
            entry["activation_mismatch"] = differs
    elif layout == "onnx":
        entry.update(module.node_attributes(path, cells))
    return entry


def read_source(source, layout=None):
    """(arrays by key, layout) from an export directory, .npz or .safetensors.

    The layout is the one asked for, else the manifest's, else keras."""
    manifest = None
    mpath = os.path.join(source, "manifest.json")
    if os.path.isdir(source) and os.path.exists(mpath):
        with open(mpath) as fh:
            manifest = json.load(fh)
    layout = layout or (manifest or {}).get("layout") or "keras"
    if layout not in LAYOUTS:
        raise UsageError(f"unknown layout {layout!r}")
    if os.path.isdir(source):
        arrays = {}
        for root, _, files in os.walk(source):
            for name in files:
                full = os.path.join(root, name)
                rel = os.path.relpath(full, source).replace(os.sep, "/")
                if name.endswith(".npy"):
                    arrays[key_of(rel[:-4])] = np.load(full, allow_pickle=False)
                elif name.endswith(".npz"):
                    arrays.update(_npz(full))
                elif name.endswith(".safetensors"):
                    layer = key_of(rel[: -len(".safetensors")])
                    loaded = st.load(full)
                    if layout == "torch":  # one state_dict per layer, named after it
                        arrays.update({f"{layer}/{k}": v for k, v in loaded.items()})
                    else:
                        arrays.update(loaded)
        return arrays, layout
    if source.endswith(".npz"):
        return _npz(source), layout
    if source.endswith(".safetensors"):
        return st.load(source), layout
    raise UsageError(f"{source}: give an export directory, a .npz or a .safetensors file")


def _npz(path):
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise UsageError(f"{path}: not a readable .npz ({e})") from None


def _layer_named_by_file(source, groups):
    """The layer an exported `<layer path>.safetensors` is named after, if it is one of `groups`:
    its path relative to the export directory (the one holding manifest.json), else its stem."""
    full = os.path.abspath(source)
    here = os.path.dirname(full)
    for _ in range(8):  # nested layer paths are directories under the export
        if os.path.exists(os.path.join(here, "manifest.json")):
            break
        here = os.path.dirname(here)
    else:
        here = os.path.dirname(full)
    rel = os.path.relpath(full, here).replace(os.sep, "/")[: -len(".safetensors")]
    for candidate in (key_of(rel), key_of(os.path.basename(rel))):
        if candidate in groups:
            return candidate
    return None


def plan_import(model_path, source, layout=None, patterns=()) -> Plan:
    arrays, layout = read_source(source, layout)
    module = LAYOUTS[layout]
    with load(model_path) as model:
        plan = Plan(model_path)
        writes = []
        groups = group_cells([c for c in model.cells if matches(c.path, patterns)])
        if layout == "torch" and arrays and all("/" not in k for k in arrays):
            named = _layer_named_by_file(source, groups)  # export wrote it as DIR/<layer path>.safetensors
            if named is None and len(groups) != 1:  # a bare state_dict file: which layer is it for?
                raise UsageError(f"{source} is one state_dict; choose its layer with --layer "
                                 f"(layers: {', '.join(groups)})")
            arrays = {f"{named or next(iter(groups))}/{k}": v for k, v in arrays.items()}
        for path, cells in groups.items():
            prefix = f"{path}/"
            group_arrays = {k[len(prefix):] if layout == "torch" else k: v
                            for k, v in arrays.items() if k.startswith(prefix)}
            if not group_arrays:
                plan.skipped.append((path, "not in the source"))
                continue
            labels = _labels(cells)
            for view, value in module.import_group(path, cells, group_arrays):
                value = np.asarray(value)
                if tuple(value.shape) != tuple(view.shape):
                    raise UsageError(f"{path}: {view.part}_{view.gate} has shape {value.shape} in the source; "
                                     f"the model needs {tuple(view.shape)}")
                if not np.all(np.isfinite(value)):
                    raise UsageError(f"{path}: {view.part}_{view.gate} in the source contains NaN or inf")
                writes.append((labels.get(id(view), (path, f"{view.part}_{view.gate}")), view, value))
        if not writes:
            raise UsageError(f"nothing in {source} matches a recurrent cell of {model_path}")
        for (path, label), view, value in writes:  # every shape checked above, before planning writes
            stored = value.astype(view.dtype)
            if not np.array_equal(stored.astype(value.dtype), value):
                raise UsageError(f"{path}: {view.part}_{view.gate} is {value.dtype} in the source and would lose "
                                 f"precision as the model's {view.dtype}; convert it first if that is intended")
            before = view.numpy()
            same = before.shape == stored.shape and before.tobytes() == stored.tobytes()
            if not same:  # unchanged slices are not rewritten (and an unchanged file is left alone)
                plan.edits += view_edits(view, stored)
            effective = effective_bias if view.part == "b" else np.asarray
            plan.changes.append(Change(path, target_label(view, label), summary(effective(before)),
                                       summary(effective(value)), not same))
    return plan
