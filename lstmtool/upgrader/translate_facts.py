"""The layer families the translation treats alike, and its refusal: shared by translate and
activations (which decides how hard_sigmoid is kept)."""
from __future__ import annotations

from ..cells import RECURRENT_GATES
from ..errors import ModelError

RECURRENT = {"LSTM", "GRU", "SimpleRNN", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D"}
CELLS = {"LSTMCell", "GRUCell", "SimpleRNNCell"}
GATED = {"LSTM", "GRU", "LSTMCell", "GRUCell", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D"}
SCALABLE = {"Dense", "Conv1D", "Conv2D", "Conv3D"}  # z = x W + b: hard_sigmoid(z) kept exact by scaling W, b
SIGMOID_GATES = {"LSTM": RECURRENT_GATES["lstm"], "GRU": RECURRENT_GATES["gru"]}  # by class name


class Refused(ModelError):
    """The model cannot be carried over honestly; nothing is written."""
