"""TensorFlow tensor bundles (TF-format checkpoints, SavedModel `variables/`): reader and writer.

On disk, a bundle is `PREFIX.index`, an immutable sorted string table (LevelDB's format)
mapping tensor names to BundleEntryProto values, and `PREFIX.data-SSSSS-of-NNNNN`
shards of raw little-endian tensor bytes. Facts and their TensorFlow sources:
../shared/reference/tf-checkpoints.md, and docs/formats.md.

Every tensor's CRC32C is checked the first time it is read (a corrupted tensor is an
error naming it, never silent data); after that, slices read only their own bytes
through a read-only memory map.
"""
from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass
from typing import Optional

import numpy as np

from . import protowire as pw
from .tf_table import (FOOTER_SIZE, TABLE_MAGIC, TRAILER_SIZE, BundleError, _entries, _handle, crc32c, mask,
                       read_table, write_table)

# The table's names are re-exported: a bundle is what users (and tests) open.
__all__ = ["Bundle", "BundleError", "Entry", "DTYPES", "FOOTER_SIZE", "TABLE_MAGIC", "TRAILER_SIZE", "_entries",
           "_handle", "crc32c", "mask", "parse_entry", "read_table", "shard_name", "slice_extents", "slice_key",
           "with_fields", "write_table"]

# tensorflow/core/framework/types.proto: the DataType numbers a checkpoint can hold
DTYPES = {1: "<f4", 2: "<f8", 3: "<i4", 4: "u1", 5: "<i2", 6: "i1", 9: "<i8", 10: "?", 17: "<u2",
          19: "<f2", 22: "<u4", 23: "<u8"}
DT_STRING, DT_BFLOAT16 = 7, 14
DTYPE_NAMES = {7: "string", 14: "bfloat16"}


def shard_name(prefix: str, shard: int, num_shards: int) -> str:
    return f"{prefix}.data-{shard:05d}-of-{num_shards:05d}"


@dataclass
class Entry:
    """One tensor's BundleEntryProto, and where its value sits in the .index file."""

    key: str
    dtype_code: int
    shape: tuple
    shard: int
    offset: int
    size: int
    crc: int  # masked crc32c of the tensor's bytes, as stored
    sliced: bool
    raw: bytes  # the serialized BundleEntryProto
    crc_at: Optional[int]  # absolute position of the 4 crc bytes in the .index file
    slices: tuple = ()  # serialized TensorSliceProtos of a partitioned tensor

    @property
    def dtype(self) -> str:
        return DTYPES.get(self.dtype_code) or DTYPE_NAMES.get(self.dtype_code, f"dtype#{self.dtype_code}")

    @property
    def numeric(self) -> bool:
        return self.dtype_code in DTYPES


# ---------------------------------------------------------------- entries

def parse_entry(key: str, raw: bytes, value_pos: int) -> Entry:
    msg, crc_at, pos = {}, None, 0
    for number, wire, value in pw.fields(raw):
        msg.setdefault(number, []).append(value)
    # where field 6 (fixed32 crc) sits: its tag byte is 0x35, then 4 bytes
    buf = memoryview(raw)
    while pos < len(buf):
        start = pos
        tag, pos = pw.read_varint(buf, pos)
        wire = tag & 7
        if wire == pw.VARINT:
            _, pos = pw.read_varint(buf, pos)
        elif wire == pw.FIXED32:
            if tag >> 3 == 6:
                crc_at = value_pos + start + 1
            pos += 4
        elif wire == pw.FIXED64:
            pos += 8
        else:
            n, pos = pw.read_varint(buf, pos)
            pos += n
    dims = [pw.first(pw.message(d), 1, 0) for d in pw.message(pw.first(msg, 2, b"")).get(2, [])]
    if any(d < 0 or d > (1 << 40) for d in dims):
        raise BundleError(f"tensor {key!r} has an impossible shape {dims}")
    return Entry(key, pw.first(msg, 1, 0), tuple(dims), pw.first(msg, 3, 0), pw.first(msg, 4, 0),
                 pw.first(msg, 5, 0), pw.first(msg, 6, 0), bool(msg.get(7)), raw, crc_at, tuple(msg.get(7, ())))


def with_fields(raw: bytes, **values) -> bytes:
    """The entry `raw` with fields offset (4) and/or crc (6) replaced, other fields as they were."""
    numbers = {"offset": 4, "crc": 6}
    new = {numbers[k]: v for k, v in values.items()}
    items = [(n, w, v) for n, w, v in pw.fields(raw) if n not in new]
    items += [(n, pw.FIXED32 if n == 6 else pw.VARINT, v) for n, v in new.items()]
    out = b""
    for n, w, v in sorted(items, key=lambda t: t[0]):
        out += (pw.field_fixed32(n, v) if w == pw.FIXED32 else pw.field_varint(n, v) if w == pw.VARINT
                else pw.field_bytes(n, v))
    return out


