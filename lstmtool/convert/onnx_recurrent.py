"""Recurrent layers as ONNX LSTM / GRU / RNN operators.

Keras keeps batch first, x [N, T, F]; the operators take [T, N, F] (onnxruntime runs no
batch-first `layout=1`), so each run is Transpose -> op -> Squeeze/Transpose. Weights come
in Keras 3's fused order and are re-sliced per gate:

    Keras 3 kernel [F, 4H] i f c o     ->  ONNX LSTM W [1, 4H, F] i o f c, R likewise, B [Wb ; Rb]
    Keras 3 kernel [F, 3H] z r h       ->  ONNX GRU  W [1, 3H, F] z r h; reset_after=True is
                                           linear_before_reset=1 with Rb the second bias row
    Keras 3 kernel [F, H]              ->  ONNX RNN  W [1, H, F]

Both compute h = z*h_prev + (1-z)*h~ for GRU, and the same LSTM equations. go_backwards
is the input reversed in time and run forward: Keras returns the steps in the order it
processed them, which is then the operator's order too.
"""
from __future__ import annotations

import numpy as np

from ..exchange.onnx_layout import ORDER, activation_attributes, recurrent_activation  # the ONNX layout's facts
from .errors import Unconvertible
KERAS_ORDER = {"lstm": ("i", "f", "c", "o"), "gru": ("z", "r", "h"), "rnn": ("h",)}  # Keras 3's fused columns
INT64_MIN = -(2 ** 63)


def flip_time(b, x, hint, rank=3):
    """x reversed along axis 1 (time)."""
    return b.op("Slice", [x, b.ints(f"{hint}/start", [-1]), b.ints(f"{hint}/end", [INT64_MIN]),
                          b.ints(f"{hint}/axis", [1]), b.ints(f"{hint}/step", [-1])], f"{hint}/flip", rank=rank)


def activation_name(value):
    if isinstance(value, dict):  # a serialized function: {"class_name": "function", "config": "tanh"}
        value = value.get("config") if isinstance(value.get("config"), str) else value.get("class_name")
    return "linear" if value in (None, "") else str(value)


def _activations(path, cfg, family):
    acts = []
    keys = ("recurrent_activation", "activation", "activation") if family == "lstm" else \
        ("recurrent_activation", "activation") if family == "gru" else ("activation",)
    for key in keys:
        name = activation_name(cfg.get(key, "sigmoid" if key == "recurrent_activation" else "tanh"))
        act = recurrent_activation(name, 3)  # Keras 3's formulas: the translation scaled Keras 1/2's
        if act is None:
            raise Unconvertible(f"layer {path!r}: {key}={name} has no ONNX {family.upper()} activation")
        acts.append(act)
    return activation_attributes(acts)


def _family(cls):
    return {"LSTM": "lstm", "LSTMCell": "lstm", "GRU": "gru", "GRUCell": "gru", "SimpleRNN": "rnn",
            "SimpleRNNCell": "rnn"}.get(cls)


TILE = 256  # a transpose done tile by tile stays in the cache: about twice numpy's plain .T copy on big kernels


def gate_rows(a, pick, units):
    """[1, n*units, rows of a]: the gate column blocks of a (Keras' [in, n*units]) as rows, in
    the order `pick`, written tile by tile into one C-ordered array."""
    rows, n = a.shape[0], len(pick)
    out = np.empty((1, n * units, rows), dtype=a.dtype)
    for slot, k in enumerate(pick):
        block, dest = a[:, k * units:(k + 1) * units], out[0, slot * units:(slot + 1) * units]
        for i in range(0, rows, TILE):
            for j in range(0, units, TILE):
                dest[j:j + TILE, i:i + TILE] = block[i:i + TILE, j:j + TILE].T
    return out


