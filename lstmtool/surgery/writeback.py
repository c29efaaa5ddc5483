"""Atomic write-back of edited slices.

The user's file is never opened for writing. The new file is a byte copy of the
original (made beside the target, so the final rename stays on one filesystem)
in which only the edited elements are overwritten, at their offsets in the
file, then flushed, fsync'ed, read back and renamed over the target. Every
byte that was not edited is therefore carried over unchanged: datasets,
attributes, optimizer state, configs and, for .keras archives, the other zip
members (only the weights member's CRC is updated).

Datasets HDF5 stores in chunks (never what Keras writes) are edited through
h5py on the temporary copy instead.
"""
from __future__ import annotations

import contextlib
import errno
import os
import struct
from dataclasses import dataclass

import h5py
import numpy as np

from ..containers import crc32
from ..errors import ModelError, UsageError, WriteError
from ..core.files import copy_file, free_backup_name, fsync_dir, keep_owner_and_mode, temp_beside


@dataclass
class Edit:
    """Overwrite `dataset[index]` with `values` (already in the dataset's dtype and shape)."""

    dataset: str
    index: tuple
    values: np.ndarray


def runs(shape, index):
    """(flat element offset, length) of each contiguous run of `index` in a C-order array."""
    bounds = [s.indices(n)[:2] for s, n in zip(index, shape)]
    last_start, last_stop = bounds[-1]
    # trailing axes taken whole merge into longer runs
    k = len(shape) - 1
    run = last_stop - last_start
    while k > 0 and bounds[k] == (0, shape[k]) and run == int(np.prod(shape[k:])):
        k -= 1
        run = (bounds[k][1] - bounds[k][0]) * int(np.prod(shape[k + 1:]))
    lead = [range(a, b) for a, b in bounds[:k]]
    strides = [int(np.prod(shape[i + 1:])) for i in range(len(shape))]
    base = bounds[k][0] * strides[k]
    for combo in np.ndindex(*[len(r) for r in lead]) if lead else [()]:
        off = base + sum((lead[i][c]) * strides[i] for i, c in enumerate(combo))
        yield off, run


class Target:
    """Where the weights HDF5 sits inside the file: at 0, or inside a .keras zip."""

    def __init__(self, filename):
        self.filename = filename
        self.zip_info = None
        self.offset = 0
        with open(filename, "rb") as fh:
            if fh.read(4) == b"PK\x03\x04":  # zipfile only for archives: .h5 edits skip its import
                import zipfile

                from ..containers.keras_zip import WEIGHTS_MEMBER, check_consistent, crc_of, member_data_offset

                with zipfile.ZipFile(filename) as zf:
                    check_consistent(zf, fh, filename)
                    self.zip_info = zf.getinfo(WEIGHTS_MEMBER)
                if self.zip_info.compress_type != zipfile.ZIP_STORED:
                    raise UsageError(f"{filename}: {WEIGHTS_MEMBER} is compressed in this archive; "
                                     "lstmtool edits only archives as Keras writes them (stored)")
                self.offset = member_data_offset(fh, self.zip_info)
                if crc_of(fh, self.offset, self.zip_info.file_size) != self.zip_info.CRC:
                    raise ModelError(f"{filename}: {WEIGHTS_MEMBER} fails its CRC-32 check; refusing to edit "
                                     "a damaged archive")

    @contextlib.contextmanager
    def open_h5(self, filename):
        """The weights HDF5 of `filename` (a copy of the target), read-only; closes all it opens."""
        if self.zip_info is None:
            with h5py.File(filename, "r") as f:
                yield f
            return
        from ..containers.keras_zip import Window

        with Window(open(filename, "rb"), self.offset, self.zip_info.file_size) as window:
            with h5py.File(window, "r") as f:
                yield f


def plan_raw(target: Target, edits):
    """[(absolute file offset, bytes)] for contiguous datasets; None if any is chunked."""
    writes = []
    with target.open_h5(target.filename) as f:
        for e in edits:
            ds = f[e.dataset]
            offset = ds.id.get_offset()
            if offset is None or ds.chunks is not None or ds.compression:
                return None
            values = np.ascontiguousarray(e.values, dtype=ds.dtype)
            flat = values.reshape(-1).view(np.uint8).reshape(-1, ds.dtype.itemsize)
            pos = 0
            for start, length in runs(ds.shape, e.index):
                chunk = flat[pos: pos + length].tobytes()
                writes.append((target.offset + offset + start * ds.dtype.itemsize, chunk))
                pos += length
    return writes



