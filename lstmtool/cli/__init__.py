"""The `lstmtool` command: parse, call one library function, render.

One module per command group (read, edit, exchange, upgrade); rendering and text
layout live here too (render.py, textout.py), apart from the library they call.

Heavy modules (h5py, numpy, rich) are imported inside the commands so that
`lstmtool --help` stays fast.
"""
from __future__ import annotations

import os

import click

from ..errors import LstmtoolError

# Commands defined in other modules, imported only when run or listed by --help.
LAZY = {"inspect": "read", "explain": "read", "show": "read", "verify": "read",
        "set-forget-bias": "edit", "set": "edit", "scale": "edit", "chrono-init": "edit",
        "export": "exchange", "import": "exchange", "upgrade": "upgrade", "prune": "reshape", "widen": "reshape",
        "plot": "pictures", "diff": "pictures", "trace": "pictures", "scan": "fleet", "convert": "convert", "health": "health"}


GLOBAL_FLAGS = {"-q", "--quiet", "--color", "--no-color"}


class Group(click.Group):
    """Turns lstmtool's errors into one line on stderr and an exit status, never a traceback.
    Loads the command modules listed in LAZY on first use."""

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(LAZY))

    def parse_args(self, ctx, args):
        """-q and --[no-]color work after the command too (`inspect m.h5 -q`): they are moved
        before it, where the group parses them (never past a `--`)."""
        if ctx.parent is None and args:
            end = args.index("--") if "--" in args else len(args)
            moved = [a for a in args[1:end] if a in GLOBAL_FLAGS]
            if moved:
                rest = [a for k, a in enumerate(args) if not (0 < k < end and a in GLOBAL_FLAGS)]
                args = moved + rest
            end = args.index("--") if "--" in args else len(args)
            for k in range(1, end):  # --cache DIR (or --cache=DIR) after the command, too
                if args[k] == "--cache" and k + 1 < end:
                    args = args[k:k + 2] + args[:k] + args[k + 2:]
                    break
                if args[k].startswith("--cache="):
                    args = [args[k]] + args[:k] + args[k + 1:]
                    break
        return super().parse_args(ctx, args)

    def resolve_command(self, ctx, args):
        """An unknown command gets the nearest names (`lstmtool dif` -> diff)."""
        if args and not args[0].startswith("-") and self.get_command(ctx, args[0]) is None:
            import difflib

            close = difflib.get_close_matches(args[0], self.list_commands(ctx), n=3, cutoff=0.6)
            if close:
                ctx.fail(f"No such command {args[0]!r}; did you mean {', '.join(repr(c) for c in close)}?")
        return super().resolve_command(ctx, args)

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
        except BrokenPipeError:  # `lstmtool ... | head`: the reader left; end quietly, like cat
            import sys

            sys.stdout = open(os.devnull, "w")  # nothing more to flush into the closed pipe
            ctx.exit(141)
        except OSError as e:
            fail(ctx, f"{e.filename or ''}: {e.strerror or e}".lstrip(": "), 1)
        except KeyboardInterrupt:
            fail(ctx, "interrupted", 130)
        except Exception as e:  # a bug of ours: still one line, unless debugging
            if os.environ.get("LSTMTOOL_DEBUG"):
                raise
            fail(ctx, f"internal error: {type(e).__name__}: {e} (set LSTMTOOL_DEBUG=1 for details)", 1)


def fail(ctx, message, code):
    message = " ".join(str(message).split("\n")).encode("utf-8", "backslashreplace").decode("utf-8")
    click.echo(f"lstmtool: error: {message}", err=True)
    ctx.exit(code)


EXIT_CODES = """\b
Exit status (every command):
  0    done (for --strict: and every recurrent cell complete);
       also an edit or prune that finds the file already as asked
       (it says so and writes nothing)
  1    the model cannot be read, is damaged, has nothing the
       command applies to (set-forget-bias on a model without an
       LSTM), or the result could not be written (input unchanged);
       convert: a layer without an exact ONNX form; health: an
       error finding (with --strict: any warning); many files:
       any file not done
  2    usage: unknown option, layer, target or gate; bad value;
       output exists (pass --force); an optional extra the
       command needs is not installed (lstmtool[plot], [verify],
       [onnx], [fleet], [remote])
  130  interrupted
  137  the HDF5 library hung on damaged metadata and lstmtool's
       watchdog ended it (LSTMTOOL_LOAD_TIMEOUT, default 15 s)
  141  the output pipe closed early (lstmtool ... | head)
  diff follows diff(1) instead: 0 identical, 1 different, 2 trouble"""


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES)
@click.version_option(package_name="lstmtool")
@click.option("-q", "--quiet", is_flag=True, help="No warnings or progress bars; errors and results only.")
@click.option("--color/--no-color", default=None,
              help="Colour the output [default: on a terminal, unless NO_COLOR is set].")
@click.option("--cache", "cache", type=click.Path(file_okay=False), metavar="DIR",
              help="Keep the blocks read from remote files (s3://, gs://, hf://, https://) in DIR, so "
                   "repeated commands on an unchanged file fetch nothing [env: LSTMTOOL_CACHE].")
@click.pass_context
def cli(ctx, quiet, color, cache):
    """Look inside, and operate on, the recurrent layers of saved Keras models.

    \b
    Example:
        lstmtool inspect model.h5
        lstmtool upgrade old_model.h5 -o model.keras
        lstmtool set-forget-bias 1.0 model.h5 --dry-run
        lstmtool inspect s3://bucket/model.keras     (pip install 'lstmtool[remote]')

    Shell completion (bash): eval "$(_LSTMTOOL_COMPLETE=bash_source lstmtool)"
    """
    from . import textout

    if color is None and os.environ.get("NO_COLOR"):
        color = False
    if color is False:
        os.environ["NO_COLOR"] = "1"  # rich reads it too
    ctx.color = color
    textout.QUIET = quiet
    if cache or "lstmtool.reading.reader" in __import__("sys").modules:
        from ..reading import reader

        reader.REMOTE_CACHE = cache  # this run's, never an earlier run's in the same process


def main(argv=None):
    import signal
    import sys

    from ..reading import watchdog

    watchdog.ENABLED = True  # a command-line process only: never inside a host program (or a test run)
    for stream in (sys.stdout, sys.stderr):  # names from damaged files: escaped, never a crash
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    # Ctrl-C anywhere in the run (parsing, importing a command, the command, shutting down)
    # says "interrupted" and exits 130, never dies by the signal itself
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        code = _run(argv)
    except KeyboardInterrupt:  # landed between the command's end and the line below
        _say_interrupted()
        code = 130
    # The command is over and its result complete (files closed, renamed, fsynced): a Ctrl-C
    # from here on is ignored, and the exit status is the command's (the `lstmtool` process
    # then ends without the interpreter's shutdown: lstmtool/__main__.py).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(code)


def _run(argv) -> int:
    import sys

    try:
        rv = cli.main(args=argv, prog_name="lstmtool", standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except (KeyboardInterrupt, click.exceptions.Abort):
        _say_interrupted()
        return 130
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except OSError as e:  # writing --help or a usage message failed (`--help > /dev/full`)
        if isinstance(e, BrokenPipeError):
            sys.stdout = open(os.devnull, "w")
        try:
            sys.stderr.write(f"lstmtool: error: cannot write the output ({e.strerror or e})\n")
        except OSError:
            pass
        return 141 if isinstance(e, BrokenPipeError) else 1


def _say_interrupted():
    import sys

    try:
        sys.stderr.write("\nlstmtool: error: interrupted\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
