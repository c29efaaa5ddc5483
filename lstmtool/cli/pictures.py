"""Commands that compare and draw: diff, trace, plot. Parse, call one function, render."""
from __future__ import annotations

import json
import os

import click

from . import cli



def _gate_change(g) -> str:
    """One gate's change in words: its shape when that changed (no difference to measure), else how much."""
    shape = g.get("shape")
    if shape and list(shape[0]) != list(shape[1]):
        return f"shape {'x'.join(map(str, shape[0])) or 'scalar'} -> {'x'.join(map(str, shape[1])) or 'scalar'}"
    scaled = f" (x{g['scaled_by']})" if g.get("scaled_by") else ""
    return f"max|d| {g.get('max_abs', float('nan')):.4g}, rel L2 {g.get('rel_l2', float('nan')):.3g}{scaled}"

def _check_png(out, force):
    from ..surgery.edit import refuse_special
    from ..pictures.draw import image_format

    image_format(out)
    refuse_special(out)
    if os.path.lexists(out) and not force:
        from ..errors import UsageError

        raise UsageError(f"{out}: already exists; pass --force to replace it")


def _draw(fn, out, *args):
    """Draw into a temporary file beside OUT and rename it: never a half-written picture."""
    from ..core.files import atomic_output

    with atomic_output(out) as fh:
        return fn(*args, fh)


@cli.command()
@click.argument("model", type=click.Path())
@click.argument("layers", nargs=-1)
@click.option("-o", "--output", "out", required=True, type=click.Path(dir_okay=False), help="PNG to write.")
@click.option("--kind", type=click.Choice(["weights", "bias", "timescales"]), default="weights", show_default=True,
              help="weights: heatmaps of W, U, b; bias: histograms of b; timescales: forget-gate memory per unit.")
@click.option("--gate", "gates", multiple=True, help="Only this gate (repeatable): i f c o, z r h.")
@click.option("--force", is_flag=True, help="Replace an existing OUT.")
@click.option("--json", "as_json", is_flag=True, help="Print the panels' pixel boxes as JSON.")
def plot(model, layers, out, kind, gates, force, as_json):
    """Draw a model's gates to a PNG (needs matplotlib: pip install 'lstmtool[plot]').

    weights: one panel per gate and part (W, U, b strip), labelled with its exact
    slice; bias: per-gate histograms; timescales: per unit, T = 1/(1 - sigmoid(b_f)).

    \b
    Example:
        lstmtool plot model.h5 -o gates.png
        lstmtool plot model.h5 lstm --kind bias --gate f -o bias.png
        lstmtool plot model.keras --kind timescales -o memory.png
    """
    from ..pictures import draw as pictures

    _check_png(out, force)
    fn = {"weights": lambda p, fh: pictures.plot_weights(p, fh, layers, gates),
          "bias": lambda p, fh: pictures.plot_bias(p, fh, layers, gates),
          "timescales": lambda p, fh: pictures.plot_timescales(p, fh, layers)}[kind]
    boxes = _draw(fn, out, model)
    click.echo(json.dumps({"written": out, "panels": boxes}, indent=2) if as_json else f"wrote {out}")


