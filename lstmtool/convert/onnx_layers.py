"""Keras 3 layers as ONNX operators: one table, LAYERS, class name -> emitter.

An emitter gets the builder, the layer path, its config, its input tensor names and its
weights (Keras 3's order) and returns its output tensor names, as Keras lists them. Layers
not in the table, and settings an emitter cannot compute exactly, are refused by name.
"""
from __future__ import annotations


import numpy as np

from . import onnx_recurrent as rnn
from .errors import Unconvertible
from .onnx_activations import activation, scalar as _scalar

IDENTITY = {"Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise",
            "GaussianDropout", "AlphaDropout", "ActivityRegularization"}  # inference: the input itself
RECURRENT = {"LSTM", "GRU", "SimpleRNN", "RNN"}
MERGES = {"Add": "Sum", "Multiply": "Mul", "Average": "Mean", "Maximum": "Max", "Minimum": "Min"}
# layers that hand their input's Keras mask on unchanged (they act on each step alone)
MASK_PASS = IDENTITY | {"Activation", "Dense", "BatchNormalization", "LayerNormalization", "ReLU", "LeakyReLU", "ELU",
                        "Softmax", "Rescaling", "PReLU"}
MASK_USERS = RECURRENT | {"Bidirectional", "TimeDistributed"}  # they take the mask themselves
REFUSED = {"Lambda": "a Lambda layer holds Python code, which lstmtool never runs",
           "ConvLSTM1D": "ConvLSTM has no ONNX operator", "ConvLSTM2D": "ConvLSTM has no ONNX operator",
           "ConvLSTM3D": "ConvLSTM has no ONNX operator"}


def _one(path, inputs):
    if len(inputs) != 1:
        raise Unconvertible(f"layer {path!r}: called with {len(inputs)} inputs where it takes one")
    return inputs[0]


def dense(b, path, cfg, inputs, arrays, **_):
    x = _one(path, inputs)
    y = b.op("MatMul", [x, b.const(f"{path}/kernel", arrays[0])], path, rank=b.rank.get(x))
    if cfg.get("use_bias", True) and len(arrays) > 1:
        y = b.op("Add", [y, b.const(f"{path}/bias", arrays[1])], path, rank=b.rank.get(x))
    return [activation(b, cfg.get("activation"), y, path)]


def activation_layer(b, path, cfg, inputs, arrays, **_):
    return [activation(b, cfg.get("activation"), _one(path, inputs), path)]


def identity(b, path, cfg, inputs, arrays, **_):
    return [_one(path, inputs)]


def relu_layer(b, path, cfg, inputs, arrays, **_):
    """Keras 3's relu(x, negative_slope, max_value, threshold), term by term."""
    x = _one(path, inputs)
    r = b.rank.get(x)
    slope, top, threshold = float(cfg.get("negative_slope") or 0), cfg.get("max_value"), float(cfg.get("threshold") or 0)
    if threshold:
        y = b.op("Mul", [x, b.op("Cast", [b.op("Greater", [x, _scalar(b, path, threshold)], path, rank=r)], path,
                                 rank=r, to=1)], path, rank=r)
    else:
        y = b.op("Relu", [x], path, rank=r)
    if top is not None:
        y = b.op("Clip", [y, _scalar(b, path, 0.0), _scalar(b, path, float(top))], path, rank=r)
    if slope:
        negative = b.op("Relu", [b.op("Sub", [_scalar(b, path, threshold), x], path, rank=r)], path, rank=r)
        y = b.op("Sub", [y, b.op("Mul", [negative, _scalar(b, path, slope)], path, rank=r)], path, rank=r)
    return [y]


def prelu(b, path, cfg, inputs, arrays, **_):
    x = _one(path, inputs)
    return [b.op("PRelu", [x, b.const(f"{path}/alpha", arrays[0])], path, rank=b.rank.get(x))]


def rescaling(b, path, cfg, inputs, arrays, **_):
    x = _one(path, inputs)
    r = b.rank.get(x)
    y = b.op("Mul", [x, b.const(f"{path}/scale", np.asarray(cfg.get("scale", 1.0), dtype=np.float32))], path, rank=r)
    return [b.op("Add", [y, b.const(f"{path}/offset", np.asarray(cfg.get("offset", 0.0), dtype=np.float32))], path,
                 rank=r)]


def leaky_relu(b, path, cfg, inputs, arrays, **_):
    x = _one(path, inputs)
    return [b.op("LeakyRelu", [x], path, rank=b.rank.get(x), alpha=float(cfg.get("negative_slope", 0.3)))]


