"""Keras 1 per-gate arrays: `<layer>_W_i`, `_U_i`, `_b_i`, ... stored in the order
i, c, f, o (LSTM) and z, r, h (GRU); SimpleRNN keeps `W`, `U`, `b`. The views use
the same gate letters as Keras 2/3, whatever order the file stores them in."""
from __future__ import annotations

from ..model import Cell, GateView, TensorRef, Term

STORED_ORDER = {"lstm": ("i", "c", "f", "o"), "gru": ("z", "r", "h"), "simple_rnn": ("h",)}


def build(found, family, gates, opts, shape_of, dtype_of) -> Cell:
    refs = {}
    for role, path in found.tensors.items():
        refs[role] = TensorRef(role, path, tuple(shape_of(path)), dtype_of(path))

    def ref(part, gate):
        return refs.get(f"{part}_{gate}") if family != "simple_rnn" else refs.get(part)

    def view(part, gate):
        r = ref(part, gate)
        if r is None:
            return None
        return GateView(part, gate, [Term(r, (slice(None),) * len(r.shape))], r.shape, r.dtype)

    missing = [f"{p}_{g}" for g in gates for p in "WU" if ref(p, g) is None]
    if missing:
        raise ValueError(f"{found.path}: Keras 1 arrays missing: {', '.join(missing)}")
    w_i = ref("W", gates[0])
    units = w_i.shape[-1]
    wrong = [f"{p}_{g} {ref(p, g).shape}" for g in gates for p, want in
             (("W", (w_i.shape[0], units)), ("U", (units, units)), ("b", (units,)))
             if ref(p, g) is not None and ref(p, g).shape != want]
    if len(w_i.shape) != 2 or wrong:
        raise ValueError(f"{found.path}: Keras 1 arrays do not fit together: {', '.join(wrong) or w_i.shape}")
    bias = {g: view("b", g) for g in gates if ref("b", g) is not None}
    ordered = {}
    for g in STORED_ORDER[family]:  # keep tensors in the order the file stores them
        for p in "WUb":
            key = f"{p}_{g}" if family != "simple_rnn" else p
            if key in refs:
                ordered[key] = refs[key]
    cell = Cell(
        path=found.path, class_name=found.class_name, family=family, gates=gates, units=units,
        input_dim=w_i.shape[0], tensors=ordered, layout="keras1",
        W={g: view("W", g) for g in gates}, U={g: view("U", g) for g in gates}, b=bias,
        activation=opts["activation"], recurrent_activation=opts["recurrent_activation"],
        use_bias=bool(bias),
    )
    if family == "gru":
        cell.reset_after = False  # Keras 1 GRU applies r before U_h
    cell.notes.append("Keras 1 layout: one array per gate, stored in order " + ",".join(STORED_ORDER[family]))
    return cell
