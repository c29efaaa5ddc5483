"""Rich rendering of the data report.py returns. Nothing here reads a file."""
from __future__ import annotations

import numpy as np
from rich.console import Console
from rich.table import Table

import sys

# Piped output keeps whole lines (wide tables) instead of wrapping at 80 columns.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)


def fmt_shape(shape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")"


def inspect(data: dict, stats=False):
    c = console
    c.print(f"[bold]{data['file']}[/]  format [cyan]{data['format']}[/]  Keras "
            f"[cyan]{data['keras_version'] or 'unknown'}[/]  backend {data['backend'] or 'unknown'}")
    if data["layers"]:
        t = Table(title="layers", title_justify="left", box=None, pad_edge=False)
        for col in ("layer", "class", "weights"):
            t.add_column(col)
        for lay in data["layers"]:
            cls = lay["class"] + (" (opaque: not evaluated)" if lay["opaque"] else "")
            t.add_row(lay["path"], cls, str(lay["weights"] or ""))
        c.print(t)
    for cell in data["cells"]:
        flags = [f"units={cell['units']}", f"input_dim={cell['input_dim']}",
                 f"activation={cell['activation']}", f"recurrent_activation={cell['recurrent_activation']}",
                 f"use_bias={cell['use_bias']}"]
        if cell["reset_after"] is not None:
            flags.append(f"reset_after={cell['reset_after']}")
        c.print(f"\n[bold green]{cell['path']}[/]  {cell['class']}  " + "  ".join(flags))
        if cell["source"] != "config":
            c.print(f"  [yellow]{cell['source']}[/]")
        for name, ti in cell["tensors"].items():
            c.print(f"  {name:<17} {fmt_shape(ti['shape']):<16} {ti['dtype']:<8} {ti['dataset']}")
        t = Table(box=None, pad_edge=False)
        for col in ("gate", "W (input kernel)", "U (recurrent kernel)", "b (bias)", "shapes W / U / b"):
            t.add_column(col)
        for row in cell["gate_table"]:
            parts = [row.get(p) for p in ("W", "U", "b")]
            shapes = " / ".join(fmt_shape(p["shape"]) if p else "-" for p in parts)
            t.add_row(row["gate"], *[p["source"] if p else "-" for p in parts], shapes)
        c.print(t)
        if stats:
            st = Table(box=None, pad_edge=False)
            for col in ("gate", "part", "mean", "std", "min", "max", "L2"):
                st.add_column(col, justify="right")
            for row in cell["gate_table"]:
                for p in ("W", "U", "b"):
                    if p in row and "stats" in row[p]:
                        s = row[p]["stats"]
                        st.add_row(row["gate"], p, *[f"{s[k]:.4g}" for k in ("mean", "std", "min", "max", "l2")])
            c.print(st)
        for note in cell["notes"]:
            c.print(f"  [dim]{note}[/]")
    for inc in data["incomplete"]:
        c.print(f"\n[bold red]{inc['path']}[/]  {inc['class']}  INCOMPLETE: {inc['problem']}")
        for role, path in inc["present"].items():
            c.print(f"  present: {role} {path}")
    warn(data["warnings"])


def warn(messages):
    err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 200)
    for w in messages:
        err.print(f"[yellow]warning:[/] {w}")


def explain(data: dict):
    console.print(f"[bold]{data['path']}[/] ({data['class']}, units={data['units']}, input_dim={data['input_dim']})")
    for line in data["equations"]:
        console.print("  " + line, markup=False)
    console.print("shapes: " + ", ".join(f"{k} {fmt_shape(v)}" for k, v in data["shapes"].items()), markup=False)
    for name, path in data["datasets"].items():
        console.print(f"  {name} = {path}", markup=False)
    for note in data["notes"]:
        console.print(f"  note: {note}", markup=False)


def matrix(title: str, array: np.ndarray, edge=6):
    """A matrix as a table; large ones show their corners with the middle elided."""
    a = np.atleast_2d(array)
    rows = _elide(a.shape[0], edge)
    cols = _elide(a.shape[1], edge)
    t = Table(title=f"{title} {fmt_shape(array.shape)} {array.dtype}", title_justify="left", box=None)
    t.add_column("")
    for j in cols:
        t.add_column("…" if j is None else str(j), justify="right")
    for i in rows:
        if i is None:
            t.add_row("…", *["…" for _ in cols])
            continue
        t.add_row(str(i), *["…" if j is None else f"{a[i, j]:.4g}" for j in cols])
    console.print(t)


def _elide(n, edge):
    return list(range(n)) if n <= 2 * edge else list(range(edge)) + [None] + list(range(n - edge, n))


def plan(p, dry_run=False):
    """The before -> after table of an edit plan."""
    t = Table(title=f"{p.model}" + ("  (dry run: nothing written)" if dry_run else ""),
              title_justify="left", box=None)
    for col in ("cell", "target", "before mean \\[min, max]", "", "after mean \\[min, max]"):
        t.add_column(col)

    def stats(s):
        return f"{s['mean']:.4g} [{s['min']:.4g}, {s['max']:.4g}]"

    for c in p.changes:
        t.add_row(c.cell, c.target, stats(c.before), "->", stats(c.after))
    for path, reason in p.skipped:
        t.add_row(path, "skipped", reason, "", "")
    console.print(t)