# ---------------------------------------------------------------- partitioned tensors

def _signed_increasing(n: int) -> bytes:
    """OrderedCode's WriteSignedNumIncreasing (tensorflow/core/lib/strings/ordered_code.cc)."""
    x = ~n if n < 0 else n
    length = min(x.bit_length() // 7 + 1, 10)
    body = (n & ((1 << (8 * length)) - 1)).to_bytes(length, "big")
    header = ((0xFF << (8 - length)) & 0xFF) if length <= 8 else 0xFF
    out = bytearray(body)
    out[0] ^= header
    if length > 8:
        out[1] ^= (0xFF << (16 - length)) & 0xFF
    return bytes(out)


def slice_key(name: str, extents) -> bytes:
    """The key of one slice of a partitioned tensor (EncodeTensorNameSlice): `extents` is
    [(start, length or -1 for the whole axis)]."""
    escaped = name.encode("utf-8").replace(b"\xff", b"\xff\x00").replace(b"\x00", b"\x00\xff")
    ndims = len(extents).to_bytes(max(1, (len(extents).bit_length() + 7) // 8), "big")
    out = b"\x00" + escaped + b"\x00\x01" + (bytes([len(ndims)]) + ndims if extents else b"\x00")
    return out + b"".join(_signed_increasing(s) + _signed_increasing(n) for s, n in extents)


def slice_extents(raw_slices, shape) -> list:
    """[(start, length)] per axis of each TensorSliceProto {1: extent {1: start, 2: length}}."""
    out = []
    for raw in raw_slices:
        extents = []
        for axis, ext in enumerate(pw.message(raw).get(1, [])):
            m = pw.message(ext)
            extents.append((pw.first(m, 1, 0), pw.first(m, 2, -1) if 2 in m else -1))
        extents += [(0, -1)] * (len(shape) - len(extents))
        out.append(extents)
    return out


# ---------------------------------------------------------------- the bundle

class Bundle:
    """An open bundle: its entries (by key, in file order) and lazily mapped shards."""

    def __init__(self, prefix: str, files=None):
        """`files` (remote bundles): `read(path) -> bytes` and `shard(path)`, an object that
        slices like the mapped file (`data[a:b]`, `len(data)`) by fetching those bytes."""
        self.prefix, self.files = prefix, files
        self.index_path = prefix + ".index"
        if files is not None:
            self.index_bytes = files.read(self.index_path)
        else:
            with open(self.index_path, "rb") as fh:
                self.index_bytes = fh.read()
        rows, self.block_handles = read_table(self.index_bytes)
        if not rows or rows[0][0] != b"":
            raise BundleError("no bundle header (first key is not empty)")
        header = pw.message(rows[0][1])
        self.num_shards = pw.first(header, 1, 1)
        if pw.first(header, 2, 0) != 0:
            raise BundleError("big-endian bundle; lstmtool reads little-endian bundles only")
        if not 1 <= self.num_shards <= 100000:
            raise BundleError(f"header declares {self.num_shards} data shards")
        self.entries, self.slice_entries = {}, {}
        for key, value, pos in rows[1:]:
            if key.startswith(b"\x00"):  # one slice of a partitioned tensor
                self.slice_entries[key] = parse_entry(repr(key), value, pos)
                continue
            try:
                name = key.decode("utf-8")
            except UnicodeDecodeError:
                raise BundleError("a tensor name is not UTF-8") from None
            self.entries[name] = parse_entry(name, value, pos)
        self._maps, self._verified = {}, set()
        for e in self.entries.values():
            self._check_fits(e)

    def shard_path(self, shard: int) -> str:
        return shard_name(self.prefix, shard, self.num_shards)

    def _check_fits(self, e: Entry):
        if e.sliced:
            for extents in slice_extents(e.slices, e.shape):
                if slice_key(e.key, extents) not in self.slice_entries:
                    raise BundleError(f"partitioned tensor {e.key!r} lacks its slice {extents}")
            return
        if e.shard >= self.num_shards:
            raise BundleError(f"tensor {e.key!r} names data shard {e.shard} of {self.num_shards}")
        if e.numeric:
            want = int(np.prod(e.shape, dtype=np.int64)) * np.dtype(DTYPES[e.dtype_code]).itemsize
            if want != e.size:
                raise BundleError(f"tensor {e.key!r}: shape {e.shape} needs {want} bytes, entry says {e.size}")

    def _map(self, shard: int):
        if shard not in self._maps and self.files is not None:
            self._maps[shard] = self.files.shard(self.shard_path(shard))
        if shard not in self._maps:
            path = self.shard_path(shard)
            try:
                with open(path, "rb") as fh:
                    size = os.fstat(fh.fileno()).st_size
                    self._maps[shard] = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
            except FileNotFoundError:
                raise BundleError(f"data shard {os.path.basename(path)} is missing") from None
        return self._maps[shard]

    def raw_bytes(self, e: Entry, checked=True):
        """The tensor's bytes, CRC32C checked (once per tensor per open bundle)."""
        data = self._map(e.shard)
        if e.offset + e.size > len(data):
            raise BundleError(f"tensor {e.key!r} runs past the end of {os.path.basename(self.shard_path(e.shard))} "
                              "(truncated shard?)")
        view = memoryview(data)[e.offset:e.offset + e.size] if isinstance(data, (bytes, mmap.mmap)) \
            else memoryview(data[e.offset:e.offset + e.size])  # a remote shard: those bytes, fetched
        if checked and e.key not in self._verified:
            crc, step = 0, 8 << 20
            for start in range(0, e.size, step):  # in pieces, each dropped once checked
                crc = crc32c(view[start:start + step], crc)
                self._forget(data, e, start, min(step, e.size - start))
            crc = mask(crc)
            if crc != e.crc:
                view.release()  # no view of the map may outlive the error, or the map cannot close
            self._check_crc(e, crc)
        return view

    @staticmethod
    def _forget(data, e: Entry, begin=0, length=None):
        """Unmap pages of a tensor that were read (they stay in the page cache), so that
        memory holds at most the piece being read, never a whole tensor or shard."""
        if isinstance(data, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
            first = e.offset + begin
            start = first - first % mmap.PAGESIZE
            try:
                data.madvise(mmap.MADV_DONTNEED, start, first + (e.size - begin if length is None else length) - start)
            except OSError:
                pass

    def _check_crc(self, e: Entry, crc: int):
        if crc != e.crc:
            raise BundleError(f"tensor {e.key!r} fails its CRC32C check (damaged data shard)")
        self._verified.add(e.key)

    def array(self, key: str, index=None) -> np.ndarray:
        """A numeric tensor (or `tensor[index]`), as a fresh array."""
        e = self.entries[key]
        if not e.numeric:
            raise BundleError(f"tensor {key!r} holds {e.dtype} values")
        if e.sliced:
            return np.array(self._assemble(e)[() if index is None else index])
        arr = np.frombuffer(self.raw_bytes(e), dtype=DTYPES[e.dtype_code]).reshape(e.shape)
        out = np.array(arr if index is None else arr[index])
        del arr
        self._forget(self._map(e.shard), e)  # what was read is copied: hold no pages of it
        return out

    def _assemble(self, e: Entry) -> np.ndarray:
        """A partitioned tensor from its slices (each one CRC-checked)."""
        out = np.zeros(e.shape, dtype=DTYPES[e.dtype_code])
        for extents in slice_extents(e.slices, e.shape):
            part = self.slice_entries[slice_key(e.key, extents)]
            index = tuple(slice(s, s + n if n >= 0 else None) for s, n in extents)
            if part.shape != out[index].shape or part.dtype_code != e.dtype_code:
                raise BundleError(f"partitioned tensor {e.key!r}: a slice does not fit {extents}")
            self._check_fits(part)
            out[index] = np.frombuffer(self.raw_bytes(part), dtype=DTYPES[e.dtype_code]).reshape(part.shape)
        return out

    def strings(self, key: str) -> list:
        """A string tensor: varint lengths, a masked crc of the lengths, then the bytes.

        Its checksum runs over each length as a little-endian uint32 (not the varint),
        the 4 length-checksum bytes, then the strings (tensor_bundle.cc)."""
        e = self.entries[key]
        if e.dtype_code != DT_STRING or e.sliced:
            raise BundleError(f"tensor {key!r} is not a string tensor")
        buf = bytes(self.raw_bytes(e, checked=False))
        n = int(np.prod(e.shape, dtype=np.int64))
        lengths, pos = [], 0
        for _ in range(n):
            length, pos = pw.read_varint(buf, pos)
            lengths.append(length)
        if sum(lengths) + pos + (4 if n else 0) != len(buf):
            raise BundleError(f"string tensor {key!r} does not add up to its size")
        crc = crc32c(b"".join(struct.pack("<I", n & 0xFFFFFFFF) for n in lengths)) if n else 0
        if n:
            crc = crc32c(buf[pos:pos + 4], crc)
            pos += 4
        out = []
        for length in lengths:
            out.append(buf[pos:pos + length])
            crc = crc32c(out[-1], crc) if length else crc
            pos += length
        self._check_crc(e, mask(crc))
        return out

    def close(self):
        for m in self._maps.values():
            if isinstance(m, mmap.mmap):
                try:
                    m.close()
                except BufferError:  # an array still looks at it: the map closes when that goes
                    pass
        self._maps = {}
