"""`lstmtool scan`, and the many-file forms of upgrade, the edits, verify and trace: parse,
call fleet.jobs, show progress and records, end with a one-line summary."""
from __future__ import annotations

import functools
import json
import os
import sys

import click

from . import cli


def engine_options(fn):
    @click.option("-j", "--jobs", type=click.IntRange(1, 512), default=1, show_default=True,
                  help="Local worker processes (one file each at a time).")
    @click.option("--scheduler", metavar="ADDRESS",
                  help="Run on a Dask cluster: the scheduler's address, e.g. tcp://10.0.0.5:8786 "
                       "(needs lstmtool[fleet] here and lstmtool on the workers).")
    @click.option("--timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
                  help="Local workers: a file without a result after this long is recorded as failed "
                       "and its worker stopped [default: no limit].")
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)

    return wrapper


class Progress:
    """A rich progress bar on stderr when stdout is a terminal (and not -q); otherwise silent."""

    def __init__(self, what):
        from . import textout

        self.what, self.bar, self.task, self.errors = what, None, None, 0
        self.enabled = not textout.QUIET and sys.stdout.isatty()

    def start(self, total, skipped):
        if not self.enabled or not total:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeRemainingColumn

        self.bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                       TextColumn("{task.fields[rate]} files/s  errors {task.fields[errors]}"),
                       TimeRemainingColumn(), console=Console(stderr=True), transient=True)
        self.bar.start()
        self.task = self.bar.add_task(self.what, total=total, rate="-", errors=0)

    def advance(self, record):
        if record.get("error"):
            self.errors += 1
        if self.bar is not None:
            t = self.bar.tasks[0]
            rate = f"{(t.completed + 1) / t.elapsed:.1f}" if t.elapsed else "-"
            self.bar.update(self.task, advance=1, rate=rate, errors=self.errors)

    def stop(self):
        if self.bar is not None:
            self.bar.stop()


def _storage_options(items):
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            from ..errors import UsageError

            raise UsageError(f"--storage-option {item!r} is not KEY=VALUE")
        try:
            out[key] = json.loads(value)  # numbers, true/false, JSON objects
        except ValueError:
            out[key] = value
    return out


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False, allow_dash=True),
              help="The inventory: .jsonl (default: JSON Lines on stdout), .csv or .parquet (lstmtool[fleet]). "
                   "Refuses an existing file unless --resume or --force.")
@click.option("--no-hash", is_flag=True, help="Skip each file's sha256 (a remote file is then read only "
                                               "where inspect reads it).")
@click.option("--resume", is_flag=True, help="-o FILE.jsonl exists: skip the files it records as finished "
                                              "and unchanged (size and mtime / ETag), scan the rest, append.")
@click.option("--force", is_flag=True, help="Replace an existing -o FILE.")
@click.option("--storage-option", "storage", multiple=True, metavar="KEY=VALUE",
              help="An fsspec storage option for remote paths (repeatable), e.g. anon=true.")
@engine_options
def scan(paths, out, no_hash, resume, force, storage, jobs, scheduler, timeout):
    """One inventory record per model file: format, Keras version, recurrent cells, whether
    `upgrade` would take it (or the reason it would not), and the error if it cannot be read.

    PATHS are files, directories (searched for .h5/.hdf5/.keras files, SavedModel
    directories and checkpoints), globs ('models/**/*.h5'), URL prefixes and globs
    (s3://bucket/prefix/, 'hf://org/repo/*.h5') and @list.txt files (one path or URL a line).
    A bad file is a record with `error`; the exit status is 1 if any file had one.

    \b
    Example:
        lstmtool scan models/ -o inventory.jsonl --jobs 4
        lstmtool scan 's3://bucket/models/' --no-hash -o inventory.parquet
        lstmtool scan @files.txt --scheduler tcp://127.0.0.1:8786 > inventory.jsonl
        lstmtool scan models/ -o inventory.jsonl --resume     # after a killed run
    """
    from ..errors import LstmtoolError, UsageError
    from ..fleet import inventory
    from ..fleet.jobs import scan as run

    kind = inventory.kind_of(out)
    previous = None
    if out not in (None, "-") and os.path.lexists(out):
        if resume and kind == "jsonl":
            previous = inventory.previous(out)
        elif resume:
            raise UsageError(f"{out}: --resume continues a .jsonl inventory")
        elif force:
            os.unlink(out)
        else:
            raise UsageError(f"{out}: already exists; pass --resume to continue it or --force to replace it")
    writer = inventory.Writer(out, append=previous is not None)
    progress = Progress("scan")

    def on_record(record):
        writer.add(record)
        progress.advance(record)

    try:
        summary = run(paths, hash=not no_hash, jobs=jobs, scheduler=scheduler, timeout=timeout, previous=previous,
                      storage_options=_storage_options(storage), on_record=on_record, on_start=progress.start,
                      isolate=True)
    finally:
        progress.stop()
        writer.close()
    _say(summary.line("scanned"))
    if summary.errors:
        raise LstmtoolError(f"{summary.errors:,} of {summary.inputs:,} file(s) had an error (see their records)")


