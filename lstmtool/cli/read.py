"""Read-only commands: inspect, explain, show, verify."""
from __future__ import annotations

import json

import click

from ..errors import LstmtoolError
from . import cli
from .fleet import engine_options

MODEL = click.argument("model", type=click.Path())


@cli.command()
@click.argument("models", nargs=-1, required=True, type=click.Path())
@click.option("--layer", "patterns", multiple=True, help="Only layers matching this glob (repeatable).")
@click.option("--stats", is_flag=True, help="Per-gate mean/std/min/max/L2 (reads the tensors).")
@click.option("--json", "as_json", is_flag=True,
              help="Print JSON (schema: docs/json.md): one document, or a list for several files.")
@click.option("--strict", is_flag=True, help="Exit 1 if any recurrent cell is incomplete.")
def inspect(models, patterns, stats, as_json, strict):
    """Layers, recurrent cells and where each gate's W, U and b sit.

    MODELS may be several files or glob patterns (quoted, or as the shell expands them).

    \b
    Example:
        lstmtool inspect model.h5
        lstmtool inspect model.keras --stats --layer 'bi*'
        lstmtool inspect 'checkpoints/*.h5' --json
    """
    from ..reading.reader import load
    from ..core.names import expand_models
    from ..reading.report import inspect_model
    from . import textout

    paths = expand_models(models)
    docs, failed = [], []
    for k, path in enumerate(paths):
        try:
            with load(path) as m:
                data = inspect_model(m, patterns, stats)
        except LstmtoolError as e:
            if len(paths) == 1:
                raise
            failed.append(e)  # one bad file must not end the batch: say it, go on
            docs.append({"file": path, "error": str(e)})
            click.echo(f"lstmtool: error: {e}", err=True)
            continue
        docs.append(data)
        if not as_json:
            if k:
                click.echo()
            textout.inspect(data, stats, named=len(paths) > 1)
    if as_json:
        click.echo(json.dumps(docs[0] if len(docs) == 1 else docs, indent=2))
        textout.warn_per_file([d for d in docs if "error" not in d])
    if failed:
        error = type(failed[0]) if all(type(e) is type(failed[0]) for e in failed) else LstmtoolError
        raise error(f"{len(failed)} of {len(paths)} file(s) could not be inspected (each named above)")
    bad = sum(len(d["incomplete"]) for d in docs)
    if strict and bad:
        raise LstmtoolError(f"{bad} recurrent cell(s) incomplete (--strict)")


@cli.command()
@MODEL
@click.argument("layer")
@click.option("--json", "as_json", is_flag=True, help="The equations, shapes and datasets as JSON.")
def explain(model, layer, as_json):
    """The cell's equations, written with this file's real slices.

    \b
    Example:
        lstmtool explain model.h5 lstm
        lstmtool explain model.keras bilstm/backward --json
    """
    from ..reading.reader import load
    from . import textout
    from ..reading.report import explain_data

    with load(model) as m:
        data = explain_data(m, m.cell(layer))
    click.echo(json.dumps(data, indent=2)) if as_json else textout.explain(data)


@cli.command()
@MODEL
@click.argument("layer")
@click.option("--gate", "gates", multiple=True, help="Gate letter (i f c o / z r h); default all.")
@click.option("--part", "parts", multiple=True, type=click.Choice(["W", "U", "b"]), help="Default all.")
@click.option("--stored", is_flag=True, help="CuDNN cells: the blocks as stored, not the LSTM/GRU-equivalent.")
@click.option("--precision", type=click.IntRange(1, 17), default=4, show_default=True,
              help="Significant digits in the table.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv"]), default="table", show_default=True,
              help="csv: every value at full precision, one row per line (no elision).")
@click.option("--json", "as_json", is_flag=True, help="Every selected slice with its values (full precision).")
def show(model, layer, gates, parts, stored, precision, fmt, as_json):
    """Print gate matrices (large ones elided in the table).

    \b
    Example:
        lstmtool show model.h5 lstm --gate f --part b
        lstmtool show model.h5 lstm --gate f --part W --format csv > W_f.csv
    """
    from ..reading.reader import load
    from ..reading.report import selected_views

    with load(model) as m:
        views = selected_views(m.cell(layer), gates, parts, stored)
        if as_json:
            click.echo(json.dumps([{"cell": m.cell(layer).path, "name": name, "source": v.source_text(),
                                    "shape": list(v.shape), "dtype": v.dtype, "values": v.numpy().tolist()}
                                   for name, v in views], indent=2))
            return
        from . import render

        for name, view in views:
            title = f"{layer} {name} = {view.source_text()}" + (f" [{view.label}]" if view.label else "")
            if fmt == "csv":
                click.echo(f"# {title}")
                for line in render.csv_rows(view.numpy()):
                    click.echo(line)
            else:
                render.matrix(title, view.numpy(), precision=precision)


@cli.command()
@click.argument("models", nargs=-1, required=True, type=click.Path())
@click.option("--tolerance", type=float, default=None,
              help="Max abs difference allowed [default: 1e-5; 1e-2 for float16 weights].")
@click.option("--seed", default=0, show_default=True, help="Seed of the random test input.")
@click.option("--json", "as_json", is_flag=True,
              help="Per-layer results as JSON (many files: one JSON record a line).")
@engine_options
def verify(models, tolerance, seed, as_json, jobs, scheduler, timeout):
    """Run each recurrent layer in Keras and in lstmtool's NumPy reference; compare.

    Needs Keras (pip install 'lstmtool[verify]'): Keras 3 for files Keras 3 wrote,
    tf-keras for Keras 2 files. Several files, a directory, a glob, a URL prefix or an
    @list give one line (or --json record) per file; the exit status is 1 if any failed.

    \b
    Example:
        lstmtool verify model.h5
        lstmtool verify model.keras --tolerance 1e-4 --json
        lstmtool verify models/ --jobs 2
        lstmtool verify 's3://bucket/models/' --scheduler tcp://10.0.0.5:8786 --json
    """
    from . import render
    from .fleet import is_bulk, run_verify

    if is_bulk(models, None, jobs, scheduler):
        return run_verify(models, tolerance, seed, as_json, jobs, scheduler, timeout)
    from ..reading.verify import verify_file

    model = models[0]
    result = verify_file(model, tolerance=tolerance, seed=seed)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        render.console.print(f"loaded with {result['keras']}", markup=False)
        for row in result["layers"]:
            mark = "ok  " if row["ok"] else "FAIL"
            render.console.print(f"  {mark} {row['path']:<28} {row['what']:<22} max |diff| = {row['max_abs_diff']:.3g}",
                                 markup=False)
    if not result["ok"]:
        raise LstmtoolError("verify failed: difference above tolerance in "
                            + ", ".join(r["path"] for r in result["layers"] if not r["ok"]))
