"""Surgery commands: set-forget-bias, set, scale, chrono-init. Parse, plan, render, write."""
from __future__ import annotations

import functools
import os
import re

import click

from . import cli
from ..errors import UsageError
from .fleet import engine_options, is_bulk, run_bulk


NEGATIVE = re.compile(r"^-(\d|\.\d|inf|nan)", re.IGNORECASE)


class NumberCommand(click.Command):
    """Negative values (`set m.h5 lstm:b_i -1`) are arguments; anything else that starts
    with `-` and is no option of the command is reported as the unknown option it is."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("context_settings", {})["ignore_unknown_options"] = True
        super().__init__(*args, **kwargs)

    def parse_args(self, ctx, args):
        known = {o for p in self.get_params(ctx) for o in p.opts + p.secondary_opts if o.startswith("-")}
        for token in args:
            if token == "--":
                break
            if token.startswith("-") and token != "-" and not NEGATIVE.match(token) \
                    and token.split("=", 1)[0] not in known:
                raise click.NoSuchOption(token, possibilities=sorted(known), ctx=ctx)
        return super().parse_args(ctx, args)


class Number(click.ParamType):
    """A float; a model path given where the number belongs gets a hint about the order."""

    name = "number"

    def convert(self, value, param, ctx):
        if isinstance(value, float):
            return value
        try:
            return float(value)
        except ValueError:
            hint = ""
            if os.path.exists(str(value)):
                hint = f" ({param.human_readable_name} comes first: lstmtool {ctx.info_name} 1.0 {value})"
            self.fail(f"{value!r} is not a number{hint}", param, ctx)


NUMBER = Number()


def write_options(fn):
    @click.option("-o", "--output", "out", type=click.Path(),
                  help="Write a new file; MODEL stays untouched. Refuses an existing file unless --force.")
    @click.option("--force", is_flag=True, help="Let -o replace an existing file.")
    @click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")
    @click.option("--backup", is_flag=True, help="Keep the original as MODEL.bak (MODEL.bak.2, ... if taken).")
    @click.option("--verify", "verify_after", is_flag=True,
                  help="Also run the NumPy-vs-Keras check on the result before it replaces anything.")
    @click.option("--no-wait", is_flag=True,
                  help="If another lstmtool run is editing the file, fail at once instead of waiting.")
    @click.option("--json", "as_json", is_flag=True, help="Print what was done as JSON (docs/json.md).")
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)

    return wrapper


def run(models, out, make_plan, opts):
    """Lock every file to be replaced, plan each model under the lock, render, write."""
    from ..surgery import filelock
    from ..surgery.edit import check_outputs
    from ..surgery.filelock import locked
    from . import textout

    filelock.NOTIFY = lambda line: None if textout.QUIET else click.echo(line, err=True)
    outs = check_outputs(models, out, opts["force"])
    with locked([o or m for m, o in zip(models, outs)], wait=not opts["no_wait"]):
        from ..remote import urls as remote

        if models and remote.is_remote(models[0]):  # -o a local file: edit a downloaded copy
            from ..remote import downloaded

            with downloaded(models[0], outs[0]) as local:
                plans = [make_plan(local)]
                finish(plans, outs, **{k: v for k, v in opts.items() if k not in ("force", "no_wait")},
                       shown_as=remote.shown(models[0]))
            return
        plans = [make_plan(m) for m in models]  # plan all before writing any
        finish(plans, outs, **{k: v for k, v in opts.items() if k not in ("force", "no_wait")})


def finish(plans, outs, dry_run, backup, verify_after, as_json, shown_as=None):
    from . import textout
    from ..surgery.edit import check_writable, write
    from ..surgery.filelock import leftovers

    for plan, out in zip(plans, outs):
        stale = leftovers(out or plan.model)
        if stale:  # never deleted for the user
            textout.warn([f"{p} was left by an interrupted lstmtool run (its process is gone); "
                          "it is safe to delete" for p in stale])
        if not dry_run:
            check_writable(plan, out)  # before the table, which would read as done
        if not as_json:
            textout.plan(plan, dry_run)
        if not dry_run:
            write(plan, out=out, backup=backup, verify=verify_after)
            if shown_as:
                plan.model = shown_as
            if not as_json:
                click.echo(plan.outcome())
    if as_json:
        import json

        docs = [p.as_json(dry_run) for p in plans]
        click.echo(json.dumps(docs[0] if len(docs) == 1 else docs, indent=2))


@cli.command("set-forget-bias", cls=NumberCommand)
@click.argument("value", type=NUMBER)
@click.argument("models", nargs=-1, required=True, type=click.Path())
@click.option("--layer", "patterns", multiple=True, help="Only cells matching this glob (repeatable).")
@write_options
@engine_options
def set_forget_bias(value, models, patterns, out, jobs, scheduler, timeout, **opts):
    """Set the forget-gate bias of every LSTM-family cell to VALUE.

    Cells with two biases (CuDNNLSTM) get VALUE in the input half and 0 in the
    recurrent half, so the effective forget bias is VALUE.

    \b
    Example:
        lstmtool set-forget-bias 1.0 model.h5 --dry-run
        lstmtool set-forget-bias 1.0 a.h5 b.keras --layer 'bi*' --backup
        lstmtool set-forget-bias 1.0 model.keras -o edited.keras --verify
        lstmtool set-forget-bias 1.0 models/ -o edited/ --jobs 4   # many: new files, resumable
    """
    from ..surgery.edit import plan_forget_bias

    if _bulk(models, out, jobs, scheduler, opts):
        return run_bulk("set-forget-bias", models, out, jobs, scheduler, timeout, opts["force"], opts["as_json"],
                        value=value, patterns=tuple(patterns))

    run(models, out, lambda m: plan_forget_bias(m, value, patterns), opts)


@cli.command("set", cls=NumberCommand)
@click.argument("model", type=click.Path())
@click.argument("target")
@click.argument("value", type=NUMBER, required=False)
@click.option("--from", "npy", type=click.Path(dir_okay=False), help="Take the values from a .npy file.")
@click.option("--allow-nonfinite", is_flag=True, help="Accept NaN/inf values.")
@write_options
@engine_options
def set_(model, target, value, npy, allow_nonfinite, out, jobs, scheduler, timeout, **opts):
    """Set TARGET (LAYERPATH:PART_GATE, e.g. lstm:b_f, bigru/forward:U_r, lstm:W_*) to VALUE.

    MODEL may be a directory, a glob, a URL prefix or an @list with -o DIR/: every file
    gets the edit, written as a new file under DIR at its relative path (resumable).

    \b
    Example:
        lstmtool set model.h5 lstm:b_f 1.0 --backup
        lstmtool set model.h5 lstm:b_i -1 --dry-run
        lstmtool set model.h5 bigru/forward:U_r --from U_r.npy
        lstmtool set models/ lstm:b_f 1.0 -o edited/ --jobs 4
    """
    from ..surgery.edit import plan_set
    from ..errors import UsageError

    if (value is None) == (npy is None):
        raise UsageError("give either VALUE or --from FILE.npy")
    if _bulk([model], out, jobs, scheduler, opts, npy=npy):
        return run_bulk("set", [model], out, jobs, scheduler, timeout, opts["force"], opts["as_json"],
                        target=target, value=value, allow_nonfinite=allow_nonfinite)
    run([model], out, lambda m: plan_set(m, target, value, npy, allow_nonfinite), opts)


def _bulk(models, out, jobs, scheduler, opts, npy=None) -> bool:
    """A many-file run (is_bulk), with the per-file options refused."""
    if not ((out or jobs > 1 or scheduler) and is_bulk(models, out, jobs, scheduler)):
        return False
    if opts["dry_run"] or opts["backup"] or opts["verify_after"]:
        raise UsageError("many files to -o DIR/: --dry-run, --backup and --verify are per-file options")
    if npy:
        raise UsageError("many files to -o DIR/: --from FILE.npy is a per-file option; give a VALUE")
    return True


@cli.command(cls=NumberCommand)
@click.argument("model", type=click.Path())
@click.argument("target")
@click.argument("factor", type=NUMBER)
@write_options
@engine_options
def scale(model, target, factor, out, jobs, scheduler, timeout, **opts):
    """Multiply TARGET (LAYERPATH:PART_GATE) by FACTOR.

    MODEL may be a directory, a glob, a URL prefix or an @list with -o DIR/ (see set).

    \b
    Example:
        lstmtool scale model.h5 'lstm:W_*' 0.5 --dry-run
        lstmtool scale 'runs/*.h5' 'lstm:U_*' 0.9 -o scaled/
    """
    from ..surgery.edit import plan_scale

    if _bulk([model], out, jobs, scheduler, opts):
        return run_bulk("scale", [model], out, jobs, scheduler, timeout, opts["force"], opts["as_json"],
                        target=target, factor=factor)
    run([model], out, lambda m: plan_scale(m, target, factor), opts)


@cli.command("chrono-init")
@click.argument("model", type=click.Path())
@click.option("--tmax", type=float, required=True, help="Longest dependency expected, in time steps.")
@click.option("--seed", type=int, default=None, help="Seed of the random draw (default: fresh).")
@click.option("--layer", "patterns", multiple=True, help="Only cells matching this glob (repeatable).")
@write_options
@engine_options
def chrono_init(model, tmax, seed, patterns, out, jobs, scheduler, timeout, **opts):
    """Chrono initialisation: b_f = log(U[1, tmax-1]), b_i = -b_f (GRU: b_z = log(U[1, tmax-1])).

    MODEL may be a directory, a glob, a URL prefix or an @list with -o DIR/ (see set).

    \b
    Example:
        lstmtool chrono-init model.h5 --tmax 200 --seed 0 --dry-run
        lstmtool chrono-init models/ --tmax 200 --seed 0 -o chrono/ --jobs 2
    """
    from ..surgery.edit import plan_chrono

    if _bulk([model], out, jobs, scheduler, opts):
        return run_bulk("chrono-init", [model], out, jobs, scheduler, timeout, opts["force"], opts["as_json"],
                        tmax=tmax, seed=seed, patterns=tuple(patterns))
    run([model], out, lambda m: plan_chrono(m, tmax, seed, patterns), opts)
