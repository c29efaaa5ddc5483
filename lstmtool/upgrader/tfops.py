"""TF-op layers as Keras 3 operation nodes.

tf.keras records a TensorFlow function called on Keras tensors as a `TFOpLambda` (or
`SlicingOpLambda` for `x[...]`) layer: the function's name in its config, its arguments in
the inbound node. TF 1.x's tf.keras recorded a raw `TensorFlowOpLayer`: a NodeDef (op name,
attributes) and the constant inputs. Keras 3 cannot rebuild either, but a Keras 3 functional
model serializes `keras.ops` calls as nodes of their own (module `keras.src.ops.*`), which
every backend rebuilds. Each TF function or op with an exact Keras 3 operation is in one of
the two tables below; the others are refused by name. Nothing from the file is executed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

NUMPY, NN, CORE = "keras.src.ops.numpy", "keras.src.ops.nn", "keras.src.ops.core"
CLASSES = {"TFOpLambda", "SlicingOpLambda", "TensorFlowOpLayer"}
CONSTANT = "_CONSTANT_VALUE"


@dataclass(frozen=True)
class Op:
    module: str
    cls: str  # the Keras 3 operation class
    call: tuple  # TF argument names that become the call's positional arguments, in order
    settings: dict = field(default_factory=dict)  # TF argument -> Keras 3 constructor setting
    fixed: dict = field(default_factory=dict)  # constructor settings when TF leaves them unsaid
    ignored: dict = field(default_factory=dict)  # TF argument -> the values it may have (no effect)


NAME = {"name": (None,)}
_unary = lambda module, cls: Op(module, cls, ("x",), ignored=NAME)  # noqa: E731
_binary = lambda cls: Op(NUMPY, cls, ("x", "y"), ignored=NAME)  # noqa: E731
_reduce = lambda cls: Op(NUMPY, cls, ("x",), {"axis": "axis", "keepdims": "keepdims"},  # noqa: E731
                         {"axis": None, "keepdims": False}, NAME)

# tf.keras TFOpLambda: the `function` of its config (the TF API path without "tf.")
TF_FUNCTIONS = {
    "reshape": Op(NUMPY, "Reshape", ("x",), {"shape": "newshape"}, ignored=NAME),
    "compat.v1.transpose": Op(NUMPY, "Transpose", ("x",), {"perm": "axes"}, {"axes": None},
                              {"name": (None, "transpose"), "conjugate": (False,)}),
    "transpose": Op(NUMPY, "Transpose", ("x",), {"perm": "axes"}, {"axes": None},
                    {"name": (None, "transpose"), "conjugate": (False,)}),
    "__operators__.add": _binary("Add"), "math.add": _binary("Add"),
    "math.subtract": _binary("Subtract"), "math.multiply": _binary("Multiply"),
    "math.truediv": _binary("Divide"), "math.divide": _binary("Divide"),
    "math.maximum": _binary("Maximum"), "math.minimum": _binary("Minimum"), "math.pow": _binary("Power"),
    "math.exp": _unary(NUMPY, "Exp"), "math.log": _unary(NUMPY, "Log"), "math.sqrt": _unary(NUMPY, "Sqrt"),
    "math.square": _unary(NUMPY, "Square"), "math.abs": _unary(NUMPY, "Absolute"),
    "math.negative": _unary(NUMPY, "Negative"), "math.tanh": _unary(NUMPY, "Tanh"),
    "math.sign": _unary(NUMPY, "Sign"), "math.floor": _unary(NUMPY, "Floor"), "math.ceil": _unary(NUMPY, "Ceil"),
    "math.sigmoid": _unary(NN, "Sigmoid"), "nn.sigmoid": _unary(NN, "Sigmoid"), "nn.relu": _unary(NN, "Relu"),
    "nn.relu6": _unary(NN, "Relu6"), "math.softplus": _unary(NN, "Softplus"), "nn.softplus": _unary(NN, "Softplus"),
    "nn.selu": _unary(NN, "Selu"), "nn.elu": _unary(NN, "Elu"),
    "nn.softmax": Op(NN, "Softmax", ("x",), {"axis": "axis"}, {"axis": -1}, NAME),
    "math.softmax": Op(NN, "Softmax", ("x",), {"axis": "axis"}, {"axis": -1}, NAME),
    "math.reduce_mean": _reduce("Mean"), "math.reduce_sum": _reduce("Sum"),
    "math.reduce_max": _reduce("Max"), "math.reduce_min": _reduce("Min"),
    "concat": Op(NUMPY, "Concatenate", ("x",), {"axis": "axis"}, ignored=NAME),
    "stack": Op(NUMPY, "Stack", ("x",), {"axis": "axis"}, {"axis": 0}, NAME),
    "expand_dims": Op(NUMPY, "ExpandDims", ("x",), {"axis": "axis"}, ignored=NAME),
    "compat.v1.squeeze": Op(NUMPY, "Squeeze", ("x",), {"axis": "axis", "squeeze_dims": "axis"},
                            ignored=NAME),
    "clip_by_value": Op(NUMPY, "Clip", ("x",), {"clip_value_min": "x_min", "clip_value_max": "x_max"},
                        ignored=NAME),
    "linalg.matmul": Op(NUMPY, "Matmul", ("x", "b"), ignored={
        "name": (None,), "transpose_a": (False,), "transpose_b": (False,), "adjoint_a": (False,),
        "adjoint_b": (False,), "a_is_sparse": (False,), "b_is_sparse": (False,), "output_type": (None,)}),
    "cast": Op(CORE, "Cast", ("x",), {"dtype": "dtype"}, ignored=NAME),
    "tile": Op(NUMPY, "Tile", ("x",), {"multiples": "repeats"}, ignored=NAME),
    "__operators__.getitem": Op(NUMPY, "GetItem", ("x", "slice_spec")),
}

FLIP = Op(NUMPY, "Flip", ("x",), {"axis": "axis"})  # x[:, ::-1], see _flip_axis

# TF 1.x TensorFlowOpLayer: the NodeDef's `op`. `call` names the inputs by position: "x"
# (a tensor or a constant, a call argument), "*x" (all the tensors, one list argument), or
# a constructor setting taken from the constant at that position. `attrs`: NodeDef attribute
# -> setting.
@dataclass(frozen=True)
class RawOp:
    module: str
    cls: str
    call: tuple
    attrs: dict = field(default_factory=dict)
    fixed: dict = field(default_factory=dict)
    required: dict = field(default_factory=dict)  # attribute -> the value it must have


_raw_unary = lambda module, cls: RawOp(module, cls, ("x",))  # noqa: E731
_raw_binary = lambda cls: RawOp(NUMPY, cls, ("x", "x"))  # noqa: E731
_raw_reduce = lambda cls: RawOp(NUMPY, cls, ("x", "axis"), {"keep_dims": "keepdims"}, {"keepdims": False})
NO_TRANSPOSE = {"transpose_a": False, "transpose_b": False, "adj_x": False, "adj_y": False}
TF1_OPS = {
    "Transpose": RawOp(NUMPY, "Transpose", ("x", "axes")),
    "Reshape": RawOp(NUMPY, "Reshape", ("x", "newshape")),
    "AddV2": _raw_binary("Add"), "Add": _raw_binary("Add"), "Sub": _raw_binary("Subtract"),
    "Mul": _raw_binary("Multiply"), "RealDiv": _raw_binary("Divide"), "Maximum": _raw_binary("Maximum"),
    "Minimum": _raw_binary("Minimum"), "Pow": _raw_binary("Power"),
    "Relu": _raw_unary(NN, "Relu"), "Relu6": _raw_unary(NN, "Relu6"), "Sigmoid": _raw_unary(NN, "Sigmoid"),
    "Tanh": _raw_unary(NUMPY, "Tanh"), "Exp": _raw_unary(NUMPY, "Exp"), "Log": _raw_unary(NUMPY, "Log"),
    "Sqrt": _raw_unary(NUMPY, "Sqrt"), "Square": _raw_unary(NUMPY, "Square"), "Neg": _raw_unary(NUMPY, "Negative"),
    "Abs": _raw_unary(NUMPY, "Absolute"), "Softplus": _raw_unary(NN, "Softplus"), "Selu": _raw_unary(NN, "Selu"),
    "Softmax": RawOp(NN, "Softmax", ("x",), fixed={"axis": -1}),
    "Mean": _raw_reduce("Mean"), "Sum": _raw_reduce("Sum"), "Max": _raw_reduce("Max"), "Min": _raw_reduce("Min"),
    "ConcatV2": RawOp(NUMPY, "Concatenate", ("*x", "axis")),
    "Pack": RawOp(NUMPY, "Stack", ("*x",), {"axis": "axis"}, {"axis": 0}),
    "ExpandDims": RawOp(NUMPY, "ExpandDims", ("x", "axis")),
    "Squeeze": RawOp(NUMPY, "Squeeze", ("x",), {"squeeze_dims": "axis"}),
    "MatMul": RawOp(NUMPY, "Matmul", ("x", "x"), required=NO_TRANSPOSE),
    "BatchMatMulV2": RawOp(NUMPY, "Matmul", ("x", "x"), required=NO_TRANSPOSE),
    "Cast": RawOp(CORE, "Cast", ("x",), {"DstT": "dtype"}),
    "Tile": RawOp(NUMPY, "Tile", ("x", "repeats")),
}
DTYPES = {"DT_FLOAT": "float32", "DT_DOUBLE": "float64", "DT_HALF": "float16", "DT_INT32": "int32",
          "DT_INT64": "int64", "DT_BOOL": "bool", "DT_BFLOAT16": "bfloat16"}


class Untranslatable(Exception):
    """The reason, in a phrase; the caller names the layer."""


def translate(d, names, shifted) -> tuple:
    """(Keras 3 operation node, what was done) for one TF-op layer config `d`. `names`: every
    layer name of the model (a 3-list [name, node, tensor] in TF arguments is a tensor only if
    it names one); `shifted`: nested models whose node numbers drop by one in Keras 3."""
    cls, cfg = d.get("class_name"), d.get("config") or {}
    name = d.get("name") or cfg.get("name")  # TF 1.x: the layer is tf_op_layer_<node name>
    nodes = d.get("inbound_nodes") or []
    if len(nodes) != 1:
        raise Untranslatable(f"called {len(nodes)} times (a TF op layer is called once)")
    if cls == "TensorFlowOpLayer":
        op, settings, args, what = _raw(cfg, nodes[0], shifted)
    else:
        op, settings, args, what = _function(cfg, nodes[0], names, shifted)
    node = {"module": op.module, "class_name": op.cls, "config": {"name": name, **settings},
            "registered_name": op.cls, "name": name, "inbound_nodes": [{"args": args, "kwargs": {}}]}
    return node, f"{what} -> keras.ops {op.cls}" + (f"({_shown(settings)})" if settings else "")


def _function(cfg, node, names, shifted):
    fn = cfg.get("function")
    op = TF_FUNCTIONS.get(fn)
    if op is None:
        raise Untranslatable(f"tf.{fn} has no exact Keras 3 operation in lstmtool's table")
    if node and isinstance(node[0], str):
        node = [node]  # newer tf.keras writes a one-input node as its entry alone
    entries = [e for e in node if isinstance(e, list) and len(e) >= 3]
    if not entries or len(entries) != len(node):
        raise Untranslatable(f"tf.{fn}: its inbound node is not in tf.keras' form")
    # ["_CONSTANT_VALUE", -1, value, kwargs]: tf.keras' record of a constant first argument (2.0 - x)
    first = [e[2] if e[0] == CONSTANT else _tensor(e, shifted) for e in entries]
    first = first[0] if len(first) == 1 else first
    given = dict(entries[0][3]) if len(entries[0]) > 3 and isinstance(entries[0][3], dict) else {}
    if fn == "__operators__.getitem":
        flipped = _flip_axis(given.get("slice_spec"))
        if flipped is not None:  # x[:, ::-1]: Keras 3's torch backend takes no negative step; a flip is exact
            op, given = FLIP, {"axis": flipped}
    settings = dict(op.fixed)
    args = [first]
    for key in op.call[1:]:
        if key not in given:
            raise Untranslatable(f"tf.{fn}: argument {key!r} is not in the file")
        value = given.pop(key)
        args.append(_slices(value, fn) if key == "slice_spec" else _value(value, names, shifted, fn))
    for key, value in given.items():
        if key in op.settings:
            if _has_tensor(value, names):
                raise Untranslatable(f"tf.{fn}: {key} is computed by the model (a tensor); Keras 3 takes a constant")
            settings[op.settings[key]] = value
        elif key in op.ignored and _plain(value) in op.ignored[key]:
            continue
        else:
            raise Untranslatable(f"tf.{fn}: argument {key}={_shown1(value)} has no Keras 3 equivalent here")
    _check(op.cls, settings, f"tf.{fn}")
    return op, settings, args, f"tf.{fn}"


def _raw(cfg, node, shifted):
    nd = cfg.get("node_def") or {}
    name = nd.get("op")
    op = TF1_OPS.get(name)
    if op is None:
        raise Untranslatable(f"TF op {name} has no exact Keras 3 operation in lstmtool's table")
    constants = {int(k): v for k, v in (cfg.get("constants") or {}).items()}
    tensors = [_tensor(e, shifted) for e in node]
    count = len(nd.get("input") or []) or len(tensors) + len(constants)
    inputs, t = [], iter(tensors)
    for k in range(count):
        inputs.append(("const", constants[k]) if k in constants else ("tensor", next(t, None)))
    if any(v is None for kind, v in inputs if kind == "tensor") or next(t, None) is not None:
        raise Untranslatable(f"TF op {name}: its inputs and the layer's inbound tensors do not agree")
    attrs = nd.get("attr") or {}
    for key, want in op.required.items():
        if key in attrs and _attr(attrs[key]) != want:
            raise Untranslatable(f"TF op {name} with {key}={_attr(attrs[key])} has no Keras 3 equivalent here")
    settings, args = dict(op.fixed), []
    roles = list(op.call)
    if roles[0] == "*x":
        rest = roles[1:]
        many, tail = inputs[: len(inputs) - len(rest)], inputs[len(inputs) - len(rest):]
        if any(kind != "tensor" for kind, _ in many):
            raise Untranslatable(f"TF op {name}: a constant among the joined tensors")
        args.append([v for _, v in many])
        pairs = zip(rest, tail)
    else:
        if len(roles) != len(inputs):
            raise Untranslatable(f"TF op {name}: {len(inputs)} inputs where {len(roles)} are expected")
        pairs = zip(roles, inputs)
    for role, (kind, value) in pairs:
        if role == "x":
            args.append(value)
        elif kind != "const":
            raise Untranslatable(f"TF op {name}: its {role} is computed by the model; Keras 3 takes a constant")
        else:
            settings[role] = value
    for key, setting in op.attrs.items():
        if key in attrs:
            value = _attr(attrs[key])
            settings[setting] = DTYPES.get(value, value) if key == "DstT" else value
    if "dtype" in settings and settings["dtype"] not in DTYPES.values():
        raise Untranslatable(f"TF op {name}: dtype {settings['dtype']} unknown")
    _check(op.cls, settings, f"TF op {name}")
    return op, settings, args, f"TF op {name}"


def _check(cls, settings, what):
    if cls == "Squeeze" and settings.get("axis") in (None, []):
        raise Untranslatable(f"{what} without an axis squeezes every size-1 axis, the batch axis of a batch of one "
                             "included; name the axis")
    if cls == "Squeeze" and isinstance(settings.get("axis"), list):
        settings["axis"] = settings["axis"][0] if len(settings["axis"]) == 1 else tuple(settings["axis"])
    if cls == "Clip" and not all(isinstance(settings.get(k), (int, float)) for k in ("x_min", "x_max")):
        raise Untranslatable(f"{what}: clip bounds that are not numbers")
    if cls == "Softmax" and settings.get("axis") is None:
        settings["axis"] = -1  # tf.nn.softmax(axis=None) is the last axis


def _attr(value):
    """A NodeDef AttrValue as plain data: {"b": true} -> True, {"list": {"i": [1]}} -> [1]."""
    if not isinstance(value, dict) or len(value) != 1:
        return value
    (kind, v), = value.items()
    if kind == "list":
        return [int(x) for x in (v or {}).get("i", [])]
    return int(v) if kind == "i" else v


def _tensor(entry, shifted):
    # the shape is a placeholder: Keras 3 takes the real tensor from keras_history
    layer, index, tensor = entry[0], int(entry[1]), int(entry[2])
    if layer in shifted and index > 0:
        index -= 1
    return {"class_name": "__keras_tensor__",
            "config": {"shape": [], "dtype": "float32", "keras_history": [layer, index, tensor]}}


def _is_ref(value, names):
    return (isinstance(value, list) and len(value) == 3 and isinstance(value[0], str) and value[0] in names
            and all(isinstance(v, int) for v in value[1:]))


def _has_tensor(value, names):
    if _is_ref(value, names):
        return True
    return isinstance(value, (list, dict)) and any(
        _has_tensor(v, names) for v in (value.values() if isinstance(value, dict) else value))


def _value(value, names, shifted, fn):
    if _is_ref(value, names):
        return _tensor(value, shifted)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if isinstance(value, list) and not _has_tensor(value, names):
        return value  # a constant array
    raise Untranslatable(f"tf.{fn}: an argument of an unknown kind ({_shown1(value)})")


def _slices(spec, fn):
    """tf.keras' slice_spec (ints and {start, stop, step}) as Keras 3's GetItem key."""
    items = spec if isinstance(spec, list) else [spec]
    key = []
    for item in items:
        if isinstance(item, dict) and set(item) <= {"start", "stop", "step"} and \
                all(v is None or isinstance(v, int) for v in item.values()):
            if (item.get("step") or 1) < 0:
                raise Untranslatable(f"tf.{fn}: a slice with a negative step other than a whole-axis [::-1] "
                                     "(Keras 3's torch backend cannot slice so)")
            key.append({"class_name": "__slice__", "config": {k: item.get(k) for k in ("start", "stop", "step")}})
        elif isinstance(item, int) and not isinstance(item, bool) or item is None:
            key.append(item)  # an index, or None: a new axis of size 1
        elif item == {"class_name": "__ellipsis__"}:
            key.append({"class_name": "__ellipsis__", "config": {}})
        else:
            raise Untranslatable(f"tf.{fn}: a slice of a kind Keras 3 does not take here ({_shown1(item)})")
    return key


def _flip_axis(spec):
    """The axis of a slice_spec that only reverses one axis (x[:, ::-1]), else None."""
    items = spec if isinstance(spec, list) else [spec]
    full = {"start": None, "stop": None, "step": None}
    flips = [k for k, item in enumerate(items) if item == {**full, "step": -1}]
    if len(flips) == 1 and all(item == full for k, item in enumerate(items) if k != flips[0]):
        return flips[0]
    return None


def _plain(value):
    return tuple(value) if isinstance(value, list) else value


def _shown1(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _shown(settings) -> str:
    return ", ".join(f"{k}={_shown1(v)}" for k, v in settings.items())
