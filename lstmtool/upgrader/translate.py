"""Keras 1/2/3 model configs -> Keras 3's serialization, driven by upgrade_table.

`model_config(raw, keras_major)` returns the Keras 3 `config.json` document and
one `Step` per layer saying what changed. Anything the table does not know is
refused with its name: a translation that guesses is worse than none.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field

from . import table as T
from ..core.config import MODEL_CLASSES
from ..errors import UsageError
from .activations import check_activations, recurrent_settings, rescaled_hard_sigmoid
from .translate_facts import CELLS, GATED, RECURRENT, SCALABLE, SIGMOID_GATES, Refused  # noqa: F401 - re-exported
from .objects import DROP, Untranslatable, translate_value

MAX_DEPTH = 64
TF_OP_CLASSES = {"TFOpLambda", "SlicingOpLambda", "TensorFlowOpLayer"}  # tfops.CLASSES (asserted in its tests)


@dataclass
class Step:
    path: str  # lstmtool layer path
    class_from: str
    class_to: str
    changes: list = field(default_factory=list)
    scaled: bool = False  # hard_sigmoid kept exact by scaling the gates by 1.2
    scaled_gates: list = field(default_factory=list)  # which: i, f, o / z, r, and h where activation is it


@dataclass
class Context:
    keras_major: int  # of the config
    weights_major: int  # of the weights: Keras 1/2 weights mean 0.2x+0.5 where a config says hard_sigmoid
    steps: list = field(default_factory=list)
    backend: str = None
    replace: dict = field(default_factory=dict)  # layer name or path -> "package>Class" (--replace)
    replaced: set = field(default_factory=set)
    masked: bool = False  # a Masking layer or an Embedding(mask_zero=True) came before


def model_config(raw: dict, keras_major, weights_major=None, backend=None, replace=None) -> tuple:
    """`backend`: what the weights were trained with ("theano" changes padding rules).
    `replace`: {layer name or path: "package>Class"}, registered Keras 3 classes the user names
    for Lambda or custom layers (their weights are carried over in stored order)."""
    ctx = Context(keras_major or 2, weights_major or keras_major or 2, backend=(backend or "").lower() or None,
                  replace=dict(replace or {}))
    cls = raw.get("class_name")
    if cls not in MODEL_CLASSES:
        raise Refused(f"the file's top-level object is a {cls}, not a model")
    out = _model(raw, "", ctx, 0)
    try:  # a damaged config's undecodable bytes arrive as lone surrogates, which no file can hold
        json.dumps(out, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise Refused("the model config holds text that is not valid UTF-8 (a damaged file?); nothing written") \
            from None
    unused = [k for k in ctx.replace if k not in ctx.replaced]
    if unused:
        raise UsageError(f"--replace {unused[0]}: no layer of that name or path in the model")
    return out, ctx.steps




def _model(d, path, ctx, depth):
    if depth > MAX_DEPTH:
        raise Refused("model config nested too deeply")
    cls, cfg = d.get("class_name"), d.get("config")
    if isinstance(cfg, list):  # Keras 1 / early Keras 2 Sequential
        cfg = {"name": d.get("name", "sequential"), "layers": cfg}
    cfg = cfg or {}
    name = cfg.get("name") or "model"
    sub = lambda n: f"{path}/{n}".lstrip("/")  # noqa: E731
    if cls == "Sequential":
        layers = [x for x in cfg.get("layers", []) if isinstance(x, dict)]
        new = []
        if layers and layers[0].get("class_name") == "InputLayer":
            new.append(_input_layer(layers.pop(0).get("config", {})))
        else:
            shape = _batch_shape(layers[0].get("config", {}) if layers else {})
            if shape is None:
                raise Refused(f"Sequential model {name!r} states no input shape; Keras 3 could not build it "
                              "to load its weights")
            new.append(_input_layer({"batch_shape": shape, "name": f"{name}_input"}))
        for x in layers:
            t = _any(x, sub(_name(x)), ctx, depth + 1)
            before = t.pop("__before__", None)
            new += [before, t] if before else [t]
        return {"module": T.MODEL_MODULES["Sequential"], "class_name": "Sequential",
                "config": {"name": name, "trainable": cfg.get("trainable", True), "layers": new},
                "registered_name": None, "build_config": {"input_shape": new[0]["config"]["batch_shape"]}}
    layers = []
    # Keras 1/2 count a nested model's own construction as its node 0; Keras 3 does not.
    shifted = {_name(x) for x in cfg.get("layers", [])
               if x.get("class_name") in MODEL_CLASSES and ctx.keras_major < 3}
    names = {x.get("name") or _name(x) for x in cfg.get("layers", [])}
    for x in cfg.get("layers", []):
        if str(x.get("module", "")).startswith("keras.src.ops.") and ctx.keras_major >= 3:
            layers.append(copy.deepcopy(x))  # a Keras 3 operation node (a mask's not_equal, ...): as it is
            continue
        if x.get("class_name") in TF_OP_CLASSES and not _is_replaced(x, sub(_name(x)), ctx):
            layers.append(_tf_op(x, sub(_name(x)), names, shifted, ctx))
            continue
        t = _any(x, sub(_name(x)), ctx, depth + 1) if x.get("class_name") != "InputLayer" \
            else _input_layer(x.get("config", {}))
        t["name"] = _name(x)
        t["inbound_nodes"] = _nodes(x.get("inbound_nodes", []), shifted)
        before = t.pop("__before__", None)
        if before:  # a layer Keras 3 needs in front of this one (hard_sigmoid's 1.2): rewired
            before.update(name=before["config"]["name"], inbound_nodes=t["inbound_nodes"])
            t["inbound_nodes"] = [[[before["name"], k, 0, {}]] for k in range(len(before["inbound_nodes"]))]
            layers.append(before)
        layers.append(t)
    ends = {k: _refs(cfg.get(k), shifted) for k in ("input_layers", "output_layers")}
    return {"module": T.MODEL_MODULES["Functional"], "class_name": "Functional",
            "config": {"name": name, "trainable": cfg.get("trainable", True), "layers": layers, **ends},
            "registered_name": "Functional", "build_config": {"input_shape": None}}


def _is_replaced(d, path, ctx):
    return path in ctx.replace or _name(d) in ctx.replace


def _tf_op(d, path, names, shifted, ctx):
    """A TF-op layer as a Keras 3 operation node (tfops), or refused naming the op."""
    from . import tfops  # its tables are built only for models that have TF ops
    try:
        node, what = tfops.translate(d, names, shifted)
    except tfops.Untranslatable as e:
        raise Refused(f"layer {path!r}: {e}; nothing written (--replace {_name(d)}=package>Class names a "
                      "registered Keras 3 class to stand in for it)") from None
    ctx.steps.append(Step(path, d.get("class_name"), f"ops.{node['class_name']}", [what]))
    return node


def _name(d):
    cfg = d.get("config")
    return (cfg.get("name") if isinstance(cfg, dict) else None) or d.get("name") or d.get("class_name", "?").lower()


def _batch_shape(cfg):
    if cfg.get("batch_shape") is not None:
        return list(cfg["batch_shape"])
    if cfg.get("batch_input_shape") is not None:
        return list(cfg["batch_input_shape"])
    if cfg.get("input_shape") is not None:
        return [None, *cfg["input_shape"]]
    if cfg.get("input_dim") is not None:  # Keras 1 recurrent layers: input_length, input_dim
        return [None, cfg.get("input_length"), cfg["input_dim"]]
    return None


def _input_layer(cfg):
    shape = _batch_shape(cfg)
    if shape is None:
        raise Refused(f"input layer {cfg.get('name')!r} states no shape")
    dtype = cfg.get("dtype") or cfg.get("input_dtype") or "float32"
    return {"module": T.LAYER_MODULE, "class_name": "InputLayer",
            "config": {"batch_shape": shape, "dtype": _dtype(dtype), "sparse": bool(cfg.get("sparse", False)),
                       "ragged": bool(cfg.get("ragged", False)), "name": cfg.get("name", "input_layer"),
                       "optional": False},
            "registered_name": None}


def _nodes(nodes, shifted):
    """Inbound nodes stay in the list form ([[layer, node, tensor, kwargs], ...]), which
    Keras 3's functional loader reads as it is; its own dict form would need every
    tensor's shape, which only running the model can tell."""
    return [node if isinstance(node, dict) else [_ref(entry, shifted) for entry in node] for node in nodes]