def _say(line):
    from . import textout

    if not textout.QUIET:
        click.echo(line, err=True)


def is_bulk(models, out, jobs, scheduler) -> bool:
    """A many-file run: several inputs, a directory or glob of models, an @list, or -o DIR/."""
    if jobs > 1 or scheduler or len(models) > 1 or (out and out.endswith(("/", os.sep))):
        return True
    return names_many(models[0])


def names_many(arg) -> bool:
    """An @list, a glob, or a directory of models (not a SavedModel or checkpoint directory).
    A plain file imports nothing: every single-file command asks this."""
    glob_chars = "*?["  # fleet.inputs.GLOB_CHARS
    if arg.startswith("@"):
        return True
    if "://" in arg:
        from ..remote import urls

        if urls.is_remote(arg):
            return any(ch in arg.split("?", 1)[0].split("://", 1)[1] for ch in glob_chars)
    if not os.path.exists(arg):
        return any(ch in arg for ch in glob_chars)
    if not os.path.isdir(arg):
        return False
    from ..fleet.inputs import _is_bundle_dir

    return not _is_bundle_dir(arg) and not _is_checkpoint_dir(arg)


def _is_checkpoint_dir(path):
    from ..containers.tf_locate import locate
    from ..errors import LstmtoolError

    try:
        return locate(path) is not None
    except LstmtoolError:
        return True  # a checkpoint directory with a problem: the single-file command says which


def run_bulk(job, models, out, jobs, scheduler, timeout, force, as_json, **options):
    from ..errors import LstmtoolError, UsageError
    from ..fleet.jobs import bulk

    if not out:
        raise UsageError("many files: say where the outputs go with -o DIR/ (their paths are mirrored there)")
    from ..remote import urls

    if not (out.endswith(("/", os.sep)) or (not urls.is_remote(out) and os.path.isdir(out))):
        raise UsageError(f"{out}: many inputs write into a directory or prefix: end -o with / ({out}/)")
    progress = Progress(job)
    records = []

    def on_record(record):
        progress.advance(record)
        records.append(record)
        if as_json:
            click.echo(json.dumps(record, default=str))
        elif record.get("error"):
            error, name = record["error"], record["input"]
            click.echo(f"lstmtool: {record['result']}: " + (error if error.startswith(name) else f"{name}: {error}"),
                       err=True)

    try:
        summary = bulk(job, models, out, jobs=jobs, scheduler=scheduler, timeout=timeout, force=force,
                       on_record=on_record, on_start=progress.start, isolate=True, **options)
    finally:
        progress.stop()
    _say(summary.line(job) + f"; manifest {summary.manifest}")
    if summary.errors:
        raise LstmtoolError(f"{summary.errors:,} of {summary.inputs:,} file(s) not done (named above or in the manifest; "
                            "a rerun redoes the failed ones)")


def run_verify(models, tolerance, seed, as_json, jobs, scheduler, timeout):
    from ..errors import LstmtoolError
    from ..fleet.jobs import verify

    progress = Progress("verify")

    def on_record(record):
        progress.advance(record)
        if as_json:
            click.echo(json.dumps(record, default=str))
            return
        worst = max((r["max_abs_diff"] for r in record.get("layers") or []), default=None)
        if record.get("ok"):
            click.echo(f"ok    {record['input']}  ({record['keras']}, max |diff| {worst:.3g})")
        elif record.get("layers"):
            click.echo(f"FAIL  {record['input']}  ({record['keras']}, max |diff| {worst:.3g})")
        else:
            error, name = record["error"] or "", record["input"]
            click.echo(f"lstmtool: {record['result']}: " + (error if error.startswith(name) else f"{name}: {error}"),
                       err=True)

    try:
        summary = verify(models, tolerance=tolerance, seed=seed, jobs=jobs, scheduler=scheduler, timeout=timeout,
                         on_record=on_record, on_start=progress.start, isolate=True)
    finally:
        progress.stop()
    _say(summary.line("verified"))
    if summary.errors:
        raise LstmtoolError(f"{summary.errors:,} of {summary.files:,} file(s) did not verify (each named above)")
