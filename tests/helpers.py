"""Shared checks: byte-level snapshots of model files, and Keras-side references."""
import io
import os
import zipfile

import h5py
import numpy as np


def _h5_snapshot(f):
    snap = {}

    def attrs(obj):
        return {k: repr(v) for k, v in obj.attrs.items()}

    snap["/"] = ("attrs", attrs(f))

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            snap[name] = ("data", obj[()].tobytes() if obj.shape != () else repr(obj[()]), str(obj.dtype),
                          obj.shape, attrs(obj))
        else:
            snap[name] = ("attrs", attrs(obj))

    f.visititems(visit)
    return snap


def snapshot(path):
    """{object path: content} for every dataset and attribute; zip members for .keras."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head == b"PK\x03\x04":
        with zipfile.ZipFile(path) as z:
            assert z.testzip() is None
            members = {i.filename: z.read(i.filename) for i in z.infolist()}
        weights = members.pop("model.weights.h5")
        with h5py.File(io.BytesIO(weights), "r") as f:
            snap = _h5_snapshot(f)
        snap.update({f"zip:{k}": v for k, v in members.items()})
        return snap
    with h5py.File(path, "r") as f:
        return _h5_snapshot(f)


def changed(before, after):
    assert set(before) == set(after), set(before) ^ set(after)
    return {k for k in before if before[k] != after[k]}


def read_array(path, dataset):
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head == b"PK\x03\x04":
        with zipfile.ZipFile(path) as z, h5py.File(io.BytesIO(z.read("model.weights.h5")), "r") as f:
            return f[dataset][()]
    with h5py.File(path, "r") as f:
        return f[dataset][()]


def assert_only_slices_changed(before_path, after_path, slices):
    """`slices` = {dataset: [index, ...]}: everything outside them is bit-identical."""
    b, a = snapshot(before_path), snapshot(after_path)
    diff = changed(b, a)
    assert diff <= {k.lstrip("/") for k in slices}, diff - {k.lstrip("/") for k in slices}
    for ds, indices in slices.items():
        old, new = read_array(before_path, ds), read_array(after_path, ds)
        masked = new.copy()
        for idx in indices:
            masked[idx] = old[idx]
        assert masked.tobytes() == old.tobytes(), f"{ds} changed outside the edited slices"
    return diff


def keras_for(path):
    if "/keras3/" in path:
        import keras

        return keras
    import tf_keras

    return tf_keras


def lstm_cells(k, model):
    """Every LSTM-family cell object in a Keras model, like lstmtool finds them."""
    out = []

    def walk(layer):
        if isinstance(layer, k.Model):
            for sub in layer.layers:
                walk(sub)
        elif isinstance(layer, k.layers.TimeDistributed):
            walk(layer.layer)
        elif isinstance(layer, k.layers.Bidirectional):
            walk(layer.forward_layer)
            walk(layer.backward_layer)
        elif isinstance(layer, k.layers.RNN) or hasattr(layer, "cell"):
            cells = getattr(layer.cell, "cells", [layer.cell])
            out.extend(c for c in cells if "LSTM" in type(c).__name__)

    walk(model)
    return out


def full_model_for(path):
    """The full-model fixture that goes with a weights-only fixture."""
    d, name = os.path.split(path)
    stem = name.split(".")[0]
    return os.path.join(d, stem + (".keras" if "/keras3/" in path else ".h5"))


def predict(path, x, like=None):
    """Load `path` in the Keras that wrote fixture `like` (default: path itself) and run x.
    Weights-only files are loaded into the fixture's full model."""
    like = like or path
    k = keras_for(like)
    if like.endswith((".weights.h5", ".wonly.h5")):
        model = k.models.load_model(full_model_for(like), compile=False)
        model.load_weights(path)
    else:
        model = k.models.load_model(path, compile=False)
    return np.asarray(model(x)), model, k
