"""The `lstmtool` command: parse, call one library function, render.

Heavy modules (h5py, numpy, rich) are imported inside the commands so that
`lstmtool --help` stays fast.
"""
from __future__ import annotations

import json
import os

import click

from .errors import LstmtoolError

MODEL = click.argument("model", type=click.Path())


# Commands defined in other modules, imported only when run or listed by --help.
LAZY = {"set-forget-bias": "cli_edit", "set": "cli_edit", "scale": "cli_edit", "chrono-init": "cli_edit",
        "export": "cli_edit", "import": "cli_edit", "upgrade": "cli_upgrade"}


class Group(click.Group):
    """Turns lstmtool's errors into one line on stderr and an exit status, never a traceback.
    Loads the command modules listed in LAZY on first use."""

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(LAZY))

    def get_command(self, ctx, name):
        if name in LAZY and name not in self.commands:
            import importlib

            importlib.import_module(f"{__package__}.{LAZY[name]}")
        return super().get_command(ctx, name)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
            raise
        except LstmtoolError as e:
            fail(ctx, str(e), e.exit_code)
        except OSError as e:
            fail(ctx, f"{e.filename or ''}: {e.strerror or e}".lstrip(": "), 1)
        except KeyboardInterrupt:
            fail(ctx, "interrupted", 130)
        except Exception as e:  # a bug of ours: still one line, unless debugging
            if os.environ.get("LSTMTOOL_DEBUG"):
                raise
            fail(ctx, f"internal error: {type(e).__name__}: {e} (set LSTMTOOL_DEBUG=1 for details)", 1)


def fail(ctx, message, code):
    click.echo(f"lstmtool: error: {message}", err=True)
    ctx.exit(code)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lstmtool")
def cli():
    """Look inside, and operate on, the recurrent layers of saved Keras models."""


@cli.command()
@MODEL
@click.option("--layer", "patterns", multiple=True, help="Only layers matching this glob (repeatable).")
@click.option("--stats", is_flag=True, help="Per-gate mean/std/min/max/L2 (reads the tensors).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (schema: docs/json.md).")
@click.option("--strict", is_flag=True, help="Exit 1 if any recurrent cell is incomplete.")
def inspect(model, patterns, stats, as_json, strict):
    """Layers, recurrent cells and where each gate's W, U and b sit."""
    from . import load
    from .report import inspect_model

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
    from . import load, textout
    from .report import explain_data

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
    from . import load, render
    from .errors import UsageError

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
    from .verify import verify_file

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


def main(argv=None):
    cli.main(args=argv, prog_name="lstmtool")

