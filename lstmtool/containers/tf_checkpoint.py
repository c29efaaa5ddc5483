"""TF SavedModel directories and TF-format checkpoints as lstmtool models.

Paths a user types: a SavedModel directory, a checkpoint prefix (`training_1/cp.ckpt`),
its `.index` or `.data-*` file, the `checkpoint` file, or a directory holding one (the
checkpoint it names is used). Each is recognised by content: the table magic at the
end of the `.index`.
"""
from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..errors import ModelError
from . import tf_bundle, tf_objects
from .tf_locate import SHARD, Location, checkpoint_named_in, is_index, locate  # noqa: F401 - re-exported

FLOAT_CODES = {1, 2, 19}


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
