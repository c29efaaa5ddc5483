"""The checks of one recurrent cell, from its weights alone: each returns plain data and
findings `{check, severity, layer, gate, units, value, threshold, why, fix}`.

Notation as in the papers: W (input kernel), U (recurrent kernel), b (bias) per gate;
LSTM gates i f c o, GRU z r h, SimpleRNN h. A gate's activation is the cell's
recurrent_activation for i f o / z r and its activation for c / h.
"""
from __future__ import annotations

import numpy as np

from ..cells import FAMILIES, RECURRENT_GATES
from ..cells.activations import activation as activation_fn
from ..reading.report import effective_bias
from .thresholds import EXACT, GAMMA, GROWTH_STEPS, POWER_STEPS, POWER_TOL, PROBES, THRESHOLDS

MEMORY_GATE = {"lstm": "f", "gru": "z"}  # the gate that keeps the old state (GRU: h = z*h + (1-z)*h~)
# what a gate pinned open / shut means, and how much it matters
PINNED = {("lstm", "f", "open"): ("info", "remembers everything, forgets nothing"),
          ("lstm", "f", "shut"): ("warning", "forgets everything each step"),
          ("lstm", "i", "open"): ("info", "always writes its candidate"),
          ("lstm", "i", "shut"): ("warning", "never writes to its cell state"),
          ("lstm", "o", "open"): ("info", "always shows its cell state"),
          ("lstm", "o", "shut"): ("warning", "never outputs anything"),
          ("gru", "z", "open"): ("warning", "keeps its old state forever: never updates"),
          ("gru", "z", "shut"): ("info", "keeps nothing: a plain RNN unit"),
          ("gru", "r", "open"): ("info", "always reads its whole state"),
          ("gru", "r", "shut"): ("info", "never reads its state into the candidate")}


def gate_activation(cell, gate):
    name = cell.recurrent_activation if gate in RECURRENT_GATES.get(cell.family, ()) else cell.activation
    return name


def gamma(cell, gate) -> float:
    name = gate_activation(cell, gate)
    if name == "hard_sigmoid":
        name = "hard_sigmoid_keras3" if (cell.keras_major or 3) >= 3 else "hard_sigmoid_keras2"
    return GAMMA.get(name, 1.0)


def finding(check, severity, cell, gate, units, value, threshold, why, fix=None) -> dict:
    return {"check": check, "severity": severity, "layer": cell.path, "gate": gate,
            "units": [int(u) for u in units] if units is not None else None,
            "value": value, "threshold": threshold, "why": why, "fix": fix}


def arrays(cell) -> dict:
    """{part: {gate: float64 array}}: W, U and the bias as the gate adds it."""
    out = {"W": {}, "U": {}, "b": {}, "b_rows": {}}
    for part in ("W", "U", "b"):
        for g, view in getattr(cell, part).items():
            a = view.numpy()
            if part == "b":
                out["b_rows"][g] = np.asarray(a, dtype=np.float64)  # as stored: two rows for reset_after
            out[part][g] = effective_bias(a) if part == "b" else np.asarray(a)  # W, U as stored (float32)
    return out


def stats(a) -> dict:
    with np.errstate(all="ignore"):
        return {"mean": float(np.mean(a, dtype=np.float64)), "std": float(np.std(a, dtype=np.float64)),
                "min": float(np.min(a)), "max": float(np.max(a)),
                "zeros_percent": float(100.0 * np.mean(a == 0)), "l2": float(np.sqrt(np.sum(a * a))),
                "max_abs": float(np.max(np.abs(a)))}


def nonfinite(cell, parts) -> list:
    out = []
    for part in ("W", "U", "b"):
        for g, a in parts[part].items():
            bad = ~np.isfinite(a)
            if bad.any():
                first = [list(map(int, ix)) for ix in np.argwhere(bad)[:5]]
                out.append(finding("nonfinite", "error", cell, g, None, int(bad.sum()), 0,
                                   f"{part}_{g} holds {int(bad.sum())} NaN/inf values (first at {first}): every "
                                   "output that reads them is NaN", "retrain, or restore the weights from a checkpoint "
                                   "before the divergence"))
    return out


def sigma_max(a, rng) -> float:
    """The largest singular value by power iteration on a^T a (no SVD: a 2048 x 8192 kernel
    costs milliseconds, not seconds)."""
    if a.size == 0:
        return 0.0
    v = rng.normal(size=a.shape[1]).astype(a.dtype)
    v /= np.linalg.norm(v)
    sigma = 0.0
    for _ in range(POWER_STEPS):
        w = a.T @ (a @ v)
        norm = np.linalg.norm(w)
        if norm == 0:
            return 0.0
        v = w / norm
        new = float(np.sqrt(norm))
        if abs(new - sigma) <= POWER_TOL * new:
            return new
        sigma = new
    return sigma


