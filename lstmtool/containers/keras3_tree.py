"""The Keras 3 weights tree, as in `.weights.h5` files and inside `.keras` archives.

Keras 3 addresses each layer by a name derived from its class (`lstm`,
`lstm_1`, `bidirectional`, ...), numbered per container in config order; the
layer's own name is only in the `vars` group's `name` attribute (when Keras
wrote one). With a config, walk config and tree together; without one,
infer cells from the tree alone.
"""
from __future__ import annotations

import re

import h5py

from ..config import RNN_WRAPPERS, Spec
from .found import FoundCell
from .hdf5 import check_safe_path, text
from .infer import infer_from_shapes

ROLES = ("kernel", "recurrent_kernel", "bias")


def is_keras3_tree(f) -> bool:
    return "layers" in f and "model_weights" not in f and "layer_names" not in f.attrs


def snake_case(class_name: str) -> str:
    name = re.sub(r"\W+", "", class_name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def numbered(specs):
    """(spec, tree name) in order, numbering repeated class names like Keras does."""
    used = {}
    for spec in specs:
        name = snake_case(spec.class_name)
        if name in used:
            used[name] += 1
            name = f"{name}_{used[name]}"
        else:
            used[name] = 0
        yield spec, name


def vars_tensors(f, vars_path: str, use_bias=True) -> dict:
    check_safe_path(f, vars_path)
    group = f.get(vars_path)
    roles = ROLES if use_bias else ROLES[:2]
    out = {}
    for k, role in enumerate(roles):
        ds = f"{vars_path}/{k}"
        out[role] = ds if group is not None and isinstance(group.get(str(k)), h5py.Dataset) else None
    return out


def locate(f, spec: Spec, tree: str, path: str) -> list:
    """Cells of `spec`, whose state sits at tree path `tree` (no trailing slash)."""
    if spec.is_model:
        out = []
        for sub, name in numbered(spec.layers):
            out += locate(f, sub, f"{tree}/layers/{name}", f"{path}/{sub.name}".lstrip("/"))
        return out
    if spec.class_name == "Bidirectional" and spec.inner is not None:
        return locate(f, spec.inner, f"{tree}/forward_layer", f"{path}/forward") + locate(
            f, spec.backward or spec.inner, f"{tree}/backward_layer", f"{path}/backward"
        )
    if spec.class_name == "TimeDistributed" and spec.inner is not None:
        return locate(f, spec.inner, f"{tree}/layer", path)
    if spec.cells and (spec.class_name in RNN_WRAPPERS or len(spec.cells) > 1):
        if len(spec.cells) == 1:
            cell = spec.cells[0]
            return [cell_at(f, cell, f"{tree}/cell/vars", path)]
        return [
            cell_at(f, cell, f"{tree}/cell/cells/{name}/vars", f"{path}/cell_{k}")
            for k, (cell, name) in enumerate(numbered(spec.cells))
        ]
    if spec.family:
        return [cell_at(f, spec, f"{tree}/cell/vars", path)]
    return []


def cell_at(f, spec: Spec, vars_path: str, path: str) -> FoundCell:
    use_bias = bool(spec.config.get("use_bias", True))
    return FoundCell(path, spec.class_name, spec, vars_tensors(f, vars_path, use_bias))


def layer_label(f, group_path: str, fallback: str) -> str:
    """A layer's own name from its `vars` attribute, else the tree name."""
    vars_group = f.get(f"{group_path}/vars")
    if vars_group is not None and "name" in vars_group.attrs:
        return text(vars_group.attrs["name"])
    return fallback


def infer(f) -> list:
    """Without a config: every `.../cell/vars` (or stacked `cells/*/vars`) is a cell."""
    out = []

    def visit(group_path: str, path: str):
        group = f[group_path]
        check_safe_path(f, group_path)
        if "forward_layer" in group and "backward_layer" in group:
            for half in ("forward", "backward"):
                visit(f"{group_path}/{half}_layer", f"{path}/{half}")
            return
        if "cell" in group:
            cell = f"{group_path}/cell"
            if "cells" in f[cell]:
                names = sorted(f[f"{cell}/cells"].keys(), key=_numbered_key)
                for k, name in enumerate(names):
                    found = _inferred(f, f"{cell}/cells/{name}/vars", f"{path}/cell_{k}")
                    found.notes.append("stacking order unknown without a config: taken from the group names")
                    out.append(found)
            elif "vars" in f[cell]:
                out.append(_inferred(f, f"{cell}/vars", path))
            return
        for key in ("layer",):  # TimeDistributed
            if key in group:
                visit(f"{group_path}/{key}", path)
        if "layers" in group:
            for name in group["layers"].keys():
                sub = f"{group_path}/layers/{name}"
                visit(sub, f"{path}/{layer_label(f, sub, name)}".lstrip("/"))

    visit("/", "")
    return out


def _numbered_key(name: str):
    m = re.match(r"^(.*?)(?:_(\d+))?$", name)
    return (int(m[2]) + 1 if m[2] else 0, m[1])


def _inferred(f, vars_path: str, path: str) -> FoundCell:
    tensors = vars_tensors(f, vars_path, use_bias=True)
    shapes = {r: f[p].shape for r, p in tensors.items() if p}
    if tensors["bias"] is None:
        tensors.pop("bias")
    class_name, notes = infer_from_shapes(shapes)
    return FoundCell(path, class_name, None, tensors, source="inferred from tensor shapes", notes=notes)
