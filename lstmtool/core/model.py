"""The data lstmtool returns: a model's layers, its recurrent cells, and lazy gate views.

Nothing here reads a whole model: a `GateView` records which dataset and which
index range hold a gate's W, U or b, and reads that slice only when asked.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np


@dataclass(frozen=True)
class TensorRef:
    """One dataset as stored in the file."""

    name: str  # role in the cell: kernel, recurrent_kernel, bias, or a Keras 1 name like W_f
    path: str  # dataset path inside the HDF5 file
    shape: tuple
    dtype: str


@dataclass
class Term:
    """`tensor[index]`, optionally transformed (CuDNN kernels need a transform)."""

    tensor: TensorRef
    index: tuple  # tuple of slices
    transform: Optional[Callable[[np.ndarray], np.ndarray]] = None
    inverse: Optional[Callable[[np.ndarray], np.ndarray]] = None  # stored block from a view value

    def ranges(self) -> list:
        """The index as [[start, stop], ...] per axis, for JSON and tables."""
        out = []
        for axis, s in enumerate(self.index):
            start, stop, _ = s.indices(self.tensor.shape[axis])
            out.append([start, stop])
        return out

    def index_text(self) -> str:
        parts = []
        for axis, s in enumerate(self.index):
            start, stop, _ = s.indices(self.tensor.shape[axis])
            parts.append(":" if (start, stop) == (0, self.tensor.shape[axis]) else f"{start}:{stop}")
        return ":" if all(p == ":" for p in parts) else ", ".join(parts)


@dataclass
class GateView:
    """W, U or b of one gate: the sum of one or more terms (CuDNN keeps two biases)."""

    part: str  # W, U or b
    gate: str
    terms: list
    shape: tuple
    dtype: str
    reader: Optional[Callable] = field(default=None, repr=False)
    label: str = ""  # e.g. "LSTM-equivalent" when the view transforms what is stored
    combine: str = "sum"  # how several terms make the view: "sum" (CuDNN LSTM bias) or "stack" (rows)

    def numpy(self) -> np.ndarray:
        if self.reader is None:
            raise RuntimeError("this view is detached from its file")
        arrays = []
        for term in self.terms:
            arr = self.reader(term.tensor.path, term.index)
            arrays.append(term.transform(arr) if term.transform is not None else arr)
        if self.combine == "stack":
            return np.stack(arrays)
        return arrays[0] if len(arrays) == 1 else sum(arrays[1:], arrays[0])

    def __array__(self, dtype=None, copy=None):  # a fresh array every time: copy is moot
        return self.numpy() if dtype is None else self.numpy().astype(dtype)

    def source_text(self) -> str:
        """e.g. `kernel[:, 4:8]`, or `bias[4:8] + bias[20:24]`."""
        texts = []
        for t in self.terms:
            idx = t.index_text()
            s = t.tensor.name if idx == ":" else f"{t.tensor.name}[{idx}]"
            texts.append(f"cudnn({s})" if t.transform is not None else s)  # the only transform: cuDNN blocks
        return " + ".join(texts)


@dataclass
class Cell:
    """One recurrent cell: its settings, its stored tensors, and its per-gate views."""

    path: str
    class_name: str  # as the config names it: LSTM, GRU, CuDNNLSTM, ConvLSTM2D, LSTMCell...
    family: str  # lstm, gru or simple_rnn
    gates: tuple  # gate letters in lstmtool's naming: (i, f, c, o), (z, r, h), (h,)
    units: int
    input_dim: int
    tensors: dict  # role -> TensorRef, as stored
    W: dict  # gate -> GateView
    U: dict
    b: dict  # empty when use_bias is False
    layout: str  # keras, keras1, cudnn
    activation: str = "tanh"
    recurrent_activation: str = "sigmoid"
    use_bias: bool = True
    reset_after: Optional[bool] = None  # GRU only
    conv: bool = False  # ConvLSTM: gates on the last axis of N-d kernels
    source: str = "config"  # or "inferred from ..."
    notes: list = field(default_factory=list)
    stored: dict = field(default_factory=dict)  # CuDNN: part_gate -> view of what is stored
    keras_major: Optional[int] = None  # which Keras wrote the file: hard_sigmoid's formula depends on it

    def view(self, part: str, gate: str) -> GateView:
        return {"W": self.W, "U": self.U, "b": self.b}[part][gate]


@dataclass
class Layer:
    """A Keras layer as listed in the model (recurrent or not)."""

    path: str
    class_name: str
    n_weights: int = 0
    opaque: bool = False  # Lambda and custom layers: shown, never evaluated


@dataclass
class Model:
    """What `lstmtool.load` returns. Use as a context manager to close the file."""

    filename: str
    format: str  # legacy-h5, legacy-h5-weights, keras-zip, keras3-weights
    keras_version: Optional[str]
    backend: Optional[str]
    config: Optional[dict]
    layers: list
    cells: list
    warnings: list
    store: object = field(repr=False, default=None)
    incomplete: list = field(default_factory=list)  # cells named by the file but not fully stored
    keras_major: Optional[int] = None  # 1, 2, 3: which Keras wrote it (None: unknown)

    def cell(self, path: str) -> Cell:
        for c in self.cells:
            if c.path == path:
                return c
        from ..errors import ModelError, UsageError
        from .names import suggest

        for inc in self.incomplete or ():
            if inc.path == path:
                raise ModelError(f"{path}: this {inc.class_name} cell is incomplete in {self.filename} "
                                 f"({inc.problem}); lstmtool shows and edits only complete cells")
        hint = suggest(path, [c.path for c in self.cells])
        raise UsageError(f"no recurrent cell named {path!r} in {self.filename}{hint}")

    def close(self):
        if self.store is not None:
            self.store.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def group_cells(cells) -> "OrderedDict[str, list]":
    """Cells by the Keras layer that runs them: p/forward+p/backward -> p, p/cell_k -> p."""
    groups = OrderedDict()
    for cell in cells:
        parent, _, last = cell.path.rpartition("/")
        key = parent if parent and (last in ("forward", "backward") or last.startswith("cell_")) else cell.path
        groups.setdefault(key, []).append(cell)
    return groups
