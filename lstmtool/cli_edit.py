"""Surgery commands: set-forget-bias, set, scale, chrono-init. Parse, plan, render, write."""
from __future__ import annotations

import functools

import click

from .cli import cli


# Negative values (`set lstm:b_i -1`) are arguments, not unknown options.
NUMBERS = {"ignore_unknown_options": True}


def write_options(fn):
    @click.option("-o", "--output", "out", type=click.Path(dir_okay=False),
                  help="Write a new file; MODEL stays untouched.")
    @click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")
    @click.option("--backup", is_flag=True, help="Keep the original as MODEL.bak.")
    @click.option("--verify", "verify_after", is_flag=True,
                  help="Also run the NumPy-vs-Keras check on the result before it replaces anything.")
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)

    return wrapper


def finish(plans, outs, dry_run, backup, verify_after):
    from . import render, textout
    from .edit import write
    from .writeback import leftovers

    for plan, out in zip(plans, outs):
        stale = leftovers(out or plan.model)
        if stale:  # never deleted for the user: another lstmtool may still be writing it
            textout.warn([f"{p} was left by an interrupted lstmtool run; it is safe to delete" for p in stale])
        render.plan(plan, dry_run)
        if not dry_run:
            write(plan, out=out, backup=backup, verify=verify_after)
            render.console.print(f"wrote {plan.written} ({len(plan.edits)} slice(s), read back and checked)",
                                 markup=False)


@cli.command("set-forget-bias", context_settings=NUMBERS)
@click.argument("value", type=float)
@click.argument("models", nargs=-1, required=True, type=click.Path())
@click.option("--layer", "patterns", multiple=True, help="Only cells matching this glob (repeatable).")
@write_options
def set_forget_bias(value, models, patterns, out, dry_run, backup, verify_after):
    """Set the forget-gate bias of every LSTM-family cell to VALUE.

    Cells with two biases (CuDNNLSTM) get VALUE in the input half and 0 in the
    recurrent half, so the effective forget bias is VALUE.
    """
    from .edit import default_outputs, plan_forget_bias

    outs = default_outputs(models, out)
    plans = [plan_forget_bias(m, value, patterns) for m in models]  # plan all before writing any
    finish(plans, outs, dry_run, backup, verify_after)


@cli.command("set", context_settings=NUMBERS)
@click.argument("model", type=click.Path())
@click.argument("target")
@click.argument("value", type=float, required=False)
@click.option("--from", "npy", type=click.Path(dir_okay=False), help="Take the values from a .npy file.")
@click.option("--allow-nonfinite", is_flag=True, help="Accept NaN/inf values.")
@write_options
def set_(model, target, value, npy, allow_nonfinite, out, dry_run, backup, verify_after):
    """Set TARGET (LAYERPATH:PART_GATE, e.g. lstm:b_f, bigru/forward:U_r, lstm:W_*) to VALUE."""
    from .edit import default_outputs, plan_set
    from .errors import UsageError

    if (value is None) == (npy is None):
        raise UsageError("give either VALUE or --from FILE.npy")
    outs = default_outputs([model], out)
    finish([plan_set(model, target, value, npy, allow_nonfinite)], outs, dry_run, backup, verify_after)


@cli.command(context_settings=NUMBERS)
@click.argument("model", type=click.Path())
@click.argument("target")
@click.argument("factor", type=float)
@write_options
def scale(model, target, factor, out, dry_run, backup, verify_after):
    """Multiply TARGET (LAYERPATH:PART_GATE) by FACTOR."""
    from .edit import default_outputs, plan_scale

    finish([plan_scale(model, target, factor)], default_outputs([model], out), dry_run, backup, verify_after)


@cli.command("chrono-init")
@click.argument("model", type=click.Path())
@click.option("--tmax", type=float, required=True, help="Longest dependency expected, in time steps.")
@click.option("--seed", type=int, default=None)
@click.option("--layer", "patterns", multiple=True)
@write_options
def chrono_init(model, tmax, seed, patterns, out, dry_run, backup, verify_after):
    """Chrono initialisation: b_f = log(U[1, tmax-1]), b_i = -b_f (GRU: b_z = log(U[1, tmax-1]))."""
    from .edit import default_outputs, plan_chrono

    finish([plan_chrono(model, tmax, seed, patterns)], default_outputs([model], out), dry_run, backup, verify_after)


class _Progress:
    """A rich progress bar on stderr for exports above 64 MB."""

    def __init__(self):
        self.bar = None

    def start(self, total):
        if total > 64 << 20:
            from rich.console import Console
            from rich.progress import Progress

            self.bar = Progress(console=Console(stderr=True), transient=True)
            self.bar.start()
            self.task = self.bar.add_task("exporting", total=total)

    def advance(self, n):
        if self.bar:
            self.bar.advance(self.task, n)

    def stop(self):
        if self.bar:
            self.bar.stop()


@cli.command()
@click.argument("model", type=click.Path())
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False))
@click.option("--layer", "patterns", multiple=True)
@click.option("--format", "fmt", type=click.Choice(["npy", "npz", "safetensors"]), default=None,
              help="Default: npy (torch layout: safetensors).")
@click.option("--layout", type=click.Choice(["keras", "torch", "onnx", "tf1"]), default="keras", show_default=True)
@click.option("--force", is_flag=True, help="Write into a non-empty directory.")
def export(model, out_dir, patterns, fmt, layout, force):
    """Write gate matrices to OUT_DIR (one .npy per gate and part, or a bundle) with manifest.json."""
    from .exchange import export_model

    progress = _Progress()
    try:
        manifest = export_model(model, out_dir, patterns, fmt, layout, force, progress)
    finally:
        progress.stop()
    click.echo(f"exported {len(manifest['arrays'])} arrays ({layout} layout) to {out_dir}")


@cli.command("import")
@click.argument("model", type=click.Path())
@click.argument("source", type=click.Path(exists=True))
@click.option("--layout", type=click.Choice(["keras", "torch", "onnx", "tf1"]), default=None,
              help="Default: from SOURCE's manifest.json, else keras.")
@click.option("--layer", "patterns", multiple=True)
@write_options
def import_(model, source, layout, patterns, out, dry_run, backup, verify_after):
    """Write gate matrices from SOURCE (an export directory, .npz or .safetensors) into MODEL."""
    from .edit import default_outputs
    from .exchange import plan_import

    outs = default_outputs([model], out)
    finish([plan_import(model, source, layout, patterns)], outs, dry_run, backup, verify_after)
