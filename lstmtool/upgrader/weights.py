"""Weights-only legacy files -> a Keras 3 `.weights.h5` for `model.load_weights(...)`.

There is no config, so each layer's class is read from what it stores (recurrent
cells from their shapes, as `inspect` does; Dense, Conv, Embedding and
BatchNormalization from their weight names and ranks), and the file is laid out
as Keras 3's tree for those classes. Only layouts are converted (CuDNN, Keras 1
per-gate arrays); activations live in the user's code, so nothing is scaled.
"""
from __future__ import annotations


import h5py

from ..containers import legacy_h5
from ..containers.found import basename, keras1_role
from ..containers.keras3_tree import TreeWriter, snake_case
from ..containers.keras_zip import MemberWindow
from .translate import Refused, Step

CELL_CLASS = {"CuDNNLSTM": "LSTM", "CuDNNGRU": "GRU"}
CONV_BY_RANK = {2: "Dense", 3: "Conv1D", 4: "Conv2D", 5: "Conv3D"}
BN_ORDER = ("gamma", "beta", "moving_mean", "moving_variance")
K1_BN_ORDER = ("_gamma", "_beta", "_running_mean", "_running_std")
# Keras 1 layers storing one W: the default layer name is the only witness of the class.
K1_NAMED = {"embedding": "Embedding", "dense": "Dense"}
K1_CONV = {"convolution1d": "Conv1D", "atrousconvolution1d": "Conv1D", "convolution2d": "Conv2D",
           "atrousconvolution2d": "Conv2D"}

NOTE = ("weights only: layer classes were inferred from the stored tensors; activations come from your "
        "Keras 3 code, and Keras 3's hard_sigmoid is x/6+0.5: if the original used hard_sigmoid (Keras < 2.3's "
        "default), pass --hard-sigmoid, or give the architecture (--config model.json or --like model.keras) "
        "for a complete, exact .keras")
NOTE_SCALED = ("weights only: gates scaled by 1.2, so a Keras 3 model built with recurrent_activation="
               "'hard_sigmoid' computes what Keras 1/2's hard_sigmoid did (with sigmoid it would not)")


def plan_layers(model, classes=None) -> list:
    """[(Step, emit)] per weight-bearing layer, in the file's layer order. `classes` names
    the Keras 3 class of layers the weights cannot tell (custom layers): {layer: class}."""
    classes = classes or {}
    if model.format == "tf-checkpoint":
        raise Refused(f"{model.filename}: a TF checkpoint without a model config; lstmtool reads and edits it, "
                      "but upgrades only SavedModels and .h5 files (load it into its model in tf-keras and "
                      "save that as .h5, then upgrade)")
    if model.format != "legacy-h5-weights":
        raise Refused(f"{model.filename}: already in Keras 3's weights format; nothing to upgrade")
    entries = legacy_h5.read_layers(model.store.h5, [])
    out, used = [], {}

    def number(cls):
        key = snake_case(cls)
        used[key] = used.get(key, -1) + 1
        return f"{key}_{used[key]}" if used[key] else key

    for entry in entries:
        if not entry.weights:
            continue
        cells = [c for c in model.cells if c.path == entry.name or c.path.startswith(entry.name + "/")]
        if cells:
            out.append(_recurrent(entry.name, cells, number, classes.get(entry.name)))
        else:
            out.append(_plain(entry, model.store.h5, number, classes.get(entry.name)))
    return out


AMBIGUOUS = ("the stored names are the same for RNN(cell) and TimeDistributed(layer): if your code "
             "wraps this layer so, say it with --layer-class NAME=RNN or NAME=TimeDistributed")


def _recurrent(name, cells, number, given=None):
    tails = [c.path[len(name):] for c in cells]
    cls = CELL_CLASS.get(cells[0].class_name, cells[0].class_name)
    if tails == [""]:
        wrapper = given if given in ("RNN", "TimeDistributed") else None
        if given and not wrapper:
            raise Refused(f"--layer-class {name}={given}: a recurrent layer can only be said to be RNN "
                          "or TimeDistributed (its cell class comes from its shapes)")
        key = number(wrapper or cls)
        cell_path = f"layers/{key}/cell" if wrapper != "TimeDistributed" else f"layers/{key}/layer/cell"

        def emit(tree, source):
            tree.vars(f"layers/{key}", name)
            if wrapper == "TimeDistributed":
                tree.vars(f"layers/{key}/layer", name)
            tree.vars(cell_path, f"{snake_case(cls)}_cell", source.cell_arrays(name))
        shown = f"{wrapper}({cls})" if wrapper else cls
        return Step(name, cells[0].class_name, shown, ["class inferred from tensor shapes"]
                    + ([] if wrapper else [AMBIGUOUS])), emit
    if all(t.startswith(("/forward", "/backward")) for t in tails):
        key = number("Bidirectional")

        def emit(tree, source):
            tree.vars(f"layers/{key}", name)
            for half in ("forward", "backward"):
                mine = [c for c in cells if c.path.startswith(f"{name}/{half}")]
                _rnn(tree, f"layers/{key}/{half}_layer", f"{half}_{snake_case(cls)}", mine, f"{name}/{half}", source)
        return Step(name, "?", f"Bidirectional({cls})", ["class inferred from weight names and shapes"]), emit
    if all(t.startswith("/cell_") for t in tails):
        key = number("RNN")

        def emit(tree, source):
            _rnn(tree, f"layers/{key}", name, cells, name, source)
        return Step(name, "?", "RNN(StackedRNNCells)", ["class inferred from weight names and shapes"]), emit
    raise Refused(f"layer {name!r}: its recurrent weights sit in a nested model; a weights-only file does "
                  "not say how to lay them out for Keras 3")


