"""Which checkpoint tensor is which layer's weight: the object graph, and keras_metadata.pb.

A checkpoint key says little (SavedModels often key an LSTM's weights
`trainable_variables/0/...`), so cells are found by walking the object graph that
`_CHECKPOINTABLE_OBJECT_GRAPH` stores (trackable_object_graph.proto), from the root:
`layer_with_weights-0` -> `cell` -> `kernel` -> attribute VARIABLE_VALUE -> key. Keras
names, classes and configs come from keras_metadata.pb (saved_metadata.proto), whose
node paths (`root.layer_with_weights-0.cell`) are paths in the same graph.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from . import protowire as pw
from .found import FoundCell
from .infer import infer_from_shapes

GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
# children that list variables again (or hold optimizer state): never a path to a cell
LISTS = {"variables", "trainable_variables", "non_trainable_variables", "trainable_weights",
         "non_trainable_weights", "weights", "_variables", "keras_api", "optimizer",
         "regularization_losses", "state_spec", "states", "layer_metrics", "metrics"}
ROLES = ("kernel", "recurrent_kernel", "bias")


@dataclass
class Node:
    children: dict = field(default_factory=dict)  # local name -> node id
    key: str = ""  # checkpoint key of its VARIABLE_VALUE, for a variable


def object_graph(raw: bytes) -> list:
    nodes = []
    for n in pw.message(raw).get(1, []):
        m, node = pw.message(n), Node()
        for c in m.get(1, []):
            cm = pw.message(c)
            node.children[pw.first(cm, 2, b"").decode("utf-8", "replace")] = pw.first(cm, 1, 0)
        for a in m.get(2, []):
            am = pw.message(a)
            if pw.first(am, 1, b"") == b"VARIABLE_VALUE":
                node.key = pw.first(am, 3, b"").decode("utf-8", "replace")
        nodes.append(node)
    if not nodes:
        raise ValueError("the object graph is empty")
    for node in nodes:
        if any(not 0 <= c < len(nodes) for c in node.children.values()):
            raise ValueError("the object graph names a node it does not hold")
    return nodes


def metadata_nodes(raw: bytes) -> dict:
    """keras_metadata.pb: {node path: its JSON metadata (name, class_name, config, ...)}."""
    out = {}
    for n in pw.message(raw).get(1, []):
        m = pw.message(n)
        path = pw.first(m, 3, b"").decode("utf-8", "replace")
        try:
            meta = json.loads(pw.first(m, 5, b"{}").decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ValueError(f"metadata of {path!r} is not JSON") from None
        out[path] = meta if isinstance(meta, dict) else {}
    return out


def resolve(nodes, dotted: str):
    """Node id of a metadata path `root.a.b`, or None."""
    parts = dotted.split(".")
    if parts[0] != "root":
        return None
    node = 0
    for p in parts[1:]:
        node = nodes[node].children.get(p)
        if node is None:
            return None
    return node


def variable_key(nodes, node, role):
    child = nodes[node].children.get(role)
    return nodes[child].key or None if child is not None else None


class Addressing:
    """walk_cells' addressing for the object graph: a layer's `where` is its node id."""

    def __init__(self, nodes, names):
        self.nodes, self.names = nodes, names  # names: node id -> Keras layer name

    def sublayers(self, spec, node):
        children = self.nodes[node].children if node is not None else {}
        numbered = sorted((int(m[1]), c) for n, c in children.items() if (m := re.fullmatch(r"layer-(\d+)", n)))
        by_name = {self.names.get(c): c for _, c in numbered}
        return [(sub, by_name.get(sub.name)) for sub in spec.layers]

    def halves(self, node, spec=None):
        kids = self.nodes[node].children if node is not None else {}
        return kids.get("forward_layer"), kids.get("backward_layer")

    def wrapped(self, node):
        return self.nodes[node].children.get("layer") if node is not None else None

    def stacked(self, cells, node):
        cell = self.single_cell(node)
        listed = self.nodes[cell].children.get("cells") if cell is not None else None
        kids = self.nodes[listed].children if listed is not None else {}
        return [kids.get(str(k)) for k in range(len(cells))]

    def single_cell(self, node):
        if node is None:
            return None
        return self.nodes[node].children.get("cell", node)

    def cell(self, spec, node, path):
        tensors = {r: variable_key(self.nodes, node, r) if node is not None else None for r in ROLES}
        if not spec.config.get("use_bias", spec.config.get("bias", True)):
            tensors.pop("bias")
        return FoundCell(path, spec.class_name, spec, tensors)


def layer_names(nodes, metadata: dict) -> dict:
    """{node id: Keras layer name} for every metadata node that resolves."""
    out = {}
    for path, meta in metadata.items():
        node = resolve(nodes, path)
        if node is not None and isinstance(meta.get("name"), str):
            out.setdefault(node, meta["name"])
    return out


def object_paths(nodes) -> dict:
    """{node id: shortest path from the root}, preferring `layer_with_weights-K` names."""
    paths, frontier = {0: ""}, [0]
    while frontier:
        nxt = []
        for node in frontier:
            kids = sorted(nodes[node].children.items(), key=lambda kv: (not kv[0].startswith("layer_with_weights-"),))
            for name, child in kids:
                if name in LISTS or child in paths:
                    continue
                paths[child] = f"{paths[node]}/{name}".lstrip("/")
                nxt.append(child)
        frontier = nxt
    return paths


def display_path(object_path: str) -> str:
    """`layer_with_weights-0/forward_layer/cell` -> `layer_with_weights-0/forward`;
    `.../cell/cells/1` -> `.../cell_1`; a layer's own `cell` is dropped."""
    p = re.sub(r"/cell/cells/(\d+)$", r"/cell_\1", object_path)
    p = re.sub(r"(^|/)(forward|backward)_layer(?=/|$)", r"\1\2", p)
    return re.sub(r"/cell$", "", p)


