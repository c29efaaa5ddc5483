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

from .errors import UsageError
from .reader import load
from .report import effective_bias

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


def _save(fig, out, axes) -> dict:
    boxes = _boxes(fig, axes)
    fig.savefig(out, dpi=fig.dpi)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return boxes


def _selected(model, patterns):
    from .names import check_patterns_matched, matches

    cells = [c for c in model.cells if matches(c.path, patterns)]
    if patterns:
        check_patterns_matched(patterns, [c.path for c in model.cells], "cell", given_as="LAYER")
    if not cells:
        from .errors import ModelError

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
        reduced, scale = {}, {p: 0.0 for p in parts}
        for c in cells:  # one view at a time: read, reduce, keep only the reduction
            for p in parts:
                for g in shown[c.path]:
                    view = getattr(c, p).get(g)
                    if view is None:
                        continue
                    arr, block = reduce_blocks(view.numpy())
                    reduced[c.path, p, g] = (arr, block, view.source_text())
                    finite = np.abs(arr[np.isfinite(arr)])
                    scale[p] = max(scale[p], float(finite.max()) if finite.size else 0.0)
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
                    v = scale[p] or 1.0
                    image = ax.imshow(arr, cmap="RdBu_r", vmin=-v, vmax=v, aspect="auto", interpolation="nearest")
                    note = "" if block == (1, 1) else f"\nmean of {block[0]}x{block[1]} blocks"
                    title = f"{c.path} {p}_{g}"
                    ax.set_title(f"{title}\n{source}{note}", fontsize=7)
                    ax.set_xticks([])
                    ax.set_yticks([])
                    axes[title] = ax
                    if r == 0 and k == len(cells) - 1:
                        fig.colorbar(image, ax=ax, fraction=0.08)
        fig.suptitle(f"{path}: gate weights (colour scale shared per part, centred at 0)", fontsize=9)
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
                for row, label in zip(rows, labels):
                    ax.hist(row, bins=30, alpha=0.7, label=label)
                if a.ndim == 2:
                    ax.legend(fontsize=6)
                title = f"{c.path} b_{g}"
                ax.set_title(f"{title}\n{c.b[g].source_text()}", fontsize=7)
                ax.tick_params(labelsize=6)
                axes[title] = ax
        fig.suptitle(f"{path}: bias per gate", fontsize=9)
        fig.tight_layout()
        return _save(fig, out, axes)


def timescales(cell):
    """(T per unit, gate, chrono (lo, hi) or None): T = 1 / (1 - sigmoid(b)), b the forget
    gate's bias (GRU: the update gate z, which in Keras keeps the old state)."""
    gate = "f" if cell.family == "lstm" else "z" if cell.family == "gru" else None
    if gate is None or gate not in cell.b:
        return None
    b = effective_bias(cell.b[gate].numpy())
    with np.errstate(over="ignore"):
        t = 1.0 + np.exp(b)  # = 1 / (1 - sigmoid(b))
    chrono = None
    if cell.family == "lstm" and "i" in cell.b:
        bi = effective_bias(cell.b["i"].numpy())
        if bi.shape == b.shape and np.allclose(bi, -b, atol=1e-6) and np.all(b >= 0):
            chrono = (2.0, float(t.max()))  # chrono draws b_f = log(U[1, T-1]): T in [2, T_max]
    return t, gate, chrono


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
            ax.hist(np.clip(t, 1.0, hi), bins=np.geomspace(1.0, hi * 1.01, 40), color="tab:blue")
            ax.set_xscale("log")
            ax.set_xlabel(f"T = 1 / (1 - sigmoid(b_{gate})), time steps", fontsize=7)
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
        ax.bar(labels, values, color=["tab:red" if g["changed"] else "tab:gray" for g in c["gates"]])
        ax.set_ylabel("max |b - a|", fontsize=7)
        ax.tick_params(labelsize=6)
        ax.set_title(c["path"], fontsize=8)
        axes[c["path"]] = ax
    fig.suptitle(f"{data['a']} -> {data['b']}", fontsize=8)
    fig.tight_layout()
    return _save(fig, out, axes)


def plot_trace(data: dict, out) -> dict:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4), dpi=DPI)
    x = np.arange(len(data["rows"]))
    for cell in data["cells"]:
        ax.plot(x, [r["values"].get(cell, np.nan) for r in data["rows"]], marker="o", markersize=3, label=cell)
    ax.set_xlabel("checkpoint (natural file-name order)", fontsize=8)
    ax.set_ylabel(f"{data['stat']} of {data['part']}_{data['gate']}", fontsize=8)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, out, {"trace": ax})