def _ref(entry, shifted):
    entry = list(entry)
    if entry and entry[0] in shifted and len(entry) > 1 and entry[1] > 0:
        entry[1] -= 1
    return entry


def _refs(value, shifted):
    """input_layers / output_layers: [name, node, tensor] or a list of them."""
    if not isinstance(value, list) or not value:
        return value
    if isinstance(value[0], str):
        return _ref(value, shifted)
    return [_ref(v, shifted) for v in value]


def _dtype(value):
    if isinstance(value, dict):  # Keras 2 mixed-precision Policy / Keras 3 DTypePolicy
        value = (value.get("config") or {}).get("name", "float32")
    return value


def _any(d, path, ctx, depth):
    if depth > MAX_DEPTH:
        raise Refused("model config nested too deeply")
    cls = d.get("class_name")
    if cls in MODEL_CLASSES or cls == "Model":
        return _model(d, path, ctx, depth)
    return _layer(d, path, ctx, depth)


def _layer(d, path, ctx, depth):
    cls0 = d.get("class_name", "?")
    for key in (path, _name(d)):
        if key in ctx.replace:
            return _replaced(d, path, key, ctx)
    if cls0 in T.REFUSED:
        raise Refused(f"layer {path!r}: {T.REFUSED[cls0]}; nothing written (--replace {_name(d)}=package>Class "
                      "names a registered Keras 3 class to stand in for it)")
    if cls0 in T.REMOVED_CLASSES:
        raise Refused(f"layer {path!r}: {T.REMOVED_CLASSES[cls0]}; nothing written")
    cfg = copy.deepcopy(d.get("config") or {})
    cls = T.CLASS_RENAMES.get(cls0, cls0)
    cls = T.CELL_RENAMES.get(cls, cls)
    step = Step(path, cls0, cls)
    if cls0 == "Merge":
        cls = step.class_to = _merge(cfg, path, step)
    elif cls0 in T.REPLACED_CLASSES:
        cls, renames, fixed = T.REPLACED_CLASSES[cls0]
        step.class_to = cls
        for old, new in renames.items():
            if old in cfg:
                cfg[new] = cfg.pop(old)
        cfg.update(fixed)
        step.changes.append(f"{cls0} -> {cls}({', '.join(f'{k}=...' for k in renames.values())}): "
                            "the same function in Keras 3")
    if T.accepted(cls) is None:
        raise Refused(f"layer {path!r}: class {cls0} is not a Keras 3 built-in layer nor in lstmtool's "
                      f"translation table (a custom layer?); nothing written (--replace {_name(d)}=package>Class "
                      "names a registered Keras 3 class for it)")
    _rename_keys(cls, cfg, step)
    if cls0 in T.CELL_RENAMES:
        cfg.update({"activation": "tanh", "recurrent_activation": "sigmoid"})
        if cls == "GRU":
            cfg["reset_after"] = True
        step.changes.append(f"{cls0} -> {cls} (cuDNN fixes tanh/sigmoid; weights converted from the cuDNN layout)")
    if cfg.get("time_major"):
        raise Refused(f"layer {path!r}: time_major=True (Keras 3 has no time-major recurrent layers)")
    if cls in GATED | {"SimpleRNN", "SimpleRNNCell"}:
        recurrent_settings(cls, cfg, step, ctx)
    check_activations(cls, cfg, path, ctx)
    if cfg.get("activation") == "hard_sigmoid" and cls in SCALABLE and ctx.weights_major < 3:
        step.scaled, step.scaled_gates = True, ["kernel", "bias"]  # hs2(z) = hs3(1.2 z): scale what makes z
        step.changes.append("activation hard_sigmoid kept exact: kernel and bias scaled by 1.2 "
                            "(Keras 3's x/6+0.5 of 1.2z is Keras 1/2's 0.2z+0.5)")
    before = rescaled_hard_sigmoid(cls, cfg, _name(d), _dtype(cfg.get("dtype") or "float32"), step, ctx)
    if cls in ("Bidirectional", "TimeDistributed"):
        inner_path = f"{path}/forward" if cls == "Bidirectional" else path
        first = len(ctx.steps)
        cfg["layer"] = _layer(cfg["layer"], inner_path, ctx, depth + 1)
        if "__before__" in cfg["layer"]:
            raise Refused(f"layer {path!r}: {cls} around an Activation(hard_sigmoid): Keras 3's formula changed and "
                          "the scaling it needs cannot go inside the wrapper; nothing written")
        if isinstance(cfg.get("backward_layer"), dict):
            cfg["backward_layer"] = _layer(cfg["backward_layer"], f"{path}/backward", ctx, depth + 1)
        elif cls == "Bidirectional":  # Keras builds the backward half from the forward config
            ctx.steps += [Step(s.path.replace(inner_path, f"{path}/backward", 1), s.class_from, s.class_to,
                               list(s.changes), s.scaled, list(s.scaled_gates)) for s in ctx.steps[first:]]
            inner = cfg["layer"]["config"]
            if ctx.masked and inner.get("return_sequences") and ctx.weights_major < 3:
                step.changes.append("note: at masked timesteps Keras 3's Bidirectional outputs zeros where Keras "
                                    "1/2 repeated the backward half's last output; unmasked timesteps are the same")
            if inner.get("unroll"):
                # Keras 3.15's Bidirectional applies the mask of an unrolled backward half to the
                # wrong steps (measured: the last unmasked step's output becomes 0); unrolling
                # changes only speed, so the layers are written as loops
                inner["unroll"] = False
                step.changes.append("unroll=True -> False inside Bidirectional (Keras 3's unrolled backward "
                                    "half misplaces the mask; the result is otherwise the same)")
            if inner.get("go_backwards") and inner.get("return_sequences") and ctx.masked:
                raise Refused(f"layer {path!r}: a Bidirectional whose inner layer has go_backwards=True, returning "
                              "sequences of masked input: Keras 3 zeroes masked steps in time order while that "
                              "half returns its steps reversed, so real steps would be zeroed; nothing written")
            if inner.get("go_backwards"):
                # Keras 1/2 flip the forward half's go_backwards for the backward half; Keras 3
                # always sets True, so it must be told the backward half explicitly
                back = copy.deepcopy(cfg["layer"])
                back["config"]["go_backwards"] = False
                back["config"]["name"] = "backward_" + str(inner.get("name", "layer"))
                cfg["backward_layer"] = back
                step.changes.append("inner layer has go_backwards=True: backward_layer written explicitly "
                                    "(go_backwards=False), as Keras 1/2 built it")
    if cls == "RNN":
        cfg["cell"] = _rnn_cell(cfg.get("cell"), path, ctx, depth)
    if cls == "StackedRNNCells":
        raise Refused(f"layer {path!r}: StackedRNNCells outside an RNN layer")
    if "dtype" in cfg:
        cfg["dtype"] = _dtype(cfg["dtype"])
        if isinstance(cfg["dtype"], str) and cfg["dtype"].startswith(("int", "uint", "bool")):
            # Keras 2.0 wrote an Embedding's input dtype here; in Keras 3 it is the weights' dtype
            step.changes.append(f"dtype {cfg['dtype']} (the input's) -> float32 (the weights')")
            cfg["dtype"] = "float32"
    for key in T.UNWRAP_SINGLE.get(cls, ()):
        if isinstance(cfg.get(key), list) and len(cfg[key]) == 1:
            cfg[key] = cfg[key][0]
            step.changes.append(f"{key} [{cfg[key]}] -> {cfg[key]}")
    if cls == "Masking" or (cls == "Embedding" and cfg.get("mask_zero")):
        ctx.masked = True
    _theano_padding(cls, cfg, path, ctx)
    _keep_accepted(cls, cfg, step, path)
    ctx.steps.append(step)
    out = {"module": T.LAYER_MODULE, "class_name": cls, "config": cfg, "registered_name": None}
    if before:
        out["__before__"] = before  # _model puts it in front of this layer
    return out


