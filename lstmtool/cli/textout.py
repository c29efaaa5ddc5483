"""Plain-text rendering for `inspect` and `explain`: aligned columns, styled with click.

Kept free of rich on purpose: these are the commands people run most, and rich's
import alone costs about a quarter of an `inspect`.
"""
from __future__ import annotations

import os

import click


def fmt_shape(shape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")"


def width(stream=None) -> int:
    """Columns to lay out for: COLUMNS, else the terminal of `stream` (default stdout), else,
    when that stream is piped (`inspect ... | tail`), the terminal the user sits at (stderr's,
    or the controlling /dev/tty); 0 (no limit: whole lines for grep and files) without one."""
    env = os.environ.get("COLUMNS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    import sys

    out = stream or sys.stdout
    real = out in (sys.__stdout__, sys.__stderr__)  # not a host program's or a test runner's capture
    for s in (out, sys.stderr) if real else (out,):
        try:
            if s.isatty():
                return os.get_terminal_size(s.fileno()).columns
        except (OSError, ValueError, AttributeError):
            pass
    if not real:
        return 0
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY)
    except OSError:
        return 0
    try:
        return os.get_terminal_size(fd).columns
    except OSError:
        return 0
    finally:
        os.close(fd)


def columns(rows, header=None, indent="  "):
    """Lines of left-aligned columns; a table wider than the terminal becomes one
    block per row (`first value`, then `header  value` lines), so no token is cut."""
    rows = [list(map(str, r)) for r in rows]
    if not rows:
        return []
    table = ([list(header)] if header else []) + rows
    widths = [max(len(r[i]) for r in table if i < len(r)) for i in range(max(map(len, table)))]
    lines = [indent + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in table]
    limit = width()
    if not limit or max(map(len, lines)) <= limit:
        return [click.style(line, bold=True) if header and k == 0 else line for k, line in enumerate(lines)]
    grouped = _grouped(rows, header, indent, limit)
    if grouped is not None:
        return grouped
    out = []
    if not header:  # no names to label the values with: one wrapped line per row
        return [wrap(indent + "  ".join(r), limit, indent + "    ", sep="  ") for r in rows]
    names = list(header)
    pad = max(len(n) for n in names[1:]) if len(names) > 1 else 0
    for r in rows:
        out.append(indent + r[0])
        out += [wrap(f"{indent}  {n.ljust(pad)}  {v}", limit, indent + "  " + " " * (pad + 2))
                for n, v in zip(names[1:], r[1:])]
    return out


def split_columns(rows, header, keep=1, indent="  "):
    """A table too wide for the terminal as several tables, each repeating the first `keep`
    columns (trace: the file name) with as many of the others as fit; the header stays."""
    limit = width()
    rows = [list(map(str, r)) for r in rows]
    table = [list(header)] + rows
    widths = [max(len(r[i]) for r in table if i < len(r)) for i in range(len(header))]
    fixed = len(indent) + sum(widths[:keep]) + 2 * keep
    if not limit or fixed + sum(w + 2 for w in widths[keep:]) <= limit + 2 or fixed >= limit:
        return columns(rows, header, indent)
    chunks, cur, used = [], [], fixed
    for i in range(keep, len(header)):
        if cur and used + widths[i] > limit:
            chunks.append(cur)
            cur, used = [], fixed
        cur.append(i)
        used += widths[i] + 2
    chunks.append(cur)
    out = []
    for k, chunk in enumerate(chunks):
        pick = list(range(keep)) + chunk
        if k:
            out.append("")
        out += columns([[r[i] for i in pick] for r in rows], [header[i] for i in pick], indent)
    return out


def _grouped(rows, header, indent, limit):
    """The compact form of a table too wide for the terminal: the first column (a cell path,
    the same for many rows) becomes a heading above its rows. None if that does not fit either."""
    if not header or len(header) < 3:
        return None
    rest = [r[1:] for r in rows]
    table = [list(header[1:])] + rest
    widths = [max(len(r[i]) for r in table if i < len(r)) for i in range(max(map(len, table)))]
    sub = indent + "  "

    def line(r):
        return (sub + "  ".join(c.ljust(w) for c, w in zip(r, widths))).rstrip()
    if max(len(line(r)) for r in table) > limit or max(len(indent + r[0]) for r in rows) > limit:
        return None
    out = [click.style(line(table[0]), bold=True)]
    last = None
    for r in rows:
        if r[0] != last:
            out.append(indent + r[0])
            last = r[0]
        out.append(line(r[1:]))
    return out


def wrap(line: str, limit=None, indent="    ", sep=" ") -> str:
    """Break a long line at `sep` (never inside a token) to fit `limit` columns; where
    breaking at `sep` is not enough, at single spaces."""
    limit = width() if limit is None else limit
    if not limit or len(click.unstyle(line)) <= limit:
        return line
    lead = line[: len(line) - len(line.lstrip(" "))]
    parts, out, cur = line.lstrip(" ").split(sep), [], lead
    for part in parts:
        piece = part if cur == lead else cur + sep + part
        if cur != lead and len(click.unstyle(lead + piece if cur == lead else piece)) > limit:
            out.append(cur.rstrip())
            cur = indent + part
        else:
            cur = lead + piece if cur == lead else piece
    out.append(cur)
    if sep != " " and any(len(click.unstyle(o)) > limit for o in out):
        return wrap(line, limit, indent, " ")
    return "\n".join(out)


def printable(text: str) -> str:
    """Names from a damaged file may hold undecodable bytes: show them escaped."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def echo_lines(lines):
    """Lines whose items are separated by two spaces break between items, if at all."""
    click.echo(printable("\n".join(wrap(line, sep="  ") if "\n" not in line else line for line in lines)))


QUIET = False  # -q/--quiet


def group_warnings(messages) -> list:
    """One line per distinct warning: `PATH: text` said of several cells becomes
    `text (PATH, PATH)`."""
    order, paths = [], {}
    for m in messages:
        path, sep, rest = m.partition(": ")
        key = rest if sep and " " not in path else m
        if key not in paths:
            order.append(key)
            paths[key] = []
        if sep and " " not in path:
            paths[key].append(path)
    return [k if not paths[k] else (f"{paths[k][0]}: {k}" if len(paths[k]) == 1
                                    else f"{k} ({', '.join(paths[k])})") for k in order]


def warn_per_file(docs):
    """Several files' warnings, each said once with the files it is about (not once per file)."""
    said = {}
    for data in docs:
        for w in group_warnings(data.get("warnings", [])):
            said.setdefault(w, []).append(data["file"])
    messages = []
    for w, files in said.items():
        named = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
        messages.append(f"{named}: {w}" if len(docs) > 1 else w)
    warn(messages)


def warn(messages, filename=None):
    if QUIET:
        return
    if filename:
        messages = [f"{filename}: {m}" for m in messages]
    import sys

    for w in group_warnings(messages):
        text = printable(wrap("warning: " + w, width(sys.stderr), indent="  "))
        click.echo(click.style("warning: ", fg="yellow") + text[len("warning: "):], err=True)


def inspect(data: dict, stats=False, named=False):
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
            srows = [(row["gate"], p + (f" ({row[p]['stats']['of']})" if "of" in row[p]["stats"] else ""),
                      *[f"{row[p]['stats'][k]:.4g}" for k in ("mean", "std", "min", "max", "l2")])
                     for row in cell["gate_table"] for p in ("W", "U", "b") if p in row and "stats" in row[p]]
            out += columns(srows, ("gate", "part", "mean", "std", "min", "max", "L2"))
        out += ["  " + click.style(note, dim=True) for note in cell["notes"]]
    for inc in data["incomplete"]:
        out += ["", click.style(inc["path"], fg="red", bold=True) + f"  {inc['class']}  INCOMPLETE: {inc['problem']}"]
        out += [f"  present: {role} {path}" for role, path in inc["present"].items()]
    echo_lines(out)
    warn(data["warnings"], data["file"] if named else None)


def explain(data: dict):
    out = [click.style(data["path"], bold=True) + f" ({data['class']}, units={data['units']}, "
           f"input_dim={data['input_dim']})"]
    out += [_equation("  " + line) if " = " in line.split(" where ")[0][:12] else wrap("  " + line, indent="      ")
            for line in data["equations"]]
    out.append("shapes:  " + "  ".join(f"{k} {fmt_shape(v)}" for k, v in data["shapes"].items()))
    out += [f"  {name} = {path}" for name, path in data["datasets"].items()]
    out += [f"  note: {note}" for note in data["notes"]]
    echo_lines(out)


def _equation(line, indent="      "):
    """An equation broken only between its terms, continuation lines starting with `+ `;
    a term longer than a line is broken at spaces (never mid-token), without a `+`."""
    limit = width()
    if not limit or len(line) <= limit:
        return line
    terms = line.split(" + ")
    out, cur = [], terms[0]
    for term in terms[1:]:
        if len(cur) + 3 + len(term) <= limit:
            cur += " + " + term
        else:
            out.append(cur)
            cur = indent + "+ " + term
    out.append(cur)
    return "\n".join(wrap(o, limit, indent + "  ") for o in out)


def plan(p, dry_run=False):
    """The before -> after table of an edit plan."""
    def stats(s):
        return f"{s['mean']:.4g} [{s['min']:.4g}, {s['max']:.4g}]"

    rows = [(c.cell, c.target, stats(c.before), "->", stats(c.after)) for c in p.changes]
    rows += [(path, "skipped", reason, "", "") for path, reason in p.skipped]
    lines = [f"{p.model}" + ("  (dry run: nothing written)" if dry_run else "")]
    lines += columns(rows, ("cell", "target", "before mean [min, max]", "", "after mean [min, max]"))
    echo_lines(lines)
