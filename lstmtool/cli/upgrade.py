"""`lstmtool upgrade`: parse, call keras3_upgrade.upgrade, render the plan."""
from __future__ import annotations

import json

import click

from . import cli
from .fleet import engine_options, is_bulk, run_bulk


@cli.command()
@click.argument("models", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", "out", type=click.Path(),
              help="The Keras 3 .keras (or .weights.h5) file to write; optional with --dry-run. Many inputs "
                   "(several, a directory, a prefix, @list.txt): a directory or prefix DIR/ under which each "
                   "output mirrors its input's path, with lstmtool-manifest.jsonl to resume by.")
@click.option("--config", "config", type=click.Path(), metavar="MODEL.json",
              help="Weights-only input: the old model.to_json() saved beside it; writes a complete .keras.")
@click.option("--like", "like", type=click.Path(), metavar="ARCH.keras",
              help="Weights-only input: a Keras 3 model these weights belong to; writes a complete .keras.")
@click.option("--hard-sigmoid", "hard_sigmoid", is_flag=True,
              help="Weights-only input, no architecture: the original gates used hard_sigmoid (Keras < 2.3's "
                   "default); scale them so Keras 3's hard_sigmoid computes the same.")
@click.option("--backend", type=click.Choice(["theano", "tensorflow"]),
              help="What a Keras 1 file (which does not record it) was trained with; Theano's convolution "
                   "kernels are flipped on conversion.")
@click.option("--replace", "replacements", multiple=True, metavar="LAYER=package>Class",
              help="Replace a Lambda or custom layer by a registered Keras 3 class (repeatable; quote it).")
@click.option("--dry-run", is_flag=True, help="Print the plan (what changes per layer); write nothing.")
@click.option("--force", is_flag=True, help="Replace OUT if it exists.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan / result as JSON (docs/json.md).")
@click.option("--layer-class", "layer_classes", multiple=True, metavar="LAYER=CLASS",
              help="Weights-only inputs: the Keras 3 class of a layer its weights cannot tell (repeatable).")
@engine_options
def upgrade(models, out, config, like, hard_sigmoid, backend, replacements, dry_run, force, as_json, layer_classes,
            jobs, scheduler, timeout):
    """Turn a legacy Keras model (Keras 1/2 .h5, tf-keras, CuDNN layers) into a Keras 3
    .keras file that loads in Keras 3 and computes what the original computed.

    hard_sigmoid gates (Keras 1/2: 0.2x+0.5) are kept exact by scaling their W, U, b
    by 1.2 for Keras 3's x/6+0.5. Every config key is checked against what Keras 3
    accepts; what no table knows, Lambda layers (unless --replace names a registered
    class for them) and time_major=True are refused (exit 1), and nothing is written.

    A weights-only file becomes a whole .keras with --config (its old to_json()) or
    --like (a Keras 3 model it belongs to); otherwise a Keras 3 .weights.h5 for
    model.load_weights(...) on the equivalent Keras 3 model built in code (layouts
    converted; activations are the code's: see --hard-sigmoid).

    \b
    Example:
        lstmtool upgrade old_model.h5 -o model.keras
        lstmtool upgrade old_model.h5 --dry-run
        lstmtool upgrade weights.h5 --config model.json -o model.keras
        lstmtool upgrade old.h5 -o new.keras --replace 'lambda_1=myproject>Scale'
        lstmtool upgrade textgenrnn_weights.hdf5 -o tg.weights.h5 \\
            --layer-class attention=AttentionWeightedAverage
        lstmtool upgrade old_models/ -o new_models/ --jobs 4     # many: resumable
        lstmtool upgrade 's3://bucket/legacy/' -o 's3://bucket/keras3/' \\
            --scheduler tcp://127.0.0.1:8786
    """
    from ..errors import UsageError
    from ..upgrader.keras3 import upgrade as run

    if is_bulk(models, out, jobs, scheduler):
        if config or like or hard_sigmoid or backend or replacements or layer_classes or dry_run:
            raise UsageError("many files: --config, --like, --hard-sigmoid, --backend, --replace, "
                             "--layer-class and --dry-run are per-file options; use `lstmtool scan` to see "
                             "what upgrade would do to each, or upgrade one file at a time")
        return run_bulk("upgrade", models, out, jobs, scheduler, timeout, force, as_json)
    model = models[0]

    classes = {}
    for item in layer_classes:
        name, sep, cls = item.partition("=")
        if not sep or not name or not cls:
            raise UsageError(f"--layer-class {item!r} is not LAYER=CLASS")
        classes[name] = cls
    replace = {}
    for item in replacements:
        name, sep, target = item.partition("=")
        if not sep or not name or ">" not in target:
            raise UsageError(f"--replace {item!r} is not LAYER=package>Class")
        replace[name] = target
    if out is None and not dry_run:
        raise UsageError("-o OUT is required (or --dry-run to see the plan)")
    plan = run(model, out or "", dry_run=dry_run, force=force, layer_classes=classes, config=config, like=like,
               hard_sigmoid=hard_sigmoid, backend=backend, replace=replace)
    if as_json:
        click.echo(json.dumps(plan.as_json(dry_run), indent=2))
        return
    from .textout import echo_lines

    kind = "weights file" if plan.from_format.endswith("weights") and not (config or like) else ".keras"
    lines = [f"{plan.source}: {plan.from_format}, Keras {plan.from_keras} -> Keras 3 {kind}"
             + ("  (dry run: nothing written)" if dry_run else "")]
    for step in plan.steps:
        change = f"{step.class_from} -> {step.class_to}" if step.class_from != step.class_to else step.class_to
        lines.append(f"  {step.path}  {change}")
        lines += [f"      {c}" for c in step.changes]
    lines += [f"note: {note}" for note in plan.notes]
    if not dry_run:
        lines.append(f"wrote {plan.written}")
    echo_lines(lines)