def _replaced(d, path, key, ctx):
    """A Lambda or custom layer replaced by a registered Keras 3 class the user names: nothing
    from the file runs or is copied but its name and, for custom layers, its own settings."""
    target = ctx.replace[key]
    package, sep, cls = target.partition(">")
    if not sep or not package or not cls.isidentifier():
        raise UsageError(f"--replace {key}={target}: name a registered Keras 3 class as package>ClassName")
    ctx.replaced.add(key)
    cls0 = d.get("class_name", "?")
    cfg = dict(d.get("config") or {})
    if cls0 == "Lambda" or cls0 in T.REFUSED:  # bytecode and TF functions stay behind
        cfg = {k: cfg[k] for k in ("name", "trainable") if k in cfg}
    if "dtype" in d.get("config", {}):
        cfg["dtype"] = _dtype(d["config"]["dtype"])
    step = Step(path, cls0, target, [f"replaced by {target} (--replace); its weights are carried over in "
                                     "stored order, nothing from the file is executed"])
    ctx.steps.append(step)
    return {"module": package, "class_name": cls, "config": cfg, "registered_name": target}


def _rnn_cell(cell, path, ctx, depth):
    if not isinstance(cell, dict):
        raise Refused(f"layer {path!r}: RNN without a cell config")
    if cell.get("class_name") == "StackedRNNCells":
        cells = cell.get("config", {}).get("cells", [])
        new = [_layer(c, f"{path}/cell_{k}", ctx, depth + 1) for k, c in enumerate(cells)]
        return {"module": T.LAYER_MODULE, "class_name": "StackedRNNCells",
                "config": {"cells": new, "name": cell.get("config", {}).get("name", "stacked_rnn_cells"),
                           "trainable": True}, "registered_name": None}
    return _layer(cell, path, ctx, depth + 1)


