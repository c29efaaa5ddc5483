"""Keras model configs (Keras 1, 2 and 3 JSON) as a tree of layer specs.

Only names, classes and plain settings are read. Nothing in a config is ever
evaluated: Lambda layers carry marshalled Python bytecode in some files, and
lstmtool shows them as opaque layers.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Optional

from ..errors import ModelError

LSTM_CLASSES = {"LSTM", "LSTMCell", "CuDNNLSTM", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D",
                "ConvLSTMCell", "ConvLSTM1DCell", "ConvLSTM2DCell", "ConvLSTM3DCell"}
GRU_CLASSES = {"GRU", "GRUCell", "CuDNNGRU"}
SIMPLE_CLASSES = {"SimpleRNN", "SimpleRNNCell"}
RNN_WRAPPERS = {"RNN"}  # RNN(cell) / RNN(StackedRNNCells)
MODEL_CLASSES = {"Sequential", "Functional", "Model"}
OPAQUE_CLASSES = {"Lambda", "TFOpLambda", "SlicingOpLambda"}


def family_of(class_name: str) -> Optional[str]:
    if class_name in LSTM_CLASSES:
        return "lstm"
    if class_name in GRU_CLASSES:
        return "gru"
    if class_name in SIMPLE_CLASSES:
        return "simple_rnn"
    return None


@dataclass
class Spec:
    """One layer (or cell) of a config."""

    name: str
    class_name: str
    config: dict
    layers: list = field(default_factory=list)  # sub-layers of a nested model
    inner: Optional["Spec"] = None  # Bidirectional forward layer, TimeDistributed layer
    backward: Optional["Spec"] = None  # Bidirectional explicit backward layer
    cells: list = field(default_factory=list)  # RNN(cell) / RNN(StackedRNNCells)

    @property
    def family(self):
        return family_of(self.class_name)

    @property
    def is_model(self):
        return self.class_name in MODEL_CLASSES or bool(self.layers)


def parse_config_text(text) -> Optional[Spec]:
    if text is None:
        return None
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    return parse_layer(json.loads(text))


MAX_DEPTH = 100  # models nest a few levels; a config nested deeper is damaged or hostile


def parse_layer(d: dict, depth: int = 0) -> Spec:
    if depth > MAX_DEPTH:
        raise ValueError(f"layers nested more than {MAX_DEPTH} deep")
    if not isinstance(d, dict):
        raise ValueError(f"a layer is a {type(d).__name__}, not an object")
    cls = str(d.get("class_name", "?"))
    cfg = d.get("config")
    if isinstance(cfg, list):  # Keras 1 / early Keras 2 Sequential: config is the layer list
        cfg = {"name": d.get("name", "sequential"), "layers": cfg}
    cfg = cfg if isinstance(cfg, dict) else {}
    spec = Spec(name=str(cfg.get("name") or d.get("name") or cls.lower()), class_name=cls, config=cfg)
    if isinstance(cfg.get("layers"), list):
        spec.layers = [parse_layer(sub, depth + 1) for sub in cfg["layers"] if isinstance(sub, dict)]
    if isinstance(cfg.get("layer"), dict):  # Bidirectional, TimeDistributed
        spec.inner = parse_layer(cfg["layer"], depth + 1)
    if isinstance(cfg.get("backward_layer"), dict):
        spec.backward = parse_layer(cfg["backward_layer"], depth + 1)
    cell = cfg.get("cell")
    if isinstance(cell, dict):
        if cell.get("class_name") == "StackedRNNCells":
            inner = cell.get("config") if isinstance(cell.get("config"), dict) else {}
            cells = inner.get("cells") if isinstance(inner.get("cells"), list) else []
            spec.cells = [parse_layer(c, depth + 1) for c in cells if isinstance(c, dict)]
        else:
            spec.cells = [parse_layer(cell, depth + 1)]
    return spec


def walk_cells(spec: Spec, path: str, where, addressing) -> list:
    """Every recurrent cell under `spec`, in config order, as `addressing.cell(...)` makes it.

    The walk is the same for every container; only where a child's weights sit differs.
    `where` is the container's address of `spec`'s weights (a weight list in legacy HDF5,
    a tree path in Keras 3), and `addressing` derives the children's addresses:
    sublayers(spec, where) -> [(sub, where)], halves(where, spec) -> (forward, backward),
    wrapped(where), stacked(cells, where) -> [where], single_cell(where),
    cell(spec, where, path).
    """
    if spec.is_model:
        return [c for sub, w in addressing.sublayers(spec, where)
                for c in walk_cells(sub, f"{path}/{sub.name}".lstrip("/"), w, addressing)]
    if spec.class_name == "Bidirectional" and spec.inner is not None:
        forward, backward = addressing.halves(where, spec)
        return (walk_cells(spec.inner, f"{path}/forward", forward, addressing)
                + walk_cells(spec.backward or spec.inner, f"{path}/backward", backward, addressing))
    if spec.class_name == "TimeDistributed" and spec.inner is not None:
        return walk_cells(spec.inner, path, addressing.wrapped(where), addressing)
    if len(spec.cells) > 1:  # RNN(StackedRNNCells([...])): stacking order is config order
        return [addressing.cell(cell, w, f"{path}/cell_{k}")
                for k, (cell, w) in enumerate(zip(spec.cells, addressing.stacked(spec.cells, where)))]
    if spec.cells and spec.class_name in RNN_WRAPPERS:  # RNN(cell)
        return walk_cells(spec.cells[0], path, where, addressing)
    if spec.family:
        return [addressing.cell(spec, addressing.single_cell(where), path)]
    return []


def units_of(cfg: dict):
    """units (Keras 2/3), output_dim (Keras 1), filters (ConvLSTM)."""
    for key in ("units", "output_dim", "filters"):
        if key in cfg:
            return cfg[key]
    return None


def activation_name(value, default):
    """Activation as its plain name; serialized objects give their class/config name."""
    if value is None:
        return default
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        inner = value.get("config")
        if isinstance(inner, dict) and isinstance(inner.get("name"), str):
            return inner["name"]
        if isinstance(inner, str):
            return inner
        return str(value.get("class_name", default))
    return str(value)


def parse_config(config_text, filename):
    """The Spec of a model config as a file stores it (bytes or text), or None; damaged
    configs are a ModelError naming the file."""
    if config_text is None:
        return None
    if isinstance(config_text, bytes):
        try:
            config_text = config_text.decode("utf-8")
        except UnicodeDecodeError:
            raise ModelError(f"{filename}: model config is not UTF-8 text") from None
    try:
        return parse_config_text(str(config_text))
    except RecursionError:
        raise ModelError(f"{filename}: model config is nested too deeply") from None
    except json.JSONDecodeError as e:
        raise ModelError(f"{filename}: model config is not valid JSON ({_first_line(e)})") from None
    except (ValueError, TypeError, AttributeError, KeyError, IndexError) as e:
        raise ModelError(f"{filename}: model config is malformed ({_first_line(e)})") from None


def _first_line(e) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]
