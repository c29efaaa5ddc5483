"""A deadline for reading a file's metadata, for the command line.

Some damaged HDF5 metadata sends the HDF5 library itself into an endless loop, inside C
code where no Python signal handler or thread can interrupt it. A forked watchdog
process waits; if the read is still running at the deadline it prints the one-line error
and ends the command (exit status 1). Reading the metadata of any real model takes well
under a second; the deadline is generous (LSTMTOOL_LOAD_TIMEOUT, seconds, default 120).
The library itself never forks: only the CLI turns this on.
"""
from __future__ import annotations

import contextlib
import os
import signal
import time

ENABLED = False  # set by the CLI


def seconds() -> float:
    try:
        return float(os.environ.get("LSTMTOOL_LOAD_TIMEOUT", "120"))
    except ValueError:
        return 120.0


@contextlib.contextmanager
def deadline(message: str):
    limit = seconds()
    if not ENABLED or limit <= 0 or not hasattr(os, "fork"):
        yield
        return
    parent = os.getpid()
    child = os.fork()
    if child == 0:  # the watchdog: sleep, then end a parent that is still stuck
        try:
            time.sleep(limit)
            os.write(2, f"lstmtool: error: {message} (no answer after {limit:.0f} s)\n".encode("utf-8", "replace"))
            os.kill(parent, signal.SIGKILL)
        finally:
            os._exit(0)
    try:
        yield
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
