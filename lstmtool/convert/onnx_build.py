"""A small ONNX graph builder over the `onnx` package's own helpers: unique names, weights
as initializers named after their Keras layer path, and the few operators whose form
changed between opsets (reductions take `axes` as an input from opset 18)."""
from __future__ import annotations

import numpy as np

MIN_OPSET = 17  # LayerNormalization; every operator used here exists in this form from 17 on
DEFAULT_OPSET = 21  # current, and run by onnxruntime >= 1.16


class Builder:
    def __init__(self, opset):
        import onnx
        from onnx import helper, numpy_helper

        self.onnx, self.helper, self.numpy_helper = onnx, helper, numpy_helper
        self.opset = opset
        self.nodes, self.initializers, self.used = [], [], set()
        self.rank = {}  # tensor name -> rank (what shape-dependent emitters need)
        self.masks = {}  # tensor name -> its Keras mask [N, T] (bool), where one travels with it

    def name(self, hint: str) -> str:
        base = hint.replace(":", "_") or "t"
        name, k = base, 1
        while name in self.used:
            k += 1
            name = f"{base}_{k}"
        self.used.add(name)
        return name

    def const(self, hint: str, array) -> str:
        """A weight or constant as an initializer (`hint`: the Keras layer path and role)."""
        name = self.name(hint)
        self.initializers.append(self.numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def ints(self, hint: str, values) -> str:
        return self.const(hint, np.asarray(values, dtype=np.int64))

    def op(self, op_type: str, inputs, hint: str, outputs=1, rank=None, **attrs):
        """Add a node; returns its output name (or names, when `outputs` > 1)."""
        names = [self.name(f"{hint}/{op_type}" if outputs == 1 else f"{hint}/{op_type}_{k}") for k in range(outputs)]
        self.nodes.append(self.helper.make_node(op_type, list(inputs), names, name=self.name(f"{hint}/{op_type}_node"),
                                                **attrs))
        if rank is not None:
            for n in names:
                self.rank[n] = rank
        return names[0] if outputs == 1 else names

    def reduce(self, op_type: str, x: str, axes, hint: str, keepdims=0, rank=None) -> str:
        if self.opset >= 18:
            return self.op(op_type, [x, self.ints(f"{hint}/axes", axes)], hint, rank=rank, keepdims=keepdims)
        return self.op(op_type, [x], hint, rank=rank, axes=list(axes), keepdims=keepdims)

    def squeeze(self, x: str, axes, hint: str, rank=None) -> str:
        return self.op("Squeeze", [x, self.ints(f"{hint}/axes", axes)], hint, rank=rank)

    def unsqueeze(self, x: str, axes, hint: str, rank=None) -> str:
        return self.op("Unsqueeze", [x, self.ints(f"{hint}/axes", axes)], hint, rank=rank)

    def model(self, inputs, outputs, name):
        """inputs / outputs: [(tensor name, elem type, shape with str for symbolic dims)]."""
        h = self.helper
        graph = h.make_graph(self.nodes, name, [h.make_tensor_value_info(n, t, s) for n, t, s in inputs],
                             [h.make_tensor_value_info(n, t, s) for n, t, s in outputs], self.initializers)
        model = h.make_model(graph, opset_imports=[h.make_opsetid("", self.opset)], producer_name="lstmtool")
        model.ir_version = min(model.ir_version, 10)  # onnxruntime reads IR <= 10
        return model
