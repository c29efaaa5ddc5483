"""`python -m lstmtool` and the `lstmtool` command. A Ctrl-C while the command's own modules
are still being imported says "interrupted" and exits 130, like one during the command."""
import sys


def main(argv=None):
    try:
        from .cli import main as run
    except KeyboardInterrupt:
        sys.stderr.write("\nlstmtool: error: interrupted\n")
        sys.exit(130)
    run(argv)


if __name__ == "__main__":
    main()
