"""Keras 2/3 fused tensors: kernel (..., in, n*u), recurrent_kernel (..., u, n*u),
bias (n*u,) or, for GRU reset_after=True, (2, n*u). Gate k owns columns [k*u, (k+1)*u)
of the last axis, in the order i,f,c,o (LSTM), z,r,h (GRU). ConvLSTM kernels carry
their spatial axes first; the gates are still on the last axis."""
from __future__ import annotations

from ..core.model import Cell, GateView, TensorRef, Term


def tensor_refs(found, shape_of, dtype_of) -> dict:
    return {role: TensorRef(role, path, tuple(shape_of(path)), dtype_of(path))
            for role, path in found.tensors.items()}


def column_view(part, gate, k, tensor: TensorRef, units: int) -> GateView:
    lead = (slice(None),) * (len(tensor.shape) - 1)
    index = lead + (slice(k * units, (k + 1) * units),)
    shape = tuple(tensor.shape[:-1]) + (units,)
    return GateView(part, gate, [Term(tensor, index)], shape, tensor.dtype)


def build(found, family, gates, opts, shape_of, dtype_of) -> Cell:
    t = tensor_refs(found, shape_of, dtype_of)
    kernel, rk = t["kernel"], t["recurrent_kernel"]
    n = len(gates)
    units = rk.shape[-2]
    problems = []
    if rk.shape[-1] != n * units:
        problems.append(f"recurrent_kernel {rk.shape} is not (u, {n}u)")
    if kernel.shape[-1] != n * units:
        problems.append(f"kernel {kernel.shape} does not have {n}x{units} columns")
    bias = t.get("bias")
    if bias is not None and bias.shape[-1] != n * units:
        problems.append(f"bias {bias.shape} does not have {n}x{units} entries")
    if problems:
        raise ValueError(f"{found.path}: shapes do not fit a {found.class_name}: " + "; ".join(problems))
    cell = Cell(
        path=found.path, class_name=found.class_name, family=family, gates=gates, units=units,
        input_dim=kernel.shape[-2], tensors=t, layout="keras",
        W={g: column_view("W", g, k, kernel, units) for k, g in enumerate(gates)},
        U={g: column_view("U", g, k, rk, units) for k, g in enumerate(gates)},
        b={g: column_view("b", g, k, bias, units) for k, g in enumerate(gates)} if bias is not None else {},
        activation=opts["activation"], recurrent_activation=opts["recurrent_activation"],
        use_bias=bias is not None, conv=len(kernel.shape) > 2,
    )
    if family == "gru":
        cell.reset_after = opts["reset_after"] if found.spec is not None else None
        if bias is not None and len(bias.shape) == 2 and cell.reset_after is False:
            cell.reset_after = True  # the (2, 3u) bias only exists with reset_after=True
    return cell
