"""The layer graph of a model config, flattened: who feeds whom, through which tensor.

Keras 1, 2 and 3 configs, Sequential and Functional, models nested in models. A nested
model has no node of its own: its layers appear under its name (`encoder/lstm`, the
paths `inspect` prints) and the edges go straight to them. Nothing in a config is
evaluated.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..core.config import MODEL_CLASSES
from ..errors import ModelError

RECURRENT_CLASSES = {"LSTM", "GRU", "SimpleRNN", "CuDNNLSTM", "CuDNNGRU", "ConvLSTM1D", "ConvLSTM2D",
                     "ConvLSTM3D", "RNN"}
MODEL_INPUT = "<input>"  # the producer of a model input


@dataclass
class Edge:
    producer: str  # layer path, or MODEL_INPUT
    tensor: int  # which output of the producer (an LSTM with return_state has three)
    consumer: str
    role: str  # "input", "initial_state", or "kwarg:<name>" (mask, constants...)
    slot: int  # position among the consumer's inputs of that role


@dataclass
class Node:
    path: str
    class_name: str
    entry: dict  # the layer's {class_name, config, ...} inside the raw config: surgery edits it in place
    calls: int = 1  # a shared layer is called more than once

    @property
    def config(self) -> dict:
        return self.entry.setdefault("config", {})


@dataclass
class Graph:
    nodes: dict = field(default_factory=dict)  # path -> Node, in config order
    edges: list = field(default_factory=list)
    outputs: list = field(default_factory=list)  # [(path, tensor)] the model returns
    nested: list = field(default_factory=list)  # [(path, entry, [(producer, tensor)] feeding it)]
    alias: dict = field(default_factory=dict)  # (name, tensor) -> (path, tensor): nested outputs, inputs
    input_shapes: list = field(default_factory=list)  # the model inputs' shapes, where the config says

    def resolve(self, ref):
        seen = 0
        while ref in self.alias:
            ref, seen = self.alias[ref], seen + 1
            if seen > 1000:
                raise ModelError("the model config's connections go round in a loop")
        return ref

    def consumers(self, path, tensor=None) -> list:
        return [e for e in self.edges if e.producer == path and (tensor is None or e.tensor == tensor)]

    def inputs(self, path, role=None) -> list:
        return [e for e in self.edges if e.consumer == path and (role is None or e.role == role)]


def layer_graph(raw: dict) -> Graph:
    """The graph of model config `raw` ({class_name, config}) as saved by any Keras."""
    graph = Graph()
    outputs = _add_model(raw, "", None, graph, graph)  # names are resolved once all are read
    graph.outputs = [graph.resolve(r) for r in outputs]
    for e in graph.edges:
        e.producer, e.tensor = graph.resolve((e.producer, e.tensor))
    graph.nested = [(p, entry, [graph.resolve(r) for r in fed]) for p, entry, fed in graph.nested]
    return graph


def _layers_of(entry):
    cfg = entry.get("config")
    if isinstance(cfg, list):  # Keras 1 and early Keras 2 Sequential: the config is the layer list
        return cfg
    return (cfg or {}).get("layers") or []


def _name(entry):
    cfg = entry.get("config")
    name = entry.get("name") or (cfg.get("name") if isinstance(cfg, dict) else None)
    if not name:
        raise ModelError(f"a {entry.get('class_name')} layer in the model config has no name")
    return name


def _is_model(entry):
    return entry.get("class_name") in MODEL_CLASSES or (
        isinstance(entry.get("config"), (list, dict)) and bool(_layers_of(entry))
        and entry.get("class_name") not in ("Bidirectional", "TimeDistributed"))


def _add_model(entry, prefix, inbound, graph, refs) -> list:
    """Add the layers of model `entry` under `prefix`, fed by `inbound` (None: the model's
    own inputs); return its outputs."""
    cfg = entry.get("config")
    if entry.get("class_name") == "Sequential" or isinstance(cfg, list):
        previous = [(MODEL_INPUT, 0)] if inbound is None else inbound
        if inbound is None and _layers_of(entry):
            graph.input_shapes = [_shape_of(_layers_of(entry)[0])]
        for sub in _layers_of(entry):
            if sub.get("class_name") == "InputLayer":
                continue
            path = prefix + _name(sub)
            if _is_model(sub):
                graph.nested.append((path, sub, list(previous)))
                previous = _add_model(sub, path + "/", previous, graph, refs)
                continue
            _add_node(graph, path, sub, 1)
            graph.edges += [Edge(p, t, path, "input", k) for k, (p, t) in enumerate(previous)]
            previous = [(path, 0)]
        return previous
    local = lambda name: prefix + name  # noqa: E731
    entries = {_name(sub): sub for sub in _layers_of(entry)}
    for k, ref in enumerate(_as_refs(cfg.get("input_layers"))):
        name, tensor = _history(ref)
        if inbound is None:
            graph.input_shapes.append(_shape_of(entries.get(name, {})))
            refs.alias[(local(name), tensor)] = (MODEL_INPUT, k)
        elif k < len(inbound):
            refs.alias[(local(name), tensor)] = inbound[k]
    for sub in _layers_of(entry):
        path = local(_name(sub))
        nodes = sub.get("inbound_nodes") or []
        if sub.get("class_name") == "InputLayer":
            continue
        if _is_model(sub):
            fed = [(local(n), t) for n, t, _, _ in _call_inputs(nodes[0], sub)] if nodes else []
            graph.nested.append((path, sub, fed))
            outs = _add_model(sub, path + "/", fed, graph, refs)
            for k, ref in enumerate(outs):
                refs.alias[(path, k)] = ref
            continue
        _add_node(graph, path, sub, max(1, len(nodes)))
        for call in nodes:
            graph.edges += [Edge(local(n), t, path, role, slot) for n, t, role, slot in _call_inputs(call, sub)]
    return [(local(n), t) for n, t in map(_history, _as_refs(cfg.get("output_layers")))]


def _shape_of(entry):
    cfg = entry.get("config")
    cfg = cfg if isinstance(cfg, dict) else {}
    for key in ("batch_shape", "batch_input_shape"):
        if isinstance(cfg.get(key), list):
            return cfg[key]
    return None


def _add_node(graph, path, entry, calls):
    if path in graph.nodes:
        raise ModelError(f"two layers are named {path!r} in the model config")
    graph.nodes[path] = Node(path, entry.get("class_name", "?"), entry, calls)


def _as_refs(value):
    if not value:
        return []
    if isinstance(value[0], str):  # one output written as [name, node, tensor]
        return [value]
    return value


def _history(ref):
    if isinstance(ref, dict):  # Keras 3 keras tensor
        name, _node, tensor = ref["config"]["keras_history"]
        return name, tensor
    return ref[0], ref[2] if len(ref) > 2 else 0


def _call_inputs(call, entry) -> list:
    """[(producer name, tensor, role, slot)] of one call of a layer."""
    out = []
    if isinstance(call, dict):  # Keras 3: {"args": [...], "kwargs": {...}}
        for name, tensor in _tensors(call.get("args")):
            out.append((name, tensor, "input", len(out)))
        for key, value in (call.get("kwargs") or {}).items():
            role = "initial_state" if key == "initial_state" else f"kwarg:{key}"
            out += [(n, t, role, k) for k, (n, t) in enumerate(_tensors(value))]
        return out
    refs = [r for r in call if isinstance(r, list) and r and isinstance(r[0], str)]
    recurrent = entry.get("class_name") in RECURRENT_CLASSES | {"Bidirectional"}
    for k, ref in enumerate(refs):
        name, tensor = _history(ref)
        # tf.keras and Keras 2 list an RNN's initial states after its input, in the same call
        if recurrent and k > 0:
            out.append((name, tensor, "initial_state", k - 1))
        else:
            out.append((name, tensor, "input", k))
    return out


def _tensors(value) -> list:
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            return [_history(value)]
        return [t for v in value.values() for t in _tensors(v)]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    return []