def orthogonality(u, rng) -> float:
    """||U^T U - I||_F / sqrt(n): exact up to EXACT units, else Hutchinson's estimate with
    PROBES random sign vectors (E ||A z||^2 = ||A||_F^2)."""
    n = u.shape[1]
    if n <= EXACT:
        return float(np.linalg.norm(u.T @ u - np.eye(n)) / np.sqrt(n))
    z = rng.choice([-1.0, 1.0], size=(n, PROBES)).astype(u.dtype)
    az = u.T @ (u @ z) - z
    return float(np.sqrt(np.mean(np.sum(az * az, axis=0))) / np.sqrt(n))


def spectral(cell, parts, rng, findings) -> dict:
    out = {"gates": {}, "whole": None}
    limit = THRESHOLDS["exploding"]["value"]
    for g, u in parts["U"].items():
        s = sigma_max(u, rng)
        product = s * gamma(cell, g)
        out["gates"][g] = {"sigma_max": s, "gamma": gamma(cell, g), "sigma_gamma": product,
                           "orthogonality": orthogonality(u, rng)}
        if product > limit:
            findings.append(finding("recurrent-spectral-norm", "warning", cell, g, None, round(product, 4), limit,
                                    f"sigma_max(U_{g}) = {s:.3g} times gamma = {gamma(cell, g):.3g} of its "
                                    f"{gate_activation(cell, g)}: gradients through this gate can explode "
                                    "(Pascanu et al. 2013)",
                                    "clip gradients when training on; shrink U with `lstmtool scale MODEL "
                                    f"'{cell.path}:U_{g}' FACTOR`"))
    if parts["U"] and cell.family == "simple_rnn":  # its whole U is U_h; gated cells: per gate above
        s = out["gates"]["h"]["sigma_max"]
        out["whole"] = {"sigma_max": s}
        if True:
            product = s * gamma(cell, "h")
            low = THRESHOLDS["vanishing"]["value"]
            if product < low:
                findings.append(finding("recurrent-spectral-norm", "warning", cell, "h", None, round(product, 4), low,
                                        f"sigma_max(U) * gamma = {product:.3g} < {low}: each step shrinks the "
                                        "gradient along h, long dependencies vanish (Pascanu et al. 2013)",
                                        "an LSTM or GRU, or an orthogonal U"))
    return out


def memory(cell, parts, findings) -> dict:
    """T = 1/(1 - f) per unit, f the memory gate's value with no input (its bias alone)."""
    g = MEMORY_GATE.get(cell.family)
    if g is None:
        return None
    b = parts["b"].get(g, np.zeros(cell.units))
    f = activation_fn(gate_activation(cell, g), cell.keras_major)(np.asarray(b, dtype=np.float64))
    with np.errstate(divide="ignore"):
        T = np.where(f < 1.0, 1.0 / (1.0 - np.minimum(f, 1.0)), np.inf)
    limit = THRESHOLDS["short-memory"]["value"]
    short = np.flatnonzero(T < limit)
    share = float(len(short) / max(1, cell.units))
    finite = T[np.isfinite(T)]
    out = {"gate": g, "percentiles": {p: (float(np.percentile(finite, p)) if finite.size else None)
                                      for p in (10, 50, 90)},
           "infinite_units": int(np.sum(~np.isfinite(T))), "short_units": short.tolist(), "short_share": share,
           "T": [float(t) if np.isfinite(t) else None for t in T]}
    if len(short):
        far = float(np.mean(T < THRESHOLDS["short-memory-warning"]["value"]))
        severity = "warning" if far >= THRESHOLDS["short-memory-share"]["value"] else "info"
        findings.append(finding("forget-bias-memory", severity, cell, g, short, round(share, 4), limit,
                                f"{len(short)} of {cell.units} units keep less than {limit:g} steps of memory "
                                f"(T = 1/(1-{g}) from b_{g}); median T = {out['percentiles'][50]:.3g}",
                                f"lstmtool set-forget-bias 1.0 MODEL --layer '{cell.path}'" if cell.family == "lstm"
                                else f"lstmtool chrono-init MODEL --layer '{cell.path}' --tmax 100"))
    return out


