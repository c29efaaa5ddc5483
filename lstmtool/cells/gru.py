"""GRU (Cho et al. 2014), as Keras computes it. Keras' h_t keeps the *old* state
where z is 1:

    z_t = rec_act(x_t W_z + h_{t-1} U_z + b_z)
    r_t = rec_act(x_t W_r + h_{t-1} U_r + b_r)
    reset_after=True  (bias rows: b[0] input side, b[1] recurrent side):
        h~_t = act(x_t W_h + b0_h + r_t * (h_{t-1} U_h + b1_h))
    reset_after=False (Keras <= 2.2 and Keras 1):
        h~_t = act(x_t W_h + (r_t * h_{t-1}) U_h + b_h)
    h_t = z_t * h_{t-1} + (1 - z_t) * h~_t
"""
import numpy as np

GATES = ("z", "r", "h")
EQUATIONS = [("z_t", "{rec}", "z"), ("r_t", "{rec}", "r")]
STATE = ["h_t = z_t * h_{t-1} + (1 - z_t) * h~_t"]


def initial_state(batch, units):
    return np.zeros((batch, units))


def bias_rows(p, g, reset_after):
    """(input-side, recurrent-side) bias of gate g; zeros where the cell has none."""
    if g not in p["b"]:
        return 0.0, 0.0
    b = p["b"][g]
    return (b[0], b[1]) if reset_after else (b, 0.0)


def step(x_t, h, p, act, rec_act, reset_after=True):
    def gate(g):
        b_in, b_rec = bias_rows(p, g, reset_after)
        return rec_act(x_t @ p["W"][g] + b_in + h @ p["U"][g] + b_rec)

    z, r = gate("z"), gate("r")
    b_in, b_rec = bias_rows(p, "h", reset_after)
    if reset_after:
        h_tilde = act(x_t @ p["W"]["h"] + b_in + r * (h @ p["U"]["h"] + b_rec))
    else:
        h_tilde = act(x_t @ p["W"]["h"] + b_in + (r * h) @ p["U"]["h"])
    h = z * h + (1 - z) * h_tilde
    return h, h