def _rename_keys(cls, cfg, step):
    renames = {**T.KEY_RENAMES, **T.CLASS_KEY_RENAMES.get(cls, {}), **T.KERAS2_RENAMES.get(cls, {})}
    for old in list(cfg):
        new = renames.get(old, old)
        if new == old:
            continue
        value = cfg.pop(old)
        if new is None:
            step.changes.append(f"dropped {old}")
            continue
        if new in T.VALUE_RENAMES and isinstance(value, str):
            if T.VALUE_RENAMES[new].get(value, value) is None:
                raise Refused(f"layer {step.path!r}: {old}={value!r} has no Keras 3 equivalent")
            value = T.VALUE_RENAMES[new].get(value, value)
        if new == "kernel_size" or new == "strides" or new == "pool_size":
            value = value if isinstance(value, (list, tuple)) else [value]
        cfg[new] = value
        step.changes.append(f"{old} -> {new}")
    if T.FORGET_BIAS_INIT in cfg:
        cfg["unit_forget_bias"] = cfg.pop(T.FORGET_BIAS_INIT) in ("one", "ones")
        step.changes.append("forget_bias_init -> unit_forget_bias")


def _keep_accepted(cls, cfg, step, path):
    accepted = T.accepted(cls)
    for key in list(cfg):
        if key in T.DROPPED_KEYS and (key not in accepted or key in ("weights", "input_length")):
            value = cfg.pop(key)
            if value not in (None, False, [], {}):
                step.changes.append(f"dropped {key} ({T.DROPPED_KEYS[key]})")
            continue
        if key in accepted:
            try:
                cfg[key] = translate_value(key, cfg[key], step.changes)
                if cfg[key] is DROP:
                    del cfg[key]
            except Untranslatable as e:
                raise Refused(f"layer {path!r}: {e}; nothing written") from None
            continue
        value = cfg.pop(key)
        if value in (None, False, [], {}):
            step.changes.append(f"dropped {key} (unset)")
        elif key in T.UNUSED_INHERITED.get(cls, ()):
            step.changes.append(f"dropped {key} (inherited by tf.keras' {cls}, never used by it)")
        else:
            raise Refused(f"layer {path!r}: {cls} setting {key}={value!r} is not in lstmtool's translation "
                          "table; nothing written")


