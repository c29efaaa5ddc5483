"""Where things are: the layer a target names, and a layer's stored weights in either
container (legacy HDF5 weight lists, the Keras 3 weights tree)."""
from __future__ import annotations

from ..containers import legacy_h5
from ..containers.found import components
from ..containers.keras3_tree import Tree, snake_case
from ..errors import ModelError, UsageError
from .graph import RECURRENT_CLASSES

HALVES = ("forward", "backward")


class Refused(ModelError):
    """The units cannot be taken out (or added) exactly; the reason names the layer."""


def split_target(model, graph, text):
    """`lstm`, `bi` (both halves) or `bi/forward` -> (layer path, halves)."""
    if text in graph.nodes:
        node = graph.nodes[text]
        if node.class_name == "Bidirectional":
            return text, HALVES
        if node.class_name in RECURRENT_CLASSES:
            return text, ("cell",)
        raise UsageError(f"{text} is a {node.class_name}, not a recurrent layer; "
                         f"recurrent layers: {', '.join(_recurrent(graph)) or 'none'}")
    parent, _, half = text.rpartition("/")
    if half in HALVES and graph.nodes.get(parent) is not None and graph.nodes[parent].class_name == "Bidirectional":
        return parent, (half,)
    from ..core.names import suggest

    raise UsageError(f"no recurrent layer named {text!r} in {model.filename}"
                     f"{suggest(text, _recurrent(graph))}")


def _recurrent(graph):
    return [p for p, n in graph.nodes.items() if n.class_name in RECURRENT_CLASSES | {"Bidirectional"}]


class Weights:
    """A layer's stored weights, in Keras' order, wherever the container keeps them."""

    def __init__(self, model, raw):
        self.model = model
        store = model.store
        if store.archive is not None:
            self.tree, self.paths = Tree(store.h5), tree_paths(raw)
        else:
            self.tree, self.entries = None, {e.name: e for e in legacy_h5.read_layers(store.h5, [])}

    def of(self, path) -> list:
        if self.tree is not None:
            where, out = self.paths.get(path), []
            while where is not None and (ds := self.tree.dataset(f"{where}/vars/{len(out)}")) is not None:
                out.append(ds)
            return out
        top, *inner = path.split("/")
        entry = self.entries.get(top)
        weights = entry.weights if entry else []
        if inner:  # in a nested model, a layer's weights are named after the layer itself
            weights = [w for w in weights if inner[-1] in components(w[0])]
        if any(p is None for _, p in weights):
            raise Refused(f"{path}: some of its weights are missing from the file; nothing written")
        return [p for _, p in weights]


def tree_paths(raw) -> dict:
    """{layer path: where its vars sit in a Keras 3 weights tree}, named as Keras 3 names them."""
    out = {}

    def walk(d, where, lpath):
        cls, cfg = d.get("class_name"), d.get("config") or {}
        if cls in ("Sequential", "Functional", "Model"):
            used = {}
            for sub in cfg.get("layers") or []:
                key = snake_case(sub["class_name"])
                used[key] = used.get(key, -1) + 1
                key = f"{key}_{used[key]}" if used[key] else key
                walk(sub, f"{where}/layers/{key}".lstrip("/"), f"{lpath}/{sub['config']['name']}".lstrip("/"))
        elif cls == "Bidirectional":
            out[lpath] = where
            walk(cfg["layer"], f"{where}/forward_layer", f"{lpath}/forward")
            walk(cfg.get("backward_layer") or cfg["layer"], f"{where}/backward_layer", f"{lpath}/backward")
        elif cls == "TimeDistributed":
            out[lpath] = f"{where}/layer"
        else:
            out[lpath] = where

    walk(raw, "", "")
    return out
