"""`upgrade(src, out)`: a legacy Keras model -> a Keras 3 `.keras` file computing the same.

The config goes through `translate` (one table of renames); the weights are
written dataset by dataset into the Keras 3 tree, in the order Keras 3 will look
for them. Recurrent weights come from lstmtool's gate views, so every layout the
reader knows (CuDNN, Keras 1 per-gate arrays) arrives in Keras 3's fused layout;
everything else is copied bit for bit. Where the file means Keras 1/2's
hard_sigmoid (0.2x + 0.5), the gates using it are scaled by 1.2 so that Keras 3's
(x/6 + 0.5) computes exactly the same thing. Neither Keras nor TensorFlow is imported.
"""
from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import asdict, dataclass, field

import h5py
import numpy as np

from ..cells import RECURRENT_GATES
from ..version import __version__
from . import table as T
from ..containers import legacy_h5
from ..containers.found import components
from ..containers.hdf5 import text
from ..containers.keras3_tree import Tree, TreeWriter, snake_case, stored_or_array
from ..containers.keras_zip import ArchiveWriter
from ..errors import ModelError, UsageError
from ..reading.reader import load
from .translate import CELLS, RECURRENT, Refused, model_config

OPS_MODULE = "keras.src.ops."  # Keras 3 operation nodes of a functional model (TF-op layers become these)
CONVOLUTIONS = {"Conv1D": 1, "Conv2D": 2, "Conv3D": 3}  # spatial axes of each kernel
KERAS3_VERSION = "3.0.0"  # the format written; any Keras 3 reads it


@dataclass
class UpgradePlan:
    source: str
    output: str
    from_format: str
    from_keras: str
    steps: list
    notes: list = field(default_factory=list)
    written: str = ""

    @property
    def scaled(self) -> list:
        return [s.path for s in self.steps if s.scaled]

    def as_json(self, dry_run=False) -> dict:
        return {"source": self.source, "output": self.output, "dry_run": dry_run, "written": self.written or None,
                "from_format": self.from_format, "from_keras": self.from_keras,
                "hard_sigmoid_scaled": self.scaled, "notes": self.notes,
                "layers": [asdict(s) for s in self.steps]}


def upgrade(src, out, dry_run=False, force=False, layer_classes=None, config=None, like=None,
            hard_sigmoid=False, backend=None, replace=None, model=None) -> UpgradePlan:
    """Plan (and unless `dry_run`, write) the Keras 3 version of `src` at `out`.

    Weights-only inputs become a `.weights.h5`, or, given the architecture, a complete
    `.keras`: `config` is the old `model.to_json()` file saved beside the weights, `like` a
    Keras 3 `.keras` model those weights belong to (its layers paired with the file's by
    name, else in order, as Keras' own `load_weights` pairs them). `hard_sigmoid` says the
    weights-only file's code used Keras 1/2's hard_sigmoid for every gate (< 2.3's default).
    `layer_classes` ({layer name: Keras 3 class name}) names the classes of layers their
    weights cannot tell (custom layers). `backend` ("theano" or "tensorflow") says what a Keras 1
    file, which does not record it, was trained with (convolution kernels depend on it).
    `replace` ({layer: "package>Class"}) names registered Keras 3 classes for Lambda or custom
    layers; Keras 3 then needs that class registered (imported) when it loads the result.
    `model`: `src` already open (a scan plans the upgrade of the model it inspected: no second
    read); the caller keeps it open and closes it."""
    src, out = os.fspath(src), os.fspath(out)
    if backend not in (None, "theano", "tensorflow"):
        raise UsageError(f"--backend {backend!r}: theano or tensorflow")
    if config is not None and like is not None:
        raise UsageError("--config and --like both give the architecture: pass one")
    if not dry_run:
        _check_output(src, out, force)
    raw, layer_names, arch_major, notes = None, None, None, []
    if config is not None:
        raw = _read_json_config(os.fspath(config))
        config_text = json.dumps(raw)
    elif like is not None:
        raw, layer_names, notes = _like(os.fspath(like), src)
        config_text, arch_major = json.dumps(raw), 3
    else:
        config_text = None
    opened = contextlib.nullcontext(model) if model is not None and config_text is None else \
        load(src, config_text=config_text, layer_names=layer_names)
    with opened as model:
        if raw is None:
            raw = _raw_config(model)
        if model.incomplete:
            raise Refused(f"{src}: {model.incomplete[0].path} is incomplete in the file "
                          f"({model.incomplete[0].problem}); nothing written")
        if raw is None:
            return _upgrade_weights(model, src, out, dry_run, layer_classes, hard_sigmoid, backend)
        if out and not out.endswith(".keras"):
            raise UsageError(f"{out}: a full model upgrades to a .keras file (Keras 3 loads nothing else)")
        weights_major = model.keras_major if model.keras_major is not None else 2
        try:
            k3, steps = model_config(raw, arch_major or model.keras_major, weights_major=weights_major,
                                     backend=backend or model.backend, replace=replace)
        except (TypeError, AttributeError, KeyError, IndexError, ValueError) as e:
            if isinstance(e, Refused):
                raise
            raise Refused(f"{src}: model config is malformed ({type(e).__name__}: {e}); nothing written") from None
        plan = UpgradePlan(src, out, model.format, model.keras_version or "unknown", steps, notes)
        plan.notes.append("optimizer state and training config are not carried over (compile again to train)")
        if dry_run:
            return plan
        source = _WeightSource(model, steps, layer_names, backend)
        metadata = {"keras_version": KERAS3_VERSION, "date_saved": time.strftime("%Y-%m-%d@%H:%M:%S"),
                    "lstmtool": {"version": __version__, "upgraded_from": os.path.basename(src),
                                 "from_keras": plan.from_keras, "hard_sigmoid_scaled": plan.scaled,
                                 "hard_sigmoid_factor": T.HARD_SIGMOID_SCALE if plan.scaled else None}}
        try:
            _write(out, k3, metadata, source)
        finally:
            source.close()
    plan.written = out
    return plan


