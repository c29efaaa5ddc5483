"""The Keras 3 model `upgrade` would write, kept in memory: for converters (convert/) that
start from Keras 3's well-defined layers instead of writing a .keras file first."""
from __future__ import annotations

import contextlib
import os

import numpy as np

from ..containers.keras3_tree import Stored
from ..errors import UsageError
from ..reading.reader import load
from . import keras3
from .translate import Refused, model_config


def keras3_model(src, model=None, backend=None, replace=None):
    """The Keras 3 model `upgrade` would write, in memory: (config.json document, steps,
    {layer path: [NumPy arrays in Keras 3's order]}). For converters that start from Keras 3's
    well-defined layers (hard_sigmoid already Keras 3's, kernels in Keras 3's layout)."""
    opened = contextlib.nullcontext(model) if model is not None else load(src)
    with opened as model:
        raw = keras3._raw_config(model)
        if raw is None:
            raise UsageError(f"{src}: weights only (no model config): the whole model is needed; "
                             "upgrade it with --config or --like first")
        if model.incomplete:
            raise Refused(f"{src}: {model.incomplete[0].path} is incomplete in the file ({model.incomplete[0].problem})")
        weights_major = model.keras_major if model.keras_major is not None else 2
        try:
            k3, steps = model_config(raw, model.keras_major, weights_major=weights_major,
                                     backend=backend or model.backend, replace=replace)
        except (TypeError, AttributeError, KeyError, IndexError, ValueError) as e:
            if isinstance(e, Refused):
                raise
            raise Refused(f"{src}: model config is malformed ({type(e).__name__}: {e})") from None
        source = keras3._WeightSource(model, steps, None, backend)
        arrays = _ArrayCollector()
        try:
            keras3._emit(k3, "", "", arrays, source)
        finally:
            source.close()
    return k3, steps, arrays.by_path


class _ArrayCollector:
    """A TreeWriter stand-in for _emit: keeps each layer's arrays in memory by layer path."""

    def __init__(self):
        self.by_path = {}

    def vars(self, tree_path, name, arrays=(), lpath=None):
        if lpath is not None and arrays:
            self.by_path[lpath] = [_as_array(a) for a in arrays]


def _as_array(a):
    if isinstance(a, Stored):
        data = os.pread(a.fd, a.nbytes, a.offset)
        return np.frombuffer(data, dtype=a.h5type.dtype).reshape(a.shape)
    return np.asarray(a)
