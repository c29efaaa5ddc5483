"""LSTM (Hochreiter & Schmidhuber 1997, with forget gate), as Keras computes it:

    i_t = rec_act(x_t W_i + h_{t-1} U_i + b_i)
    f_t = rec_act(x_t W_f + h_{t-1} U_f + b_f)
    c~_t = act(x_t W_c + h_{t-1} U_c + b_c)
    o_t = rec_act(x_t W_o + h_{t-1} U_o + b_o)
    c_t = f_t * c_{t-1} + i_t * c~_t
    h_t = o_t * act(c_t)
"""
import numpy as np

GATES = ("i", "f", "c", "o")
EQUATIONS = [
    ("i_t", "{rec}", "i"),
    ("f_t", "{rec}", "f"),
    ("c~_t", "{act}", "c"),
    ("o_t", "{rec}", "o"),
]
STATE = ["c_t = f_t * c_{t-1} + i_t * c~_t", "h_t = o_t * {act}(c_t)"]


def initial_state(batch, units):
    return (np.zeros((batch, units)), np.zeros((batch, units)))


def pre(x_t, h, p, g):
    z = x_t @ p["W"][g] + h @ p["U"][g]
    return z + p["b"][g] if g in p["b"] else z


def step(x_t, state, p, act, rec_act):
    h, c = state
    i = rec_act(pre(x_t, h, p, "i"))
    f = rec_act(pre(x_t, h, p, "f"))
    c_tilde = act(pre(x_t, h, p, "c"))
    o = rec_act(pre(x_t, h, p, "o"))
    c = f * c + i * c_tilde
    h = o * act(c)
    return h, (h, c)
