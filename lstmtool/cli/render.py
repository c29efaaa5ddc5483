"""Rich rendering of matrices for `show`. (inspect, explain, edit plans: textout.py, without
rich, whose import alone costs a tenth of an edit.) Nothing here reads a file."""
from __future__ import annotations

import os

import numpy as np
from rich.console import Console
from rich.table import Table

from .textout import fmt_shape, width

# Piped output keeps whole lines (wide tables) instead of wrapping at 80 columns.
# Soft wrap: a line longer than the terminal is left to the terminal, never cut
# inside a path or a word (titles carry file paths of any length).
console = Console(highlight=False, width=width() or 200, soft_wrap=True)


def matrix(title: str, array: np.ndarray, edge=6, precision=4):
    """A matrix as a table; large ones show their corners with the middle elided.
    N-d arrays (ConvLSTM kernels) show as rows of their last axis."""
    a = np.atleast_2d(array)
    if a.ndim > 2:
        title += f"  [shown as {a.shape[:-1]} flattened to rows x {a.shape[-1]}]"
        a = a.reshape(-1, a.shape[-1])
    cell = precision + 8  # "-1.234e-05" at this precision, plus the gap between columns
    if console.width:  # as many columns as fit: a value is elided whole, never cut
        edge = max(1, min(edge, (console.width - 8) // (2 * cell)))
    rows = _elide(a.shape[0], edge)
    cols = _elide(a.shape[1], edge)
    from .textout import wrap

    heading = f"{title} {fmt_shape(array.shape)} {array.dtype}"  # broken between words, never inside one
    console.print(wrap(heading, console.width if console.is_terminal or os.environ.get("COLUMNS") else 0,
                       indent="    "), markup=False, soft_wrap=True)
    t = Table(box=None)
    t.add_column("", no_wrap=True)
    for j in cols:
        t.add_column("…" if j is None else str(j), justify="right", no_wrap=True, min_width=1 if j is None else None)
    for i in rows:
        if i is None:
            t.add_row("…", *["…" for _ in cols])
            continue
        t.add_row(str(i), *["…" if j is None else f"{a[i, j]:.{precision}g}" for j in cols])
    console.print(t)


def _elide(n, edge):
    return list(range(n)) if n <= 2 * edge else list(range(edge)) + [None] + list(range(n - edge, n))


def csv_rows(array: np.ndarray):
    """Every value at full precision (shortest repr that round-trips), rows of the last axis."""
    a = np.atleast_2d(array)
    a = a.reshape(-1, a.shape[-1])
    for row in a:
        yield ",".join(repr(float(v)) if a.dtype.kind == "f" and a.dtype.itemsize == 8
                       else np.format_float_positional(v, unique=True, trim="-") for v in row)
