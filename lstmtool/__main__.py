"""`python -m lstmtool` and the `lstmtool` command. A Ctrl-C while the command's own modules
are still being imported says "interrupted" and exits 130, like one during the command."""
import os
import sys


def main(argv=None):
    try:
        from .cli import main as run
    except KeyboardInterrupt:
        sys.stderr.write("\nlstmtool: error: interrupted\n")
        sys.exit(130)
    try:
        run(argv)
    except SystemExit as done:  # the command is complete: end now, without the interpreter's
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        for stream in (sys.stdout, sys.stderr):  # shutdown, where a late Ctrl-C could still
            try:  # end the process by the signal itself
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)


if __name__ == "__main__":
    main()
