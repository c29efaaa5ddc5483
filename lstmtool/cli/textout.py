"""Plain-text rendering for `inspect` and `explain`: aligned columns, styled with click.

Kept free of rich on purpose: these are the commands people run most, and rich's
import alone costs about a quarter of an `inspect`.
"""
from __future__ import annotations

import click


def fmt_shape(shape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")"


def columns(rows, header=None, indent="  "):
    """Lines of left-aligned columns."""
    rows = [list(map(str, r)) for r in rows]
    if header:
        rows.insert(0, list(header))
    if not rows:
        return []
    widths = [max(len(r[i]) for r in rows if i < len(r)) for i in range(max(map(len, rows)))]
    lines = []
    for k, r in enumerate(rows):
        line = indent + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
        lines.append(click.style(line, bold=True) if header and k == 0 else line)
    return lines


def echo_lines(lines):
    click.echo("\n".join(lines))


def warn(messages):
    for w in messages:
        click.echo(click.style("warning: ", fg="yellow") + w, err=True)


def inspect(data: dict, stats=False):
    out = [click.style(data["file"], bold=True) + f"  format {data['format']}  Keras "
           f"{data['keras_version'] or 'unknown'}  backend {data['backend'] or 'unknown'}"]
    if data["layers"]:
        out.append("layers")
        out += columns([(lay["path"], lay["class"] + (" (opaque: not evaluated)" if lay["opaque"] else ""),
                         lay["weights"] or "") for lay in data["layers"]], ("layer", "class", "weights"))
    for cell in data["cells"]:
        flags = [f"{'filters' if cell.get('conv') else 'units'}={cell['units']}",
                 f"{'in_channels' if cell.get('conv') else 'input_dim'}={cell['input_dim']}",
                 f"activation={cell['activation']}"]
        if cell["recurrent_activation"] is not None:  # SimpleRNN has none
            flags.append(f"recurrent_activation={cell['recurrent_activation']}")
        flags.append(f"use_bias={cell['use_bias']}")
        if cell["reset_after"] is not None:
            flags.append(f"reset_after={cell['reset_after']}")
        out += ["", click.style(cell["path"], fg="green", bold=True) + f"  {cell['class']}  " + "  ".join(flags)]
        if cell["source"] != "config":
            out.append("  " + click.style(cell["source"], fg="yellow"))
        out += columns([(name, fmt_shape(t["shape"]), t["dtype"], t["dataset"]) for name, t in cell["tensors"].items()])
        rows = []
        for row in cell["gate_table"]:
            parts = [row.get(p) for p in ("W", "U", "b")]
            rows.append([row["gate"], *[p["source"] if p else "-" for p in parts],
                         " / ".join(fmt_shape(p["shape"]) if p else "-" for p in parts)])
        out += columns(rows, ("gate", "W (input kernel)", "U (recurrent kernel)", "b (bias)", "shapes W / U / b"))
        if cell.get("stored"):
            out.append("  as stored (cuDNN layout; the table above is the LSTM/GRU-equivalent):")
            out += columns([(name, v["source"], fmt_shape(v["shape"])) for name, v in cell["stored"].items()], indent="    ")
        if stats:
            srows = [(row["gate"], p, *[f"{row[p]['stats'][k]:.4g}" for k in ("mean", "std", "min", "max", "l2")])
                     for row in cell["gate_table"] for p in ("W", "U", "b") if p in row and "stats" in row[p]]
            out += columns(srows, ("gate", "part", "mean", "std", "min", "max", "L2"))
        out += ["  " + click.style(note, dim=True) for note in cell["notes"]]
    for inc in data["incomplete"]:
        out += ["", click.style(inc["path"], fg="red", bold=True) + f"  {inc['class']}  INCOMPLETE: {inc['problem']}"]
        out += [f"  present: {role} {path}" for role, path in inc["present"].items()]
    echo_lines(out)
    warn(data["warnings"])


def explain(data: dict):
    out = [click.style(data["path"], bold=True) + f" ({data['class']}, units={data['units']}, "
           f"input_dim={data['input_dim']})"]
    out += ["  " + line for line in data["equations"]]
    out.append("shapes: " + ", ".join(f"{k} {fmt_shape(v)}" for k, v in data["shapes"].items()))
    out += [f"  {name} = {path}" for name, path in data["datasets"].items()]
    out += [f"  note: {note}" for note in data["notes"]]
    echo_lines(out)