def _rnn(tree, path, name, cells, lpath, source):
    """One RNN layer: a single cell (`cell/vars`) or stacked cells (`cell/cells/*/vars`)."""
    tree.vars(path, name)
    if len(cells) == 1 and cells[0].path == lpath:
        cls = CELL_CLASS.get(cells[0].class_name, cells[0].class_name)
        tree.vars(f"{path}/cell", f"{snake_case(cls)}_cell", source.cell_arrays(lpath))
        return
    tree.vars(f"{path}/cell", "stacked_rnn_cells")
    used = {}
    for cell in cells:
        cls = CELL_CLASS.get(cell.class_name, cell.class_name).replace("Cell", "") + "Cell"
        key = snake_case(cls)
        used[key] = used.get(key, -1) + 1
        key = f"{key}_{used[key]}" if used[key] else key
        tree.vars(f"{path}/cell/cells/{key}", key, source.cell_arrays(cell.path))


def _plain(entry, h5, number, given=None):
    names = [basename(w) for w, _ in entry.weights]
    if any(p is None for _, p in entry.weights):
        raise Refused(f"layer {entry.name!r}: some of its weights are missing from the file")
    shapes = [h5[p].shape for _, p in entry.weights]
    k1 = [keras1_role(w) and keras1_role(w)[1] for w, _ in entry.weights]  # Keras 1 roles: W, b, ...
    cls = given
    if cls is not None:
        pass  # the user named it: its weights go in stored order
    elif names in (["kernel"], ["kernel", "bias"]):
        cls = CONV_BY_RANK.get(len(shapes[0]))
    elif names == ["embeddings"]:
        cls = "Embedding"
    elif names and names == [n for n in BN_ORDER if n in names] and names[-2:] == ["moving_mean", "moving_variance"]:
        cls = "BatchNormalization"
    elif k1 == ["W", "b"] and len(shapes[0]) == 2:
        cls = "Dense"  # Keras 1: W (in, out) and b
    elif k1 in (["W", "b"], ["W"]) and len(shapes[0]) == 4 and entry.name.startswith(tuple(K1_CONV)):
        cls = next(K1_CONV[p] for p in K1_CONV if entry.name.startswith(p))  # Conv1D W: (length, 1, in, filters)
    elif names == ["alpha"] or (len(names) == 1 and names[0].endswith("_alphas")):  # Keras 1: <name>_alphas
        cls = "PReLU"
    elif len(names) == 4 and all(n.endswith(suffix) for n, suffix in zip(names, K1_BN_ORDER)):
        cls = "BatchNormalization"  # Keras 1: gamma, beta, running_mean, running_std (a variance)
    elif k1 == ["W"] and len(shapes[0]) == 2 \
            and entry.name.startswith(tuple(K1_NAMED) + ("timedistributed", "time_distributed")):
        # Keras 1 names say the class (a TimeDistributed holds a Dense: the only layer Keras 1 wrapped so)
        cls = next((K1_NAMED[p] for p in K1_NAMED if entry.name.startswith(p)), "Dense")
    if cls is None:
        raise Refused(f"layer {entry.name!r}: its class cannot be told from its weights "
                      f"({', '.join(names)}); name it with --layer-class {entry.name}=ClassName")
    wrapped = given == "TimeDistributed" or (
        given is None and entry.name.startswith(("time_distributed", "timedistributed"))
        and cls in ("Dense", "Conv1D", "Conv2D", "BatchNormalization"))
    if given == "TimeDistributed":
        cls = CONV_BY_RANK.get(len(shapes[0])) if names in (["kernel"], ["kernel", "bias"]) else None
        if cls is None:
            raise Refused(f"layer {entry.name!r}: --layer-class {entry.name}=TimeDistributed, but the layer "
                          "inside cannot be told from its weights")
    key = number("TimeDistributed" if wrapped else cls)
    inner = f"layers/{key}/layer" if wrapped else f"layers/{key}"

    def emit(tree, source):
        if wrapped:  # Keras 3 keeps a TimeDistributed layer's weights in its inner layer
            tree.vars(f"layers/{key}", entry.name)
        tree.vars(inner, entry.name, source.layer_arrays(entry.name, cls, inner))
    how = "class given by --layer-class" if given else "class inferred from weight names and ranks"
    if wrapped and given is None:
        how += " (TimeDistributed, from the layer's name; --layer-class NAME=CLASS if it is not)"
    return Step(entry.name, "?", f"TimeDistributed({cls})" if wrapped else cls, [how]), emit


def write(out, layers, source):
    """Write the `.weights.h5` atomically (temp file, fsync, rename)."""
    from ..core.files import atomic_output

    with atomic_output(out) as fh:
        window = MemberWindow(fh, 0)
        with h5py.File(window, "w") as f:
            tree = TreeWriter(f, raw=(fh, 0))
            tree.vars("", "model")
            for _, emit in layers:
                emit(tree, source)
        fh.truncate(window.end)
