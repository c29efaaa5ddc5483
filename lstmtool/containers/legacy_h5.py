"""Legacy Keras HDF5 (.h5/.hdf5) files, full models and weights-only, Keras 1 to 3.

Datasets are found through the `layer_names` and `weight_names` attributes,
the way Keras' own loader finds them; paths are never guessed (Keras 3 puts
the model name inside dataset paths, Keras 2 sometimes names weights after
another layer entirely).
"""
from __future__ import annotations

from ..core.config import Spec, walk_cells
from .found import FUSED_ROLES, FoundCell, components, roles_for
from .hdf5 import check_safe_path, text, text_list


class LegacyLayer:
    def __init__(self, name, weights, missing_group=False):
        self.name = name
        self.weights = weights  # [(weight name, dataset path or None)]
        self.missing_group = missing_group
        self.repeated = len({w for w, _ in weights}) < len(weights)  # names listed twice


def weights_root(f):
    return f["model_weights"] if "model_weights" in f else f


def is_legacy(f) -> bool:
    root = f.get("model_weights", f)
    return "layer_names" in root.attrs or "model_config" in f.attrs


def read_layers(f, warnings: list) -> list:
    root = weights_root(f)
    layers = []
    for name in text_list(root, "layer_names"):
        group = root.get(name)
        if group is None:
            layers.append(LegacyLayer(name, [], missing_group=True))
            continue
        seen, weights = set(), []
        for wn in text_list(group, "weight_names"):
            path = f"{group.name}/{wn}"
            ok = wn not in seen and wn in group
            if ok:
                check_safe_path(f, path)
            weights.append((wn, path if ok else None))
            seen.add(wn)
        dup = len(weights) - len(seen)
        if dup:
            warnings.append(
                f"layer {name!r}: weight_names lists {len(weights)} names but only {len(seen)} distinct"
                f" ({dup} repeated); the file cannot hold the repeated ones: they are missing"
            )
        layers.append(LegacyLayer(name, weights))
    missing = [lay.name for lay in layers if lay.missing_group]
    if missing:
        warnings.append(
            f"{len(missing)} of {len(layers)} layer groups listed in layer_names are missing: {', '.join(missing)}"
        )
    return layers


def attr_text(f, name):
    for obj in (f, f.get("model_weights")):
        if obj is not None and name in obj.attrs:
            return text(obj.attrs[name])
    return None


def names_within(spec) -> set:
    """The names of `spec` and of every layer inside it, at any depth."""
    out = {spec.name}
    for sub in spec.layers:
        out |= names_within(sub)
    return out


class Addressing:
    """Where a cell's weights sit in legacy HDF5: a slice of its layer's weight list.

    Split by name where names tell (`forward_...`, an inner layer's name), else by
    position, which is how Keras itself loads them."""

    def sublayers(self, spec, weights):
        """A sub-layer's weights name it, or, for a nested model, one of its own layers
        (Keras names a model's weights after its layers, not after the model itself)."""
        return [(sub, [w for w in weights if names_within(sub) & set(components(w[0]))]) for sub in spec.layers]

    def halves(self, weights, spec=None):
        """Split by name (`forward_*` / `backward_*`, or the halves' own layer names: a
        backward_layer of another class keeps its own name); else the forward half has as
        many weights as its config says (2 or 3), as Keras loads them; else half and half."""
        fw = [w for w in weights if any(c.startswith("forward") for c in components(w[0]))]
        bw = [w for w in weights if any(c.startswith("backward") for c in components(w[0]))]
        if (not fw or not bw or len(fw) + len(bw) != len(weights)) and spec is not None and spec.backward:
            names = (spec.inner.name, spec.backward.name)
            fw = [w for w in weights if names[0] in components(w[0])]
            bw = [w for w in weights if names[1] in components(w[0])]
        if not fw or not bw or len(fw) + len(bw) != len(weights):
            inner = spec.inner if spec is not None else None
            n = 2 + bool(inner.config.get("use_bias", True)) if inner is not None and inner.family else None
            half = n if n is not None and 0 < n < len(weights) and spec.backward else len(weights) // 2
            fw, bw = weights[:half], weights[half:]
        return fw, bw

    def wrapped(self, weights):
        return weights

    def stacked(self, cells, weights):
        out, pos = [], 0
        for cell in cells:
            n = 2 + bool(cell.config.get("use_bias", True))
            out.append(weights[pos: pos + n])
            pos += n
        return out

    def single_cell(self, weights):
        return weights

    def cell(self, spec, weights, path):
        use_bias = bool(spec.config.get("use_bias", spec.config.get("bias", True)))
        return FoundCell(path, spec.class_name, spec, roles_for(weights, use_bias))


def cells_of(spec: Spec, layer) -> list:
    """Cells of top-level layer `spec` from its LegacyLayer, marking what a damaged file lacks.

    Nothing is invented: a missing group leaves the cells without tensors, and repeated
    weight names (datasets overwritten at save) leave it unknown whose data survived."""
    cells = assign(spec, layer.weights if layer else [], spec.name)
    for cell in cells:
        if layer is None or layer.missing_group:
            cell.tensors = {role: None for role in cell.tensors or FUSED_ROLES}
        elif layer.repeated:
            cell.ambiguous = (f"layer {spec.name!r} repeats its weight names, so the file cannot say "
                              "which cell the surviving datasets belong to")
    return cells


def assign(spec: Spec, weights: list, path: str) -> list:
    """Split a layer's weight list among its recurrent cells, following the config."""
    return walk_cells(spec, path, weights, Addressing())
