"""`to_onnx(src, out)`: a whole Keras model (any format lstmtool reads) as one ONNX model.

The model is translated to Keras 3's terms in memory (upgrader.keras3_model: the same
translation `upgrade` writes, proven against Keras on every corpus), its layer graph is
walked in order (surgery.graph: Sequential, Functional, nested models), and each layer
becomes operators from onnx_layers.LAYERS. The result is checked with
onnx.checker.check_model(full_check=True) and written atomically.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from ..errors import LstmtoolError, UsageError
from .errors import Unconvertible

ONNX_TYPES = {"float32": 1, "float64": 11, "int32": 6, "int64": 7, "uint8": 2, "int8": 3, "int16": 5, "bool": 9,
              "float16": 10}


@dataclass
class ConvertPlan:
    source: str
    out: str
    opset: int
    inputs: list = field(default_factory=list)  # [{name, dtype, shape}]
    outputs: list = field(default_factory=list)
    nodes: int = 0
    parameters: int = 0
    layers: list = field(default_factory=list)  # [(layer path, class, ONNX operators)]
    notes: list = field(default_factory=list)
    written: str = None
    seconds: float = 0.0

    def as_json(self) -> dict:
        return {"source": self.source, "output": self.out, "opset": self.opset, "inputs": self.inputs,
                "outputs": self.outputs, "nodes": self.nodes, "parameters": self.parameters,
                "layers": [{"path": p, "class": c, "onnx": ops} for p, c, ops in self.layers],
                "notes": self.notes, "written": self.written}


def _need_onnx():
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise UsageError("convert needs the onnx extra: pip install 'lstmtool[onnx]'") from None


def to_onnx(src, out, opset=None, static_shape=None, dry_run=False, force=False) -> ConvertPlan:
    """Convert `src` to ONNX at `out`. `static_shape`: (batch, steps) fixing the symbolic
    axes (None: batch and unknown time axes stay symbolic)."""
    from .onnx_build import DEFAULT_OPSET, MIN_OPSET, Builder

    _need_onnx()
    src, out = os.fspath(src), os.fspath(out) if out else out
    opset = DEFAULT_OPSET if opset is None else int(opset)
    if opset < MIN_OPSET:
        raise UsageError(f"--opset {opset}: lstmtool writes opset {MIN_OPSET} or newer")
    if not dry_run:
        _check_output(src, out, force)
    started = time.monotonic()
    from ..upgrader.in_memory import keras3_model

    try:
        k3, steps, weights_by_path = keras3_model(src)
    except LstmtoolError as e:  # upgrade's refusal, in convert's words: no --replace here
        import re

        text = re.sub(r"; nothing written.*$", "", str(e))
        text = text.replace("upgrade it with --config or --like first",
                            "`lstmtool upgrade` it with --config or --like first, then convert the .keras")
        text = (text if text.startswith(src) else f"{src}: {text}") + "; nothing written"
        raise (UsageError if isinstance(e, UsageError) else Unconvertible)(text) from None
    plan = ConvertPlan(src, out, opset)
    # what the translation says differs from the original (masked Bidirectional steps, ...)
    plan.notes = [c for step in steps for c in step.changes if c.startswith("note:")]
    b = Builder(opset)
    try:
        graph_inputs, graph_outputs = _walk(k3, weights_by_path, b, plan, static_shape)
    except Unconvertible as e:
        raise Unconvertible(f"{src}: {e}; nothing written") from None
    except LstmtoolError as e:  # a translation refusal met while reading weights
        raise Unconvertible(f"{src}: {str(e).removesuffix('; nothing written')}; nothing written") from None
    del weights_by_path  # every array the graph uses is in the builder now
    name = (k3.get("config") or {}).get("name") or "model"
    import onnx

    try:
        onnx.checker.check_model(b.model(graph_inputs, graph_outputs, name, weights_as_inputs=True), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        raise Unconvertible(f"{src}: the ONNX graph fails onnx.checker ({str(e).splitlines()[0]}); nothing written "
                            "(a bug of lstmtool's: please report it)") from None
    plan.nodes = len(b.nodes)
    plan.parameters = sum(int(a.size) for _, a in b.weights)
    if not dry_run:
        from ..core.files import atomic_output

        with atomic_output(out) as fh:
            b.write(fh, b.model(graph_inputs, graph_outputs, name))
        plan.written = out
    plan.seconds = time.monotonic() - started
    return plan


def _check_output(src, out, force):
    from ..surgery.edit import check_new_output

    if not out:
        raise UsageError("say where the ONNX model goes: -o MODEL.onnx")
    if not out.endswith(".onnx"):
        raise UsageError(f"{out}: the output is an ONNX model: name it .onnx")
    check_new_output(src, out, force, "convert")


def _model_inputs(k3) -> list:
    """[(name, batch_shape, dtype)] of the model's inputs, in order."""
    cfg = k3.get("config") or {}
    layers = cfg.get("layers") or []
    by_name = {(layer.get("config") or {}).get("name"): layer for layer in layers}
    if k3.get("class_name") == "Sequential":
        first = layers[0]["config"]
        return [(first.get("name") or "input", first.get("batch_shape"), first.get("dtype") or "float32")]
    out = []
    refs = cfg.get("input_layers") or []
    refs = [refs] if refs and isinstance(refs[0], str) else refs
    for ref in refs:
        name = ref[0] if isinstance(ref, list) else ref["config"]["keras_history"][0]
        layer = (by_name.get(name) or {}).get("config") or {}
        dtype = layer.get("dtype")
        dtype = (dtype.get("config") or {}).get("name") if isinstance(dtype, dict) else dtype
        out.append((name, layer.get("batch_shape"), dtype or "float32"))
    return out


