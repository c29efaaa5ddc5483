"""A small ONNX graph builder over the `onnx` package's own helpers: unique names, weights
as initializers named after their Keras layer path, and the few operators whose form
changed between opsets (reductions take `axes` as an input from opset 18).

The weights are kept as NumPy arrays, not TensorProtos: the graph is checked with them as
typed inputs (onnx.checker needs their types and shapes, not their bytes), and the file is
written as the small ModelProto followed by one more `graph` field per weight, holding that
initializer, each array's bytes written straight from its buffer. Protobuf merges repeated
occurrences of a message field (the ONNX loaders read one graph), so no copy of the whole
model is ever made in memory: a 340 MB model is written at the speed of its bytes.
"""
from __future__ import annotations

import numpy as np

from ..containers.protowire import BYTES, VARINT, varint

MODEL_GRAPH, GRAPH_INITIALIZER = 7, 5  # onnx.proto field numbers: ModelProto.graph, GraphProto.initializer
TENSOR_DIMS, TENSOR_TYPE, TENSOR_NAME, TENSOR_RAW = 1, 2, 8, 9  # TensorProto's

MIN_OPSET = 17  # LayerNormalization; every operator used here exists in this form from 17 on
DEFAULT_OPSET = 21  # current, and run by onnxruntime >= 1.16


class Builder:
    def __init__(self, opset):
        import onnx
        from onnx import helper, numpy_helper

        self.onnx, self.helper, self.numpy_helper = onnx, helper, numpy_helper
        self.opset = opset
        self.nodes, self.weights, self.used = [], [], set()  # weights: [(name, contiguous array)]
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
        array = np.asarray(array)
        if array.dtype.byteorder == ">":
            array = array.astype(array.dtype.newbyteorder("<"))
        self.weights.append((name, np.ascontiguousarray(array)))
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

    def model(self, inputs, outputs, name, weights_as_inputs=False):
        """The ModelProto without the weights' bytes. `weights_as_inputs`: the weights as typed
        graph inputs instead (for onnx.checker, which needs their types and shapes only)."""
        h = self.helper
        ins = [h.make_tensor_value_info(n, t, s) for n, t, s in inputs]
        if weights_as_inputs:
            ins += [h.make_tensor_value_info(n, h.np_dtype_to_tensor_dtype(a.dtype), list(a.shape))
                    for n, a in self.weights]
        graph = h.make_graph(self.nodes, name, ins, [h.make_tensor_value_info(n, t, s) for n, t, s in outputs])
        model = h.make_model(graph, opset_imports=[h.make_opsetid("", self.opset)], producer_name="lstmtool")
        model.ir_version = min(model.ir_version, 10)  # onnxruntime reads IR <= 10
        return model

    def write(self, fh, model):
        """The model, then each weight as one more graph field holding its initializer."""
        fh.write(model.SerializeToString())
        for name, array in self.weights:
            head = b"".join(_key(TENSOR_DIMS, VARINT) + varint(int(d)) for d in array.shape)
            head += _key(TENSOR_TYPE, VARINT) + varint(self.helper.np_dtype_to_tensor_dtype(array.dtype))
            head += _key(TENSOR_NAME, BYTES) + varint(len(name.encode())) + name.encode()
            data = memoryview(array).cast("B")
            head += _key(TENSOR_RAW, BYTES) + varint(data.nbytes)
            tensor = len(head) + data.nbytes
            initializer = _key(GRAPH_INITIALIZER, BYTES) + varint(tensor)
            fh.write(_key(MODEL_GRAPH, BYTES) + varint(len(initializer) + tensor) + initializer + head)
            fh.write(data)


def _key(number, wire):
    return varint(number << 3 | wire)
