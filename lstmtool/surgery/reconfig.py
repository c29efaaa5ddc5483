"""The model config after a prune or widen: new unit counts, and every recorded input
shape that the new width reaches (Keras 3 builds each layer from its build_config before
loading its weights, so a stale shape would refuse the file)."""
from __future__ import annotations

import copy

from ..errors import ModelError
from .graph import _history
from .trace import HALVES, Refused

UNIT_KEYS = ("units", "output_dim", "filters")
SHAPE_KEYS = ("batch_input_shape", "batch_shape", "input_shape", "build_input_shape")


def apply(tr, keep, keras_major):
    n = len(keep)
    graph = tr.graph
    for path, halves in tr.members.items():
        node = graph.nodes[path]
        cfg = node.config
        if node.class_name == "Bidirectional":
            if halves == HALVES:
                for key in ("layer", "backward_layer"):
                    if cfg.get(key):
                        _set_units(cfg[key], n)
                continue
            if keras_major == 1:
                raise Refused(f"{path}: Keras 1's Bidirectional has no backward_layer, so its halves "
                              f"cannot differ; prune both halves (name {path})")
            if keras_major == 3:
                raise Refused(f"{path}: Keras 3 takes a Bidirectional's concat output to be twice its forward "
                              f"half, so it cannot load halves of different sizes; prune both halves (name {path})")
            if not cfg.get("backward_layer"):
                backward = copy.deepcopy(cfg["layer"])
                inner = backward["config"]
                inner["go_backwards"] = not inner.get("go_backwards", False)
                inner["name"] = "backward_" + inner.get("name", "layer")
                cfg["backward_layer"] = backward
            _set_units(cfg["layer"] if halves == ("forward",) else cfg["backward_layer"], n)
        elif node.class_name == "RNN":
            cell = cfg.get("cell") or {}
            if cell.get("class_name") == "StackedRNNCells":
                raise Refused(f"{path}: an RNN of stacked cells is not reshaped")
            _set_units(cell, n)
        else:
            _set_units(node.entry, n)
    for path, role, slot, blocks in tr.fed:
        _fix_consumer(graph.nodes[path].entry, role, slot, blocks, keep)
    for path, entry, fed in graph.nested:
        for k, ref in enumerate(fed):
            if ref in tr.tensors:
                _fix_nested(entry, k, tr.tensors[ref], keep)
    _fix_keras_tensors(graph, tr.tensors, keep)


def _set_units(entry, n):
    cfg = entry.get("config", {})
    for key in UNIT_KEYS:
        if key in cfg:
            cfg[key] = n
            return
    raise ModelError(f"{cfg.get('name')}: its config names no unit count")


def new_width(blocks, old, keep):
    resolved = blocks.resolve(old)
    return old + len(resolved.starts) * (len(keep) - resolved.units)


def _last(shape, blocks, keep):
    """The last dimension of a recorded shape, where it is the width the units sit in (Keras
    keeps a stale batch_input_shape on layers after the first; it ignores them, so do we)."""
    if isinstance(shape, list) and shape and isinstance(shape[-1], int):
        try:
            shape[-1] = new_width(blocks, shape[-1], keep)
        except ValueError:
            pass


def _fix_consumer(entry, role, slot, blocks, keep):
    build = entry.get("build_config") or {}
    shape = build.get("input_shape")
    if isinstance(shape, list) and shape:
        _last(shape[slot] if isinstance(shape[0], list) else shape, blocks, keep)
    shapes = build.get("shapes_dict") or {}
    if role == "initial_state" and isinstance(shapes.get("initial_state_shape"), list):
        states = shapes["initial_state_shape"]
        _last(states[slot] if states and isinstance(states[0], list) else states, blocks, keep)
    elif role == "input":
        for key, value in shapes.items():
            if key != "initial_state_shape":
                _last(value, blocks, keep)
                break
    cfg = entry.get("config") or {}
    if role == "input" and slot == 0:
        if isinstance(cfg.get("input_dim"), int):
            cfg["input_dim"] = new_width(blocks, cfg["input_dim"], keep)
        for key in SHAPE_KEYS:
            _last(cfg.get(key), blocks, keep)
    for key in ("layer", "backward_layer"):  # TimeDistributed and Bidirectional build their inner layers
        inner = cfg.get(key)
        if isinstance(inner, dict) and role == "input":
            _fix_consumer(inner, role, 0, blocks, keep)


def _fix_nested(entry, k, blocks, keep):
    build = entry.get("build_config") or {}
    shape = build.get("input_shape")
    if isinstance(shape, list) and shape:
        _last(shape[k] if isinstance(shape[0], list) else shape, blocks, keep)
    cfg = entry.get("config")
    if isinstance(cfg, dict) and k == 0:
        _last(cfg.get("build_input_shape"), blocks, keep)
    layers = cfg if isinstance(cfg, list) else (cfg or {}).get("layers") or []
    inputs = [d for d in layers if d.get("class_name") == "InputLayer"]
    if isinstance(cfg, dict) and cfg.get("input_layers"):
        names = [_history(r)[0] for r in _refs(cfg["input_layers"])]
        by_name = {d.get("config", {}).get("name"): d for d in inputs}
        inputs = [by_name[n] for n in names if n in by_name]
    if k < len(inputs):
        for key in SHAPE_KEYS:
            _last(inputs[k].get("config", {}).get(key), blocks, keep)


def _refs(value):
    return [value] if value and isinstance(value[0], str) else value


def _fix_keras_tensors(graph, tensors, keep):
    """Keras 3 records each call's input shapes in its keras tensors: the new widths go there."""
    for node in list(graph.nodes.values()) + [_Nested(p, e) for p, e, _ in graph.nested]:
        prefix = node.path.rpartition("/")[0]
        prefix = prefix + "/" if prefix else ""
        for call in node.entry.get("inbound_nodes") or []:
            if not isinstance(call, dict):
                continue
            for kt in _keras_tensors(call):
                name, tensor = _history(kt)
                ref = graph.resolve((prefix + name, tensor))
                if ref in tensors:
                    _last(kt["config"].get("shape"), tensors[ref], keep)


class _Nested:
    def __init__(self, path, entry):
        self.path, self.entry = path, entry


def _keras_tensors(value):
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            return [value]
        return [t for v in value.values() for t in _keras_tensors(v)]
    if isinstance(value, list):
        return [t for v in value for t in _keras_tensors(v)]
    return []


__all__ = ["apply", "new_width"]
