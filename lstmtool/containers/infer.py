"""Infer a cell's class from what a config-less file stores: names and shapes."""
from __future__ import annotations

from collections import OrderedDict

from .found import FoundCell, basename, components, keras1_role


def infer_from_shapes(shapes: dict):
    """(class name, notes) from {role: shape} of kernel / recurrent_kernel / bias."""
    rk = shapes.get("recurrent_kernel")
    if rk is None or len(rk) < 2 or rk[-2] == 0:
        return None, ["no recurrent kernel"]
    units, width = rk[-2], rk[-1]
    gates = width // units if width % units == 0 else None
    bias = shapes.get("bias")
    notes = []
    conv = len(rk) > 2
    if gates == 4:
        if bias == (8 * units,):
            return "CuDNNLSTM", [f"8u bias {bias} means CuDNNLSTM (input and recurrent halves)"]
        name = f"ConvLSTM{len(rk) - 2}D" if conv else "LSTM"
        if bias is None:
            notes.append("no bias stored: taken as use_bias=False (the file cannot say more)")
        return name, notes
    if gates == 3:
        if bias == (6 * units,):
            return "CuDNNGRU", [f"6u bias {bias} means CuDNNGRU (input and recurrent halves)"]
        if bias is None:
            notes.append("no bias stored: reset_after cannot be told; assumed reset_after=True")
        return "GRU", notes
    if gates == 1:
        return "SimpleRNN", notes
    return None, [f"recurrent kernel {rk} fits no known cell"]


def infer_legacy_layer(name: str, weights: list, shape_of) -> list:
    """Cells in one legacy layer group with no config, from its weight names."""
    k1 = [keras1_role(w) for w, _ in weights]
    if weights and all(k1):
        return _infer_keras1(name, weights, k1, shape_of)
    groups = OrderedDict()  # parent name -> {role: path}
    for wn, path in weights:
        parent = "/".join(components(wn)[:-1])
        groups.setdefault(parent, {})[basename(wn)] = path
    cells = [(parent, t) for parent, t in groups.items() if "recurrent_kernel" in t]

    def own(parent):
        """The components below this layer's own name (Keras 2.1 prefixes the model's name scope:
        `gru_1/bidirectional_3/forward_simple_rnn_2`)."""
        comps = components(parent)
        return comps[comps.index(name) + 1:] if name in comps else comps

    def half_of(parent):
        return next((h for h in ("forward", "backward") for c in own(parent)[:2]
                     if c.startswith(h + "_") or c == h), None)

    # A Bidirectional's halves are `forward_*` / `backward_*`; a layer merely named
    # `forward` has no `backward_*` partner and is no half.
    halves = {half_of(p) for p, _ in cells}
    bidirectional = {"forward", "backward"} <= halves
    placed = []
    for parent, tensors in cells:
        half = half_of(parent) if bidirectional else None
        comps = components(parent)
        base, notes = name, []
        if name not in comps and len(comps) >= 2 and not half:
            base = f"{name}/{comps[0]}"  # a nested model's group holds its inner layers' weights
            notes.append(f"weights-only file: {comps[0]!r} sits somewhere inside {name!r}; models nested "
                         "between them are not named in the file")
        placed.append((f"{base}/{half}" if half else base, parent, tensors, notes))
    count = {}
    for path, *_ in placed:
        count[path] = count.get(path, 0) + 1
    out, seen = [], {}
    for path, parent, tensors, notes in placed:
        if count[path] > 1:  # several cells under one layer: stacked cells, in stored order
            k = seen[path] = seen.get(path, -1) + 1
            path = f"{path}/cell_{k}"
        shapes = {r: shape_of(p) for r, p in tensors.items() if p}
        class_name, shape_notes = infer_from_shapes(shapes)
        tensors = {r: tensors.get(r) for r in ("kernel", "recurrent_kernel", "bias") if r in tensors}
        found = FoundCell(path, class_name or "unrecognised", None, tensors, "inferred from weight names and shapes",
                          shape_notes + notes)
        if class_name is None:  # named like a recurrent layer's weights, but they do not fit one: say so
            found.ambiguous = f"its weights fit no recurrent cell ({'; '.join(shape_notes)})"
        out.append(found)
    return out


def _infer_keras1(name, weights, roles, shape_of) -> list:
    by_prefix = OrderedDict()
    for (prefix, role), (_, path) in zip(roles, weights):
        by_prefix.setdefault(prefix, {})[role] = path
    out = []
    for prefix, tensors in by_prefix.items():
        gates = {r.split("_")[1] for r in tensors if "_" in r}
        if gates >= set("icfo"):
            class_name = "LSTM"
        elif gates >= set("zrh"):
            class_name = "GRU"
        elif "U" in tensors:  # SimpleRNN, or a consume_less='gpu' LSTM/GRU: U is (u, n*u)
            shape = tuple(shape_of(tensors["U"]))
            ratio = shape[1] // shape[0] if len(shape) == 2 and shape[0] else 1
            class_name = {4: "LSTM", 3: "GRU"}.get(ratio, "SimpleRNN")
        else:
            continue  # Dense and friends: W and b only
        half = next((h for h in ("forward", "backward") if prefix.startswith(h)), None)
        path = f"{name}/{half}" if half else name
        out.append(FoundCell(path, class_name, None, tensors, "inferred from Keras 1 weight names"))
    return out