def _read_json_config(path):
    try:
        with open(path, "rb") as fh:
            raw = json.loads(fh.read(64 << 20).decode("utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ModelError(f"{path}: not a model.to_json() file ({type(e).__name__})") from None
    if not isinstance(raw, dict) or "class_name" not in raw:
        raise ModelError(f"{path}: not a model.to_json() file (no class_name at the top)")
    return raw


def _like(path, src):
    """The config of Keras 3 model `path`, and {its layer: the weights file's layer} where names differ."""
    with load(path) as arch:
        if arch.format != "keras-zip" or not arch.store.archive.config_text:
            raise UsageError(f"{path}: --like takes a Keras 3 .keras model (architecture and weights)")
        raw = json.loads(arch.store.archive.config_text)
        mine = [layer.path for layer in arch.layers if layer.n_weights]
    with h5py.File(src, "r") as f:
        theirs = [e.name for e in legacy_h5.read_layers(f, []) if e.weights]
    if set(mine) == set(theirs):
        return raw, None, []
    if len(mine) != len(theirs):
        raise Refused(f"{src}: {len(theirs)} layers with weights, but {path} has {len(mine)}: they do not "
                      "belong together; nothing written")
    pairs = dict(zip(mine, theirs))
    return raw, pairs, ["layers paired in order, as Keras' load_weights pairs them: "
                        + ", ".join(f"{a}<-{b}" for a, b in pairs.items() if a != b)]


def _upgrade_weights(model, src, out, dry_run, layer_classes, hard_sigmoid=False, backend=None) -> UpgradePlan:
    """Weights-only inputs: a Keras 3 .weights.h5 for `model.load_weights` (layouts only)."""
    from . import weights as weights_upgrade

    if out and not out.endswith(".weights.h5"):
        raise UsageError(f"{out}: {src} holds weights only; its upgrade is a Keras 3 weights file, "
                         "whose name Keras requires to end in .weights.h5")
    layers = weights_upgrade.plan_layers(model, layer_classes)
    plan = UpgradePlan(src, out, model.format, model.keras_version or "unknown", [step for step, _ in layers])
    if hard_sigmoid:
        for step in plan.steps:
            if any(c.family in RECURRENT_GATES and (c.path == step.path or c.path.startswith(step.path + "/"))
                   for c in model.cells):
                step.scaled = True
                step.changes.append("--hard-sigmoid: gates scaled by 1.2 for Keras 3's hard_sigmoid")
    plan.notes.append(weights_upgrade.NOTE_SCALED if hard_sigmoid else weights_upgrade.NOTE)
    if not dry_run:
        source = _WeightSource(model, plan.steps, backend=backend)
        try:
            weights_upgrade.write(out, layers, source)
        finally:
            source.close()
        plan.written = out
    return plan


def _check_output(src, out, force):
    from ..surgery.edit import check_new_output

    check_new_output(src, out, force, "upgrade")


def _raw_config(model):
    store = model.store
    if getattr(store, "bundle", None) is not None:  # TF SavedModel / checkpoint
        return store.raw_config
    if store.archive is not None:
        return json.loads(store.archive.config_text) if store.archive.config_text else None
    value = store.h5.attrs.get("model_config")
    return json.loads(text(value)) if value is not None else None


def _write(out, k3, metadata, source):
    from ..core.files import atomic_output

    with atomic_output(out) as fh:
        archive = ArchiveWriter(fh)
        archive.add("metadata.json", json.dumps(metadata).encode())
        archive.add("config.json", json.dumps(k3).encode())
        window = archive.weights()
        with h5py.File(window, "w") as f:
            tree = TreeWriter(f, raw=(fh, window.start))
            _emit(k3, "", "", tree, source)
        archive.close_weights(window, tree.copied)
        archive.finish()


def _numbered(dicts):
    used = {}
    for d in dicts:
        name = snake_case(d["class_name"])
        used[name] = used.get(name, -1) + 1
        yield d, (f"{name}_{used[name]}" if used[name] else name)


def _emit(d, tree_path, lpath, tree: TreeWriter, source):
    """Write the weights of Keras 3 object `d` at `tree_path`, as Keras 3 walks it."""
    cls, cfg = d["class_name"], d["config"]
    name = cfg.get("name") or snake_case(cls)
    here = lambda sub: f"{tree_path}/{sub}".lstrip("/")  # noqa: E731
    if cls in ("Sequential", "Functional"):
        tree.vars(tree_path, name)
        subs = cfg["layers"][1:] if cls == "Sequential" else cfg["layers"]  # Sequential hides its InputLayer
        subs = [s for s in subs if not s.get("module", "").startswith(OPS_MODULE)]  # ops hold no weights
        for sub, key in _numbered(subs):
            _emit(sub, here(f"layers/{key}"), f"{lpath}/{sub['config']['name']}".lstrip("/"), tree, source)
    elif cls == "Bidirectional":
        tree.vars(tree_path, name)
        _emit(cfg["layer"], here("forward_layer"), f"{lpath}/forward", tree, source)
        _emit(cfg.get("backward_layer") or cfg["layer"], here("backward_layer"), f"{lpath}/backward", tree, source)
    elif cls == "TimeDistributed":
        tree.vars(tree_path, name)
        _emit(cfg["layer"], here("layer"), lpath, tree, source)
    elif cls in RECURRENT:
        tree.vars(tree_path, name)
        tree.vars(here("cell"), f"{snake_case(cls)}_cell", source.cell_arrays(lpath), lpath=lpath)
    elif cls in CELLS:
        tree.vars(tree_path, name, source.cell_arrays(lpath), lpath=lpath)
    elif cls == "RNN":
        tree.vars(tree_path, name)
        cell = cfg["cell"]
        if cell["class_name"] == "StackedRNNCells":
            tree.vars(here("cell"), "stacked_rnn_cells")
            for k, (sub, key) in enumerate(_numbered(cell["config"]["cells"])):
                _emit(sub, here(f"cell/cells/{key}"), f"{lpath}/cell_{k}", tree, source)
        else:
            _emit(cell, here("cell"), lpath, tree, source)
    elif cls == "InputLayer":
        tree.vars(tree_path, name)
    else:
        tree.vars(tree_path, name, source.layer_arrays(lpath, cls, tree_path), lpath=lpath)


class _WeightSource:
    """The source file's weights, by lstmtool layer path."""

    def __init__(self, model, steps, layer_names=None, backend=None):
        self.model = model
        self.layer_names = layer_names or {}
        self.backend = (backend or model.backend or "").lower() or None
        self.cells = {c.path: c for c in model.cells}
        self.classes = {s.path: s.class_from for s in steps}
        # translate decides which gates; the weights follow (--hard-sigmoid: the recurrent gates)
        self.scaled = {s.path: set(s.scaled_gates) or "recurrent" for s in steps if s.scaled}
        store = model.store
        self.bundle = getattr(store, "bundle", None)
        if self.bundle is not None:  # TF SavedModel: arrays come from the bundle, CRC-checked
            self.fd = self.entries = self.tree = self.h5 = None
            return
        self.h5 = store.h5
        # Plain datasets are copied by the kernel from this descriptor (the source file);
        # in a .keras archive the HDF5 file starts at the weights member's data.
        if getattr(store, "remote", None) is not None:  # arrays come through range reads
            self.fd = self.base = None
        else:
            self.fd = os.open(model.filename, os.O_RDONLY)
            self.base = 0 if store.archive is None else store.archive.weights_offset
        self.entries = None
        if store.archive is None:
            self.entries = {e.name: e for e in legacy_h5.read_layers(self.h5, [])}
        else:
            self.tree = Tree(self.h5)

    def cell_arrays(self, lpath) -> list:
        cell = self.cells.get(lpath)
        if cell is None:
            raise ModelError(f"{lpath}: the file's weights for this recurrent layer were not found")
        scaled = self.scaled.get(lpath, ())
        if not scaled and self.scaled.get(lpath.rsplit("/", 1)[0]) == "recurrent":
            scaled = "recurrent"  # --hard-sigmoid names layers; a Bidirectional's halves follow theirs
        if scaled == "recurrent":
            scaled = RECURRENT_GATES.get(cell.family, ())
        if cell.layout == "keras" and not scaled:  # already Keras 3's fused tensors: copy them as stored
            roles = ("kernel", "recurrent_kernel", "bias") if cell.b else ("kernel", "recurrent_kernel")
            return [self._stored(cell.tensors[r].path) for r in roles]
        parts = []
        for part in ("W", "U", "b") if cell.b else ("W", "U"):
            views = getattr(cell, part)
            blocks = []
            for g in cell.gates:
                block = views[g].numpy()
                if g in scaled:
                    block = (block.astype(np.float64) * T.HARD_SIGMOID_SCALE).astype(block.dtype)
                blocks.append(block)
            try:
                parts.append(np.concatenate(blocks, axis=-1))
            except ValueError:
                raise Refused(f"{lpath}: its {part} blocks do not fit together; nothing written") from None
        return parts

    def layer_arrays(self, lpath, cls, tree_path) -> list:
        if self.bundle is not None:
            return [self._stored(key) for key in self.model.store.layer_keys(lpath, T.WEIGHT_NAMES.get(cls))]
        if self.entries is None:
            return self._tree_arrays(tree_path)
        top, *inner = lpath.split("/")
        entry = self.entries.get(self.layer_names.get(top, top))
        weights = entry.weights if entry else []
        if inner:  # inside a nested model: the layer's weights are named after the layer itself
            weights = [w for w in weights if inner[-1] in components(w[0])]
        arrays = []
        for wname, path in weights:
            if path is None:
                raise Refused(f"layer {lpath!r}: weight {wname} is missing from the file; nothing written")
            arrays.append(self._stored(path))
        if cls in CONVOLUTIONS and arrays:
            arrays[0] = self._conv_kernel(lpath, cls, weights[0][1])
        expected = T.WEIGHT_NAMES.get(cls)
        if expected and len(arrays) > len(expected):
            raise Refused(f"layer {lpath!r}: {len(arrays)} weights where {cls} has at most {len(expected)}")
        if lpath in self.scaled:  # activation hard_sigmoid: z = xW + b scaled by 1.2
            arrays = [self._scaled(a, path) for a, (_, path) in zip(arrays, weights)]
        return arrays

    def _scaled(self, array, path):
        values = array if isinstance(array, np.ndarray) else self.h5[path][()]
        return (values.astype(np.float64) * T.HARD_SIGMOID_SCALE).astype(values.dtype)

    def _conv_kernel(self, lpath, cls, path):
        """Keras 3 convolves as TensorFlow does (cross-correlation); Theano's Keras 1/2 backend
        computed a true convolution, so its kernels are Keras 3's flipped on the spatial axes.
        Keras 1 also stored Conv1D kernels as (length, 1, in, filters)."""
        kernel = None
        rank = CONVOLUTIONS[cls]
        if len(self.h5[path].shape) == rank + 3 and rank == 1:
            kernel = self.h5[path][()]
            if kernel.shape[1] != 1:
                raise Refused(f"layer {lpath!r}: Keras 1 Theano-ordered convolution kernels are not converted")
            kernel = kernel[:, 0]
        backend = self.backend
        if backend is None and self.model.keras_major == 1:
            raise Refused(f"layer {lpath!r}: a Keras 1 file does not record its backend, and a convolution "
                          "trained with Theano has flipped kernels: say which with --backend theano|tensorflow")
        if backend == "theano":
            kernel = self.h5[path][()] if kernel is None else kernel
            kernel = np.ascontiguousarray(kernel[(slice(None, None, -1),) * rank])
        return self._stored(path) if kernel is None else kernel

    def _stored(self, path):
        try:
            self.model.store.check_tensor(path)
        except ValueError as e:
            raise Refused(f"{path}: {e}; nothing written") from None
        if self.bundle is not None:
            return self.model.store.read(path, ())
        if self.base is None:  # a compressed archive member: decoded, not copied
            return self.h5[path][()]
        return stored_or_array(self.h5, path, self.fd, self.base)

    def close(self):
        if self.fd is not None:
            os.close(self.fd)

    def _tree_arrays(self, tree_path):
        """A .keras source: the layer's classes are unchanged, so its tree path is the same."""
        arrays, k = [], 0
        while (path := self.tree.dataset(f"{tree_path}/vars/{k}")) is not None:
            arrays.append(self._stored(path))
            k += 1
        return arrays
