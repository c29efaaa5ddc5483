"""Models with TF-op layers, for tests/test_tfops.py: tf-keras functional models calling each
TF function of lstmtool's table (tf-keras writes TFOpLambda / SlicingOpLambda), and TF 1.x
TensorFlowOpLayer models built byte-compatible with what tf.keras 2.0-2.3 wrote (the peer
corpus' permute.h5 and tfop_0.h5 are such files; no installable Keras writes them now, but
tf-keras still loads and runs them, so it is the oracle for both kinds).

    python tests/tfops_models.py OUT_DIR     # writes the models, prints their names
"""
from __future__ import annotations

import json
import os
import sys

# name -> f(tf, keras, i, j) -> outputs; i, j: inputs of shape (batch, 3, 4)
FUNCTIONS = {
    "elementwise": lambda tf, k, i, j: [
        i + j, i - j, i * j, i / (tf.math.abs(j) + 1.0), -i, i ** 2, abs(i), 2.0 - i, 1.0 / (tf.math.abs(i) + 3.0),
        tf.math.add(i, 1.5), tf.math.subtract(i, j), tf.math.multiply(i, 0.5), tf.math.divide(i, 4.0),
        tf.math.maximum(i, 0.0), tf.math.minimum(i, j), tf.math.pow(tf.math.abs(i) + 1.0, 1.5)],
    "unary": lambda tf, k, i, j: [
        tf.math.exp(i), tf.math.log(tf.math.abs(i) + 1.0), tf.math.sqrt(tf.math.square(i) + 1.0), tf.math.tanh(i),
        tf.math.sign(i), tf.math.floor(i), tf.math.ceil(i), tf.math.sigmoid(i), tf.nn.sigmoid(j), tf.nn.relu(i),
        tf.nn.relu6(i * 4.0), tf.math.softplus(i), tf.nn.softplus(j), tf.nn.selu(i), tf.nn.elu(i),
        tf.nn.softmax(i), tf.nn.softmax(i, axis=1), tf.math.softmax(j, axis=-2)],
    "shape": lambda tf, k, i, j: [
        tf.reshape(i, (-1, 4, 3)), tf.reshape(i, (-1, 12)), tf.reshape(i, [-1]),  # batch kept, merged
        tf.reshape(tf.reshape(i, [-1]), (-1, 3, 4)),  # batch changed and back
        tf.transpose(i, [0, 2, 1]), tf.transpose(i, (1, 0, 2)),  # batch axis kept / moved
        tf.expand_dims(i, 1), tf.expand_dims(i, -1), tf.squeeze(tf.expand_dims(i, 2), axis=2),
        tf.squeeze(tf.expand_dims(i, -1), axis=[-1]), tf.concat([i, j], axis=-1), tf.concat([i, j, i], 1),
        tf.stack([i, j], axis=-1), tf.stack([i, j]), tf.tile(i, [1, 2, 1])],
    "slices": lambda tf, k, i, j: [
        i[:, 1:], i[:, ::-1], i[..., 0], i[:, None], i[:, 1], i[:, -1, 1:3], j[..., ::2], i[0]],
    "reduce": lambda tf, k, i, j: [
        tf.math.reduce_mean(i, axis=1), tf.math.reduce_sum(i, axis=-1, keepdims=True),
        tf.math.reduce_max(i, axis=[1, 2], keepdims=True), tf.math.reduce_min(i, -1), tf.math.reduce_mean(i),
        tf.clip_by_value(i, -0.5, 0.5), tf.linalg.matmul(i, tf.transpose(j, [0, 2, 1])),
        tf.cast(i, "float64"), tf.cast(i * 3.0, "int32")],
    "recurrent": lambda tf, k, i, j: [
        k.layers.Dense(2)(tf.math.tanh(k.layers.LSTM(5, return_sequences=True)(tf.transpose(i, [0, 2, 1]))[:, -1]
                                       * 2.0 + 1.0)),
        tf.reduce_sum(k.layers.GRU(3, return_sequences=True)(tf.concat([i, j], axis=-1)), axis=1)],
}

# TF functions lstmtool must refuse by name (no exact Keras 3 operation, or settings it cannot carry)
REFUSED = {
    "matmul_transposed": (lambda tf, k, i, j: [tf.linalg.matmul(i, j, transpose_b=True)], "transpose_b=True"),
    "squeeze_all": (lambda tf, k, i, j: [tf.squeeze(tf.expand_dims(i, 1))], "without an axis"),
    "cumsum": (lambda tf, k, i, j: [tf.math.cumsum(i, axis=1)], "tf.math.cumsum"),
    "step_back_2": (lambda tf, k, i, j: [i[:, ::-2]], "negative step"),
}

