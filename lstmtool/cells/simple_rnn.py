"""SimpleRNN (Elman 1990):  h_t = act(x_t W + h_{t-1} U + b)."""
import numpy as np

GATES = ("h",)
EQUATIONS = [("h_t", "{act}", "h")]
STATE = []


def initial_state(batch, units):
    return np.zeros((batch, units))


def step(x_t, h, p, act, rec_act):
    z = x_t @ p["W"]["h"] + h @ p["U"]["h"]
    if "h" in p["b"]:
        z = z + p["b"]["h"]
    h = act(z)
    return h, h