def elu_layer(b, path, cfg, inputs, arrays, **_):
    x = _one(path, inputs)
    return [b.op("Elu", [x], path, rank=b.rank.get(x), alpha=float(cfg.get("alpha", 1.0)))]


def softmax_layer(b, path, cfg, inputs, arrays, **_):
    x = _one(path, inputs)
    axis = cfg.get("axis", -1)
    if isinstance(axis, list):
        if len(axis) != 1:
            raise Unconvertible(f"layer {path!r}: softmax over several axes")
        axis = axis[0]
    return [b.op("Softmax", [x], path, rank=b.rank.get(x), axis=int(axis))]


def embedding(b, path, cfg, inputs, arrays, **_):
    x = _one(path, inputs)
    ids = b.op("Cast", [x], f"{path}/ids", rank=b.rank.get(x), to=7)  # int64
    y = b.op("Gather", [b.const(f"{path}/embeddings", arrays[0]), ids], path, rank=(b.rank.get(x) or 2) + 1)
    if cfg.get("mask_zero"):  # Keras: id 0 is padding
        b.masks[y] = b.op("Not", [b.op("Equal", [ids, b.ints(f"{path}/pad", 0)], f"{path}/pad", rank=2)],
                          f"{path}/mask", rank=2)
    return [y]


def masking(b, path, cfg, inputs, arrays, **_):
    """Keras: a step is padding when every feature equals mask_value; padding steps become 0."""
    x = _one(path, inputs)
    if b.rank.get(x) != 3:
        raise Unconvertible(f"layer {path!r}: Masking of a tensor that is not [batch, steps, features]")
    value = _scalar(b, path, float(cfg.get("mask_value", 0.0)))
    differs = b.op("Cast", [b.op("Not", [b.op("Equal", [x, value], f"{path}/eq", rank=3)], f"{path}/ne", rank=3)],
                   f"{path}/ne_int", rank=3, to=6)
    mask = b.op("Cast", [b.reduce("ReduceMax", differs, [2], f"{path}/any", rank=2)], f"{path}/mask", rank=2, to=9)
    keep = b.op("Cast", [b.unsqueeze(mask, [2], f"{path}/mask3", rank=3)], f"{path}/keep", rank=3, to=1)
    y = b.op("Mul", [x, keep], path, rank=3)
    b.masks[y] = mask
    return [y]


def flatten(b, path, cfg, inputs, arrays, **_):
    return [b.op("Flatten", [_one(path, inputs)], path, rank=2, axis=1)]


def reshape(b, path, cfg, inputs, arrays, **_):
    target = [int(d) if d is not None else -1 for d in cfg["target_shape"]]
    return [b.op("Reshape", [_one(path, inputs), b.ints(f"{path}/shape", [0] + target)], path,
                 rank=len(target) + 1)]


def permute(b, path, cfg, inputs, arrays, **_):
    x = _one(path, inputs)
    return [b.op("Transpose", [x], path, rank=b.rank.get(x), perm=[0] + [int(d) for d in cfg["dims"]])]


def repeat_vector(b, path, cfg, inputs, arrays, **_):
    x = b.unsqueeze(_one(path, inputs), [1], path, rank=3)
    return [b.op("Expand", [x, b.ints(f"{path}/shape", [1, int(cfg["n"]), 1])], path, rank=3)]


def concatenate(b, path, cfg, inputs, arrays, **_):
    return [b.op("Concat", list(inputs), path, rank=b.rank.get(inputs[0]), axis=int(cfg.get("axis", -1)))]


def merge(op):
    def emit(b, path, cfg, inputs, arrays, **_):
        return [b.op(op, list(inputs), path, rank=max(b.rank.get(i) or 0 for i in inputs) or None)]
    return emit


def subtract(b, path, cfg, inputs, arrays, **_):
    if len(inputs) != 2:
        raise Unconvertible(f"layer {path!r}: Subtract of {len(inputs)} inputs")
    return [b.op("Sub", list(inputs), path, rank=b.rank.get(inputs[0]))]


