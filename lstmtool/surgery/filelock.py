"""One writer at a time per model file, and temporary files that name their owner.

An edit reads the target, plans, writes a copy and renames it over the target.
Two edits of one file interleaved that way lose the first (or, in a .keras, store
a CRC computed from the old bytes), so each holds an advisory lock on the file
from before it reads it until after the rename.

The lock is taken on the file itself (no lock files to leave behind), as an
open-file-description lock (Linux F_OFD_SETLK): unlike flock it does not collide
with the shared flock HDF5 takes on every file it opens, even in this process,
and unlike a classic POSIX lock it is not dropped when h5py closes its own
descriptor of the file. Elsewhere lstmtool falls back to flock. The rename
replaces the inode, so a writer that waited on the old inode checks, once it holds
the lock, that the path still names the file it locked, and otherwise locks the
new one: it then plans from what the first writer wrote.
"""
from __future__ import annotations

import contextlib
import os
import struct
import time

from ..core.files import OWNER, TEMP_TAG, temp_name_parts
from ..errors import WriteError

try:
    import fcntl
except ImportError:  # not POSIX: no advisory locks; edits stay atomic, not serialised
    fcntl = None

OFD = getattr(fcntl, "F_OFD_SETLK", None)


def _try_lock(fd) -> bool:
    """One non-blocking attempt at an exclusive lock on the whole file."""
    try:
        if OFD is not None:
            # struct flock: l_type, l_whence, l_start, l_len, l_pid (0 for OFD locks)
            fcntl.fcntl(fd, OFD, struct.pack("@hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0))
        else:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except (BlockingIOError, PermissionError):
        return False



WAIT_NOTICE = 0.5  # seconds of waiting before the user is told whom they wait for
NOTIFY = None  # set by the CLI: a function taking one line (the library itself prints nothing)


def holder(path):
    """`pid N (command)` of a process holding a lock on `path`, or '' if it cannot be told.

    Open-file-description locks show no pid in /proc/locks, so the holder is found by the
    `lock:` lines of /proc/PID/fdinfo (Linux; read once, only while waiting)."""
    try:
        st = os.stat(path)
        pids = [p for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()]
    except OSError:
        return ""
    inode = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fdinfo")
        except OSError:
            continue
        for fd in fds:
            try:
                with open(f"/proc/{pid}/fdinfo/{fd}") as fh:
                    info = fh.read()
            except OSError:
                continue
            if any(line.startswith("lock:") and inode in line for line in info.splitlines()):
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as fh:
                        cmd = fh.read().replace(b"\0", b" ").decode(errors="replace").strip()[:60]
                except OSError:
                    cmd = ""
                return f"pid {pid}" + (f": {cmd}" if cmd else "")
    return ""


def _waiting(path, started, told):
    if told or NOTIFY is None or time.monotonic() - started < WAIT_NOTICE:
        return told
    who = holder(path)
    NOTIFY(f"waiting: {path} is being edited by another process{' (' + who + ')' if who else ''}; "
           "lstmtool goes on when it is done (--no-wait to give up instead)")
    return True


def _lock_one(path, wait: bool, timeout: float):
    real = os.path.realpath(path)
    deadline = time.monotonic() + timeout
    started, told = time.monotonic(), False
    while True:
        try:
            fd = os.open(real, os.O_RDWR if OFD is not None else os.O_RDONLY)  # write locks need O_RDWR
        except OSError:
            return None  # no file yet (a new -o), or not writable: the edit itself says why
        try:
            while not _try_lock(fd):
                if not wait:
                    raise WriteError(f"{path}: another lstmtool run is editing this file; nothing written "
                                     "(without --no-wait, lstmtool waits for it)")
                if time.monotonic() > deadline:
                    raise WriteError(f"{path}: still being edited by another process after {timeout:.0f} s; "
                                     "nothing written")
                told = _waiting(real, started, told)
                time.sleep(0.02)
            held, now = os.fstat(fd), _stat(real)
            if now is not None and (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino):
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # replaced while we waited: lock the file that is there now


def _lock_path(path):
    """A TF checkpoint or SavedModel is several files, some replaced by rename mid-edit:
    its directory is what stays put, so that is what is locked."""
    from ..containers.tf_locate import locate

    try:
        loc = locate(path)
    except Exception:  # noqa: BLE001  (a damaged checkpoint: the edit itself reports it)
        loc = None
    if loc is not None:
        return os.path.realpath(os.path.dirname(os.path.abspath(loc.prefix)))
    return os.path.realpath(path)


def _lock_dir(path, wait: bool, timeout: float):
    """flock on a directory (HDF5 never locks directories, so flock is safe here)."""
    deadline = time.monotonic() + timeout
    started, told = time.monotonic(), False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                if not wait:
                    raise WriteError(f"{path}: another lstmtool run is editing this checkpoint; nothing written "
                                     "(without --no-wait, lstmtool waits for it)") from None
                if time.monotonic() > deadline:
                    raise WriteError(f"{path}: still being edited by another process after {timeout:.0f} s; "
                                     "nothing written") from None
                told = _waiting(path, started, told)
                time.sleep(0.02)
    except BaseException:
        os.close(fd)
        raise


def _stat(path):
    try:
        return os.stat(path)
    except OSError:
        return None


@contextlib.contextmanager
def locked(paths, wait: bool = True, timeout: float = 600.0):
    """Hold an exclusive advisory lock on every existing file of `paths` for the block.

    Files are locked in one order (by real path), so two runs over the same files
    never wait for each other in a cycle."""
    fds = []
    try:
        if fcntl is not None:
            for real in sorted({_lock_path(p) for p in paths if p}):
                fd = _lock_dir(real, wait, timeout) if os.path.isdir(real) else _lock_one(real, wait, timeout)
                if fd is not None:
                    fds.append(fd)
        yield
    finally:
        for fd in fds:
            os.close(fd)  # closing releases the lock



def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def leftovers(path) -> list:
    """Temporary files beside `path` whose owning process is gone (killed, power cut).

    A temporary file of a live process is another run at work, never called abandoned."""
    directory = os.path.dirname(os.path.abspath(path))
    prefix = temp_name_parts(path)[0]
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    stale = []
    for n in names:
        if not (n.startswith(prefix) and TEMP_TAG in n):
            continue
        owner = OWNER.search(n)
        if owner and int(owner[1]) != os.getpid() and _alive(int(owner[1])):
            continue
        stale.append(os.path.join(directory, n))
    return sorted(stale)
