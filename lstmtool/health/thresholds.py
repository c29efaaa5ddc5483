"""Every number `health` judges by, with where it comes from (docs/health.md says more).

One table: a check reads its thresholds from here and a finding cites them, so the page,
the JSON and the docs agree."""
from __future__ import annotations

# Derivative bounds gamma = max |f'(z)| of each activation (Pascanu, Mikolov & Bengio 2013,
# "On the difficulty of training recurrent neural networks", sec. 2.1: with ||diag(f')|| <= gamma,
# sigma_max(U) < 1/gamma is sufficient for vanishing gradients and > 1/gamma necessary for exploding).
GAMMA = {"sigmoid": 0.25, "tanh": 1.0, "relu": 1.0, "linear": 1.0, None: 1.0, "softsign": 1.0, "softplus": 1.0,
         "elu": 1.0, "selu": 1.0507 * 1.6733, "hard_sigmoid_keras2": 0.2, "hard_sigmoid_keras3": 1 / 6}

THRESHOLDS = {
    "exploding": {
        "value": 2.0,
        "why": "sigma_max(U_g) * gamma above 1 is necessary for exploding gradients through that gate "
               "(Pascanu et al. 2013); 2 leaves room for the orthogonal initialisation (exactly 1)",
        "source": "Pascanu, Mikolov & Bengio 2013, ICML, sec. 2.1"},
    "vanishing": {
        "value": 0.5,
        "why": "sigma_max(U) * gamma below 1 is sufficient for vanishing gradients along h (Pascanu et al. "
               "2013); a SimpleRNN below 0.5 forgets a signal by half each step or faster. Gated cells "
               "keep memory in c (LSTM) or through z (GRU), so for them this is information only",
        "source": "Pascanu, Mikolov & Bengio 2013, ICML, sec. 2.1"},
    "unstable": {
        "value": 1.02,
        "why": "a perturbation of the resting state (zero input) that grows by more than 2% per step, by "
               "the cell's own equations (power iteration on its Jacobian at rest): Pascanu's sigma*gamma "
               "bounds this growth from above; this is the growth itself",
        "source": "Pascanu, Mikolov & Bengio 2013 (the Jacobian product); measured, not bounded"},
    "short-memory": {
        "value": 2.0,
        "why": "a forget (LSTM f) or keep (GRU z) gate that, with no input, holds f gives the unit a "
               "characteristic memory T = 1/(1 - f) steps; T < 2 means b_f < 0 for a sigmoid gate, the "
               "opposite of the forget-bias-1 advice",
        "source": "Jozefowicz, Zaremba & Sutskever 2015, ICML (forget bias 1); Tallec & Ollivier 2018, "
                  "ICLR (T = 1/(1-f))"},
    "short-memory-share": {
        "value": 0.25,
        "why": "a warning when at least this share of a layer's units have T below short-memory-warning "
               "(units below 2 steps but not that far are listed as information: a GRU's default b_z = 0 "
               "gives exactly T = 2, and training drifts it a little either way)",
        "source": "lstmtool's choice"},
    "short-memory-warning": {
        "value": 1.5,
        "why": "T < 1.5 steps: the gate keeps under a third of the old state (sigmoid: b_f < -0.69)",
        "source": "lstmtool's choice"},
    "saturated": {
        "value": 0.99,
        "why": "a gate counts as pinned when, for every input within the reach below, it stays beyond "
               "0.99 or below 0.01: it no longer depends on the data",
        "source": "lstmtool's choice"},
    "input-reach": {
        "value": 3.0,
        "why": "the |x| a first recurrent layer is assumed to see (standardised inputs, three standard "
               "deviations); later recurrent layers read tanh-bounded outputs, |h| <= 1",
        "source": "lstmtool's choice"},
    "dead": {
        "value": 1e-7,
        "why": "a unit whose incoming weights (W and U columns of every gate) are all below this in "
               "magnitude computes a constant; one whose outgoing weights are all below it is read by "
               "nobody (prune --drop-dead's test)",
        "source": "lstmtool's choice"},
}

GROWTH_STEPS = 40  # steps to the resting state, and power-iteration steps on the Jacobian there
POWER_STEPS, POWER_TOL = 200, 1e-5  # power iteration for sigma_max: at most this many steps, relative change
PROBES = 64  # Hutchinson probes for ||U^T U - I||_F when the exact product would cost n^3 (n > EXACT)
EXACT = 512
