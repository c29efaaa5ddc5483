"""Keras 1 arrays. The default (`consume_less='cpu'` or `'mem'`) stores one array per
gate and part, `<layer>_W_i`, `_U_i`, `_b_i`, ..., in the order i, c, f, o (LSTM) and
z, r, h (GRU). `consume_less='gpu'` stores three fused arrays `<layer>_W` (in, n*u),
`_U` (u, n*u), `_b` (n*u,) with gates on the last axis in Keras 2's order (i, f, c, o;
z, r, h); SimpleRNN always keeps `W`, `U`, `b`. The views use the same gate letters
as Keras 2/3, whatever order the file stores them in."""
from __future__ import annotations

from ..core.model import Cell, GateView, TensorRef, Term
from .fused import column_view

STORED_ORDER = {"lstm": ("i", "c", "f", "o"), "gru": ("z", "r", "h"), "simple_rnn": ("h",)}


def build(found, family, gates, opts, shape_of, dtype_of) -> Cell:
    refs = {}
    for role, path in found.tensors.items():
        refs[role] = TensorRef(role, path, tuple(shape_of(path)), dtype_of(path))

    if family != "simple_rnn" and "W" in refs:
        return _build_fused(found, family, gates, opts, refs)

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


def _build_fused(found, family, gates, opts, refs) -> Cell:
    """consume_less='gpu': W, U, b fused like Keras 2's kernel, recurrent_kernel, bias."""
    W, U, b = refs.get("W"), refs.get("U"), refs.get("b")
    n = len(gates)
    if U is None or len(W.shape) != 2 or len(U.shape) != 2:
        raise ValueError(f"{found.path}: Keras 1 fused arrays incomplete (W, U and b expected)")
    units = U.shape[0]
    if U.shape != (units, n * units) or W.shape[1] != n * units or (b is not None and b.shape != (n * units,)):
        shapes = ", ".join(f"{r.name} {r.shape}" for r in (W, U, b) if r is not None)
        raise ValueError(f"{found.path}: Keras 1 fused arrays do not fit a {found.class_name}: {shapes}")
    cell = Cell(
        path=found.path, class_name=found.class_name, family=family, gates=gates, units=units,
        input_dim=W.shape[0], tensors={r.name: r for r in (W, U, b) if r is not None}, layout="keras1",
        W={g: column_view("W", g, k, W, units) for k, g in enumerate(gates)},
        U={g: column_view("U", g, k, U, units) for k, g in enumerate(gates)},
        b={g: column_view("b", g, k, b, units) for k, g in enumerate(gates)} if b is not None else {},
        activation=opts["activation"], recurrent_activation=opts["recurrent_activation"],
        use_bias=b is not None,
    )
    if family == "gru":
        cell.reset_after = False
    cell.notes.append("Keras 1 fused layout (consume_less='gpu'): W, U, b with gates in order "
                      + ",".join(gates))
    return cell
