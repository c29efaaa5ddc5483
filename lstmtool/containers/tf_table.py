"""LevelDB's immutable sorted string table, as TensorFlow writes a bundle's `.index`:
reader and writer side by side (tensorflow/core/lib/io/format.cc, block_builder.cc,
table_builder.cc).

Footer: the last 48 bytes (metaindex and index block handles as varints, zero padding, the
magic). Blocks: prefix-compressed entries, restart offsets, their count; each block is
followed by a type byte (0: uncompressed) and the masked CRC32C of block and type byte,
which the reader checks for every block.
"""
from __future__ import annotations

import struct

import google_crc32c

from . import protowire as pw

from .tf_locate import FOOTER_SIZE, TABLE_MAGIC  # noqa: E402 - format facts kept with the locator
TRAILER_SIZE = 5  # compression type byte + masked crc32c
BLOCK_SIZE = 256 << 10  # what TensorFlow's table options use; any size reads back the same
RESTART_INTERVAL = 16


class BundleError(ValueError):
    """What is wrong with a bundle; the reader prefixes the file name."""


def crc32c(data, crc: int = 0) -> int:
    return google_crc32c.extend(crc, bytes(data))


def mask(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _handle(buf, pos):
    offset, pos = pw.read_varint(buf, pos)
    size, pos = pw.read_varint(buf, pos)
    return (offset, size), pos


def _block(data: bytes, handle, what: str):
    """The bytes of one block, its CRC checked; refuses compression."""
    offset, size = handle
    if offset + size + TRAILER_SIZE > len(data):
        raise BundleError(f"{what} runs past the end of the .index file")
    kind = data[offset + size]
    stored = struct.unpack_from("<I", data, offset + size + 1)[0]
    if mask(crc32c(data[offset:offset + size + 1])) != stored:
        raise BundleError(f"{what} fails its CRC32C check (damaged .index)")
    if kind != 0:
        raise BundleError(f"{what} is {'snappy-' if kind == 1 else ''}compressed; TensorFlow writes "
                          "bundles uncompressed and lstmtool reads only those")
    return offset


def _entries(data: bytes, offset: int, size: int):
    """Yield (key, value, absolute value position) of a block's entries."""
    if size < 4:
        raise BundleError("block too small")
    num_restarts = struct.unpack_from("<I", data, offset + size - 4)[0]
    end = offset + size - 4 - 4 * num_restarts
    if end < offset:
        raise BundleError("block restart array larger than the block")
    pos, key = offset, b""
    while pos < end:
        shared, pos = pw.read_varint(data, pos)
        unshared, pos = pw.read_varint(data, pos)
        vlen, pos = pw.read_varint(data, pos)
        if shared > len(key) or pos + unshared + vlen > end:
            raise BundleError("block entry runs past its block")
        key = key[:shared] + data[pos:pos + unshared]
        pos += unshared
        yield key, data[pos:pos + vlen], pos
        pos += vlen


def read_table(data: bytes):
    """[(key, value, value position)] of a whole table, in key order, every block checked.

    Also returns the data block handles (for rewriting their CRCs after a patch)."""
    if len(data) < FOOTER_SIZE:
        raise BundleError("too short to be a checkpoint .index (truncated?)")
    footer = data[-FOOTER_SIZE:]
    if struct.unpack_from("<Q", footer, 40)[0] != TABLE_MAGIC:
        raise BundleError("not a TensorFlow checkpoint index (bad table magic; truncated?)")
    _meta, pos = _handle(footer, 0)
    index_handle, _ = _handle(footer, pos)
    _block(data, index_handle, "index block")
    rows, handles = [], []
    for _, value, _ in _entries(data, *index_handle):
        handle, _ = _handle(value, 0)
        _block(data, handle, f"data block at {handle[0]}")
        handles.append(handle)
        rows.extend(_entries(data, *handle))
    keys = [k for k, _, _ in rows]
    if any(a >= b for a, b in zip(keys, keys[1:])):
        raise BundleError("keys are not in sorted order (damaged .index)")
    return rows, handles


class _BlockBuilder:
    def __init__(self, interval):
        self.interval, self.buf, self.restarts, self.count, self.last = interval, bytearray(), [0], 0, b""

    def add(self, key: bytes, value: bytes):
        shared = 0
        if self.count < self.interval:
            while shared < min(len(key), len(self.last)) and key[shared] == self.last[shared]:
                shared += 1
        else:
            self.restarts.append(len(self.buf))
            self.count = 0
        self.buf += pw.varint(shared) + pw.varint(len(key) - shared) + pw.varint(len(value))
        self.buf += key[shared:] + value
        self.last, self.count = key, self.count + 1

    def finish(self) -> bytes:
        return bytes(self.buf) + b"".join(struct.pack("<I", r) for r in self.restarts) + \
            struct.pack("<I", len(self.restarts))


def write_table(rows) -> bytes:
    """A table TensorFlow reads, from [(key, value)] in key order, uncompressed."""
    out, index = bytearray(), _BlockBuilder(1)

    def flush(block):
        body = block.finish() + b"\x00"
        handle = pw.varint(len(out)) + pw.varint(len(body) - 1)
        out.extend(body + struct.pack("<I", mask(crc32c(body))))
        return handle

    block = _BlockBuilder(RESTART_INTERVAL)
    for key, value in rows:
        block.add(key, value)
        if len(block.buf) >= BLOCK_SIZE:
            index.add(block.last, flush(block))
            block = _BlockBuilder(RESTART_INTERVAL)
    if block.count or not rows:
        index.add(block.last, flush(block))
    meta = flush(_BlockBuilder(RESTART_INTERVAL))
    index_handle = flush(index)
    footer = (meta + index_handle).ljust(40, b"\x00") + struct.pack("<Q", TABLE_MAGIC)
    return bytes(out + footer)