def saturation(cell, parts, reach_x, findings) -> dict:
    """Units whose sigmoid-like gate stays pinned open (> 0.99) or shut (< 0.01) for every
    input within reach: |z - b| <= ||W_col||_1 * reach_x + ||U_col||_1 (|h| <= 1)."""
    level = THRESHOLDS["saturated"]["value"]
    out = {}
    for g in RECURRENT_GATES.get(cell.family, ()):
        if g not in parts["W"]:
            continue
        fn = activation_fn(gate_activation(cell, g), cell.keras_major)
        reach = np.sum(np.abs(parts["W"][g]), axis=0) * reach_x + np.sum(np.abs(parts["U"][g]), axis=0)
        b = parts["b"].get(g, np.zeros(cell.units))
        lo, hi = fn(b - reach), fn(b + reach)
        opened, shut = np.flatnonzero(lo > level), np.flatnonzero(hi < 1 - level)
        out[g] = {"open": opened.tolist(), "shut": shut.tolist(),
                  "share": float((len(opened) + len(shut)) / max(1, cell.units))}
        for state, units in (("open", opened), ("shut", shut)):
            if len(units):
                severity, meaning = PINNED.get((cell.family, g, state), ("info", ""))
                findings.append(finding("saturation", severity, cell, g, units, round(len(units) / cell.units, 4),
                                        level, f"{len(units)} units' {g} gate is pinned {state} by its bias, beyond "
                                        f"what the weights can reach: the unit {meaning}",
                                        f"lstmtool set MODEL '{cell.path}:b_{g}' 0 (then retrain), or prune them"))
    return out


def dead_incoming(cell, parts, findings) -> list:
    tol = THRESHOLDS["dead"]["value"]
    peak = np.zeros(cell.units)
    for part in ("W", "U"):
        for a in parts[part].values():
            peak = np.maximum(peak, np.max(np.abs(a), axis=0) if a.size else 0)
    dead = np.flatnonzero(peak <= tol)
    if len(dead):
        findings.append(finding("dead-units", "warning", cell, None, dead, int(len(dead)), tol,
                                f"{len(dead)} units have no incoming weights (every W and U column of every gate "
                                "is ~0): they compute a constant from their bias",
                                f"lstmtool prune MODEL {cell.path.rsplit('/', 1)[0] if cell.path.endswith(('/forward', '/backward')) else cell.path} "
                                f"--units {','.join(map(str, dead[:20]))}"))
    return dead.tolist()


def _dynamics(cell, parts):
    """(step, size): the cell's own step (the NumPy reference `verify` checks against Keras)
    with zero input, on a flat state (LSTM: h then c); None if an activation has no NumPy
    reference. Zero input is an empty x with an empty W: x W = 0 costs nothing."""
    try:
        act = activation_fn(cell.activation, cell.keras_major)
        rec = activation_fn(cell.recurrent_activation, cell.keras_major)
    except Exception:  # noqa: BLE001 - an activation lstmtool does not evaluate
        return None
    n, family = cell.units, FAMILIES[cell.family]
    p = {"W": {g: np.zeros((0, n)) for g in cell.gates},
         "U": {g: np.asarray(u, dtype=np.float64) for g, u in parts["U"].items()}, "b": parts["b_rows"]}
    x = np.zeros((1, 0))
    if cell.family == "lstm":
        return (lambda s: np.concatenate(family.step(x, (s[None, :n], s[None, n:]), p, act, rec)[1], axis=1)[0]), 2 * n
    if cell.family == "gru":
        return (lambda h: family.step(x, h[None], p, act, rec, reset_after=bool(cell.reset_after))[0][0]), n
    return (lambda h: family.step(x, h[None], p, act, rec)[0][0]), n


def rest_growth(cell, parts, rng, findings):
    """How fast a small perturbation of the resting state (zero input) grows per step, by the
    cell's own equations: power iteration on the step's Jacobian there (finite differences of
    the reference step). Pascanu's sigma*gamma bounds this growth from above; above 1, the
    state itself explodes."""
    made = _dynamics(cell, parts)
    if made is None:
        return None
    step, size = made
    rest = np.zeros(size)
    with np.errstate(all="ignore"):
        for _ in range(GROWTH_STEPS):  # the resting state: where the bias-driven step settles
            rest = step(rest)
        if not np.all(np.isfinite(rest)):
            return None
        eps, v, base = 1e-7, rng.normal(size=size), step(rest)
        v /= np.linalg.norm(v)
        logs = []
        for _ in range(GROWTH_STEPS):  # Jacobian-vector products by differences of the step (float64)
            jv = (step(rest + eps * v) - base) / eps
            norm = float(np.linalg.norm(jv))
            if norm == 0 or not np.isfinite(norm):
                return {"per_step": 0.0 if norm == 0 else None}
            logs.append(np.log(norm))
            v = jv / norm
    growth = float(np.exp(np.mean(logs[GROWTH_STEPS // 2:])))
    limit = THRESHOLDS["unstable"]["value"]
    if growth > limit:
        findings.append(finding("unstable-rest", "warning", cell, None, None, round(growth, 4), limit,
                                f"at rest (zero input) a small change of the state grows {growth:.3g}x per step by "
                                "this cell's own equations: its state and gradients explode",
                                "clip gradients when training on; shrink U (lstmtool scale) and check again"))
    return {"per_step": growth}
