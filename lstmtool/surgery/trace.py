"""Follow a recurrent layer's units through the model: every tensor axis where they sit.

`trace(model, raw, target)` walks the layer graph from the target: its own tensors
(incoming columns, recurrent rows), then each consumer by the table in `consumers`,
and the layers tied to it (an encoder whose states start a decoder, the inputs of an
Add) which must lose the same units. Anything whose result would change is refused
with the reason, before a byte is written.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..core.config import units_of
from . import consumers as C
from .graph import MODEL_INPUT, RECURRENT_CLASSES, layer_graph
from .located import HALVES, Refused, Weights, split_target
from .units import INCOMING, OUTGOING, VECTOR, Blocks, Site, concatenated, flattened, unit_blocks

@dataclass
class Trace:
    target: str
    units: int
    members: dict = field(default_factory=dict)  # layer path -> halves pruned ("cell", or forward/backward)
    sites: list = field(default_factory=list)
    ties: list = field(default_factory=list)  # sentences for the plan
    fed: list = field(default_factory=list)  # (consumer path, role, slot, Blocks) for the config
    tensors: dict = field(default_factory=dict)  # (producer, tensor) -> Blocks
    graph: object = None

    def member_cells(self, model):
        return [c for c in model.cells for p, halves in self.members.items()
                if c.path == p or (c.path.startswith(p + "/") and c.path.rsplit("/", 1)[1] in halves)]


def trace(model, raw, target: str) -> Trace:
    graph = layer_graph(raw)
    start, halves = split_target(model, graph, target)
    tracer = _Tracer(model, raw, graph)
    units = tracer.units_of(start, halves)
    tr = Trace(target, units, graph=graph)
    tracer.run(tr, start, halves)
    return tr


class _Tracer:
    def __init__(self, model, raw, graph):
        self.model, self.graph = model, graph
        self.weights = Weights(model, raw)
        self.cells = {c.path: c for c in model.cells}
        self.by_tensor = {}  # (path, axis) -> Site, so two routes to one axis agree
        self.seen = set()
        self.merged = {}  # elementwise merge -> the Blocks it carries

    # -- the layers that lose units -------------------------------------------------------------

    def cells_of(self, path, halves):
        names = [path] if halves == ("cell",) else [f"{path}/{h}" for h in halves]
        found = [self.cells.get(n) for n in names]
        if any(c is None for c in found):
            missing = names[found.index(None)]
            raise Refused(f"{missing}: its weights were not found in {self.model.filename}; nothing written")
        return found

    def units_of(self, path, halves):
        sizes = {c.units for c in self.cells_of(path, halves)}
        if len(sizes) != 1:
            raise Refused(f"{path}: its halves have {' and '.join(map(str, sorted(sizes)))} units; "
                          "name one half (PATH/forward or PATH/backward)")
        return sizes.pop()

    def run(self, tr, start, halves):
        queue = [(start, halves, None)]
        while queue:
            path, halves, why = queue.pop(0)
            if path in tr.members:
                if tr.members[path] != halves:
                    raise Refused(f"{path}: tied to {tr.target} by {why}, but only some of its halves "
                                  "would lose the units")
                continue
            if self.units_of(path, halves) != tr.units:
                raise Refused(f"{path} ({self.units_of(path, halves)} units) is tied to {tr.target} "
                              f"({tr.units} units) by {why}: they cannot lose the same units")
            if why:
                tr.ties.append(f"{path}: {why}")
            tr.members[path] = halves
            node = self.graph.nodes[path]
            self.check_calls(node)
            for cell in self.cells_of(path, halves):
                self.own_sites(tr, cell)
            for e in self.graph.inputs(path, "initial_state"):  # its states start from another layer's
                source = self.source(e, path, "initial_state")
                queue.append((source, self.all_halves(source), f"its states start {path}"))
            for tensor, blocks, rank in self.outputs(node, halves, tr.units):
                self.flow(tr, queue, path, tensor, blocks, rank)

    def all_halves(self, path):
        return HALVES if self.graph.nodes[path].class_name == "Bidirectional" else ("cell",)

    def check_calls(self, node):
        if node.calls > 1:
            raise Refused(f"{node.path} is called {node.calls} times (a shared layer); lstmtool follows "
                          "units through layers called once")

    def outputs(self, node, halves, units):
        cfg = node.config
        inner = cfg.get("layer", {}).get("config", {}) if node.class_name == "Bidirectional" else cfg
        if node.class_name == "RNN":
            inner = dict(cfg, **(cfg.get("cell", {}).get("config") or {}))
        inner_class = cfg.get("layer", {}).get("class_name", "") if node.class_name == "Bidirectional" else node.class_name
        if inner_class.startswith("ConvLSTM") and C.channels_first(inner):
            raise Refused(f"{node.path}: a channels_first ConvLSTM keeps its filters on axis 1; "
                          "only channels_last is followed")
        rank = None if inner_class.startswith("ConvLSTM") else (
            3 if inner.get("return_sequences") else 2)
        if node.class_name != "Bidirectional":
            n_out = 1 + (self.n_states(node) if inner.get("return_state") else 0)
            return [(t, unit_blocks(units), rank if t == 0 else 2) for t in range(n_out)]
        if inner.get("return_state"):
            raise Refused(f"{node.path}: a Bidirectional returning its states is not followed")
        mode = cfg.get("merge_mode", "concat")
        if mode == "concat":  # [forward | backward]; the halves may differ after an earlier prune
            forward, backward = (self.cells_of(node.path, (h,))[0].units for h in HALVES)
            starts = tuple(start for start, h in ((0, "forward"), (forward, "backward")) if h in halves)
            return [(0, Blocks(units, starts, forward + backward), rank)]
        if mode in ("sum", "mul", "ave") and halves == HALVES:
            return [(0, unit_blocks(units), rank)]
        if mode in ("sum", "mul", "ave"):
            raise Refused(f"{node.path}: merge_mode={mode!r} adds the halves unit by unit: "
                          f"both must lose the same units (name {node.path}, not one half)")
        raise Refused(f"{node.path}: merge_mode={mode!r} is not followed (concat, sum, mul, ave are)")

    def n_states(self, node):
        cls = node.class_name if node.class_name != "RNN" else node.config.get("cell", {}).get("class_name", "")
        return 2 if "LSTM" in cls else 1

    def own_sites(self, tr, cell):
        for part in ("W", "U", "b"):
            views = getattr(cell, part)
            for g in cell.gates if views else ():
                for term in views[g].terms:
                    ref, index = term.tensor, term.index
                    cols = self.span(index[-1], ref.shape[-1], cell.units, cell.path, ref.name)
                    view = _view_of(term, cell) if term.transform is not None else None
                    if view is not None:  # cuDNN: the units sit in the gate view, not the stored block
                        self.add(tr, Site(ref.path, ref.shape, ref.dtype, -1, unit_blocks(cell.units),
                                          INCOMING, cell.path, ref.name, views=view))
                        if part == "U":
                            self.add(tr, Site(ref.path, ref.shape, ref.dtype, -2, unit_blocks(cell.units),
                                              OUTGOING, cell.path, ref.name, views=view))
                        continue
                    self.add(tr, Site(ref.path, ref.shape, ref.dtype, -1, Blocks(cell.units, (cols,), ref.shape[-1]),
                                      INCOMING, cell.path, ref.name))
                    if part == "U":
                        rows = self.span(index[-2], ref.shape[-2], cell.units, cell.path, ref.name)
                        self.add(tr, Site(ref.path, ref.shape, ref.dtype, -2,
                                          Blocks(cell.units, (rows,), ref.shape[-2]), OUTGOING, cell.path, ref.name))

    def span(self, s, length, units, path, name):
        start, stop, step = s.indices(length)
        if step != 1 or stop - start != units:
            raise Refused(f"{path}: {name} does not hold its {units} units in one block per gate")
        return start

    def add(self, tr, site):
        key = (site.path, site.axis)
        old = self.by_tensor.get(key)
        if old is None:
            self.by_tensor[key] = site
            tr.sites.append(site)
            return
        if old.kind != site.kind or old.blocks.units != site.blocks.units:
            raise Refused(f"{site.layer}: {site.role} would lose units for two reasons at once")
        merged = Blocks(old.blocks.units, tuple(sorted(set(old.blocks.starts) | set(site.blocks.starts))),
                        old.blocks.width)
        old.blocks = merged

    # -- the layers that read the units --------------------------------------------------------

    def source(self, edge, path, what):
        """The recurrent layer behind `edge`, through pass-through layers; refused if none."""
        producer = edge.producer
        while producer != MODEL_INPUT:
            node = self.graph.nodes[producer]
            if node.class_name in RECURRENT_CLASSES | {"Bidirectional"}:
                return producer
            if node.class_name not in C.PASS and node.class_name not in C.VECTOR:
                break
            ins = self.graph.inputs(producer, "input")
            if len(ins) != 1:
                break
            producer = ins[0].producer
        name = "a model input" if producer == MODEL_INPUT else f"{producer} ({self.graph.nodes[producer].class_name})"
        raise Refused(f"{path}'s units meet {name} in {what}: lstmtool can only take the same units "
                      "out of recurrent layers")

    def flow(self, tr, queue, producer, tensor, blocks, rank):
        if (producer, tensor) in self.graph.outputs:
            via = "" if producer in tr.members else f" through {producer}"
            raise Refused(f"{tr.target}'s units reach the model output directly{via}: its shape would change "
                          "(prune a layer whose units feed another layer)")
        tr.tensors[(producer, tensor)] = blocks
        for e in self.graph.consumers(producer, tensor):
            key = (e.consumer, e.role, e.slot)
            if key in self.seen:
                continue
            self.seen.add(key)
            self.consume(tr, queue, e, blocks, rank)

    def consume(self, tr, queue, e, blocks, rank):
        node = self.graph.nodes[e.consumer]
        cls, cfg, path = node.class_name, node.config, node.path
        if e.role == "initial_state":
            if cls not in RECURRENT_CLASSES:
                raise Refused(f"{path} ({cls}) takes {e.producer}'s states; not followed")
            tr.fed.append((path, e.role, e.slot, blocks))
            queue.append((path, ("cell",), f"{e.producer}'s states start it (initial_state)"))
            return
        if e.role != "input":
            raise Refused(f"{e.producer}'s units feed {path}'s {e.role.split(':', 1)[1]!r}; not followed")
        self.check_calls(node)
        if cls == "Merge":  # Keras 1
            cls = C.KERAS1_MERGE.get(cfg.get("mode"))
            if cls is None:
                raise Refused(f"{path}: a Keras 1 Merge in mode {cfg.get('mode')!r} is not followed")
        if cls == "TimeDistributed":
            cls = cfg.get("layer", {}).get("class_name")
            if cls not in C.MIX and cls not in C.PASS:
                raise Refused(f"{path}: TimeDistributed({cls}) is not followed")
        if cls in C.SPANS:
            raise Refused(f"{path} ({cls}) reads {e.producer}'s units: {C.SPANS[cls]}")
        if cls == "Activation" and cfg.get("activation") in C.MIXING_ACTIVATIONS:
            raise Refused(f"{path}: activation {cfg['activation']!r} normalises over all units")
        tr.fed.append((path, e.role, e.slot, blocks))
        if cls in RECURRENT_CLASSES or cls == "Bidirectional":
            halves = self.all_halves(path) if cls == "Bidirectional" else ("cell",)
            for cell in self.cells_of(path, halves):
                self.reading_rows(tr, cell, blocks)
        elif cls in C.MIX:
            if C.channels_first(cfg):
                raise Refused(f"{path}: a channels_first {cls} reads channels on axis 1; not followed")
            kernel = self.tensor(path, 0)
            self.add(tr, Site(kernel[0], kernel[1], kernel[2], -2, self.resolve(blocks, kernel[1][-2], path),
                              OUTGOING, path, "kernel"))
        elif cls in C.VECTOR:
            self.vectors(tr, node, blocks, rank)
            self.flow(tr, queue, path, 0, blocks, rank)
        elif cls == "Flatten":
            out = blocks if rank == 2 else self.flat(blocks, path)
            self.flow(tr, queue, path, 0, out, 2)
        elif cls in C.PASS:
            if C.channels_first(cfg):
                raise Refused(f"{path}: a channels_first {cls} keeps channels on axis 1; not followed")
            self.flow(tr, queue, path, 0, blocks, None if rank is None else rank + C.PASS[cls])
        elif cls == "Concatenate":
            self.concatenate(tr, queue, node, e, blocks, rank)
        elif cls in C.ELEMENTWISE:
            self.elementwise(tr, queue, node, e, blocks, rank)
        else:
            raise Refused(f"{path} ({cls}) reads {e.producer}'s units; lstmtool does not know how it uses them")

    def flat(self, blocks, path):
        try:
            return flattened(blocks)
        except ValueError as err:
            raise Refused(f"{path}: {err}") from None

    def resolve(self, blocks, width, path):
        try:
            return blocks.resolve(width)
        except ValueError as err:
            raise Refused(f"{path}: {err}; its weights do not fit the units it is fed") from None

    def tensor(self, path, k):
        found = self.weights.of(path)
        if len(found) <= k:
            raise Refused(f"{path}: its weights were not found in {self.model.filename}; nothing written")
        ds = self.model.store.h5[found[k]]
        return found[k], tuple(ds.shape), str(ds.dtype)

    def reading_rows(self, tr, cell, blocks):
        for g in cell.gates:
            for term in cell.W[g].terms:
                ref = term.tensor
                if term.transform is not None:
                    self.add(tr, Site(ref.path, ref.shape, ref.dtype, -2, self.resolve(blocks, cell.input_dim, cell.path),
                                      OUTGOING, cell.path, ref.name, views=_view_of(term, cell)))
                    continue
                start, stop, _ = term.index[-2].indices(ref.shape[-2])
                rows = self.resolve(blocks, stop - start, cell.path)
                self.add(tr, Site(ref.path, ref.shape, ref.dtype, -2,
                                  Blocks(rows.units, rows.shifted(start), ref.shape[-2]), OUTGOING, cell.path, ref.name))

    def vectors(self, tr, node, blocks, rank):
        cfg, path = node.config, node.path
        if node.class_name == "BatchNormalization":
            axis = cfg.get("axis", -1)
            axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
            if not (axis == -1 or (rank is not None and axis == rank - 1)):
                raise Refused(f"{path}: BatchNormalization(axis={cfg.get('axis')}) normalises another axis "
                              "than the units'")
        found = self.weights.of(path)
        roles = C.bn_roles(cfg, len(found)) if node.class_name == "BatchNormalization" else ["alpha"]
        for role, ds_path in zip(roles, found):
            ds = self.model.store.h5[ds_path]
            site_blocks = self.resolve(blocks, ds.shape[-1], path)
            self.add(tr, Site(ds_path, tuple(ds.shape), str(ds.dtype), -1, site_blocks, VECTOR, path, role,
                              fill=C.BN_FILLS.get(role, 0.0)))

    def concatenate(self, tr, queue, node, e, blocks, rank):
        cfg, path = node.config, node.path
        axis = cfg.get("axis", cfg.get("concat_axis", -1))
        if not (axis == -1 or (rank is not None and axis == rank - 1)):
            raise Refused(f"{path}: Concatenate(axis={axis}) joins along another axis than the units'")
        ins = sorted(self.graph.inputs(path, "input"), key=lambda x: x.slot)
        if path in self.merged:
            raise Refused(f"{path} joins the units of two layers that would lose units; prune them one at a time")
        parts = []
        for k, inp in enumerate(ins):
            mine = (inp.producer, inp.tensor) == (e.producer, e.tensor)
            parts.append((self.width(path, k, inp), blocks if mine else None))
        try:
            out = concatenated(parts)
        except ValueError as err:
            raise Refused(f"{path}: {err}") from None
        self.merged[path] = out
        for k, inp in enumerate(ins):
            self.seen.add((path, "input", inp.slot))
        self.flow(tr, queue, path, 0, out, rank)

    def width(self, path, k, edge):
        """How many features input k of `path` has: its build_config, else the producer's config."""
        shapes = (self.graph.nodes[path].entry.get("build_config") or {}).get("input_shape")
        if isinstance(shapes, list) and len(shapes) > k and isinstance(shapes[k], list) and shapes[k][-1]:
            return shapes[k][-1]
        width = self.produced_width(edge.producer, edge.tensor)
        if width is None:
            raise Refused(f"{path}: the width of its input {k} ({edge.producer}) is not known")
        return width

    def produced_width(self, producer, tensor, depth=0):
        if producer == MODEL_INPUT:
            shapes = self.graph.input_shapes
            shape = shapes[tensor] if tensor < len(shapes) else None
            return shape[-1] if shape and isinstance(shape[-1], int) else None
        if depth > 50:
            return None
        node = self.graph.nodes[producer]
        cfg, cls = node.config, node.class_name
        if cls == "Bidirectional":
            u = units_of(cfg.get("layer", {}).get("config", {}))
            return None if u is None else (2 * u if cfg.get("merge_mode", "concat") == "concat" else u)
        if cls == "TimeDistributed":
            cfg = cfg.get("layer", {}).get("config", {})
        if cls in RECURRENT_CLASSES or cls in ("Dense", "TimeDistributed") or cls in C.MIX:
            return units_of(cfg)
        if cls == "Embedding":
            return cfg.get("output_dim")
        ins = self.graph.inputs(producer, "input")
        if cls in C.PASS or cls in C.VECTOR or cls in C.ELEMENTWISE:
            return self.produced_width(ins[0].producer, ins[0].tensor, depth + 1) if ins else None
        if cls == "Concatenate":
            widths = [self.produced_width(i.producer, i.tensor, depth + 1) for i in ins]
            return None if None in widths else sum(widths)
        return None

    def elementwise(self, tr, queue, node, e, blocks, rank):
        path = node.path
        if path in self.merged:
            if self.merged[path] != blocks:
                raise Refused(f"{path} ({node.class_name}) combines inputs whose units sit differently")
            return
        self.merged[path] = blocks
        for inp in self.graph.inputs(path, "input"):
            if (inp.producer, inp.tensor) != (e.producer, e.tensor):
                source = self.source(inp, e.producer, f"{path} ({node.class_name})")
                queue.append((source, self.all_halves(source), f"{path} ({node.class_name}) combines its units "
                              f"with {e.producer}'s"))
        self.flow(tr, queue, path, 0, blocks, rank)


def _view_of(term, cell):
    """The gate blocks of a cuDNN tensor along its last axis, with their transforms."""
    out = []
    views = cell.W if term.tensor.name == "kernel" else cell.U
    for g in cell.gates:
        t = views[g].terms[0]
        start, stop, _ = t.index[-1].indices(t.tensor.shape[-1])
        out.append((start, stop, t.transform, t.inverse))
    return tuple(out)
