"""HDF5 helpers shared by the legacy and Keras 3 readers: attributes and safety."""
from __future__ import annotations

import h5py
import numpy as np

from ..errors import ModelError

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def text(value):
    """An attribute value as str: fixed- or variable-length, bytes or str."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray) and value.shape == ():
        return text(value[()])
    return value if isinstance(value, str) else str(value)


def text_list(group, name) -> list:
    """A list-of-names attribute, following Keras' chunking (`name0`, `name1`, ...).

    An empty list is stored by Keras as a float64 array; that is simply [].
    """
    if name in group.attrs:
        values = group.attrs[name]
    else:
        values, k = [], 0
        while f"{name}{k}" in group.attrs:
            values.extend(list(group.attrs[f"{name}{k}"]))
            k += 1
        if k == 0:
            return []
    arr = np.asarray(values)
    if arr.dtype.kind == "f":  # Keras writes an empty weight list as float64
        return []
    return [text(v) for v in arr.ravel()]


def scan(group, datasets=None, seen=None) -> list:
    """Walk every link once: refuse external links (they would make lstmtool read another
    file) and return the names of all datasets. A group reached twice (hard links can make
    cycles) is walked once."""
    datasets = [] if datasets is None else datasets
    seen = set() if seen is None else seen
    key = h5py.h5o.get_info(group.id).addr
    if key in seen:
        return datasets
    seen.add(key)
    for name in group:
        link = group.get(name, getlink=True)
        if isinstance(link, h5py.ExternalLink):
            raise ModelError(f"refusing HDF5 external link at {group.name.rstrip('/')}/{name} "
                             f"(points to {link.filename})")
        if isinstance(link, h5py.SoftLink):
            continue  # soft links point inside this file (and may form cycles)
        obj = group.get(name)
        if isinstance(obj, h5py.Group):
            scan(obj, datasets, seen)
        elif isinstance(obj, h5py.Dataset):
            datasets.append(obj.name.lstrip("/"))
    return datasets


def check_safe_path(f: h5py.File, path: str):
    """Refuse a dataset whose data lives outside this file (external or virtual storage).

    Links were already checked for the whole file by refuse_external_links at open."""
    obj = f.get(path)
    if isinstance(obj, h5py.Dataset):
        if obj.is_virtual:
            raise ModelError(f"refusing virtual dataset {path!r}: it reads other files")
        if obj.id.get_create_plist().get_external_count() > 0:
            raise ModelError(f"refusing dataset {path!r}: its data lives in an external file")