def dot(b, path, cfg, inputs, arrays, **_):
    """Keras' Dot: a batch dot product over one axis of each input (rank 2 or 3)."""
    if len(inputs) != 2:
        raise Unconvertible(f"layer {path!r}: Dot of {len(inputs)} inputs")
    x, y = inputs
    rx, ry = b.rank.get(x), b.rank.get(y)
    axes = cfg.get("axes", -1)
    ax, ay = (axes, axes) if isinstance(axes, int) else (int(axes[0]), int(axes[1]))
    ax, ay = ax % (rx or 1), ay % (ry or 1)
    if (rx, ry) == (2, 2) and ax == ay == 1:
        equation, rank = "nd,nd->n", 1
    elif (rx, ry) == (3, 3) and ax in (1, 2) and ay in (1, 2):
        equation, rank = ("nid" if ax == 2 else "ndi") + "," + ("njd" if ay == 2 else "ndj") + "->nij", 3
    else:
        raise Unconvertible(f"layer {path!r}: Dot of ranks {rx}, {ry} over axes {axes} is not converted yet")
    if cfg.get("normalize"):  # Keras: x / sqrt(max(sum(x**2), 1e-12)) along the dot axis
        def l2(t, axis, r):
            ss = b.reduce("ReduceSumSquare", t, [axis], f"{path}/l2", keepdims=1, rank=r)
            norm = b.op("Sqrt", [b.op("Max", [ss, _scalar(b, path, 1e-12)], f"{path}/l2", rank=r)], f"{path}/l2", rank=r)
            return b.op("Div", [t, norm], f"{path}/l2", rank=r)
        x, y = l2(x, ax, rx), l2(y, ay, ry)
    out = b.op("Einsum", [x, y], path, rank=rank, equation=equation)
    return [b.unsqueeze(out, [1], path, rank=2) if rank == 1 else out]


def _channel_axis(b, path, x, axis):
    r = b.rank.get(x)
    axes = axis if isinstance(axis, list) else [axis]
    if len(axes) != 1 or r is None:
        raise Unconvertible(f"layer {path!r}: normalization over axes {axis} of a tensor of unknown rank")
    a = axes[0] % r
    return a, r


def batch_norm(b, path, cfg, inputs, arrays, **_):
    x = _one(path, inputs)
    a, r = _channel_axis(b, path, x, cfg.get("axis", -1))
    arrays = list(arrays)
    gamma = arrays.pop(0) if cfg.get("scale", True) else None
    beta = arrays.pop(0) if cfg.get("center", True) else None
    mean, var = arrays[0].astype(np.float64), arrays[1].astype(np.float64)
    # inference: y = (x - mean) / sqrt(var + eps) * gamma + beta, folded into y = x * s + t
    s = 1.0 / np.sqrt(var + float(cfg.get("epsilon", 1e-3)))
    if gamma is not None:
        s = s * gamma
    t = -mean * s + (beta if beta is not None else 0.0)
    shape = [-1] + [1] * (r - 1 - a)  # broadcast along the channel axis
    y = b.op("Mul", [x, b.const(f"{path}/scale", s.astype(np.float32).reshape(shape))], path, rank=r)
    return [b.op("Add", [y, b.const(f"{path}/shift", t.astype(np.float32).reshape(shape))], path, rank=r)]


def layer_norm(b, path, cfg, inputs, arrays, **_):
    x = _one(path, inputs)
    a, r = _channel_axis(b, path, x, cfg.get("axis", -1))
    if a != r - 1 or cfg.get("rms_scaling"):
        raise Unconvertible(f"layer {path!r}: LayerNormalization over an axis but the last, or rms_scaling")
    arrays = list(arrays)
    gamma = arrays.pop(0) if cfg.get("scale", True) else None
    beta = arrays.pop(0) if cfg.get("center", True) else None
    n = (gamma if gamma is not None else beta)
    if n is None:
        raise Unconvertible(f"layer {path!r}: LayerNormalization without scale or center (its width is unknown)")
    gamma = gamma if gamma is not None else np.ones_like(beta)
    ins = [x, b.const(f"{path}/gamma", gamma)] + ([b.const(f"{path}/beta", beta)] if beta is not None else [])
    return [b.op("LayerNormalization", ins, path, rank=r, axis=-1, epsilon=float(cfg.get("epsilon", 1e-3)))]


def _channels_last(path, cfg):
    if cfg.get("data_format", "channels_last") != "channels_last":
        raise Unconvertible(f"layer {path!r}: data_format={cfg.get('data_format')} is not converted yet")


def _single(value):
    return int(value[0] if isinstance(value, (list, tuple)) else value)