def store_zip_crc(tmp, target: Target, crc: int):
    """Write the weights member's new CRC-32 into both zip headers."""
    from ..containers.keras_zip import WEIGHTS_MEMBER

    info = target.zip_info
    with open(tmp, "r+b") as fh:
        packed = struct.pack("<I", crc & 0xFFFFFFFF)
        fh.seek(info.header_offset + 14)
        fh.write(packed)
        fh.seek(central_entry_offset(fh, WEIGHTS_MEMBER) + 16)
        fh.write(packed)


def central_entry_offset(fh, member):
    fh.seek(0, 2)
    size = fh.tell()
    fh.seek(max(0, size - 65557))
    tail = fh.read()
    eocd = tail.rfind(b"PK\x05\x06")
    if eocd < 0:
        raise WriteError("zip end-of-central-directory record not found")
    count, _size, cd_offset = struct.unpack("<HII", tail[eocd + 10: eocd + 20])
    fh.seek(cd_offset)
    pos = cd_offset
    for _ in range(count):
        header = fh.read(46)
        if header[:4] != b"PK\x01\x02":
            break
        n, m, k = struct.unpack("<HHH", header[28:34])
        name = fh.read(n).decode("utf-8", "replace")
        if name == member:
            return pos
        fh.seek(m + k, 1)
        pos += 46 + n + m + k
    raise WriteError(f"{member} not found in the zip central directory")


def apply(src, edits, out=None, backup=False, check=None):
    """Write `edits` to a copy of `src` and rename it over `out` (default: `src`)."""
    # In place through a symlink edits the file it points to, and leaves the link a link.
    out = os.path.realpath(out or src)
    in_place = out == os.path.realpath(src)
    if os.path.exists(out) and not (os.stat(out).st_mode & 0o222 and os.access(out, os.W_OK)):
        raise WriteError(f"{out}: file is read-only; nothing written")
    target = Target(src)
    writes = plan_raw(target, edits)
    if writes is None and target.zip_info is not None:
        raise UsageError(f"{src}: chunked datasets inside a .keras archive are not supported for editing")
    tmp, bak = temp_beside(out), None
    try:
        copy_file(src, tmp)
        if writes is not None:
            changes = []  # (offset in the zip member, old bytes, new bytes) for its CRC
            with open(tmp, "r+b") as fh:
                for offset, data in writes:
                    if target.zip_info is not None:
                        fh.seek(offset)
                        changes.append((offset - target.offset, fh.read(len(data)), data))
                    fh.seek(offset)
                    fh.write(data)
            if target.zip_info is not None:
                info = target.zip_info
                store_zip_crc(tmp, target, crc32.updated(info.CRC, info.file_size, changes))
        else:
            with h5py.File(tmp, "r+") as f:
                for e in edits:
                    f[e.dataset][e.index] = e.values
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        keep_owner_and_mode(src, tmp)
        read_back(tmp, target, edits)
        if check is not None:
            check(tmp)
        if backup and in_place:
            bak = free_backup_name(src)
            copy_file(src, bak + ".tmp")
            os.replace(bak + ".tmp", bak)
        os.replace(tmp, out)
        fsync_dir(out)
    except BaseException as e:
        for leftover in (tmp, (bak + ".tmp") if bak else None):
            if leftover and os.path.exists(leftover):
                os.unlink(leftover)
        if isinstance(e, OSError):
            reason = "disk full" if e.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT) else e.strerror
            raise WriteError(f"writing {out} failed ({reason}); the original is unchanged") from None
        if isinstance(e, Exception) and os.path.basename(tmp) in str(e):  # never name our temporary file
            said = str(e).replace(tmp, out).replace(os.path.basename(tmp), os.path.basename(out))
            raise WriteError(f"writing {out} failed ({said}); the original is unchanged") from None
        raise
    return out


def read_back(tmp, target, edits):
    """Re-read every edited slice from the new file; it must hold exactly the new values."""
    with target.open_h5(tmp) as f:
        for e in edits:
            got = f[e.dataset][e.index]
            want = np.asarray(e.values, dtype=got.dtype)
            if got.tobytes() != want.tobytes():
                raise WriteError(f"read-back of {e.dataset} does not match what was written")

