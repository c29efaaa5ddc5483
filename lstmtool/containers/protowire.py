"""The few parts of the protobuf wire format that TensorFlow's checkpoint files use.

Varint fields, length-delimited sub-messages and fixed32 are all a tensor bundle, an
object graph and keras_metadata.pb need; reading them here keeps protobuf (and
TensorFlow's generated modules) off the dependency list. Malformed input raises
ValueError, which the readers turn into one line naming the file.
"""
from __future__ import annotations

import struct

VARINT, FIXED64, BYTES, FIXED32 = 0, 1, 2, 5


def read_varint(buf, pos: int):
    """(value, next position); at most 10 bytes, as protobuf allows."""
    result = shift = 0
    for k in range(10):
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
    raise ValueError("varint longer than 10 bytes")


def fields(buf):
    """Yield (field number, wire type, value): int for numbers, bytes for BYTES."""
    if not isinstance(buf, (bytes, bytearray, memoryview)):
        raise ValueError("a number where a sub-message belongs")
    buf = memoryview(buf)
    pos = 0
    while pos < len(buf):
        key, pos = read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == VARINT:
            value, pos = read_varint(buf, pos)
        elif wire == FIXED32:
            if pos + 4 > len(buf):
                raise ValueError("truncated fixed32")
            value, pos = struct.unpack_from("<I", buf, pos)[0], pos + 4
        elif wire == FIXED64:
            if pos + 8 > len(buf):
                raise ValueError("truncated fixed64")
            value, pos = struct.unpack_from("<Q", buf, pos)[0], pos + 8
        elif wire == BYTES:
            n, pos = read_varint(buf, pos)
            if pos + n > len(buf):
                raise ValueError("length-delimited field runs past its message")
            value, pos = bytes(buf[pos:pos + n]), pos + n
        else:
            raise ValueError(f"wire type {wire} is not used by these files")
        if number == 0:
            raise ValueError("field number 0")
        yield number, wire, value


def message(buf) -> dict:
    """{field number: [values]} of one message, in the order they appear."""
    out = {}
    for number, _, value in fields(buf):
        out.setdefault(number, []).append(value)
    return out


def first(msg: dict, number: int, default=None):
    """The field's first value; with a default, it must be of the default's kind (a
    damaged file can put bytes where a number belongs, and the reverse)."""
    values = msg.get(number)
    if not values:
        return default
    if default is not None and isinstance(default, int) != isinstance(values[0], int):
        raise ValueError(f"field {number} has the wrong wire type")
    return values[0]


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field_varint(number: int, value: int) -> bytes:
    return varint(number << 3 | VARINT) + varint(value)


def field_bytes(number: int, value: bytes) -> bytes:
    return varint(number << 3 | BYTES) + varint(len(value)) + value


def field_fixed32(number: int, value: int) -> bytes:
    return varint(number << 3 | FIXED32) + struct.pack("<I", value)