def _dims(shape, static_shape, what):
    dims = []
    for k, d in enumerate(shape):
        if d is not None:
            dims.append(int(d))
        elif static_shape is not None and k < 2:
            dims.append(int(static_shape[k]))
        elif static_shape is not None:
            raise UsageError(f"--static-shape: input {what} has an unknown axis {k} besides batch and time")
        else:
            dims.append("batch" if k == 0 else "time" if k == 1 else f"dim{k}")
    return dims


def _walk(k3, weights_by_path, b, plan, static_shape):
    from ..surgery.graph import MODEL_INPUT, layer_graph
    from .onnx_layers import LAYERS, REFUSED

    graph = layer_graph(k3)
    tensors = {}
    inputs = []
    for k, (name, shape, dtype) in enumerate(_model_inputs(k3)):
        if shape is None:
            raise Unconvertible(f"input {name!r} states no shape")
        if dtype not in ONNX_TYPES:
            raise Unconvertible(f"input {name!r}: dtype {dtype} has no ONNX type here")
        onnx_name = b.name(name)
        b.rank[onnx_name] = len(shape)
        tensors[(MODEL_INPUT, k)] = onnx_name
        inputs.append((onnx_name, ONNX_TYPES[dtype], _dims(shape, static_shape, name)))
        plan.inputs.append({"name": onnx_name, "dtype": dtype, "shape": inputs[-1][2]})

    def weights(path):  # handed over once: the builder's re-laid copy is then the only one kept
        return weights_by_path.pop(path, [])

    pending = list(graph.nodes.values())
    while pending:
        progressed = False
        for node in list(pending):
            edges = graph.inputs(node.path)
            if any((e.producer, e.tensor) not in tensors for e in edges):
                continue
            pending.remove(node)
            progressed = True
            _emit(node, edges, tensors, weights, b, plan, LAYERS, REFUSED)
        if not progressed:
            missing = sorted({f"{e.producer}[{e.tensor}]" for n in pending for e in graph.inputs(n.path)
                              if (e.producer, e.tensor) not in tensors})
            raise Unconvertible(f"layer {pending[0].path!r}: its inputs are never computed ({', '.join(missing[:3])})")
    outputs = []
    for path, k in graph.outputs:
        if (path, k) not in tensors:
            raise Unconvertible(f"model output {path}[{k}] is not computed by any layer")
        name = tensors[(path, k)]
        if name in [o[0] for o in outputs] or name in [i[0] for i in inputs]:
            name = b.op("Identity", [name], f"{path}/output", rank=b.rank.get(name))
        r = b.rank.get(name)
        if r is None:
            raise Unconvertible(f"model output {path}[{k}]: its rank is unknown to the converter")
        outputs.append((name, 1, ["batch"] + [f"{name}_{d}" for d in range(1, r)]))
        plan.outputs.append({"name": name, "layer": path})
    return inputs, outputs


