"""Pictures of gates: weights heatmaps, bias histograms, forget-gate timescales, and the
plots of `diff` and `trace`. matplotlib (the optional extra `lstmtool[plot]`) is imported
here only; nothing on the read/edit path imports this module.

Each gate view is read alone and, when larger than a panel can show, reduced to block
means as it is read, so a 350 MB model never sits in memory at once. Every function
returns {panel title: [x0, y0, x1, y1]}, the panels' pixel boxes in the PNG (origin top
left), which `--json` prints and the tests use to look at the right pixels.
"""
from __future__ import annotations

import numpy as np

from ..errors import UsageError
from ..reading.reader import load
from ..reading.report import effective_bias

MAX_CELLS = 160  # a panel shows at most this many rows/columns of values
DPI = 100


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError("plotting needs matplotlib: pip install 'lstmtool[plot]'") from None
    return plt


def reduce_blocks(a: np.ndarray, limit: int = MAX_CELLS):
    """(block means, block shape): a 2-D array cut into blocks so that at most `limit`
    rows and columns remain. Works in the array's own dtype plus one padded copy, so a
    2048x2048 gate costs tens of MB, not hundreds."""
    a = np.asarray(a)
    if a.ndim == 1:
        a = a[None, :]
    elif a.ndim > 2:  # ConvLSTM kernels: (..., in, units) -> (everything else, units)
        a = a.reshape(-1, a.shape[-1])
    bh, bw = -(-a.shape[0] // limit), -(-a.shape[1] // limit)
    if bh == 1 and bw == 1:
        return a.astype(np.float64), (1, 1)
    h, w = -(-a.shape[0] // bh) * bh, -(-a.shape[1] // bw) * bw
    padded = np.zeros((h, w), dtype=a.dtype)
    padded[: a.shape[0], : a.shape[1]] = a
    rows = np.minimum(bh, a.shape[0] - np.arange(0, h, bh))  # values per block row (the last may be short)
    cols = np.minimum(bw, a.shape[1] - np.arange(0, w, bw))
    with np.errstate(all="ignore"):
        sums = padded.reshape(h // bh, bh, w // bw, bw).sum(axis=(1, 3), dtype=np.float64)
        return sums / np.outer(rows, cols), (bh, bw)


def _boxes(fig, axes: dict) -> dict:
    fig.canvas.draw()
    height = fig.get_size_inches()[1] * fig.dpi
    out = {}
    for title, ax in axes.items():
        x0, y0, x1, y1 = ax.get_window_extent().extents
        out[title] = [round(x0), round(height - y1), round(x1), round(height - y0)]
    return out


FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}


def image_format(name) -> str:
    """The picture format `name` asks for; refused where its bytes would not be what it says."""
    import os

    ext = os.path.splitext(str(name))[1].lower()
    if ext not in FORMATS:
        raise UsageError(f"{name}: lstmtool draws .png, .svg or .pdf (a {ext or 'name without extension'} "
                         "would hold other bytes than its name says)")
    return FORMATS[ext]


def _save(fig, out, axes) -> dict:
    boxes = _boxes(fig, axes)
    fig.savefig(out, dpi=fig.dpi, format=image_format(getattr(out, "name", out)))
    import matplotlib.pyplot as plt

    plt.close(fig)
    return boxes


def _selected(model, patterns):
    from ..core.names import check_patterns_matched, matches

    cells = [c for c in model.cells if matches(c.path, patterns)]
    if patterns:
        check_patterns_matched(patterns, [c.path for c in model.cells], "cell", given_as="LAYER")
    if not cells:
        from ..errors import ModelError

        raise ModelError(f"{model.filename}: no recurrent cell to plot")
    return cells


def plot_weights(path, out, patterns=(), gates=()) -> dict:
    """One row per gate; per cell (side by side) its W, U and b panels, shared colour
    scale per part, diverging and centred at 0."""
    plt = _pyplot()
    with load(path) as model:
        cells = _selected(model, patterns)
        parts = ("W", "U", "b")
        # row k shows each cell's k-th gate (LSTM i f c o and GRU z r h side by side)
        shown = {c.path: [g for g in c.gates if not gates or g in gates] for c in cells}
        nrows = max(len(v) for v in shown.values())
        if not nrows:
            raise UsageError(f"no gate {', '.join(gates)} in the selected cells")
        reduced, scale = {}, {}
        for c in cells:  # one view at a time: read, reduce, keep only the reduction
            for p in parts:
                for g in shown[c.path]:
                    view = getattr(c, p).get(g)
                    if view is None:
                        continue
                    arr, block = reduce_blocks(view.numpy())
                    reduced[c.path, p, g] = (arr, block, view.source_text())
                    finite = np.abs(arr[np.isfinite(arr)])
                    # one scale per cell and part: a small layer is not washed out by a big one
                    scale[c.path, p] = max(scale.get((c.path, p), 0.0), float(finite.max()) if finite.size else 0.0)
        ncols = len(cells) * len(parts)
        fig, grid = plt.subplots(nrows, ncols, figsize=(2.6 * ncols, 2.4 * nrows + 0.6), dpi=DPI,
                                 squeeze=False, gridspec_kw={"width_ratios": [3, 3, 1] * len(cells)})
        axes = {}
        for r in range(nrows):
            for k, c in enumerate(cells):
                g = shown[c.path][r] if r < len(shown[c.path]) else None
                for j, p in enumerate(parts):
                    ax = grid[r][k * len(parts) + j]
                    item = reduced.get((c.path, p, g))
                    if item is None:
                        ax.axis("off")
                        continue
                    arr, block, source = item
                    if p == "b":
                        arr = arr.T  # a strip: one column per bias row
                    v = scale.get((c.path, p)) or 1.0
                    image = ax.imshow(arr, cmap="RdBu_r", vmin=-v, vmax=v, aspect="auto", interpolation="nearest")
                    note = "" if block == (1, 1) else f"\nmean of {block[0]}x{block[1]} blocks"
                    title = f"{c.path} {p}_{g}"
                    ax.set_title(f"{title}\n{source}{note}", fontsize=7)
                    ax.set_xticks([])
                    ax.set_yticks([])
                    rows_are = {"W": "input feature", "U": "previous h unit", "b": "bias row"}[p]
                    ax.set_xlabel("unit of the gate" if p != "b" else "", fontsize=6)
                    ax.set_ylabel(rows_are, fontsize=6)
                    axes[title] = ax
                    if r == 0:
                        fig.colorbar(image, ax=ax, fraction=0.08).ax.tick_params(labelsize=5)
        fig.suptitle(f"{path}: gate weights (colour scale per cell and part, centred at 0)", fontsize=9)
        fig.tight_layout()
        return _save(fig, out, axes)


def plot_bias(path, out, patterns=(), gates=()) -> dict:
    """Per cell, one histogram per gate of b (GRU reset_after: both rows; CuDNN: effective)."""
    plt = _pyplot()
    with load(path) as model:
        cells = [c for c in _selected(model, patterns) if c.b]
        if not cells:
            raise UsageError(f"{path}: the selected cells have no bias")
        width = max(len(c.gates) for c in cells)
        fig, grid = plt.subplots(len(cells), width, figsize=(2.8 * width, 2.2 * len(cells) + 0.6), dpi=DPI,
                                 squeeze=False)
        axes = {}
        for r, c in enumerate(cells):
            for k in range(width):
                ax = grid[r][k]
                g = c.gates[k] if k < len(c.gates) else None
                if g is None or (gates and g not in gates):
                    ax.axis("off")
                    continue
                a = np.asarray(c.b[g].numpy(), dtype=np.float64)
                rows = a if a.ndim == 2 else a[None, :]
                labels = ["input", "recurrent"] if a.ndim == 2 else [None]
                bins = np.histogram_bin_edges(rows, bins=min(30, max(5, rows.shape[-1] // 2)))
                for row, label, colour in zip(rows, labels, ("tab:blue", "tab:orange")):
                    # outlines: where the two rows coincide, neither hides the other
                    ax.hist(row, bins=bins, label=label, histtype="step" if a.ndim == 2 else "bar",
                            linewidth=1.4, color=colour)
                if a.ndim == 2:
                    ax.legend(fontsize=6)
                _integer_counts(ax)
                from matplotlib.ticker import MaxNLocator

                ax.xaxis.set_major_locator(MaxNLocator(4))
                ax.set_xlabel("bias value", fontsize=6)
                ax.set_ylabel("units", fontsize=6)
                title = f"{c.path} b_{g}"
                ax.set_title(f"{title}\n{c.b[g].source_text()}", fontsize=7)
                ax.tick_params(labelsize=6)
                axes[title] = ax
        fig.suptitle(f"{path}: bias per gate", fontsize=9)
        fig.tight_layout()
        return _save(fig, out, axes)


def timescales(cell):
    """(T per unit, gate, chrono (lo, hi) or None): T = 1 / (1 - act(b)), b the forget
    gate's bias (GRU: the update gate z, which in Keras keeps the old state) and act the
    cell's own recurrent activation (hard_sigmoid in the formula of the file's Keras)."""
    from ..cells.activations import activation

    gate = "f" if cell.family == "lstm" else "z" if cell.family == "gru" else None
    if gate is None or gate not in cell.b:
        return None
    b = np.asarray(effective_bias(cell.b[gate].numpy()), dtype=np.float64)
    with np.errstate(over="ignore", divide="ignore"):
        if cell.recurrent_activation == "sigmoid":
            t = 1.0 + np.exp(b)  # = 1 / (1 - sigmoid(b)), without the rounding of 1 - sigmoid
        else:
            t = 1.0 / (1.0 - activation(cell.recurrent_activation, cell.keras_major)(b))
    chrono = None
    if cell.family == "lstm" and "i" in cell.b:
        bi = effective_bias(cell.b["i"].numpy())
        if bi.shape == b.shape and np.allclose(bi, -b, atol=1e-6) and np.all(b >= 0):
            chrono = (2.0, float(t.max()))  # chrono draws b_f = log(U[1, T-1]): T in [2, T_max]
    return t, gate, chrono


def _plain_log_ticks(ax):
    """Log-axis ticks as plain numbers (3, 10, 30), not 2x10^0."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _integer_counts(ax):
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))


def plot_timescales(path, out, patterns=()) -> dict:
    plt = _pyplot()
    with load(path) as model:
        items = [(c, timescales(c)) for c in _selected(model, patterns)]
        items = [(c, t) for c, t in items if t is not None]
        if not items:
            raise UsageError(f"{path}: no LSTM or GRU cell with a bias")
        fig, grid = plt.subplots(len(items), 1, figsize=(7, 2.4 * len(items) + 0.6), dpi=DPI, squeeze=False)
        axes = {}
        for ax, (c, (t, gate, chrono)) in zip(grid[:, 0], items):
            finite = t[np.isfinite(t)]
            hi = max(float(finite.max()) if finite.size else 2.0, 2.0)
            lo = max(1.0, float(finite.min()) if finite.size else 1.0)
            log = hi / lo >= 10  # memories spanning a decade or more; within one, a log axis reads as linear
            bins = np.geomspace(lo, hi * 1.01, 40) if log else np.linspace(lo, hi * 1.01, 40)
            ax.hist(np.clip(t, lo, hi), bins=bins, color="tab:blue")
            if log:
                ax.set_xscale("log")
                _plain_log_ticks(ax)
            ax.set_xlim(lo / 1.05, hi * 1.05)  # the data's range, not decades of empty axis
            _integer_counts(ax)
            ax.set_ylabel("units", fontsize=7)
            ax.set_xlabel(f"T = 1 / (1 - {c.recurrent_activation}(b_{gate})), time steps"
                          + (" (log axis)" if log else "")
                          + (" (not shown: units whose gate is saturated at 1, T infinite)"
                             if finite.size < t.size else ""), fontsize=7)
            if chrono:
                ax.axvspan(*chrono, color="tab:orange", alpha=0.2, label="chrono-initialised range")
                ax.legend(fontsize=6)
            title = f"{c.path} timescales"
            ax.set_title(f"{title} (gate {gate}, {len(t)} units)", fontsize=8)
            axes[title] = ax
        fig.suptitle(f"{path}: characteristic memory per unit", fontsize=9)
        fig.tight_layout()
        return _save(fig, out, axes)


def plot_diff(data: dict, out) -> dict:
    """Bar chart of max |delta| per cell, part and gate."""
    plt = _pyplot()
    cells = [c for c in data["cells"] if c.get("gates")]
    fig, grid = plt.subplots(max(len(cells), 1), 1, figsize=(7, 2.2 * max(len(cells), 1) + 0.6), dpi=DPI,
                             squeeze=False)
    axes = {}
    for ax, c in zip(grid[:, 0], cells):
        labels = [f"{g['part']}_{g['gate']}" for g in c["gates"]]
        values = [g.get("max_abs", np.nan) for g in c["gates"]]
        scaled = [bool(g.get("scaled_by")) for g in c["gates"]]
        colours = ["tab:blue" if sc else "tab:red" if g["changed"] else "tab:gray"
                   for g, sc in zip(c["gates"], scaled)]
        ax.bar(labels, values, color=colours)
        ax.set_ylabel("max |b - a|", fontsize=7)
        ax.tick_params(labelsize=6)
        title = c["path"]
        if c.get("equivalent"):
            title += f"\nequivalent: {c['equivalent']}"
        elif any(scaled):
            title += "\nblue: scaled by 1.2 (the hard_sigmoid upgrade: computes the same)"
        ax.set_title(title, fontsize=7)
        axes[c["path"]] = ax
    fig.suptitle(f"{data['a']} -> {data['b']}", fontsize=8)
    fig.tight_layout()
    return _save(fig, out, axes)


def trace_axis(files):
    """(x values, "epoch") where every name holds one number that differs between files (the
    epoch of `weights-03-0.41.hdf5` is the first such), else (positions, "index")."""
    import os
    import re

    numbers = [re.findall(r"\d+", os.path.basename(f)) for f in files]
    if files and all(numbers) and len({len(n) for n in numbers}) == 1:
        for k in range(len(numbers[0])):
            column = [int(n[k]) for n in numbers]
            if len(set(column)) == len(column):
                return np.array(column), "epoch"
    return np.arange(len(files)), "index"


def plot_trace(data: dict, out) -> dict:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4), dpi=DPI)
    x, label = trace_axis([r["file"] for r in data["rows"]])
    for cell in data["cells"]:
        ax.plot(x, [r["values"].get(cell, np.nan) for r in data["rows"]], marker="o", markersize=3, label=cell)
    if label == "epoch":
        ax.set_xlabel("epoch (the number in each checkpoint's name)", fontsize=8)
    else:
        import os

        names = [os.path.basename(r["file"]) for r in data["rows"]]
        step = max(1, len(names) // 12)  # at most a dozen names, readable
        ax.set_xticks(x[::step])
        ax.set_xticklabels(names[::step], rotation=30, ha="right", fontsize=6)
        ax.set_xlabel("checkpoint (natural file-name order)", fontsize=8)
    ax.set_ylabel(f"{data['stat']} of {data['part']}_{data['gate']}", fontsize=8)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, out, {"trace": ax})