# TF 1.x raw ops: (op, [input: "i", "j", or a constant], attributes)
F, I32 = {"type": "DT_FLOAT"}, {"type": "DT_INT32"}
RAW = [
    ("Transpose", ["i", [0, 2, 1]], {"T": F, "Tperm": I32}),
    ("Reshape", ["i", [-1, 12]], {"T": F, "Tshape": I32}),
    ("AddV2", ["i", "j"], {"T": F}), ("Sub", ["i", 1.5], {"T": F}), ("Mul", [0.5, "j"], {"T": F}),
    ("RealDiv", ["i", 4.0], {"T": F}), ("Maximum", ["i", "j"], {"T": F}), ("Minimum", ["i", 0.0], {"T": F}),
    ("Relu", ["i"], {"T": F}), ("Relu6", ["i"], {"T": F}), ("Sigmoid", ["i"], {"T": F}), ("Tanh", ["i"], {"T": F}),
    ("Exp", ["i"], {"T": F}), ("Square", ["i"], {"T": F}), ("Neg", ["i"], {"T": F}), ("Abs", ["i"], {"T": F}),
    ("Softplus", ["i"], {"T": F}), ("Selu", ["i"], {"T": F}), ("Softmax", ["i"], {"T": F}),
    ("Mean", ["i", [1]], {"T": F, "Tidx": I32, "keep_dims": {"b": True}}),
    ("Sum", ["i", -1], {"T": F, "Tidx": I32, "keep_dims": {"b": False}}),
    ("Max", ["i", [1, 2]], {"T": F, "Tidx": I32, "keep_dims": {"b": False}}),
    ("Min", ["i", 2], {"T": F, "Tidx": I32, "keep_dims": {"b": True}}),
    ("ConcatV2", ["i", "j", -1], {"T": F, "Tidx": I32, "N": {"i": "2"}}),
    ("Pack", ["i", "j"], {"T": F, "N": {"i": "2"}, "axis": {"i": "1"}}),
    ("ExpandDims", ["i", 1], {"T": F, "Tdim": I32}),
    ("Tile", ["i", [1, 2, 1]], {"T": F, "Tmultiples": I32}),
    ("BatchMatMulV2", ["i", "jT"], {"T": F, "adj_x": {"b": False}, "adj_y": {"b": False}}),
    ("Cast", ["i"], {"SrcT": F, "DstT": {"type": "DT_DOUBLE"}, "Truncate": {"b": False}}),
]


def tfkeras_models(out, cases=FUNCTIONS):
    """One tf-keras .h5 per case: {name: path}."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    import tf_keras as k

    paths = {}
    for name, build in cases.items():
        build = build[0] if isinstance(build, tuple) else build
        tf.random.set_seed(len(name))
        i, j = k.Input((3, 4), name="i"), k.Input((3, 4), name="j")
        model = k.Model([i, j], build(tf, k, i, j), name=name)
        paths[name] = os.path.join(out, f"{name}.h5")
        model.save(paths[name], include_optimizer=False)
    return paths


def raw_models(out):
    """TF 1.x TensorFlowOpLayer models: a tf-keras Dense model (for real weights), its config
    rewritten to hold one TensorFlowOpLayer per op of RAW, each fed by the Dense output."""
    import h5py

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tf_keras as k

    i, j = k.Input((3, 4), name="i"), k.Input((3, 4), name="j")
    model = k.Model([i, j], [k.layers.Dense(4, name="dense")(i), j])
    path = os.path.join(out, "raw_ops.h5")
    model.save(path, include_optimizer=False)
    with h5py.File(path, "r+") as f:
        cfg = json.loads(f.attrs["model_config"])
        layers, outputs = cfg["config"]["layers"], []
        transposed = _raw_layer("jT", "Transpose", ["j", [0, 2, 1]], {"T": F, "Tperm": I32})
        layers.append(transposed)
        for n, (op, inputs, attrs) in enumerate(RAW):
            layer = _raw_layer(f"{op.lower()}_{n}", op, inputs, attrs)
            layers.append(layer)
            outputs.append([layer["name"], 0, 0])
        cfg["config"]["output_layers"] = outputs
        f.attrs["model_config"] = json.dumps(cfg)
    return path


def _raw_layer(name, op, inputs, attrs):
    sources = {"i": "dense", "j": "j", "jT": "tf_op_layer_jT"}
    node_inputs, constants, inbound = [], {}, []
    for k, value in enumerate(inputs):
        if isinstance(value, str):
            node_inputs.append(sources[value])
            inbound.append([sources[value], 0, 0, {}])
        else:
            node_inputs.append(f"{name}/c{k}")
            constants[str(k)] = value
    node_def = {"name": name, "op": op, "input": node_inputs, "attr": attrs}
    return {"class_name": "TensorFlowOpLayer", "name": f"tf_op_layer_{name}",
            "config": {"name": name, "trainable": True, "dtype": "float32", "node_def": node_def,
                       "constants": constants},
            "inbound_nodes": [inbound]}


if __name__ == "__main__":
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    print("\n".join([*tfkeras_models(out).values(), raw_models(out)]))