def _emit(node, edges, tensors, weights, b, plan, layers, refused):
    path, cls, cfg = node.path, node.class_name, node.config
    if node.entry.get("module", "").startswith("keras.src.ops"):
        from .onnx_ops import emit as emit_op

        ins = [tensors[(e.producer, e.tensor)] for e in sorted(edges, key=lambda e: e.slot)]
        if any(b.masks.get(i) is not None for i in ins):
            raise Unconvertible(f"layer {path!r}: the operation {cls} of a masked tensor")
        first = len(b.nodes)
        for k, name in enumerate(emit_op(b, path, cls, cfg, node.entry, ins)):
            tensors[(path, k)] = name
        plan.layers.append((path, f"ops.{cls}", sorted({n.op_type for n in b.nodes[first:]})))
        return
    if cls in refused:
        raise Unconvertible(f"layer {path!r}: {refused[cls]}")
    if cls not in layers:
        raise Unconvertible(f"layer {path!r}: {cls} is not in lstmtool's ONNX table")
    if node.calls > 1:
        raise Unconvertible(f"layer {path!r}: a layer called {node.calls} times (shared) is not converted yet")
    from .onnx_layers import MASK_PASS, MASK_USERS

    if cls in MASK_USERS and any(e.role == "kwarg:mask" for e in edges):
        # Keras 3 writes the mask its Masking / Embedding computed as a call argument; the same
        # mask travels with the input here (b.masks), so the argument itself is not needed
        x = next((tensors[(e.producer, e.tensor)] for e in edges if e.role == "input"), None)
        if b.masks.get(x) is None:
            raise Unconvertible(f"layer {path!r}: its call passes a mask its input does not carry")
        edges = [e for e in edges if e.role != "kwarg:mask"]
    others = sorted({e.role for e in edges} - {"input", "initial_state"})
    if others:
        raise Unconvertible(f"layer {path!r}: its call passes a tensor as {others[0].split(':', 1)[-1]}")
    if _dtype(cfg) not in ("float32", None):
        raise Unconvertible(f"layer {path!r}: dtype {_dtype(cfg)}: only float32 models are converted")
    ins = [tensors[(e.producer, e.tensor)] for e in sorted((e for e in edges if e.role == "input"), key=lambda e: e.slot)]
    states = [tensors[(e.producer, e.tensor)]
              for e in sorted((e for e in edges if e.role == "initial_state"), key=lambda e: e.slot)]
    if len(ins) > 1 and cls not in ("Concatenate", "Subtract", "Add", "Multiply", "Average", "Maximum", "Minimum"):
        if cls in ("LSTM", "GRU", "SimpleRNN", "RNN", "Bidirectional"):
            states, ins = ins[1:] + states, ins[:1]  # Keras 3 list form: [x, *initial_state]
    masked = [i for i in ins + states if b.masks.get(i) is not None]
    if masked and cls not in MASK_PASS | MASK_USERS | {"Embedding", "Masking"}:
        raise Unconvertible(f"layer {path!r}: {cls} of a masked tensor (after Masking or mask_zero) is not "
                            "converted: what Keras does with the mask there has no exact ONNX form here")
    first = len(b.nodes)
    arrays = None if cls in MASK_USERS else weights(path)  # recurrent layers and wrappers fetch their cells' own
    outs = layers[cls](b, path, cfg, ins, arrays, cls=cls, states=states, weights=weights)
    if cls in MASK_PASS and ins and b.masks.get(ins[0]) is not None:
        b.masks.setdefault(outs[0], b.masks[ins[0]])
    for k, name in enumerate(outs):
        tensors[(path, k)] = name
    plan.layers.append((path, cls, sorted({n.op_type for n in b.nodes[first:]})))


def _dtype(cfg):
    d = cfg.get("dtype")
    if isinstance(d, dict):
        d = (d.get("config") or {}).get("name")
    return d
