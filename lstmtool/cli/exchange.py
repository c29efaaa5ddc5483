"""export / import of gate matrices."""
from __future__ import annotations

import click

from . import cli
from .edit import run, write_options


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
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Directory to write (created; must be empty unless --force).")
@click.option("--layer", "patterns", multiple=True, help="Only cells matching this glob (repeatable).")
@click.option("--format", "fmt", type=click.Choice(["npy", "npz", "safetensors"]), default=None,
              help="Default: npy (torch layout: safetensors).")
@click.option("--layout", type=click.Choice(["keras", "torch", "onnx", "tf1"]), default="keras", show_default=True,
              help="Whose weight layout to write (docs/layouts.md).")
@click.option("--force", is_flag=True, help="Write into a non-empty directory.")
@click.option("--allow-activation-mismatch", is_flag=True,
              help="torch layout: export cells PyTorch computes differently (hard_sigmoid ...); "
                   "the manifest records what differs.")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest (what was written) as JSON.")
def export(model, out_dir, patterns, fmt, layout, force, allow_activation_mismatch, as_json):
    """Write gate matrices to OUT_DIR (one .npy per gate and part, or a bundle) with manifest.json.

    \b
    Example:
        lstmtool export model.h5 -o gates/
        lstmtool export model.h5 -o pt/ --layout torch
        lstmtool export model.h5 -o ox/ --layout onnx
    """
    from ..exchange.gates import export_model

    progress = _Progress()
    try:
        manifest = export_model(model, out_dir, patterns, fmt, layout, force, progress, allow_activation_mismatch)
    finally:
        progress.stop()
    if as_json:
        import json

        click.echo(json.dumps(manifest, indent=2))
        return
    click.echo(f"exported {len(manifest['arrays'])} arrays ({layout} layout) to {out_dir}")
    for path, why in manifest.get("skipped", {}).items():
        click.echo(f"note: skipped {why}", err=True)
    for path, entry in manifest["layers"].items():
        for cell, what in entry.get("activation_mismatch", {}).items():
            click.echo(f"warning: {cell}: {what} in PyTorch (recorded in manifest.json)", err=True)


@cli.command("import")
@click.argument("model", type=click.Path())
@click.argument("source", type=click.Path(exists=True))
@click.option("--layout", type=click.Choice(["keras", "torch", "onnx", "tf1"]), default=None,
              help="Default: from SOURCE's manifest.json, else keras.")
@click.option("--layer", "patterns", multiple=True, help="Only cells matching this glob (repeatable).")
@write_options
def import_(model, source, layout, patterns, out, **opts):
    """Write gate matrices from SOURCE (an export directory, .npz or .safetensors) into MODEL.

    \b
    Example:
        lstmtool import model.h5 gates/ -o patched.h5
        lstmtool import model.h5 pt/lstm.safetensors --layout torch --dry-run
    """
    from ..exchange.gates import plan_import

    run([model], out, lambda m: plan_import(m, source, layout, patterns), opts)