def infer_cells(nodes, shape_of) -> list:
    """Cells of a checkpoint without a config: every object with kernel, recurrent_kernel
    (and bias) variables, named by its path in the graph, class told by shapes."""
    found = []
    for node, path in sorted(object_paths(nodes).items(), key=lambda kv: natural(kv[1])):
        if variable_key(nodes, node, "recurrent_kernel") is None:
            continue
        tensors = {r: variable_key(nodes, node, r) for r in ROLES if variable_key(nodes, node, r)}
        try:
            shapes = {r: shape_of(k) for r, k in tensors.items()}
        except ValueError as e:  # the graph names a tensor the bundle lacks (a damaged file)
            fc = FoundCell(display_path(path), "unrecognised", None, tensors, "inferred from tensor shapes")
            fc.ambiguous = str(e)
            found.append(fc)
            continue
        class_name, notes = infer_from_shapes(shapes)
        fc = FoundCell(display_path(path), class_name or "unrecognised", None, tensors,
                       "inferred from tensor shapes (checkpoint without a config)", notes)
        if class_name is None:
            fc.ambiguous = f"its weights fit no recurrent cell ({'; '.join(notes)})"
        found.append(fc)
    return found


def natural(path: str) -> list:
    """Sort key: layer_with_weights-2 before -10, a forward half before its backward half."""
    path = path.replace("forward_layer", "0_forward").replace("backward_layer", "1_backward")
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", path)]


def layer_weight_count(nodes, node) -> int:
    """Variables reachable from a layer's node (not through lists or optimizer state)."""
    if node is None:
        return 0
    seen, stack, count = {node}, [node], 0
    while stack:
        current = stack.pop()
        count += bool(nodes[current].key)
        for name, child in nodes[current].children.items():
            if name not in LISTS and child not in seen:
                seen.add(child)
                stack.append(child)
    return count


def untuple(obj):
    """keras_metadata.pb writes tuples as {"class_name": "__tuple__", "items": [...]}."""
    if isinstance(obj, dict):
        if obj.get("class_name") == "__tuple__" and isinstance(obj.get("items"), list):
            return [untuple(v) for v in obj["items"]]
        return {k: untuple(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [untuple(v) for v in obj]
    return obj


def layer_nodes(spec, addressing, path="", node=0, out=None) -> dict:
    """{lstmtool layer path: node id} for every layer of a config, nested models included."""
    out = {} if out is None else out
    if spec.is_model:
        for sub, child in addressing.sublayers(spec, node):
            sub_path = f"{path}/{sub.name}".lstrip("/")
            out[sub_path] = child
            if sub.is_model and child is not None:
                layer_nodes(sub, addressing, sub_path, child, out)
    return out


def variable_keys(nodes, node, names=None) -> list:
    """Keys of the variables a layer tracks, in Keras' weight order: its `variables` list
    (SavedModels with traces), else `names` (the class's weight names), else the order
    its variables were tracked in (creation order, which is Keras' weight order)."""
    if node is None:
        return []
    listed = nodes[node].children.get("variables")
    if listed is not None:
        kids = nodes[listed].children
        return [nodes[kids[k]].key for k in sorted(kids, key=lambda k: int(k) if k.isdigit() else 1 << 30)
                if nodes[kids[k]].key]
    own = {name: nodes[c].key for name, c in nodes[node].children.items() if nodes[c].key}
    if names and set(own) <= set(names):
        return [own[n] for n in names if n in own]
    return list(own.values())
