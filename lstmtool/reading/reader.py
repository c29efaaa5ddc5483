"""`load(path)`: open any Keras save format, find its recurrent cells, split them.

The format is told from the file's first bytes, never from its extension.
No TensorFlow or Keras is imported here.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

import h5py
import numpy as np

from ..core.config import OPAQUE_CLASSES, parse_config
from ..containers import keras3_tree, legacy_h5
from ..containers.hdf5 import HDF5_MAGIC, scan
from ..errors import ModelError, UsageError
from ..layouts import build_cell, is_keras1
from ..core.model import Layer, Model


@dataclass
class Incomplete:
    """A recurrent cell the file names but whose weights cannot all be read."""

    path: str
    class_name: str
    problem: str
    present: dict  # role -> dataset path of what is there


def first_line(e) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


class Store:
    """The open HDF5 weights (and the archive around them, for .keras)."""

    def __init__(self, h5, archive=None, name=""):
        self.h5, self.archive, self.name = h5, archive, name
        self.remote = None  # the RemoteFile, for a remote model: its request counts

    def read(self, path, index):
        if self.remote is not None:
            return self._remote_tensor(path)[index]
        if self.archive is not None:
            self.archive.check_crc()
        try:
            return self.h5[path][index]
        except (OSError, RuntimeError, KeyError) as e:
            raise ModelError(f"{self.name}: cannot read {path} (damaged file: {first_line(e)})") from None

    def _remote_tensor(self, path):
        """A remote tensor whole, in one request, kept for its other gates: HDF5 would fetch a
        column slice of a contiguous dataset row by row (thousands of requests)."""
        cache = self.__dict__.setdefault("_tensors", {})
        if path in cache:
            cache[path] = cache.pop(path)  # most recently used last
            return cache[path]
        try:
            ds = self.h5[path]
            offset = ds.id.get_offset()
            if offset is None or ds.chunks is not None or ds.compression is not None:
                array = ds[()]  # chunked or empty: HDF5 reads it chunk by chunk
            else:
                base = self.archive.weights_offset if self.archive is not None else 0
                raw = self.remote.shared.fetch(base + offset, base + offset + ds.id.get_storage_size())
                array = np.frombuffer(raw, dtype=ds.dtype).reshape(ds.shape)
        except (OSError, RuntimeError, KeyError, ValueError) as e:
            raise ModelError(f"{self.name}: cannot read {path} ({first_line(e)})") from None
        cache[path] = array
        while len(cache) > 4:
            cache.pop(next(iter(cache)))
        return array

    def check_tensor(self, path):
        """A weight must be a dataset of real floating point numbers, non-empty, whose
        declared size the file can hold (never-written chunked datasets can claim terabytes)."""
        try:
            obj = self.h5.get(path)
        except (OSError, RuntimeError, KeyError) as e:
            raise ValueError(f"cannot be opened ({first_line(e)})") from None
        if not isinstance(obj, h5py.Dataset):
            raise ValueError(f"at {path} is a {type(obj).__name__ if obj is not None else 'missing object'}, "
                             "not an array")
        if obj.dtype.kind != "f" or obj.dtype.names:
            raise ValueError(f"at {path} holds {obj.dtype} values, not floating point numbers")
        if obj.ndim == 0 or obj.size == 0:
            raise ValueError(f"at {path} has shape {obj.shape}: no weights in it")
        declared, stored = obj.size * obj.dtype.itemsize, obj.id.get_storage_size()
        if declared > (256 << 20) and declared > 64 * max(stored, 1):
            raise ValueError(f"at {path} declares {declared} bytes but the file stores {stored}")

    def shape(self, path):
        return self.h5[path].shape

    def dtype(self, path):
        return str(self.h5[path].dtype)

    def close(self):
        self.h5.close()
        if self.archive is not None:
            self.archive.close()


def savedmodel_around(filename):
    """The SavedModel directory that `filename` (its saved_model.pb, variables/ or a file in it) is part of."""
    here = os.path.abspath(filename)
    for parent in (os.path.dirname(here), os.path.dirname(os.path.dirname(here))):
        if os.path.isfile(os.path.join(parent, "saved_model.pb")) and os.path.isdir(os.path.join(parent, "variables")):
            return os.path.relpath(parent) if not os.path.isabs(filename) else parent
    return None


def sniff(filename: str) -> str:
    """hdf5 or zip, from the first bytes (TF checkpoints are told apart before, by `locate`)."""
    parts = ("saved_model.pb", "keras_metadata.pb", "fingerprint.pb", "variables", "assets")
    whole = savedmodel_around(filename) if os.path.basename(os.path.normpath(filename)) in parts else None
    if whole is not None:
        raise UsageError(f"{filename}: one part of the TensorFlow SavedModel {whole}: name that directory")
    if not os.path.exists(filename):
        if os.path.exists(filename + ".index"):
            raise ModelError(f"{filename}: {filename}.index is not a TensorFlow checkpoint index (damaged?)")
        raise UsageError(f"{filename}: no such file")
    if os.path.isdir(filename):
        raise UsageError(f"{filename}: is a directory, not a model file (nor a SavedModel or checkpoint directory)")
    try:
        with open(filename, "rb") as fh:
            head = fh.read(8)
    except OSError as e:
        raise ModelError(f"{filename}: cannot read ({e.strerror})") from None
    if head == HDF5_MAGIC:
        return "hdf5"
    if head[:4] == b"PK\x03\x04":
        return "zip"
    if not head:
        raise ModelError(f"{filename}: empty file, not a Keras model")
    if filename.endswith(".index") or os.path.basename(filename) == "checkpoint":
        raise ModelError(f"{filename}: not a TensorFlow checkpoint index or state file (damaged or truncated?)")
    raise ModelError(f"{filename}: not a Keras model (neither HDF5 nor a .keras zip archive)")


def open_h5(source, filename):
    try:
        return h5py.File(source, "r")
    except (OSError, ValueError) as e:
        text = str(e)
        cut = re.search(r"truncated file: eof = (\d+).*stored_eof = (\d+)", text)
        if cut:  # checked first: HDF5 names its superblock "sblock", which a search for "lock" finds
            raise ModelError(f"{filename}: truncated HDF5 file ({int(cut[1]):,} bytes on disk, "
                             f"{int(cut[2]):,} recorded in the file)") from None
        if re.search(r"unable to (lock|unlock) file|file locking", text, re.I):
            raise ModelError(f"{filename}: another program holds this file open for writing (HDF5 file lock); "
                             "close it, or set HDF5_USE_FILE_LOCKING=FALSE to read it anyway") from None
        reason = str(e).split("(")[0].strip().rstrip(",")
        raise ModelError(f"{filename}: damaged or truncated HDF5 file ({reason})") from None


def keras_major(version):
    m = re.match(r"^(\d+)", version or "")
    return int(m[1]) if m else None


def load(filename: str, config_text=None, layer_names=None) -> Model:
    """Open a Keras model or weights file. Use the result as a context manager.

    `config_text` (a legacy HDF5 file only) is the model config to read it by, for weights-only
    files saved beside `model.to_json()`; `layer_names` ({config name: the file's layer name})
    pairs a config's layers with differently named ones in the file."""
    filename = os.fspath(filename)
    from ..remote import urls as remote

    if remote.is_remote(filename):
        return _load_remote(filename, config_text, layer_names)
    from ..containers.tf_locate import locate

    location = locate(filename)
    if location is not None:
        return _from_checkpoint(filename, location)
    kind = sniff(filename)
    archive = None
    if kind == "zip":
        from ..containers.keras_zip import KerasArchive  # zipfile only when needed

        archive = KerasArchive(filename)
        h5 = open_h5(archive.weights_file, filename)
    else:
        h5 = open_h5(filename, filename)
    store = Store(h5, archive, filename)
    from . import watchdog

    try:
        with watchdog.deadline(f"{filename}: reading its metadata does not finish: damaged HDF5 structure"), \
                watchdog.memory_cap():
            return _read(filename, store, archive, config_text, layer_names or {})
    except MemoryError:
        store.close()
        raise ModelError(f"{filename}: damaged HDF5 file (its metadata declares sizes far beyond the file)") from None
    except RecursionError:
        store.close()
        raise ModelError(f"{filename}: nested too deeply to be a Keras model (a link cycle or a runaway config)") from None
    except (OSError, RuntimeError, KeyError, UnicodeError) as e:  # h5py on damaged metadata
        store.close()
        what = "names that are not UTF-8" if isinstance(e, UnicodeError) else first_line(e)
        raise ModelError(f"{filename}: damaged HDF5 file ({what})") from None
    except Exception:
        store.close()
        raise


REMOTE_CACHE = None  # a directory for remote blocks (the CLI's --cache; LSTMTOOL_CACHE)


def _load_remote(url, config_text=None, layer_names=None) -> Model:
    """A remote .h5 or .keras, read through range requests (no watchdog: the network has
    its own timeouts, and the stores' client threads need the address space)."""
    from ..remote import urls as remote

    cache = REMOTE_CACHE or os.environ.get("LSTMTOOL_CACHE") or None
    base = url.split("?", 1)[0].rstrip("/")
    if not base.lower().endswith((".h5", ".hdf5", ".keras")):
        from .remote_bundle import remote_bundle

        model = remote_bundle(url, base, cache, _from_checkpoint)
        if model is not None:
            return model
    from ..remote import open_remote

    source = open_remote(url, cache_dir=cache)
    head = source.read(8)
    archive = None
    if head == HDF5_MAGIC:
        h5 = open_h5(source, remote.shown(url))
    elif head[:4] == b"PK\x03\x04":
        from ..containers.keras_zip import KerasArchive

        archive = KerasArchive(remote.shown(url), fileobj=source)
        h5 = open_h5(archive.weights_file, remote.shown(url))
    elif not head:
        raise ModelError(f"{remote.shown(url)}: empty file, not a Keras model")
    else:
        raise ModelError(f"{remote.shown(url)}: not a Keras model (neither HDF5 nor a .keras zip archive); "
                         "remote SavedModels and checkpoints are not read yet")
    store = Store(h5, archive, remote.shown(url))
    store.remote = source
    try:
        return _read(remote.shown(url), store, archive, config_text, layer_names or {})
    except (OSError, RuntimeError, KeyError, UnicodeError) as e:
        store.close()
        raise ModelError(f"{remote.shown(url)}: damaged HDF5 file ({first_line(e)})") from None
    except Exception:
        store.close()
        raise


def _read(filename, store, archive, config_text=None, layer_names=None) -> Model:
    f, warnings = store.h5, []
    datasets = scan(f)
    if archive is not None:
        fmt, version, backend = "keras-zip", archive.metadata.get("keras_version"), None
        spec = parse_config(archive.config_text, filename)
        if spec is None:
            warnings.append("this .keras archive has no config.json: cell classes inferred from tensor shapes")
        if not isinstance(version, (str, type(None))):
            version = str(version)
        found, layers = _from_tree(f, spec), _spec_layers(spec, datasets)
    elif config_text is not None and not legacy_h5.is_legacy(f):
        raise UsageError(f"{filename}: a config can be given only for a legacy Keras .h5 weights file")
    elif keras3_tree.is_keras3_tree(f):
        fmt, version, backend, spec = "keras3-weights", None, None, None
        found, layers = keras3_tree.infer(keras3_tree.Tree(f)), []
        warnings.append("no config in a .weights.h5 file: cell classes inferred from tensor shapes")
    elif legacy_h5.is_legacy(f):
        spec = parse_config(f.attrs.get("model_config") if config_text is None else config_text, filename)
        fmt = "legacy-h5" if "model_weights" in f else "legacy-h5-weights"
        version, backend = legacy_h5.attr_text(f, "keras_version"), legacy_h5.attr_text(f, "backend")
        if config_text is not None and version is None:
            version = _json_version(config_text)
        entries = legacy_h5.read_layers(f, warnings)
        found, layers = _from_legacy(f, spec, entries, layer_names or {})
    else:
        raise ModelError(f"{filename}: HDF5 file but not a Keras model (no layer_names, model_weights or layers)")

    warnings += unclaimed_recurrent(datasets, found)
    major = keras_major(version)
    if major is None and any(is_keras1(fc) for fc in found):
        major = 1  # Keras 1 per-gate names; Keras 1 often wrote no version attribute
    cells, incomplete = build_cells(found, store, major, warnings)
    model = Model(filename, fmt, version, backend, spec.config if spec else None, layers, cells,
                  warnings, store, incomplete, major)
    _activation_warnings(model)
    return model


def _from_checkpoint(filename, location, files=None) -> Model:
    """A SavedModel or checkpoint: the container finds cells and layers, the reader builds them."""
    from ..containers import tf_checkpoint

    parts = tf_checkpoint.read_parts(filename, location, files)
    try:
        major = keras_major(parts.version) or 2  # object-based checkpoints: tf.keras 2.x
        cells, incomplete = build_cells(parts.found, parts.store, major, parts.warnings)
        model = Model(filename, location.kind, parts.version, parts.backend, parts.spec.config if parts.spec else None,
                      parts.layers, cells, parts.warnings, parts.store, incomplete, major)
        _activation_warnings(model)
        return model
    except BaseException:
        parts.store.close()
        raise


def build_cells(found, store, major, warnings):
    """(cells, incomplete) from a container's found cells; every path unique."""
    cells, incomplete = [], []
    for fc in found:
        try:
            cells.append(build_cell(fc, store.shape, store.dtype, store.read, major, store.check_tensor))
        except ValueError as e:
            present = {r: p for r, p in fc.tensors.items() if p}
            incomplete.append(Incomplete(fc.path, fc.class_name or "?", str(e).split(": ", 1)[-1], present))
            warnings.append(f"incomplete cell {e}")
    unique_paths(cells, incomplete, warnings)
    return cells, incomplete


def unique_paths(cells, incomplete, warnings):
    """Two cells must never share a path: export, import and edits address cells by it.
    Where the file cannot tell two apart, the later ones get `~2`, `~3` and a warning."""
    seen = {}
    for item in list(cells) + list(incomplete):
        n = seen[item.path] = seen.get(item.path, 0) + 1
        if n > 1:
            new = f"{item.path}~{n}"
            warnings.append(f"two recurrent cells came out as {item.path!r}: the file does not tell their "
                            f"names apart; the later one is called {new!r}")
            item.path = new


RECURRENT_NAME = re.compile(r"(^|/)recurrent_kernel(:\d+)?$|/cell/vars/1$|/cells/[^/]+/vars/1$")


def unclaimed_recurrent(datasets, found) -> list:
    """Warn about weights that look recurrent but no known cell class claims (custom
    layers or cells): lstmtool shows them as they are and never guesses their gates."""
    claimed = {p.lstrip("/") for fc in found for p in fc.tensors.values() if p}
    odd = [n for n in datasets if RECURRENT_NAME.search(n.replace("\\", "/")) and n not in claimed
           and not n.startswith(("optimizer", "optimizer_weights"))]
    return [f"{n}: looks like a recurrent kernel, but no LSTM/GRU/SimpleRNN class in the file claims it "
            "(a custom layer?): not interpreted" for n in odd]


def _spec_layers(spec, datasets=None) -> list:
    """Top-level layers of a config; with the Keras 3 tree's `datasets`, their weight counts."""
    if spec is None:
        return []
    subs = spec.layers if spec.is_model else [spec]
    counts = {}
    if datasets is not None and spec.is_model:
        names = {sub.name: name for sub, name in keras3_tree.numbered(subs if spec.class_name != "Sequential"
                                                                      else [s for s in subs if s.class_name != "InputLayer"])}
        norm = [d.replace("\\", "/") for d in datasets]
        counts = {layer: sum(d.startswith(f"layers/{key}/") for d in norm) for layer, key in names.items()}
    return [Layer(s.name, s.class_name, counts.get(s.name, 0), opaque=s.class_name in OPAQUE_CLASSES) for s in subs]


def _from_tree(f, spec) -> list:
    tree = keras3_tree.Tree(f)
    if spec is None:
        return keras3_tree.infer(tree)
    return keras3_tree.locate(tree, spec, "" if spec.is_model else spec.name)


def _json_version(config_text):
    try:
        value = json.loads(config_text).get("keras_version")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def _from_legacy(f, spec, entries, layer_names=None):
    by_name = {e.name: e for e in entries}
    for config_name, file_name in (layer_names or {}).items():
        if file_name in by_name:
            by_name[config_name] = by_name[file_name]
    shape_of = lambda p: getattr(f[p], "shape", ())  # noqa: E731  (a group where a weight belongs: no shape)
    if spec is None:
        from ..containers.infer import infer_legacy_layer

        found = []
        for e in entries:
            found += infer_legacy_layer(e.name, e.weights, shape_of)
        layers = [Layer(e.name, "?", len(e.weights)) for e in entries]
        return found, layers
    subs = spec.layers if spec.is_model else [spec]
    found = [c for sub in subs for c in legacy_h5.cells_of(sub, by_name.get(sub.name))]
    layers = [Layer(s.name, s.class_name, len(by_name[s.name].weights) if s.name in by_name else 0,
                    opaque=s.class_name in OPAQUE_CLASSES) for s in subs]
    return found, layers


def _activation_warnings(model: Model):
    for cell in model.cells:
        if cell.family == "simple_rnn":
            continue  # no recurrent activation: nothing to warn about
        if cell.recurrent_activation == "hard_sigmoid":
            era = "Keras 3: x/6+0.5" if model.keras_major == 3 else "Keras 1/2: 0.2x+0.5"
            model.warnings.append(
                f"{cell.path}: recurrent_activation is hard_sigmoid, whose formula changed between "
                f"Keras 2 (0.2x+0.5, clipped) and Keras 3 (x/6+0.5, clipped); this file means {era}"
            )
        v = model.keras_version or ""
        if re.match(r"^2\.[0-2]\.", v) and cell.family in ("lstm", "gru") and cell.source == "config" \
                and cell.recurrent_activation == "hard_sigmoid":
            model.warnings.append(
                f"{cell.path}: Keras {v} defaulted recurrent_activation to hard_sigmoid; "
                "Keras >= 2.3 defaults to sigmoid, so rebuilding from code changes the outputs"
            )
