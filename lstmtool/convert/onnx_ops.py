"""Keras 3 operation nodes (what `upgrade` makes of tf.keras' TF-op layers) as ONNX operators:
one table, OPS, Keras op class -> (ONNX operator, how its settings map). A node's arguments
are its tensors and constants in call order (constants become initializers)."""
from __future__ import annotations

import numpy as np

from .errors import Unconvertible

UNARY = {"Exp": "Exp", "Log": "Log", "Sqrt": "Sqrt", "Absolute": "Abs", "Negative": "Neg", "Tanh": "Tanh",
         "Sigmoid": "Sigmoid", "Relu": "Relu", "Sign": "Sign", "Floor": "Floor", "Ceil": "Ceil",
         "Softplus": "Softplus", "Selu": "Selu"}
BINARY = {"Add": "Add", "Subtract": "Sub", "Multiply": "Mul", "Divide": "Div", "Maximum": "Max", "Minimum": "Min",
          "Power": "Pow", "Matmul": "MatMul"}
REDUCE = {"Mean": "ReduceMean", "Sum": "ReduceSum", "Max": "ReduceMax", "Min": "ReduceMin"}


def node_args(entry, tensors_in_order):
    """The op's positional arguments: tensor names (from the graph's edges, in order) where
    the node has Keras tensors, the constants as written elsewhere."""
    nodes = entry.get("inbound_nodes") or []
    if len(nodes) != 1 or not isinstance(nodes[0], dict):
        raise Unconvertible("an operation node not in Keras 3's form")
    feed = iter(tensors_in_order)
    out = []
    for a in nodes[0].get("args") or []:
        if isinstance(a, dict) and a.get("class_name") == "__keras_tensor__":
            out.append(next(feed))
        elif isinstance(a, (int, float)) and not isinstance(a, bool):
            out.append(np.asarray(a, dtype=np.float32))
        else:
            out.append(a)  # a list of tensors (concatenate) or a key (get_item): the emitter decides
    return out


def emit(b, path, cls, cfg, entry, tensors):
    args = node_args(entry, tensors)
    ins = [b.const(f"{path}/const", a) if isinstance(a, np.ndarray) else a for a in args]
    rank = max((b.rank.get(i) or 0) for i in ins if isinstance(i, str)) or None
    if cls in UNARY:
        return [b.op(UNARY[cls], ins[:1], path, rank=rank)]
    if cls == "Square":
        return [b.op("Mul", [ins[0], ins[0]], path, rank=rank)]
    if cls in BINARY and len(ins) == 2:
        return [b.op(BINARY[cls], ins, path, rank=rank)]
    if cls == "Transpose":
        axes = cfg.get("axes")
        return [b.op("Transpose", ins[:1], path, rank=rank, **({"perm": list(axes)} if axes is not None else {}))]
    if cls == "Reshape":
        shape = list(cfg["newshape"]) if isinstance(cfg["newshape"], (list, tuple)) else [cfg["newshape"]]
        return [b.op("Reshape", [ins[0], b.ints(f"{path}/shape", shape)], path, rank=len(shape))]
    if cls == "ExpandDims":
        axis = cfg["axis"] if isinstance(cfg["axis"], list) else [cfg["axis"]]
        return [b.unsqueeze(ins[0], axis, path, rank=(rank or 0) + len(axis))]
    if cls == "Squeeze" and cfg.get("axis") is not None:
        axis = cfg["axis"] if isinstance(cfg["axis"], list) else [cfg["axis"]]
        return [b.squeeze(ins[0], axis, path, rank=(rank or 0) - len(axis))]
    if cls == "Softmax":
        return [b.op("Softmax", ins[:1], path, rank=rank, axis=int(cfg.get("axis", -1)))]
    if cls in REDUCE and cfg.get("axis") is not None:
        axis = cfg["axis"] if isinstance(cfg["axis"], list) else [cfg["axis"]]
        keep = bool(cfg.get("keepdims", False))
        return [b.reduce(REDUCE[cls], ins[0], axis, path, keepdims=int(keep),
                         rank=rank if keep else (rank or 0) - len(axis))]
    if cls in ("NotEqual", "Equal", "Greater", "Less", "GreaterEqual", "LessEqual") and len(ins) == 2:
        op = {"NotEqual": "Equal", "GreaterEqual": "Less", "LessEqual": "Greater"}.get(cls, cls)
        # compared as float32 (exact for token ids below 2**24): the inputs' own types are not tracked
        ins = [b.op("Cast", [i], path, rank=b.rank.get(i), to=1) for i in ins]
        y = b.op(op, ins, path, rank=rank)
        return [b.op("Not", [y], path, rank=rank) if op != cls else y]
    if cls in ("Any", "All"):
        axis = cfg.get("axis")
        keep = bool(cfg.get("keepdims", False))
        as_int = b.op("Cast", ins[:1], path, rank=rank, to=6)
        axes = (axis if isinstance(axis, list) else [axis]) if axis is not None else list(range(rank or 0))
        r = b.reduce("ReduceMax" if cls == "Any" else "ReduceMin", as_int, axes, path, keepdims=int(keep),
                     rank=rank if keep else (rank or 0) - len(axes))
        return [b.op("Cast", [r], path, rank=b.rank.get(r), to=9)]
    if cls == "Concatenate" and isinstance(args[0], list):
        parts = list(tensors)
        return [b.op("Concat", parts, path, rank=b.rank.get(parts[0]), axis=int(cfg.get("axis", 0)))]
    raise Unconvertible(f"layer {path!r}: the operation {cls} (a TF-op layer of the original) is not in "
                        "lstmtool's ONNX table")
