"""Gate math per cell family, written so the equations are visible.

Each family module gives `EQUATIONS` (text templates used by `explain`) and
`step(x_t, state, p, act, rec_act)`, one time step of the NumPy reference
built only from lstmtool's per-gate views `p = {"W": {...}, "U": {...}, "b": {...}}`.
"""
from . import gru, lstm, simple_rnn
from .activations import activation

FAMILIES = {"lstm": lstm, "gru": gru, "simple_rnn": simple_rnn}
# the gates a cell's recurrent_activation drives (the others use its activation)
RECURRENT_GATES = {"lstm": ("i", "f", "o"), "gru": ("z", "r"), "simple_rnn": ()}

__all__ = ["FAMILIES", "RECURRENT_GATES", "activation"]
