"""TF SavedModel directories and TF-format checkpoints as lstmtool models.

Paths a user types: a SavedModel directory, a checkpoint prefix (`training_1/cp.ckpt`),
its `.index` or `.data-*` file, the `checkpoint` file, or a directory holding one (the
checkpoint it names is used). Each is recognised by content: the table magic at the
end of the `.index`.
"""
from __future__ import annotations

import json
import os
import re
import struct
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..errors import ModelError, UsageError
from . import tf_bundle, tf_objects

SHARD = re.compile(r"^(?P<prefix>.+)\.data-\d{5}-of-\d{5}$")
FLOAT_CODES = {1, 2, 19}


@dataclass
class Location:
    kind: str  # tf-savedmodel or tf-checkpoint
    prefix: str  # bundle prefix: PREFIX.index, PREFIX.data-*
    savedmodel: Optional[str] = None  # the SavedModel directory


def is_index(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            if fh.tell() < tf_bundle.FOOTER_SIZE:
                return False
            fh.seek(-8, os.SEEK_END)
            return struct.unpack("<Q", fh.read(8))[0] == tf_bundle.TABLE_MAGIC
    except OSError:
        return False


def _named_checkpoint(state_file: str) -> str:
    """The prefix a `checkpoint` state file names (model_checkpoint_path: "...")."""
    try:
        with open(state_file, encoding="utf-8") as fh:
            text = fh.read(1 << 16)
    except (OSError, UnicodeDecodeError):
        raise ModelError(f"{state_file}: cannot read this TensorFlow checkpoint state file") from None
    named = checkpoint_named_in(text, state_file)
    return named if os.path.isabs(named) else os.path.join(os.path.dirname(state_file), named)


def checkpoint_named_in(text: str, state_file: str) -> str:
    """The model_checkpoint_path a `checkpoint` state file's text names, as written."""
    m = re.search(r'^model_checkpoint_path:\s*"((?:[^"\\]|\\.)*)"', text, re.MULTILINE)
    if not m:
        raise ModelError(f"{state_file}: a `checkpoint` file that names no model_checkpoint_path")
    try:
        named = m[1].encode("utf-8").decode("unicode_escape")
    except UnicodeDecodeError:
        named = "\x00"
    if "\x00" in named or not named:
        raise ModelError(f"{state_file}: names a checkpoint path that is not a file name (damaged?)")
    return named


def locate(path: str) -> Optional[Location]:
    """Where the bundle of `path` is, if `path` means a TF SavedModel or checkpoint."""
    if os.path.isdir(path):
        if os.path.exists(os.path.join(path, "saved_model.pb")):
            prefix = os.path.join(path, "variables", "variables")
            if not os.path.exists(prefix + ".index"):
                raise ModelError(f"{path}: a TensorFlow SavedModel without variables/variables.index "
                                 "(no weights saved, or the directory is incomplete)")
            return Location("tf-savedmodel", prefix, path)
        state = os.path.join(path, "checkpoint")
        if os.path.isfile(state):
            return _prefix_location(_named_checkpoint(state), path)
        return _only_index(path)
    if os.path.basename(path) == "checkpoint" and os.path.isfile(path) and not is_index(path):
        with open(path, "rb") as fh:
            if fh.read(22) == b"model_checkpoint_path:":
                return _prefix_location(_named_checkpoint(path), path)
        return None
    if path.endswith(".index") and is_index(path):
        return _prefix_location(path[: -len(".index")], path)
    m = SHARD.match(path)
    if m and os.path.isfile(path) and is_index(m["prefix"] + ".index"):
        return _prefix_location(m["prefix"], path)
    if not os.path.exists(path) and is_index(path + ".index"):
        return _prefix_location(path, path)
    return None


def _only_index(directory: str) -> Optional[Location]:
    """A directory without a `checkpoint` state file: its one checkpoint, or the candidates named
    (not a SavedModel's variables/: the SavedModel is the model, named by its own directory)."""
    if os.path.isfile(os.path.join(os.path.dirname(os.path.abspath(directory)), "saved_model.pb")):
        return None
    try:
        names = sorted(n for n in os.listdir(directory) if n.endswith(".index"))
    except OSError:
        return None
    prefixes = [os.path.join(directory, n[: -len(".index")]) for n in names
                if is_index(os.path.join(directory, n))]
    if len(prefixes) == 1:
        return _prefix_location(prefixes[0], directory)
    if prefixes:
        shown = ", ".join(os.path.basename(p) for p in prefixes[:5]) + (" ..." if len(prefixes) > 5 else "")
        raise UsageError(f"{directory}: {len(prefixes)} TensorFlow checkpoints here and no `checkpoint` file "
                         f"to say which: name one ({shown})")
    return None


def _prefix_location(prefix: str, given: str) -> Location:
    if not is_index(prefix + ".index"):
        raise ModelError(f"{given}: names checkpoint {prefix}, whose .index is missing or not a checkpoint index")
    variables = os.path.dirname(os.path.abspath(prefix))
    if os.path.basename(prefix) == "variables" and os.path.basename(variables) == "variables":
        root = os.path.dirname(variables)
        if os.path.exists(os.path.join(root, "saved_model.pb")):
            return Location("tf-savedmodel", prefix, root)
    return Location("tf-checkpoint", prefix)


class BundleStore:
    """The Store interface (read, shape, dtype, check_tensor) over a tensor bundle."""

    def __init__(self, bundle: tf_bundle.Bundle, name: str):
        self.bundle, self.name, self.archive = bundle, name, None
        self.location = None  # where the bundle is (and its SavedModel directory)
        self.raw_config = None  # {"class_name", "config"} from keras_metadata.pb, tuples as lists
        self.nodes, self.layer_nodes = [], {}  # object graph; lstmtool layer path -> node id

    def layer_keys(self, path, names=None) -> list:
        """Checkpoint keys of a layer's weights, in Keras' order (`names`: the class's weight names)."""
        return tf_objects.variable_keys(self.nodes, self.layer_nodes.get(path), names)

    def _entry(self, key):
        try:
            return self.bundle.entries[key]
        except KeyError:
            raise ValueError(f"{key!r} is not in the checkpoint") from None

    def read(self, key, index):
        try:
            return self.bundle.array(key, index)
        except tf_bundle.BundleError as e:
            raise ModelError(f"{self.name}: {e}") from None

    def check_tensor(self, key):
        e = self._entry(key)
        if e.dtype_code not in FLOAT_CODES:
            raise ValueError(f"{key!r} holds {e.dtype} values, not floating point numbers")
        if not e.shape or 0 in e.shape:
            raise ValueError(f"{key!r} has shape {e.shape}: no weights in it")

    def shape(self, key):
        return self._entry(key).shape

    def dtype(self, key):
        e = self._entry(key)
        return np.dtype(tf_bundle.DTYPES[e.dtype_code]).name if e.numeric else e.dtype

    def close(self):
        self.bundle.close()


def open_bundle(loc: Location, filename: str, files=None) -> tf_bundle.Bundle:
    try:
        return tf_bundle.Bundle(loc.prefix, files)
    except tf_bundle.BundleError as e:
        raise ModelError(f"{filename}: {e}") from None
    except (ValueError, IndexError, struct.error) as e:
        raise ModelError(f"{filename}: damaged checkpoint index ({e})") from None
    except OSError as e:
        raise ModelError(f"{filename}: cannot read {loc.prefix}.index ({e.strerror})") from None


def read_metadata(loc: Location, filename: str, files=None) -> dict:
    if loc.savedmodel is None:
        return {}
    path = os.path.join(loc.savedmodel, "keras_metadata.pb")
    data = files.read(path, missing_ok=True) if files is not None else None
    if files is None and os.path.exists(path):
        with open(path, "rb") as fh:
            data = fh.read()
    if data is None:
        return {}  # TF < 2.5 kept it inside saved_model.pb; weights still read, config-less
    try:
        return tf_objects.metadata_nodes(data)
    except ValueError as e:
        raise ModelError(f"{filename}: damaged keras_metadata.pb ({e})") from None


def graph(bundle: tf_bundle.Bundle, filename: str) -> list:
    if tf_objects.GRAPH_KEY not in bundle.entries:
        raise ModelError(f"{filename}: checkpoint without an object graph (a TF1 name-based checkpoint); "
                         "lstmtool reads object-based checkpoints (TF 2.x Keras)")
    try:
        return tf_objects.object_graph(bundle.strings(tf_objects.GRAPH_KEY)[0])
    except tf_bundle.BundleError as e:
        raise ModelError(f"{filename}: {e}") from None
    except (ValueError, IndexError) as e:
        raise ModelError(f"{filename}: damaged object graph ({e})") from None


@dataclass
class Parts:
    """What a SavedModel or checkpoint holds, for the reader to build a Model from."""

    store: "BundleStore"
    version: Optional[str]
    backend: Optional[str]
    spec: object
    found: list
    layers: list
    warnings: list


def read_parts(filename: str, loc: Location, files=None) -> Parts:
    """The bundle's store, its config and the cells found through the object graph (and
    metadata). `files`: how a remote bundle's files are read (see tf_bundle.Bundle)."""
    from ..core.config import OPAQUE_CLASSES, parse_config, walk_cells
    from ..core.model import Layer

    bundle = open_bundle(loc, filename, files)
    store = BundleStore(bundle, filename)
    store.location = loc
    try:
        metadata = read_metadata(loc, filename, files)
        nodes = graph(bundle, filename)
        root = metadata.get("root", {})
        version = root.get("keras_version") if isinstance(root.get("keras_version"), str) else None
        backend = root.get("backend") if isinstance(root.get("backend"), str) else None
        model_config = root.get("model_config")
        if isinstance(model_config, (str, bytes)):
            model_config = json.loads(model_config)
        store.raw_config = tf_objects.untuple(model_config) if isinstance(model_config, dict) else None
        store.nodes = nodes
        spec = parse_config(json.dumps(store.raw_config) if store.raw_config else None, filename)
        warnings, layers = [], []
        if spec is None:
            found = tf_objects.infer_cells(nodes, store.shape)
            warnings.append("no Keras config in this checkpoint: cell classes inferred from tensor shapes, "
                            "layer paths are object-graph paths (layer_with_weights-K)")
        else:
            names = tf_objects.layer_names(nodes, metadata)
            addressing = tf_objects.Addressing(nodes, names)
            found = walk_cells(spec, "" if spec.is_model else spec.name, 0, addressing)
            store.layer_nodes = tf_objects.layer_nodes(spec, addressing)
            if spec.is_model:
                layers = [Layer(sub.name, sub.class_name, tf_objects.layer_weight_count(nodes, node),
                                opaque=sub.class_name in OPAQUE_CLASSES)
                          for sub, node in addressing.sublayers(spec, 0)]
        return Parts(store, version, backend, spec, found, layers, warnings)
    except BaseException:
        store.close()
        raise