def _weights(family, cfg, arrays, units):
    kernel, recurrent = arrays[0], arrays[1]
    bias = arrays[2] if len(arrays) > 2 else None
    n = {"lstm": 4, "gru": 3, "rnn": 1}[family]
    F = kernel.shape[0]
    pick = [KERAS_ORDER[family].index(g) for g in ORDER.get(family, ("h",))]
    blocks = lambda a: [a[..., k * units:(k + 1) * units] for k in pick]  # noqa: E731
    W, R = gate_rows(kernel, pick, units), gate_rows(recurrent, pick, units)
    if bias is None:
        B = np.zeros((1, 2 * n * units), kernel.dtype)
    elif bias.ndim == 2:  # GRU reset_after: [input bias; recurrent bias]
        B = np.concatenate(blocks(bias[0]) + blocks(bias[1]))[None]
    else:
        B = np.concatenate(blocks(bias) + [np.zeros(n * units, bias.dtype)])[None]
    assert W.shape == (1, n * units, F)
    return W, R, B


def mask_lengths(b, path, mask):
    """(lengths int32 [N], rows bool [N]) of a mask [N, T]: the real steps counted, and
    whether each row is a run of real steps followed by padding (post-padding), the one
    form sequence_lens expresses; other rows get NaN outputs (never silently wrong)."""
    m = b.op("Cast", [mask], f"{path}/mask_int", rank=2, to=6)  # int32
    lengths = b.reduce("ReduceSum", m, [1], f"{path}/lengths", rank=1)
    steps = b.op("Gather", [b.op("Shape", [mask], f"{path}/mask_shape", rank=1), b.ints(f"{path}/one", 1)],
                 f"{path}/steps", rank=0)
    t = b.op("Range", [b.ints(f"{path}/zero", 0), steps, b.ints(f"{path}/delta", 1)], f"{path}/t", rank=1)
    prefix = b.op("Less", [t, b.unsqueeze(b.op("Cast", [lengths], f"{path}/len64", rank=1, to=7), [1],
                                          f"{path}/len_col", rank=2)], f"{path}/prefix", rank=2)
    same = b.op("Cast", [b.op("Equal", [b.op("Cast", [mask], f"{path}/mask_bool", rank=2, to=9), prefix],
                              f"{path}/same", rank=2)], f"{path}/same_int", rank=2, to=6)
    rows = b.op("Cast", [b.reduce("ReduceMin", same, [1], f"{path}/post_padded", rank=1)], f"{path}/rows", rank=1,
                to=9)
    return lengths, rows, t


def nan_unless(b, path, y, rows):
    """y where the row's mask is post-padding, else NaN."""
    r = b.rank.get(y) or 2
    cond = b.unsqueeze(rows, list(range(1, r)), f"{path}/rows", rank=r)
    nan = b.const(f"{path}/nan", np.asarray(np.nan, dtype=np.float32))
    return b.op("Where", [cond, y, nan], f"{path}/checked", rank=r)


def carry_last(b, path, y, lengths, t):
    """y [N, T, H] with each padded step repeating the last real step's output (Keras'
    masked RNN without zero_output_for_mask)."""
    last = b.op("Sub", [b.unsqueeze(b.op("Cast", [lengths], f"{path}/l64", rank=1, to=7), [1], f"{path}/lc", rank=2),
                        b.ints(f"{path}/one64", 1)], f"{path}/last", rank=2)
    idx = b.op("Max", [b.op("Min", [t, last], f"{path}/idx", rank=2), b.ints(f"{path}/zero64", 0)], f"{path}/idx",
               rank=2)
    idx = b.op("Expand", [b.unsqueeze(idx, [2], f"{path}/idx3", rank=3), b.op("Shape", [y], f"{path}/yshape", rank=1)],
               f"{path}/index", rank=3)
    return b.op("GatherElements", [y, idx], f"{path}/carried", rank=3, axis=1)


