"""Keras 3 `.keras` archives: config.json, metadata.json and model.weights.h5 in a zip.

Keras stores `model.weights.h5` uncompressed, so lstmtool opens it in place
through a window onto the archive instead of extracting it.
"""
from __future__ import annotations

import io
import json
import posixpath
import struct
import zipfile
import zlib

from ..core.files import PositionedReader
from ..errors import ModelError
from . import crc32

WEIGHTS_MEMBER = "model.weights.h5"
MAX_TEXT_MEMBER = 64 << 20  # config.json / metadata.json: Keras writes kilobytes
ZIP_MAGIC = b"PK\x03\x04"


def check_member_names(zf: zipfile.ZipFile):
    for name in zf.namelist():
        norm = posixpath.normpath(name.replace("\\", "/"))
        if name.startswith(("/", "\\")) or norm.startswith("..") or ":" in name.split("/")[0]:
            raise ModelError(f"refusing archive member with unsafe name {name!r}")


def check_consistent(zf: zipfile.ZipFile, fileobj, filename) -> None:
    """Refuse archives whose members are ambiguous or not what their headers say.

    Keras refuses encrypted and short members; two members of one name, or a stored
    member whose two sizes differ, make the bytes Keras reads differ from the bytes
    an edit would patch."""
    names = zf.namelist()
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})[0]
        raise ModelError(f"{filename}: archive holds two members named {dup!r}; which one a reader "
                         "takes is ambiguous, so lstmtool refuses it")
    fileobj.seek(0, 2)
    size = fileobj.tell()
    starts = sorted(i.header_offset for i in zf.infolist()) + [zf.start_dir]
    for info in zf.infolist():
        if info.flag_bits & 0x1:
            raise ModelError(f"{filename}: archive member {info.filename!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ModelError(f"{filename}: archive member {info.filename!r} uses compression method "
                             f"{info.compress_type}, which Keras never writes (damaged archive?)")
        if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
            raise ModelError(f"{filename}: stored member {info.filename!r} declares {info.file_size} bytes "
                             f"but occupies {info.compress_size}: damaged archive")
        start = member_data_offset(fileobj, info)  # checks the local header is there
        fileobj.seek(info.header_offset + 26)
        name_len = struct.unpack("<H", fileobj.read(2))[0]
        fileobj.seek(info.header_offset + 30)
        if fileobj.read(name_len).decode("utf-8", "replace") != info.filename:
            raise ModelError(f"{filename}: the local header of {info.filename!r} names another member: "
                             "damaged archive")
        end = start + info.compress_size
        following = min([s for s in starts if s > info.header_offset] or [size])
        if end > min(size, following):
            raise ModelError(f"{filename}: archive member {info.filename!r} is shorter than its header "
                             "declares (truncated or damaged archive)")
        if info.filename != WEIGHTS_MEMBER and info.compress_type == zipfile.ZIP_STORED \
                and info.file_size <= MAX_TEXT_MEMBER:
            fileobj.seek(member_data_offset(fileobj, info))
            if zlib.crc32(fileobj.read(info.file_size)) != info.CRC:
                raise ModelError(f"{filename}: archive member {info.filename!r} fails its CRC-32 check")


def crc_of(fileobj, start: int, size: int) -> int:
    fileobj.seek(start)
    crc, left = 0, size
    while left:
        block = fileobj.read(min(left, 1 << 22))
        if not block:
            break
        crc = zlib.crc32(block, crc)
        left -= len(block)
    return crc


def member_data_offset(fileobj, info: zipfile.ZipInfo) -> int:
    """Byte offset of a member's data: after its local header (whose extra field may
    differ from the central directory's)."""
    fileobj.seek(info.header_offset)
    header = fileobj.read(30)
    if len(header) < 30 or header[:4] != ZIP_MAGIC:
        raise ModelError(f"archive member {info.filename!r} has a damaged local header")
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    return info.header_offset + 30 + name_len + extra_len


