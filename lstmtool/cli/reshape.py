"""`lstmtool prune` and `lstmtool widen`: parse, call surgery.prune, render the plan."""
from __future__ import annotations

import json

import click

from . import cli


def _unit_list(text):
    from ..errors import UsageError

    try:
        units = [int(t) for t in text.replace(" ", "").split(",") if t != ""]
    except ValueError:
        raise UsageError(f"--units {text!r}: unit indices separated by commas, e.g. 3,7,9") from None
    if not units:
        raise UsageError("--units: name at least one unit")
    return units


def _common(fn):
    fn = click.option("--json", "as_json", is_flag=True, help="Print the plan / result as JSON (docs/json.md).")(fn)
    fn = click.option("--force", is_flag=True, help="Replace OUT if it exists.")(fn)
    fn = click.option("--dry-run", is_flag=True,
                      help="Print the plan (units, tensors whose shape changes, ties, sizes); write nothing.")(fn)
    fn = click.option("-o", "--output", "out", type=click.Path(),
                      help="The file to write, in MODEL's format; MODEL is never changed.")(fn)
    return fn


@cli.command()
@click.argument("model", type=click.Path())
@click.argument("layer")
@click.option("--units", "units", metavar="LIST", help="The units to take out, e.g. 3,7,9 (0-based).")
@click.option("--keep", type=int, metavar="N", help="Keep the N units whose outgoing weights are strongest.")
@click.option("--by", type=click.Choice(["l1", "l2"]), default="l1", show_default=True,
              help="With --keep: the norm that scores a unit's outgoing weights.")
@click.option("--drop-dead", is_flag=True, help="Take out the units whose outgoing weights are all zero.")
@click.option("--tol", type=float, default=0.0, show_default=True,
              help="With --drop-dead: |w| at most this counts as zero (0: exact).")
@_common
def prune(model, layer, units, keep, by, drop_dead, tol, out, dry_run, force, as_json):
    """Take units out of recurrent layer LAYER; every layer that reads them follows.

    The units' columns leave every gate block of the layer; their rows leave its
    recurrent kernel and each consumer (the next recurrent layer, Dense, also behind
    Flatten, TimeDistributed, Conv1D, Concatenate offsets); their entries leave
    BatchNormalization between. Layers tied to LAYER lose the same units: an encoder
    whose states start a decoder, the inputs of Add/Multiply/Average, both halves of a
    Bidirectional with merge_mode sum/mul/ave (name LAYER/forward or LAYER/backward to
    prune one half of a concat). The result computes what MODEL computes with those
    units' outgoing weights set to zero. What would change otherwise (units reaching
    the output, LayerNormalization, attention) is refused, and nothing is written.

    \b
    Example:
        lstmtool prune model.keras lstm --units 3,7,9 -o smaller.keras
        lstmtool prune model.h5 lstm_1 --keep 96 --by l2 --dry-run
        lstmtool prune model.keras encoder --drop-dead -o clean.keras
    """
    from ..surgery.prune import prune as run

    plan = run(model, layer, out=out, units=_unit_list(units) if units is not None else None, keep=keep, by=by,
               drop_dead=drop_dead, tol=tol, dry_run=dry_run, force=force)
    _render(plan, dry_run, as_json)


@cli.command()
@click.argument("model", type=click.Path())
@click.argument("layer")
@click.option("--to", "to", type=int, required=True, metavar="N", help="How many units LAYER gets.")
@click.option("--init", type=click.Choice(["zeros", "glorot"]), default="zeros", show_default=True,
              help="The new units' incoming weights (their biases are zero either way).")
@click.option("--seed", type=int, help="With --init glorot: the random seed (recorded in the plan).")
@_common
def widen(model, layer, to, init, seed, out, dry_run, force, as_json):
    """Give recurrent layer LAYER N units. The new units' outgoing weights are zero, so
    the model computes exactly what it did; train it to put them to use.

    \b
    Example:
        lstmtool widen model.keras lstm --to 256 -o wider.keras
        lstmtool widen model.h5 lstm_1 --to 64 --init glorot --seed 1 -o wider.h5
    """
    from ..surgery.prune import widen as run

    plan = run(model, layer, to, out=out, init=init, seed=seed, dry_run=dry_run, force=force)
    _render(plan, dry_run, as_json)


def _render(plan, dry_run, as_json):
    if as_json:
        click.echo(json.dumps(plan.as_json(dry_run), indent=2))
        return
    from .textout import columns, echo_lines, fmt_shape

    lines = [f"{plan.model}: {plan.operation} {plan.layer}: {plan.units_before} -> {plan.units_after} units"
             + ("  (dry run: nothing written)" if dry_run else "")]
    if plan.removed:
        if plan.scores and plan.by:
            shown = ", ".join(f"{j} ({plan.scores[j]:.3g})" for j in plan.removed[:24])
            lines.append(f"  removed ({plan.by} of outgoing weights): {shown}"
                         + (f" ... {len(plan.removed)} in all" if len(plan.removed) > 24 else ""))
        else:
            lines.append(f"  removed: {', '.join(map(str, plan.removed))}")
    if plan.added:
        lines.append(f"  added: {plan.added} units, incoming weights {plan.init}, outgoing zero")
    if len(plan.layers) > 1:
        lines.append(f"  layers changed together: {', '.join(plan.layers)}")
    lines += [f"  tie: {t}" for t in plan.ties]
    if plan.tensors:
        lines.append("  tensors:")
        lines += columns([(t["path"], fmt_shape(t["before"]), "->", fmt_shape(t["after"])) for t in plan.tensors],
                         indent="    ")
    lines.append(f"  parameters {plan.params_before:,} -> {plan.params_after:,};  "
                 f"file {plan.bytes_before:,} -> {'about ' if dry_run else ''}{plan.bytes_after:,} bytes")
    lines += [f"note: {n}" for n in plan.notes]
    if plan.written:
        lines.append(f"wrote {plan.written}")
    echo_lines(lines)
