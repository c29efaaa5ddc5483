"""`lstmtool convert`: parse, call convert.onnx_model.to_onnx, render the plan."""
from __future__ import annotations

import json
import re

import click

from . import cli


def _shape(ctx, param, value):
    if value is None:
        return None
    m = re.fullmatch(r"(\d+),(\d+)", value.replace(" ", ""))
    if not m or int(m[1]) < 1 or int(m[2]) < 1:
        raise click.BadParameter("BATCH,STEPS, two positive integers (e.g. 1,50)")
    return int(m[1]), int(m[2])


@cli.command()
@click.argument("model", type=click.Path())
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False), help="The .onnx file to write.")
@click.option("--opset", type=int, default=None,
              help="ONNX opset to write [default: 21; 17 or newer].")
@click.option("--static-shape", "static_shape", callback=_shape, metavar="BATCH,STEPS",
              help="Fix the batch and time axes (default: symbolic where the model leaves them open).")
@click.option("--dry-run", is_flag=True, help="Build and check the graph; write nothing.")
@click.option("--force", is_flag=True, help="Replace OUT if it exists.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
def convert(model, out, opset, static_shape, dry_run, force, as_json):
    """Convert a whole Keras model (any format lstmtool reads) to ONNX, without TensorFlow
    or Keras. Recurrent layers become ONNX LSTM / GRU / RNN operators; the graph passes
    onnx.checker's full check. Needs the onnx extra: pip install 'lstmtool[onnx]'.

    Layers without an exact ONNX form (Lambda, ConvLSTM, masking for now, ...) are
    refused naming the layer (exit 1), and nothing is written. docs/onnx.md lists them.

    \b
    Example:
        lstmtool convert model.h5 -o model.onnx
        lstmtool convert model.keras -o model.onnx --opset 17 --static-shape 1,50
        lstmtool convert old_keras1.h5 --dry-run --json
    """
    from ..convert.onnx_model import to_onnx

    plan = to_onnx(model, out, opset=opset, static_shape=static_shape, dry_run=dry_run, force=force)
    if as_json:
        click.echo(json.dumps(plan.as_json(), indent=2))
        return
    from .textout import echo_lines

    lines = [f"{model}: {len(plan.layers)} layers -> {plan.nodes} ONNX nodes, opset {plan.opset}, "
             f"{plan.parameters:,} parameters"]
    for path, cls, ops in plan.layers:
        lines.append(f"  {path}  {cls} -> {', '.join(ops) or '(identity)'}")
    lines += [f"  input  {i['name']}  {i['dtype']}  {i['shape']}" for i in plan.inputs]
    echo_lines(lines)
    for note in plan.notes:
        click.echo(note, err=True)
    click.echo(f"wrote {plan.written}" if plan.written else "dry run: nothing written")
