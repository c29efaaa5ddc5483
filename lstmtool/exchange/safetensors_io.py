"""The safetensors container, read and written with NumPy alone.

Layout: 8-byte little-endian header length, a JSON header
{name: {"dtype", "shape", "data_offsets": [begin, end]}}, then the raw
little-endian tensor bytes. No code is ever loaded from it.
"""
import json
import struct

import numpy as np

from ..errors import UsageError

DTYPES = {"F16": "<f2", "F32": "<f4", "F64": "<f8", "BF16": None, "I32": "<i4", "I64": "<i8"}
CODES = {np.dtype("<f2"): "F16", np.dtype("<f4"): "F32", np.dtype("<f8"): "F64",
         np.dtype("<i4"): "I32", np.dtype("<i8"): "I64"}


def save(path, arrays: dict, metadata=None):
    header, blobs, offset = {}, [], 0
    for name, array in arrays.items():
        a = np.ascontiguousarray(array)
        a = a.astype(a.dtype.newbyteorder("<"))
        code = CODES.get(a.dtype)
        if code is None:
            raise UsageError(f"{name}: dtype {a.dtype} cannot be stored in safetensors here")
        data = a.tobytes()
        header[name] = {"dtype": code, "shape": list(a.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(raw)))
        fh.write(raw)
        for blob in blobs:
            fh.write(blob)


def load(path) -> dict:
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) != 8:
            raise UsageError(f"{path}: not a safetensors file")
        (n,) = struct.unpack("<Q", head)
        if n > 100 << 20:
            raise UsageError(f"{path}: not a safetensors file (header of {n} bytes)")
        try:
            header = json.loads(fh.read(n))
        except ValueError:
            raise UsageError(f"{path}: not a safetensors file (header is not JSON)") from None
        body = fh.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = DTYPES.get(info.get("dtype"))
        if dtype is None:
            raise UsageError(f"{path}: tensor {name} has unsupported dtype {info.get('dtype')}")
        begin, end = info["data_offsets"]
        out[name] = np.frombuffer(body[begin:end], dtype=dtype).reshape(info["shape"]).copy()
    return out
