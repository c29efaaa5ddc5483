"""The Keras 3 weights tree, as in `.weights.h5` files and inside `.keras` archives.

Keras 3 addresses each layer by a name derived from its class (`lstm`,
`lstm_1`, `bidirectional`, ...), numbered per container in config order; the
layer's own name is only in the `vars` group's `name` attribute (when Keras
wrote one). With a config, walk config and tree together; without one,
infer cells from the tree alone.
"""
from __future__ import annotations

import errno
import os
import re
import threading
import zlib
from dataclasses import dataclass

import h5py

from ..core.config import Spec, walk_cells
from .found import FoundCell
from .hdf5 import check_safe_path, text

ROLES = ("kernel", "recurrent_kernel", "bias")


class Tree:
    """The file's object names with `\\` read as `/`: Keras 3 on Windows wrote group names
    like `layers\\lstm\\cell`. Maps each normalised path to the real HDF5 name."""

    def __init__(self, f):
        self.f = f
        self.real = {"": "/"}
        f.visit(lambda name: self.real.setdefault(name.replace("\\", "/"), name) and None)
        for name in list(self.real):  # parents of backslash names exist only in normalised form
            parts = name.split("/")
            for k in range(1, len(parts)):
                self.real.setdefault("/".join(parts[:k]), None)

    def _norm(self, path):
        return path.strip("/")

    def __contains__(self, path):
        return self._norm(path) in self.real

    def dataset(self, path):
        """The real path of a dataset at normalised `path`, or None."""
        real = self.real.get(self._norm(path))
        if real is None:
            return None
        check_safe_path(self.f, real)
        return "/" + real.lstrip("/") if isinstance(self.f.get(real), h5py.Dataset) else None

    def children(self, path):
        prefix = self._norm(path) + "/" if self._norm(path) else ""
        return sorted({n[len(prefix):].split("/")[0] for n in self.real if n.startswith(prefix) and n != prefix[:-1]
                       and len(n) > len(prefix)})

    def attr(self, path, name):
        real = self.real.get(self._norm(path))
        obj = self.f.get(real) if real else None
        return text(obj.attrs[name]) if obj is not None and name in obj.attrs else None


def is_keras3_tree(f) -> bool:
    if "model_weights" in f or "layer_names" in f.attrs:
        return False
    return "layers" in f or any(k.startswith("layers\\") for k in f.keys())


