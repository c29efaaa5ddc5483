"""A new file in the input's own format with some tensors replaced (new shapes allowed)
and a new model config: what `prune` and `widen` write.

Unchanged datasets are copied by HDF5 itself (H5Ocopy), attributes as stored; optimizer
state is left out (its slots have the old shapes; compile again to train). Written
beside the output and renamed over it, like every write.
"""
from __future__ import annotations

import json

import h5py
import numpy as np

from ..containers.keras_zip import MAX_TEXT_MEMBER, WEIGHTS_MEMBER, ArchiveWriter
from ..core.files import atomic_output, atomic_path
from ..errors import WriteError

OPTIMIZER_GROUPS = {"legacy-h5": ("optimizer_weights",), "keras-zip": ("optimizer",)}


def copy_tree(src: h5py.Group, dst: h5py.Group, arrays: dict, skip=()):
    """Copy `src` into `dst`, datasets named in `arrays` replaced by those arrays (or by
    what a function there returns, called when the dataset is written)."""
    for key, value in src.attrs.items():
        dst.attrs[key] = value
    for name in src:
        if name in skip:
            continue
        obj = src.get(name, getlink=False)
        path = obj.name
        if isinstance(obj, h5py.Group):
            copy_tree(obj, dst.create_group(name), arrays)
        elif path in arrays:
            value = arrays[path]
            new = dst.create_dataset(name, data=np.ascontiguousarray(value() if callable(value) else value))
            for key, value in obj.attrs.items():
                new.attrs[key] = value
        else:
            src.file.copy(obj, dst, name=name)


def config_attr(original, text: str):
    """The new model_config with the original attribute's type (bytes or str)."""
    return text.encode("utf-8") if isinstance(original, (bytes, np.bytes_)) else text


def write(model, out: str, config: dict, arrays: dict, metadata_note: dict = None):
    text = json.dumps(config)
    if model.format == "legacy-h5":
        _write_legacy(model, out, text, arrays)
    else:
        _write_archive(model, out, text, arrays, metadata_note)


def _write_legacy(model, out, text, arrays):
    src = model.store.h5
    with atomic_path(out) as tmp:
        with h5py.File(tmp, "w") as dst:
            copy_tree(src, dst, arrays, skip=OPTIMIZER_GROUPS["legacy-h5"])
            dst.attrs["model_config"] = config_attr(src.attrs.get("model_config"), text)


def _write_archive(model, out, text, arrays, note):
    archive = model.store.archive
    metadata = dict(archive.metadata)
    if note:
        metadata.setdefault("lstmtool", {}).update(note)
    with atomic_output(out) as fh:
        writer = ArchiveWriter(fh)
        writer.add("metadata.json", json.dumps(metadata).encode())
        writer.add("config.json", text.encode())
        for info in archive.zf.infolist():  # assets and anything else Keras put there
            if info.filename not in ("metadata.json", "config.json", WEIGHTS_MEMBER):
                if info.file_size > MAX_TEXT_MEMBER or info.file_size > 200 * max(1, info.compress_size) + (1 << 20):
                    raise WriteError(f"{model.filename}: member {info.filename} would expand to "
                                     f"{info.file_size} bytes; nothing written")
                writer.add(info.filename, archive.zf.read(info))
        window = writer.weights()
        with h5py.File(window, "w") as dst:
            copy_tree(model.store.h5, dst, arrays, skip=OPTIMIZER_GROUPS["keras-zip"])
        writer.close_weights(window)
        writer.finish()