class Window(PositionedReader):
    """A read-only file object over bytes [start, start+size) of another file."""

    def __init__(self, raw, start: int, size: int):
        self.raw, self.start, self.size, self.pos = raw, start, size, 0

    def readinto(self, buffer):
        n = max(0, min(len(buffer), self.size - self.pos))
        self.raw.seek(self.start + self.pos)
        got = self.raw.readinto(memoryview(buffer)[:n])
        self.pos += got
        return got

    def close(self):
        self.raw.close()
        super().close()


class KerasArchive:
    """What lstmtool needs from a .keras file, read without extracting it."""

    def __init__(self, filename: str, fileobj=None):
        """`fileobj` (a remote file: `clone()` gives independent positions) instead of opening
        `filename`. A remote archive's weights member is not CRC-checked as a whole (that would
        read all of it); every range it is read by is checked for length instead."""
        self.remote = fileobj is not None
        opener = fileobj.clone if self.remote else (lambda: open(filename, "rb"))
        try:
            self.zf = zipfile.ZipFile(fileobj.clone() if self.remote else filename)
        except (zipfile.BadZipFile, OSError, ValueError, struct.error, OverflowError, EOFError) as e:
            raise ModelError(f"{filename}: not a readable zip archive ({e})") from None
        check_member_names(self.zf)
        names = self.zf.namelist()
        if WEIGHTS_MEMBER not in names:
            raise ModelError(f"{filename}: .keras archive has no {WEIGHTS_MEMBER} (members: {', '.join(names)})")
        self.info = self.zf.getinfo(WEIGHTS_MEMBER)
        self.filename, self.crc_checked = filename, self.remote
        with opener() as fh:
            try:
                check_consistent(self.zf, fh, filename)
            except (struct.error, ValueError, OverflowError) as e:
                if isinstance(e, ModelError):
                    raise
                raise ModelError(f"{filename}: damaged zip headers ({e})") from None
        self.config_text = self._member_text("config.json")
        meta = self._member_text("metadata.json")
        try:
            self.metadata = json.loads(meta) if meta else {}
        except ValueError:
            self.metadata = {}
        raw = opener()
        if self.info.compress_type == zipfile.ZIP_STORED:
            self.weights_offset = member_data_offset(raw, self.info)
            self.weights_file = Window(raw, self.weights_offset, self.info.file_size)
        else:  # not what Keras writes, but readable: decompress into memory
            raw.close()
            ratio = self.info.file_size / max(1, self.info.compress_size)
            if ratio > 200:
                raise ModelError(f"{filename}: refusing {WEIGHTS_MEMBER}: it would expand {ratio:.0f}x "
                                 f"to {self.info.file_size} bytes (a zip bomb?)")
            self.weights_offset = None
            self.weights_file = io.BytesIO(self.zf.read(WEIGHTS_MEMBER))

    def check_crc(self):
        """The weights member against its stored CRC-32, once, before its data is used."""
        if self.crc_checked or self.weights_offset is None:  # decompressed members: zipfile checked it
            return
        raw = self.weights_file.raw
        if crc_of(raw, self.weights_offset, self.info.file_size) != self.info.CRC:
            raise ModelError(f"{self.filename}: {WEIGHTS_MEMBER} fails its CRC-32 check (damaged archive); "
                             "Keras would refuse it too")
        self.crc_checked = True

    def _member_text(self, name):
        info = next((i for i in self.zf.infolist() if i.filename == name), None)
        if info is None:
            return None
        if info.file_size > MAX_TEXT_MEMBER or info.file_size > 200 * max(1, info.compress_size) + (1 << 20):
            raise ModelError(f"{self.filename}: refusing {name}: it would expand to {info.file_size} bytes "
                             "(a zip bomb?)")
        try:
            return self.zf.read(name).decode("utf-8")
        except (zipfile.BadZipFile, zlib.error, EOFError) as e:
            raise ModelError(f"{self.filename}: archive member {name} is damaged ({e})") from None
        except UnicodeDecodeError:
            raise ModelError(f"{self.filename}: archive member {name} is not UTF-8 text") from None

    def close(self):
        self.weights_file.close()
        self.zf.close()


# --- writing: the twin of KerasArchive ---------------------------------------------------

LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
CENTRAL_HEADER = struct.Struct("<4sHHHHHHIIIHHHHHII")
END_RECORD = struct.Struct("<4sHHHHIIH")


class MemberWindow(Window):
    """A writable window over a zip member's data region, for h5py: the weights file is
    written in place inside the archive, never copied into it. Its size grows as h5py writes."""

    def __init__(self, raw, start: int):
        super().__init__(raw, start, 0)

    @property
    def end(self):
        return self.size

    def writable(self):
        return True

    def write(self, data):
        self.raw.seek(self.start + self.pos)
        n = self.raw.write(data)
        self.pos += n
        self.size = max(self.size, self.pos)
        return n

    def truncate(self, size=None):
        self.size = self.pos if size is None else size
        return self.size

    def flush(self):
        self.raw.flush()

    def close(self):  # the archive writer owns the file
        io.RawIOBase.close(self)


def _dos_time(t):
    return (t[3] << 11) | (t[4] << 5) | (t[5] // 2), ((t[0] - 1980) << 9) | (t[1] << 5) | t[2]


class ArchiveWriter:
    """Writes a .keras archive as Keras 3 does: stored (uncompressed) members
    metadata.json, config.json, then model.weights.h5, whose HDF5 bytes h5py writes
    straight into the archive through `weights()`."""

    def __init__(self, fh):
        import time

        self.fh, self.entries = fh, []
        self.time, self.date = _dos_time(time.localtime())

    def _local(self, name: bytes, crc, size):
        return LOCAL_HEADER.pack(b"PK\x03\x04", 20, 0x800, 0, self.time, self.date, crc, size, size,
                                 len(name), 0) + name

    def add(self, name: str, data: bytes):
        offset, raw = self.fh.tell(), name.encode("utf-8")
        crc = zlib.crc32(data)
        self.fh.write(self._local(raw, crc, len(data)))
        self.fh.write(data)
        self.entries.append((raw, offset, crc, len(data)))

    def weights(self) -> MemberWindow:
        """A window for h5py; call `close_weights(window)` once h5py has closed the file."""
        self._weights_offset = self.fh.tell()
        self.fh.write(self._local(WEIGHTS_MEMBER.encode(), 0, 0))  # CRC and sizes patched afterwards
        return MemberWindow(self.fh, self.fh.tell())

    def close_weights(self, window: MemberWindow, known=()):
        """`known`: [(offset in the member, size, CRC-32)] of regions whose CRC is already
        known (copied datasets): only the bytes between them are read back."""
        size = window.end
        if size >= 0xFFFFFFFF:
            raise ModelError("the weights are 4 GiB or more: too large for a plain zip archive")
        self.fh.flush()
        # one fsync per file, by the caller after the header is patched: the copied datasets
        # were handed to writeback as they were copied (keras3_tree), so it waits for little
        crc, pos = 0, 0
        for offset, length, region_crc in sorted(known) + [(size, 0, 0)]:
            if offset < pos or offset + length > size:
                raise ModelError("internal: copied regions overlap or leave the weights member")
            crc = crc32.combine(crc, crc_of(self.fh, window.start + pos, offset - pos), offset - pos)
            crc = crc32.combine(crc, region_crc, length)
            pos = offset + length
        self.fh.seek(self._weights_offset + 14)
        self.fh.write(struct.pack("<III", crc, size, size))
        self.fh.seek(window.start + size)
        self.fh.truncate()
        self.entries.append((WEIGHTS_MEMBER.encode(), self._weights_offset, crc, size))

    def finish(self):
        start = self.fh.tell()
        for raw, offset, crc, size in self.entries:
            self.fh.write(CENTRAL_HEADER.pack(b"PK\x01\x02", 20, 20, 0x800, 0, self.time, self.date, crc, size,
                                              size, len(raw), 0, 0, 0, 0, 0o644 << 16, offset) + raw)
        end = self.fh.tell()
        if end >= 0xFFFFFFFF:
            raise ModelError("the archive is 4 GiB or more: too large for a plain zip archive")
        self.fh.write(END_RECORD.pack(b"PK\x05\x06", 0, 0, len(self.entries), len(self.entries),
                                      end - start, start, 0))