def snake_case(class_name: str) -> str:
    name = re.sub(r"\W+", "", class_name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def numbered(specs):
    """(spec, tree name) in order, numbering repeated class names like Keras does."""
    used = {}
    for spec in specs:
        name = snake_case(spec.class_name)
        if name in used:
            used[name] += 1
            name = f"{name}_{used[name]}"
        else:
            used[name] = 0
        yield spec, name


def vars_tensors(tree: Tree, vars_path: str, use_bias=True) -> dict:
    roles = ROLES if use_bias else ROLES[:2]
    return {role: tree.dataset(f"{vars_path}/{k}") for k, role in enumerate(roles)}


class Addressing:
    """Where a cell's weights sit in the Keras 3 tree: a path, by class-derived names."""

    def __init__(self, tree: Tree):
        self.tree = tree

    def sublayers(self, spec, where):
        return [(sub, f"{where}/layers/{name}") for sub, name in numbered(spec.layers)]

    def halves(self, where, spec=None):
        return f"{where}/forward_layer", f"{where}/backward_layer"

    def wrapped(self, where):
        return f"{where}/layer"

    def stacked(self, cells, where):
        return [f"{where}/cell/cells/{name}/vars" for _, name in numbered(cells)]

    def single_cell(self, where):
        return f"{where}/cell/vars"

    def cell(self, spec, vars_path, path):
        return cell_at(self.tree, spec, vars_path, path)


def locate(tree: Tree, spec: Spec, path: str = "") -> list:
    """Cells of the model `spec`, whose state is the whole tree."""
    return walk_cells(spec, path, "", Addressing(tree))


def cell_at(tree: Tree, spec: Spec, vars_path: str, path: str) -> FoundCell:
    use_bias = bool(spec.config.get("use_bias", True))
    return FoundCell(path, spec.class_name, spec, vars_tensors(tree, vars_path, use_bias))


def infer(tree: Tree) -> list:
    """Without a config: every `.../cell/vars` (or stacked `cells/*/vars`) is a cell."""
    out = []

    def visit(group_path: str, path: str):
        kids = tree.children(group_path)
        if "forward_layer" in kids and "backward_layer" in kids:
            for half in ("forward", "backward"):
                visit(f"{group_path}/{half}_layer", f"{path}/{half}")
            return
        if "cell" in kids:
            cell = f"{group_path}/cell"
            if "cells" in tree.children(cell):
                names = sorted(tree.children(f"{cell}/cells"), key=_numbered_key)
                for k, name in enumerate(names):
                    found = _inferred(tree, f"{cell}/cells/{name}/vars", f"{path}/cell_{k}")
                    found.notes.append("stacking order unknown without a config: taken from the group names")
                    out.append(found)
            elif "vars" in tree.children(cell):
                out.append(_inferred(tree, f"{cell}/vars", path))
            return
        if "layer" in kids:  # TimeDistributed
            visit(f"{group_path}/layer", path)
        if "layers" in kids:
            for name in tree.children(f"{group_path}/layers"):
                sub = f"{group_path}/layers/{name}"
                label = tree.attr(f"{sub}/vars", "name") or name
                visit(sub, f"{path}/{label}".lstrip("/"))

    visit("", "")
    return out


def _numbered_key(name: str):
    m = re.match(r"^(.*?)(?:_(\d+))?$", name)
    return (int(m[2]) + 1 if m[2] else 0, m[1])


def _inferred(tree: Tree, vars_path: str, path: str) -> FoundCell:
    from .infer import infer_from_shapes

    tensors = vars_tensors(tree, vars_path, use_bias=True)
    shapes = {r: tree.f[p].shape for r, p in tensors.items() if p}
    if tensors["bias"] is None:
        tensors.pop("bias")
    class_name, notes = infer_from_shapes(shapes)
    found = FoundCell(path, class_name or "unrecognised", None, tensors, source="inferred from tensor shapes",
                      notes=notes)
    if class_name is None:  # a cell's place in the tree, weights that fit no cell: listed as incomplete
        found.ambiguous = f"its weights fit no recurrent cell ({'; '.join(notes)})"
    return found


@dataclass
class Stored:
    """A source dataset to copy byte for byte (contiguous, uncompressed) instead of
    decoding it: the kernel copies it file to file."""

    fd: int  # source file descriptor
    offset: int  # absolute offset of the data in the source file
    nbytes: int
    shape: tuple
    h5type: object  # the source's HDF5 datatype, so the bytes mean the same


def stored_or_array(h5, path, fd, base):
    """`Stored` for a plain contiguous dataset of `h5` (itself at `base` in file `fd`), else its array."""
    ds = h5[path]
    offset = ds.id.get_offset()
    if offset is None or ds.chunks is not None or ds.compression or ds.dtype.kind not in "fiu":
        return ds[()]
    return Stored(fd, base + offset, ds.id.get_storage_size(), ds.shape, ds.id.get_type())


class _CrcThread(threading.Thread):
    """CRC-32 of `size` bytes of file `fd` from `offset`, computed in the background."""

    def __init__(self, fd, offset, size):
        super().__init__(daemon=True)
        self.fd, self.offset, self.size, self.value, self.error = fd, offset, size, 0, None
        self.start()

    def run(self):
        try:
            crc, pos, end = 0, self.offset, self.offset + self.size
            while pos < end:
                block = os.pread(self.fd, min(end - pos, 1 << 22), pos)
                if not block:
                    raise OSError("source shorter than its dataset")
                crc = zlib.crc32(block, crc)
                pos += len(block)
            self.value = crc
        except OSError as e:
            self.error = e

    def join(self, timeout=None):
        super().join(timeout)
        if self.error is not None:
            raise self.error


class TreeWriter:
    """Writes the Keras 3 weights tree: the twin of `Tree`. Every saveable object gets a
    `vars` group carrying its name (as Keras writes it), with its weights as `0`, `1`, ...

    `raw` = (file object, offset of the HDF5 file in it) lets `Stored` sources be copied
    straight into their datasets' space."""

    def __init__(self, f: h5py.File, raw=None):
        self.f, self.raw = f, raw
        self.copied = []  # (offset in the HDF5 file, size, CRC-32) of each region copied by the kernel

    def vars(self, path: str, name: str, arrays=(), lpath=None):
        group = self.f.require_group(f"{path}/vars".lstrip("/"))
        group.attrs["name"] = name
        for k, array in enumerate(arrays):
            if isinstance(array, Stored) and self.raw is not None:
                self._copy(group, str(k), array)
            else:
                group.create_dataset(str(k), data=array)

    def _copy(self, group, name, src: Stored):
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)  # its place in the file is fixed now
        dcpl.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
        space = h5py.h5s.create_simple(src.shape) if src.shape else h5py.h5s.create(h5py.h5s.SCALAR)
        ds = h5py.h5d.create(group.id, name.encode(), src.h5type, space, dcpl=dcpl)
        fh, base = self.raw
        fh.flush()
        start = ds.get_offset()
        out_fd, dst, left, src_off = fh.fileno(), base + start, src.nbytes, src.offset
        # While the kernel copies, another thread takes the CRC-32 of the same source bytes
        # (both release the GIL): the archive's CRC then needs no second pass over them.
        crc = _CrcThread(src.fd, src.offset, src.nbytes)
        try:
            copy_range(src.fd, out_fd, left, src_off, dst)
        finally:
            crc.join()
        self.copied.append((start, src.nbytes, crc.value))
        if hasattr(os, "posix_fadvise"):  # start writing these pages to disk now (Linux starts
            # writeback on DONTNEED): the final fsync then waits for less
            os.posix_fadvise(out_fd, base + start, src.nbytes, os.POSIX_FADV_DONTNEED)


# copy_file_range refuses these where source and output are on different filesystems
# (tmpfs /tmp, a docker volume, NFS) or the kernel lacks it: then read and write.
NO_KERNEL_COPY = {errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EBADF}


def copy_range(src_fd, out_fd, count, src_off, dst_off, chunk=1 << 22):
    """Copy `count` bytes at `src_off` to `dst_off`: by the kernel where it can, else by pread/pwrite."""
    while count and hasattr(os, "copy_file_range"):
        try:
            n = os.copy_file_range(src_fd, out_fd, count, src_off, dst_off)
        except OSError as e:
            if e.errno not in NO_KERNEL_COPY:
                raise
            break
        if n == 0:
            raise OSError(errno.EIO, "short copy (the source file shrank?)")
        count, src_off, dst_off = count - n, src_off + n, dst_off + n
    while count:
        data = os.pread(src_fd, min(chunk, count), src_off)
        if not data:
            raise OSError(errno.EIO, "short read (the source file shrank?)")
        written = os.pwrite(out_fd, data, dst_off)
        count, src_off, dst_off = count - written, src_off + written, dst_off + written
