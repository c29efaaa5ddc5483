"""What a container reader hands to the cell layouts: a cell's datasets by role."""
from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from typing import Optional

from ..core.config import Spec

# Keras 1 per-gate weight names: lstm_1_W_i, forward_lstm_1_U_c:0, gru_1_b_z_1:0, simplernn_1_W
KERAS1_NAME = re.compile(r"^(?P<prefix>.*?)_(?P<part>[WUb])(?:_(?P<gate>[a-z]))?(?:_\d+)?$")
FUSED_ROLES = ("kernel", "recurrent_kernel", "bias")


@dataclass
class FoundCell:
    path: str
    class_name: str
    spec: Optional[Spec]  # the spec carrying units/activations; None when inferred
    tensors: dict  # role -> dataset path, or None where the file lacks it
    source: str = "config"
    notes: list = field(default_factory=list)
    ambiguous: str = ""  # why the file cannot say whose weights these are


def basename(weight_name: str) -> str:
    """`bidirectional/forward_lstm/lstm_cell/kernel:0` -> `kernel`."""
    base = posixpath.basename(weight_name.replace("\\", "/"))
    return re.sub(r":\d+$", "", base)


def components(weight_name: str) -> list:
    return weight_name.replace("\\", "/").split("/")


def keras1_role(weight_name: str):
    """`lstm_1_W_f:0` -> ("lstm_1", "W_f"); None for Keras 2/3 names."""
    base = basename(weight_name)
    if base in FUSED_ROLES:
        return None
    m = KERAS1_NAME.match(base)
    if not m:
        return None
    role = m["part"] + (f"_{m['gate']}" if m["gate"] else "")
    return m["prefix"], role


def roles_for(weights: list, use_bias: bool = True) -> dict:
    """Map a cell's (weight name, dataset path) list to roles.

    Keras 1 names carry their role (W_i, U_c, ...); Keras 2/3 names end in
    kernel / recurrent_kernel / bias. Where names do not say (damaged files,
    odd names), fall back to position, which is how Keras itself loads them.
    """
    k1 = [keras1_role(n) for n, _ in weights]
    if weights and all(k1):
        return {role: path for (_, role), (_, path) in zip(k1, weights)}
    by_name = {}
    for name, path in weights:
        by_name.setdefault(basename(name), path)
    expected = FUSED_ROLES if use_bias else FUSED_ROLES[:2]
    if set(by_name) == set(expected[: len(weights)]) and len(by_name) == len(weights):
        return by_name
    return {role: path for role, (_, path) in zip(expected, weights)}