def run_cell(b, path, cls, cfg, arrays, x, initial, return_sequences, lengths="", direction="forward"):
    """One recurrent cell over x [T, N, F] (time first). Returns (sequence [T, N, H] or None,
    [final states, each [N, H]])."""
    family = _family(cls)
    if family is None:
        raise Unconvertible(f"layer {path!r}: {cls} has no ONNX recurrent operator")
    units = int(cfg["units"])
    W, R, B = _weights(family, cfg, arrays, units)
    ins = [x, b.const(f"{path}/W", W), b.const(f"{path}/R", R), b.const(f"{path}/B", B), lengths]
    for k, state in enumerate(initial):
        ins.append(b.unsqueeze(state, [0], f"{path}/initial_{k}", rank=3))
    attrs = {"hidden_size": units, "direction": direction, **_activations(path, cfg, family)}
    op = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}[family]
    if family == "gru":
        attrs["linear_before_reset"] = int(bool(cfg.get("reset_after", True)))
    n_out = 3 if family == "lstm" else 2
    outs = b.op(op, ins, path, outputs=n_out, **attrs)
    sequence = b.squeeze(outs[0], [1], f"{path}/Y", rank=3) if return_sequences else None
    states = [b.squeeze(s, [0], f"{path}/state_{k}", rank=2) for k, s in enumerate(outs[1:])]
    return sequence, states


def run_layer(b, path, cls, cfg, cells, x, initial, flip_output=False, mask=None, zero_masked=False):
    """A Keras recurrent layer (LSTM / GRU / SimpleRNN, or RNN over cells) on x [N, T, F].
    `cells`: [(cell class, cell config, arrays, cell path)]. `flip_output`: reverse the
    returned sequence (a Bidirectional's backward half). `mask` [N, T]: padded steps are
    skipped (sequence_lens), their outputs zero if `zero_masked` (Bidirectional), else the
    last real step's. Returns the layer's outputs, as Keras lists them: [output] + states
    where return_state."""
    if cfg.get("stateful"):
        raise Unconvertible(f"layer {path!r}: stateful=True keeps state between calls, which an ONNX graph cannot")
    if cfg.get("time_major"):
        raise Unconvertible(f"layer {path!r}: time_major=True")
    backwards = bool(cfg.get("go_backwards"))
    lengths = rows = t = None
    if mask is not None:
        lengths, rows, t = mask_lengths(b, path, mask)
        zero_masked = zero_masked or bool(cfg.get("zero_output_for_mask"))
    elif backwards:
        x = flip_time(b, x, path)
    h = b.op("Transpose", [x], f"{path}/time_first", rank=3, perm=[1, 0, 2])
    sequences = bool(cfg.get("return_sequences"))
    states, per_cell = list(initial), []
    for k, (ccls, ccfg, arrays, cpath) in enumerate(cells):
        last = k == len(cells) - 1
        n_states = 2 if _family(ccls) == "lstm" else 1
        mine, states = states[:n_states], states[n_states:]
        # masked and backwards: the operator's own reverse direction skips the padding at the end
        seq, final = run_cell(b, cpath, ccls, ccfg, arrays, h, mine, return_sequences=not last or sequences,
                              lengths=lengths or "", direction="reverse" if backwards and mask is not None
                              else "forward")
        per_cell += final
        if not last:
            h = seq
    if sequences:
        y = b.op("Transpose", [seq], f"{path}/batch_first", rank=3, perm=[1, 0, 2])
        if mask is not None and backwards:
            y = flip_time(b, y, f"{path}/processing_order")  # Keras returns steps in the order it took them
        elif mask is not None and not zero_masked:
            y = carry_last(b, path, y, lengths, t)
        if flip_output:
            y = flip_time(b, y, f"{path}/backward")
    else:
        y = per_cell[-(2 if _family(cells[-1][0]) == "lstm" else 1)]  # the last cell's h
    outs = [y] + (per_cell if cfg.get("return_state") else [])
    if mask is not None:
        outs = [nan_unless(b, f"{path}/out{k}", o, rows) for k, o in enumerate(outs)]
        if sequences:
            b.masks[outs[0]] = mask
    return outs