def _theano_padding(cls, cfg, path, ctx):
    """Theano's Keras placed 'same' padding otherwise than TensorFlow (and Keras 3): pooling
    windows start pool_size-1 steps early, and even convolution kernels are padded at both
    ends (keras 2.3.1 theano_backend.pool2d and conv2d)."""
    if cfg.get("padding") != "same" or ctx.weights_major >= 3 or ctx.backend == "tensorflow":
        return
    pooling = "Pooling" in cls and not cls.startswith("Global")
    conv = cls in ("Conv1D", "Conv2D", "Conv3D")
    if not (pooling or conv):
        return
    sizes = cfg.get("pool_size" if pooling else "kernel_size") or []
    strides = cfg.get("strides") or [1]
    sizes = sizes if isinstance(sizes, (list, tuple)) else [sizes]
    strides = strides if isinstance(strides, (list, tuple)) else [strides]
    if conv and all(k % 2 == 1 for k in sizes) and all(s == 1 for s in strides):
        return  # odd kernels, stride 1: both pad (k-1)/2 at each end
    what = "pooling" if pooling else "an even-sized or strided convolution"
    if ctx.backend is None:
        if ctx.weights_major == 1:
            raise Refused(f"layer {path!r}: padding='same' in {what} was placed differently by Theano and "
                          "TensorFlow, and a Keras 1 file does not record its backend: say which with "
                          "--backend theano|tensorflow")
        return
    raise Refused(f"layer {path!r}: padding='same' in {what} trained with Theano: Theano placed the padding "
                  "otherwise than Keras 3 (TensorFlow's rule), so no Keras 3 layer computes it; nothing written")


def _merge(cfg, path, step):
    """Keras 1 `merge([...], mode=...)`: a built-in mode becomes its Keras 3 layer."""
    mode = cfg.pop("mode", "sum")
    if cfg.pop("mode_type", "raw") != "raw" or mode not in T.MERGE_MODES:
        raise Refused(f"layer {path!r}: Keras 1 Merge with mode {mode!r} (a function or dot/cos) has no "
                      "Keras 3 layer lstmtool can write exactly; nothing written")
    cls = T.MERGE_MODES[mode]
    axis = cfg.pop("concat_axis", -1)
    for key in ("dot_axes", "output_shape"):
        cfg.pop(key, None)
    if cls == "Concatenate":
        cfg["axis"] = axis
    step.changes.append(f"Merge(mode={mode!r}) -> {cls}")
    return cls
