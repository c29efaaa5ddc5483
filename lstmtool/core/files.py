"""Writing files safely, for every job that writes: a temporary file beside the target,
fsynced and renamed over it (`atomic_output`), never onto a device node (`special_kind`),
kernel copies with a fallback across filesystems (`copy_file`)."""
from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import shutil
import tempfile

from ..errors import WriteError

TEMP_TAG = ".lstmtool-tmp"
OWNER = re.compile(re.escape(TEMP_TAG) + r"-(\d+)-")  # the pid in a temporary file's name


class PositionedReader(io.RawIOBase):
    """A read-only, seekable file object whose subclasses only say `size` and `readinto`."""

    pos = 0
    size = 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def seek(self, offset, whence=0):
        base = {0: 0, 1: self.pos, 2: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def tell(self):
        return self.pos


def temp_name_parts(path):
    """(prefix, suffix) of temporary files beside `path`; the suffix names this process."""
    name = os.path.basename(path)
    stem, ext = os.path.splitext(name)
    if name.endswith(".weights.h5"):
        stem, ext = name[: -len(".weights.h5")], ".weights.h5"
    return f".{stem}.", f"{TEMP_TAG}-{os.getpid()}-{ext}"


def temp_beside(path):
    directory = os.path.dirname(os.path.abspath(path))
    prefix, suffix = temp_name_parts(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=directory)
    except OSError as e:
        raise WriteError(f"cannot create a temporary file in {directory}: {e.strerror}") from None
    os.close(fd)
    return tmp


def special_kind(path, directory_ok=False):
    """What `path` is if it exists and is not a regular file (nor a directory, where one is
    the output), else None. Links are judged by what they point to."""
    import stat

    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode) or (directory_ok and stat.S_ISDIR(mode)):
        return None
    for test, name in ((stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
                       (stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket"), (stat.S_ISDIR, "directory")):
        if test(mode):
            return name
    return "special file"


def copy_file(src, dst):
    """Byte copy done by the kernel (copy_file_range) where it can, else by shutil."""
    with open(src, "rb") as fi, open(dst, "wb") as fo:
        size = os.fstat(fi.fileno()).st_size
        done = 0
        try:
            while done < size:
                n = os.copy_file_range(fi.fileno(), fo.fileno(), size - done)
                if n == 0:
                    break
                done += n
        except (AttributeError, OSError) as e:
            if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EIO):
                raise
            fi.seek(done)
            fo.seek(done)
            shutil.copyfileobj(fi, fo, 1 << 22)


@contextlib.contextmanager
def atomic_output(out):
    """Yield an open temporary file beside `out`; when the block ends well, fsync it and
    rename it over `out`. On any failure nothing is left behind and `out` is untouched."""
    with atomic_path(out) as tmp:
        with open(tmp, "w+b") as fh:
            yield fh


@contextlib.contextmanager
def atomic_path(out):
    """atomic_output for writers that open the file themselves (h5py): yields its path."""
    tmp = temp_beside(out)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        new_file_mode(tmp, out)
        os.replace(tmp, out)
        fsync_dir(out)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError):
            reason = "disk full" if e.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT) else (e.strerror or e)
            raise WriteError(f"writing {out} failed ({reason}); nothing written") from None
        raise


def new_file_mode(tmp, out):
    """A new output gets the mode any new file gets (0666 less the umask), not mkstemp's
    0600; a replaced one keeps its mode."""
    if os.path.exists(out):
        shutil.copymode(out, tmp)
        return
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(tmp, 0o666 & ~mask)


def free_backup_name(src):
    """MODEL.bak, or MODEL.bak.2, .3, ... : an earlier backup is never replaced."""
    bak, k = src + ".bak", 1
    while os.path.lexists(bak):
        k += 1
        bak = f"{src}.bak.{k}"
    return bak


def keep_owner_and_mode(src, tmp):
    shutil.copymode(src, tmp)
    st = os.stat(src)
    try:
        os.chown(tmp, st.st_uid, st.st_gid)
    except PermissionError:
        pass  # only root may give a file away; the user keeps what they could create


def fsync_dir(path):
    try:
        fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

