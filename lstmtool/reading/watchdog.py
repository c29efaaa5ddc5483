"""A deadline for reading a file's metadata, for the command line.

Some damaged HDF5 metadata sends the HDF5 library itself into an endless loop, inside C
code where no Python signal handler or thread can interrupt it. A watchdog process waits; if the read is still running at the deadline it prints the one-line error
and ends the command (exit status 1). Reading the metadata of any real model takes well
under a second (every file in ../shared/realworld: at most 0.17 s); the deadline, 15 s, is what a user waits
for before deciding something is wrong, with room for slow disks (LSTMTOOL_LOAD_TIMEOUT, seconds).
The library itself never forks: only the CLI turns this on.
"""
from __future__ import annotations

import contextlib
import os
import signal

ENABLED = False  # set by the CLI


def seconds() -> float:
    try:
        return float(os.environ.get("LSTMTOOL_LOAD_TIMEOUT", "15"))
    except ValueError:
        return 15.0


# The watchdog is a tiny shell process (spawned, not forked: forking a process that has
# numpy and h5py mapped costs tens of milliseconds, a spawn about one).
SCRIPT = 'sleep "$1"; kill -0 "$2" 2>/dev/null && printf "%s\\n" "$3" >&2 && kill -9 "$2"'


@contextlib.contextmanager
def deadline(message: str):
    limit = seconds()
    if not ENABLED or limit <= 0 or not hasattr(os, "posix_spawn") or not os.path.exists("/bin/sh"):
        yield
        return
    text = f"lstmtool: error: {message} (no answer after {limit:.0f} s)"
    try:
        child = os.posix_spawn("/bin/sh", ["sh", "-c", SCRIPT, "sh", f"{limit:g}", str(os.getpid()), text],
                               dict(os.environ), setsid=True)  # its own group: sh and its sleep end together
    except OSError:  # no watchdog is better than no command
        yield
        return
    try:
        yield
    finally:
        try:
            os.killpg(child, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        os.waitpid(child, 0)


# Damaged metadata can also declare sizes that the HDF5 library allocates before it finds
# them wrong (a variable-length string "4 GB long" in a 35 KB file). While metadata is
# read, the command line caps the address space a little above what the process already
# uses, so such an allocation fails inside the library (one line: damaged file) instead
# of taking the machine's memory. Real metadata needs a few MB.
METADATA_HEADROOM = 256 << 20


def _address_space() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


@contextlib.contextmanager
def memory_cap():
    try:
        import resource
    except ImportError:
        resource = None
    used = _address_space() if ENABLED and resource is not None else 0
    if not used:
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = used + METADATA_HEADROOM
    if (hard != resource.RLIM_INFINITY and cap > hard) or (soft != resource.RLIM_INFINITY and cap > soft):
        yield  # already limited harder than this by whoever started us
        return
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
