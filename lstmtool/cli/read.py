"""Read-only commands: inspect, explain, show, verify."""
from __future__ import annotations

import json

import click

from ..errors import LstmtoolError
from . import cli

MODEL = click.argument("model", type=click.Path())


@cli.command()
@MODEL
@click.option("--layer", "patterns", multiple=True, help="Only layers matching this glob (repeatable).")
@click.option("--stats", is_flag=True, help="Per-gate mean/std/min/max/L2 (reads the tensors).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (schema: docs/json.md).")
@click.option("--strict", is_flag=True, help="Exit 1 if any recurrent cell is incomplete.")
def inspect(model, patterns, stats, as_json, strict):
    """Layers, recurrent cells and where each gate's W, U and b sit."""
    from .. import load
    from ..report import inspect_model

    with load(model) as m:
        data = inspect_model(m, patterns, stats)
    from . import textout

    if as_json:
        click.echo(json.dumps(data, indent=2))
        textout.warn(data["warnings"])
    else:
        textout.inspect(data, stats)
    if strict and data["incomplete"]:
        raise LstmtoolError(f"{len(data['incomplete'])} recurrent cell(s) incomplete (--strict)")


@cli.command()
@MODEL
@click.argument("layer")
@click.option("--json", "as_json", is_flag=True)
def explain(model, layer, as_json):
    """The cell's equations, written with this file's real slices."""
    from .. import load
    from . import textout
    from ..report import explain_data

    with load(model) as m:
        data = explain_data(m, m.cell(layer))
    click.echo(json.dumps(data, indent=2)) if as_json else textout.explain(data)


@cli.command()
@MODEL
@click.argument("layer")
@click.option("--gate", "gates", multiple=True, help="Gate letter (i f c o / z r h); default all.")
@click.option("--part", "parts", multiple=True, type=click.Choice(["W", "U", "b"]), help="Default all.")
@click.option("--stored", is_flag=True, help="CuDNN cells: the blocks as stored, not the LSTM/GRU-equivalent.")
def show(model, layer, gates, parts, stored):
    """Print gate matrices (large ones elided)."""
    from .. import load
    from . import render
    from ..errors import UsageError

    with load(model) as m:
        cell = m.cell(layer)
        for g in gates:
            if g not in cell.gates:
                raise UsageError(f"{cell.path} has gates {', '.join(cell.gates)}, not {g!r}")
        if stored and not cell.stored:
            raise UsageError(f"{cell.path} is stored in Keras layout already; --stored is for CuDNN cells")
        for g in gates or cell.gates:
            for p in parts or ("W", "U", "b"):
                if stored:
                    for name, view in cell.stored.items():
                        if name.split("_")[:2] == [p, g]:
                            render.matrix(f"{cell.path} stored {name} = {view.source_text()}", view.numpy())
                    continue
                view = getattr(cell, p).get(g)
                if view is not None:
                    label = f" [{view.label}]" if view.label else ""
                    render.matrix(f"{cell.path} {p}_{g} = {view.source_text()}{label}", view.numpy())


@cli.command()
@MODEL
@click.option("--tolerance", type=float, default=None,
              help="Max abs difference allowed [default: 1e-5; 1e-2 for float16 weights].")
@click.option("--seed", default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def verify(model, tolerance, seed, as_json):
    """Run each recurrent layer in Keras and in lstmtool's NumPy reference; compare."""
    from . import render
    from ..verify import verify_file

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