@cli.command()
@click.argument("a", type=click.Path())
@click.argument("b", type=click.Path())
@click.option("--layer", "patterns", multiple=True, help="Only cells matching this glob (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@click.option("--plot", "png", type=click.Path(dir_okay=False), help="Also draw max |delta| per gate to a PNG.")
@click.option("--force", is_flag=True, help="Let --plot replace an existing PNG.")
@click.pass_context
def diff(ctx, a, b, patterns, as_json, png, force):
    """Compare the recurrent cells of two files, gate by gate (any two formats).

    Exit status as diff(1): 0 identical, 1 different, 2 trouble.

    \b
    Example:
        lstmtool diff model.h5 edited.h5
        lstmtool diff old.h5 upgraded.keras --json
    """
    from ..pictures import compare
    from ..errors import LstmtoolError
    from . import fail, textout

    try:
        data = compare.diff(a, b, patterns)
    except LstmtoolError as e:  # diff(1): any trouble is 2, never confused with "different"
        fail(ctx, str(e), 2)
    if png:
        from ..pictures import draw as pictures

        _check_png(png, force)
        _draw(lambda d, fh: pictures.plot_diff(d, fh), png, data)
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        rows = []
        for c in data["cells"]:
            if c["status"] in ("only in a", "only in b"):
                rows.append([c["path"], c["status"], ""])
                continue
            if c["class"][0] != c["class"][1]:
                rows.append([c["path"], "class", f"{c['class'][0]} -> {c['class'][1]}"])
            for key, (va, vb) in c["settings"].items():
                rows.append([c["path"], key, f"{va} -> {vb}"])
            for g in c["gates"]:
                if g["changed"]:
                    rows.append([c["path"], f"{g['part']}_{g['gate']}", _gate_change(g)])
            if c.get("equivalent"):
                rows.append([c["path"], "note", c["equivalent"]])
        if rows:
            textout.echo_lines(textout.columns(rows, ["cell", "what", "change"]))
        differ = [c for c in data["cells"] if c["status"] != "same"]
        equivalent = sum(bool(c.get("equivalent")) for c in differ)
        click.echo("identical recurrent weights" if data["identical"] else
                   f"{len(differ)} cell(s) differ" + (", all equivalent: they compute the same"
                                                      if equivalent == len(differ) else
                                                      f" ({equivalent} equivalent)" if equivalent else ""))
    ctx.exit(0 if data["identical"] else 1)


@cli.command()
@click.argument("checkpoints", nargs=-1, required=True, type=click.Path())
@click.option("--stat", type=click.Choice(["mean", "std", "min", "max", "l2"]), default="mean", show_default=True,
              help="The statistic of each file's gate slice.")
@click.option("--part", type=click.Choice(["W", "U", "b"]), default="b", show_default=True,
              help="W (input kernel), U (recurrent kernel) or b (bias).")
@click.option("--gate", default="f", show_default=True, help="Gate letter (GRU cells use z for f).")
@click.option("--layer", "patterns", multiple=True, help="Only cells matching this glob (repeatable).")
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Read this many files at once (remote files: their requests overlap).")
@click.option("--scheduler", metavar="ADDRESS",
              help="Read the files on a Dask cluster (its scheduler's address; lstmtool[fleet]).")
@click.option("--json", "as_json", is_flag=True, help="Print rows as JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="Print rows as CSV.")
@click.option("--plot", "png", type=click.Path(dir_okay=False), help="Also draw the series to a PNG.")
@click.option("--force", is_flag=True, help="Let --plot replace an existing PNG.")
def trace(checkpoints, stat, part, gate, patterns, jobs, scheduler, as_json, as_csv, png, force):
    """One statistic of one gate across many checkpoints, in natural file-name order.

    CHECKPOINTS are files, globs, directories of models, URL globs and @lists.

    \b
    Example:
        lstmtool trace 'weights-*.hdf5' --stat mean --part b --gate f
        lstmtool trace ckpt/*.h5 --stat l2 --part U --csv --plot forget.png
        lstmtool trace 's3://runs/exp1/*.h5' --scheduler tcp://10.0.0.5:8786 --json
    """
    import os

    from . import textout
    from .fleet import names_many

    # local files and globs stay in this process; the rest is the fleet engine's
    if scheduler or any(names_many(c) and (c.startswith("@") or "://" in c or os.path.isdir(c))
                        for c in checkpoints):
        data = _trace_many(checkpoints, stat, part, gate, patterns, jobs, scheduler)
    else:
        data = _trace_files(checkpoints, stat, part, gate, patterns, jobs)
    if png:
        from ..pictures import draw as pictures

        _check_png(png, force)
        _draw(lambda d, fh: pictures.plot_trace(d, fh), png, data)
    for r in data["rows"]:
        if "error" in r:
            click.echo(f"lstmtool: error: {r['error']}", err=True)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        _batch_status(data["errors"], len(data["rows"]))
        return
    header = ["file"] + data["cells"]
    rows = [[r["file"]] + [repr(r["values"][c]) if c in r["values"] else "" for c in data["cells"]]
            for r in data["rows"]]
    if as_csv:
        import csv
        import io

        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
        click.echo(buf.getvalue(), nl=False)
    else:
        textout.echo_lines(textout.split_columns([[r[0]] + [f"{float(v):.6g}" if v else "" for v in r[1:]]
                                                  for r in rows], header))
    _batch_status(data["errors"], len(data["rows"]))


def _trace_files(checkpoints, stat, part, gate, patterns, jobs):
    """Files and globs, read in this process (`jobs` threads)."""
    import sys

    from ..core.names import expand_models
    from ..pictures import compare
    from . import textout

    files = expand_models(checkpoints)
    progress = None
    if len(files) > 5 and sys.stderr.isatty() and not textout.QUIET:
        from rich.progress import Progress

        bar = Progress(transient=True)
        task = bar.add_task("reading", total=len(files))
        bar.start()
        progress = lambda _path: bar.advance(task)  # noqa: E731
    try:
        return compare.trace(files, stat, part, gate, patterns, progress, jobs=jobs)
    finally:
        if progress:
            bar.stop()


def _trace_many(checkpoints, stat, part, gate, patterns, jobs, scheduler):
    """Directories, @lists, URL globs or a Dask cluster: the fleet engine reads the files."""
    from ..fleet.jobs import trace as run
    from .fleet import Progress

    progress = Progress("trace")
    try:
        return run(checkpoints, stat, part, gate, patterns, jobs=jobs, scheduler=scheduler,
                   on_record=progress.advance, on_start=progress.start)
    finally:
        progress.stop()


def _batch_status(errors, total):
    if errors:
        from ..errors import ModelError

        raise ModelError(f"{errors} of {total} file(s) could not be read (each named above)")