def conv1d(b, path, cfg, inputs, arrays, **_):
    _channels_last(path, cfg)
    x = b.op("Transpose", [_one(path, inputs)], f"{path}/channels_first", rank=3, perm=[0, 2, 1])
    k, s, d = _single(cfg["kernel_size"]), _single(cfg.get("strides", 1)), _single(cfg.get("dilation_rate", 1))
    groups = int(cfg.get("groups", 1))
    attrs = {"kernel_shape": [k], "strides": [s], "dilations": [d], "group": groups}
    padding = cfg.get("padding", "valid")
    if padding == "causal":
        attrs["pads"] = [d * (k - 1), 0]
    elif padding == "same" and s == 1:  # TensorFlow's rule: the odd step of padding after
        total = d * (k - 1)
        attrs["pads"] = [total // 2, total - total // 2]
    elif padding == "same":
        attrs["auto_pad"] = "SAME_UPPER"  # strided: the padding depends on the length (TF forbids dilation here)
    else:
        attrs["pads"] = [0, 0]
    ins = [x, b.const(f"{path}/kernel", np.transpose(arrays[0], (2, 1, 0)))]
    if cfg.get("use_bias", True) and len(arrays) > 1:
        ins.append(b.const(f"{path}/bias", arrays[1]))
    y = b.op("Conv", ins, path, rank=3, **attrs)
    y = b.op("Transpose", [y], f"{path}/channels_last", rank=3, perm=[0, 2, 1])
    return [activation(b, cfg.get("activation"), y, path)]


def pool1d(op):
    def emit(b, path, cfg, inputs, arrays, **_):
        _channels_last(path, cfg)
        x = b.op("Transpose", [_one(path, inputs)], f"{path}/channels_first", rank=3, perm=[0, 2, 1])
        k = _single(cfg.get("pool_size", 2))
        s = _single(cfg.get("strides") or k)
        attrs = {"kernel_shape": [k], "strides": [s]}
        attrs["auto_pad"] = "SAME_UPPER" if cfg.get("padding", "valid") == "same" else "VALID"
        if op == "AveragePool":
            attrs["count_include_pad"] = 0  # Keras averages over the real steps only
        y = b.op(op, [x], path, rank=3, **attrs)
        return [b.op("Transpose", [y], f"{path}/channels_last", rank=3, perm=[0, 2, 1])]
    return emit


def global_pool1d(op):
    def emit(b, path, cfg, inputs, arrays, **_):
        _channels_last(path, cfg)
        keep = bool(cfg.get("keepdims", False))
        return [b.reduce(op, _one(path, inputs), [1], path, keepdims=int(keep), rank=3 if keep else 2)]
    return emit


def _pair(value):
    return (int(value), int(value)) if isinstance(value, int) else (int(value[0]), int(value[1]))


def cropping1d(b, path, cfg, inputs, arrays, **_):
    start, end = _pair(cfg.get("cropping", (1, 1)))
    stop = -end if end else 2 ** 62
    return [b.op("Slice", [_one(path, inputs), b.ints(f"{path}/start", [start]), b.ints(f"{path}/end", [stop]),
                           b.ints(f"{path}/axis", [1])], path, rank=3)]


def zero_padding1d(b, path, cfg, inputs, arrays, **_):
    before, after = _pair(cfg.get("padding", (1, 1)))
    return [b.op("Pad", [_one(path, inputs), b.ints(f"{path}/pads", [0, before, 0, 0, after, 0])], path, rank=3)]


def recurrent(b, path, cfg, inputs, arrays, cls=None, states=(), weights=None, flip_output=False, zero_masked=False,
              **_):
    x = _one(path, inputs)
    if cls == "RNN":
        cell = cfg["cell"]
        if cell.get("class_name") == "StackedRNNCells":
            subs = cell["config"]["cells"]
            cells = [(c["class_name"], c["config"], weights(f"{path}/cell_{k}"), f"{path}/cell_{k}")
                     for k, c in enumerate(subs)]
        else:
            cells = [(cell["class_name"], cell["config"], weights(path), path)]
    else:
        cells = [(cls, cfg, weights(path), path)]
    return rnn.run_layer(b, path, cls, cfg, cells, x, list(states), flip_output=flip_output, mask=b.masks.get(x),
                         zero_masked=zero_masked)


def bidirectional(b, path, cfg, inputs, arrays, states=(), weights=None, **_):
    x = _one(path, inputs)
    forward = cfg["layer"]
    backward = cfg.get("backward_layer")
    if backward is None:  # Keras builds it from the forward config, go_backwards flipped
        backward = {"class_name": forward["class_name"],
                    "config": {**forward["config"], "go_backwards": not forward["config"].get("go_backwards", False)}}
    halves = []
    states = list(states)
    for half, sub, flip in (("forward", forward, False), ("backward", backward, True)):
        n = len(states) // 2
        mine, states = (states[:n], states[n:]) if n else ([], states)
        halves.append(recurrent(b, f"{path}/{half}", sub["config"], [x], None, cls=sub["class_name"], states=mine,
                                weights=weights, flip_output=flip and sub["config"].get("return_sequences"),
                                zero_masked=True))  # Keras' Bidirectional zeroes its halves' padded steps
    (y, *fs), (y_rev, *bs) = halves
    mode = cfg.get("merge_mode", "concat")
    r = b.rank.get(y)
    if mode == "concat":
        out = [b.op("Concat", [y, y_rev], path, rank=r, axis=-1)]
    elif mode == "sum":
        out = [b.op("Add", [y, y_rev], path, rank=r)]
    elif mode == "mul":
        out = [b.op("Mul", [y, y_rev], path, rank=r)]
    elif mode == "ave":
        out = [b.op("Mul", [b.op("Add", [y, y_rev], path, rank=r), _scalar(b, path, 0.5)], path, rank=r)]
    elif mode is None:
        out = [y, y_rev]
    else:
        raise Unconvertible(f"layer {path!r}: merge_mode={mode}")
    if b.masks.get(y) is not None:
        for o in out:
            b.masks[o] = b.masks[y]
    return out + fs + bs


def time_distributed(b, path, cfg, inputs, arrays, weights=None, **_):
    inner = cfg["layer"]
    cls = inner["class_name"]
    x = _one(path, inputs)
    if cls in ("Dense", "Activation") or cls in IDENTITY:  # they act on the last axis alone
        outs = LAYERS[cls](b, path, inner["config"], [x], weights(path))
        if b.masks.get(x) is not None:
            b.masks[outs[0]] = b.masks[x]
        return outs
    if b.masks.get(x) is not None:
        raise Unconvertible(f"layer {path!r}: TimeDistributed({cls}) of a masked input is not converted yet")
    if cls not in RECURRENT:
        raise Unconvertible(f"layer {path!r}: TimeDistributed({cls}) is not converted yet")
    # [N, T, *rest] -> [N*T, *rest] -> the layer -> [N, T, *out]
    r = b.rank.get(x)
    shape = b.op("Shape", [x], f"{path}/shape", rank=1)
    rest = b.op("Slice", [shape, b.ints(f"{path}/two", [2]), b.ints(f"{path}/end", [r])], f"{path}/rest", rank=1)
    flat = b.op("Reshape", [x, b.op("Concat", [b.ints(f"{path}/minus1", [-1]), rest], f"{path}/flat_shape", rank=1,
                                    axis=0)], f"{path}/flat", rank=r - 1)
    ys = recurrent(b, path, inner["config"], [flat], None, cls=cls, weights=weights)
    if len(ys) != 1:
        raise Unconvertible(f"layer {path!r}: TimeDistributed over a layer returning states")
    y = ys[0]
    ry = b.rank.get(y)
    lead = b.op("Slice", [shape, b.ints(f"{path}/zero", [0]), b.ints(f"{path}/two2", [2])], f"{path}/lead", rank=1)
    tail = b.op("Slice", [b.op("Shape", [y], f"{path}/yshape", rank=1), b.ints(f"{path}/one", [1]),
                          b.ints(f"{path}/yend", [ry])], f"{path}/tail", rank=1)
    return [b.op("Reshape", [y, b.op("Concat", [lead, tail], f"{path}/out_shape", rank=1, axis=0)], path, rank=ry + 1)]


LAYERS = {
    "Dense": dense, "Activation": activation_layer, "ReLU": relu_layer, "PReLU": prelu, "Rescaling": rescaling, "LeakyReLU": leaky_relu, "ELU": elu_layer,
    "Softmax": softmax_layer, "Embedding": embedding, "Flatten": flatten, "Reshape": reshape, "Permute": permute,
    "RepeatVector": repeat_vector, "Concatenate": concatenate, "Subtract": subtract, "Dot": dot,
    "BatchNormalization": batch_norm, "LayerNormalization": layer_norm, "Conv1D": conv1d,
    "MaxPooling1D": pool1d("MaxPool"), "AveragePooling1D": pool1d("AveragePool"),
    "GlobalAveragePooling1D": global_pool1d("ReduceMean"), "GlobalMaxPooling1D": global_pool1d("ReduceMax"),
    "Cropping1D": cropping1d, "ZeroPadding1D": zero_padding1d, "Bidirectional": bidirectional, "Masking": masking,
    "TimeDistributed": time_distributed,
    **{c: identity for c in IDENTITY}, **{c: merge(op) for c, op in MERGES.items()},
    **{c: recurrent for c in RECURRENT},
}
