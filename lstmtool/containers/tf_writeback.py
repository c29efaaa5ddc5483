"""Edits of TF checkpoints and SavedModels that a kill at any instant cannot break.

An edited tensor changes two files: its bytes in a data shard, and its CRC32C in the
.index. Two renames are not one atomic step, so an in-place edit goes through states in
which the index on disk always describes the shards on disk:

1. each touched shard is copied with the new tensors appended after its end, and the
   copy renamed over the shard: the old index never looks past the old end, so the
   checkpoint still loads, old;
2. an index pointing the edited tensors at the appended copies (new offsets, new CRCs)
   is renamed over the .index: it loads, new;
3. the new bytes are written at the tensors' original offsets, which no index on disk
   references now, and fsync'ed;
4. the original index with only the CRC fields (and block checksums) changed is renamed
   over the .index: it loads, new, from the original offsets;
5. the shard is cut back to its original length.

At the end the shard differs from the original only in the edited tensors' bytes and
the index only in their CRCs, as an in-place edit would leave them. Every step is
fsync'ed before the next begins.
"""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
import struct

import numpy as np

from . import tf_bundle
from .tf_locate import locate
from ..errors import ModelError, UsageError, WriteError
from ..core.files import copy_file, free_backup_name, fsync_dir, keep_owner_and_mode, temp_beside


def _new_tensors(bundle, edits) -> dict:
    """{key: (entry, new bytes, masked crc)} with every edit applied to the whole tensor."""
    arrays = {}
    for e in edits:
        entry = bundle.entries.get(e.dataset)
        if entry is None:
            raise ModelError(f"{bundle.prefix}: {e.dataset!r} is not in the checkpoint")
        if entry.sliced:
            raise UsageError(f"{e.dataset}: stored partitioned in slices; lstmtool does not edit partitioned tensors")
        if e.dataset not in arrays:
            arrays[e.dataset] = bundle.array(e.dataset)  # CRC-checked: never edit damaged data
        arrays[e.dataset][e.index] = e.values
    out = {}
    for key, arr in arrays.items():
        data = np.ascontiguousarray(arr, dtype=tf_bundle.DTYPES[bundle.entries[key].dtype_code]).tobytes()
        out[key] = (bundle.entries[key], data, tf_bundle.mask(tf_bundle.crc32c(data)))
    return out


@contextlib.contextmanager
def replacing(path, like):
    """Yield a temporary file beside `path`, open for writing; when the block ends well,
    fsync it, give it `like`'s owner and mode and rename it over `path`."""
    tmp = temp_beside(path)
    try:
        with open(tmp, "r+b") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        keep_owner_and_mode(like, tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_dir(path)


def _copy_into(fh, src):
    """Copy file `src` into the open temporary `fh` (in the kernel where it can) and
    leave `fh` positioned at its end."""
    copy_file(src, fh.name)
    fh.seek(0, os.SEEK_END)


def _replace_with(path, data: bytes, like):
    with replacing(path, like) as fh:
        fh.write(data)


def _patched_index(bundle, new) -> bytes:
    """The original index bytes, only the edited CRC fields and block checksums changed."""
    data = bytearray(bundle.index_bytes)
    for entry, _, crc in new.values():
        if entry.crc_at is None:  # an entry whose CRC field is absent: rebuild the table
            rows, _ = tf_bundle.read_table(bytes(data))
            crcs = {k.encode(): c for k, (_, _, c) in new.items()}
            return tf_bundle.write_table([(k, tf_bundle.with_fields(v, crc=crcs[k]) if k in crcs else v)
                                          for k, v, _ in rows])
        struct.pack_into("<I", data, entry.crc_at, crc)
    for offset, size in bundle.block_handles:
        struct.pack_into("<I", data, offset + size + 1, tf_bundle.mask(tf_bundle.crc32c(data[offset:offset + size + 1])))
    return bytes(data)


def edit_in_place(prefix, edits):
    bundle = tf_bundle.Bundle(prefix)
    try:
        new = _new_tensors(bundle, edits)
        shards = sorted({entry.shard for entry, _, _ in new.values()})
        lengths, moved = {}, {}
        for s in shards:  # step 1
            path = bundle.shard_path(s)
            lengths[s] = os.path.getsize(path)
            with replacing(path, path) as fh:
                _copy_into(fh, path)
                for key, (entry, data, _) in new.items():
                    if entry.shard == s:
                        moved[key] = fh.tell()
                        fh.write(data)
        rows, _ = tf_bundle.read_table(bundle.index_bytes)  # step 2
        keyed = {k.encode(): k for k in new}
        middle = [(k, tf_bundle.with_fields(v, offset=moved[keyed[k]], crc=new[keyed[k]][2]) if k in keyed else v)
                  for k, v, _ in rows]
        _replace_with(bundle.index_path, tf_bundle.write_table(middle), bundle.index_path)
        for s in shards:  # step 3
            with open(bundle.shard_path(s), "r+b") as fh:
                for entry, data, _ in new.values():
                    if entry.shard == s:
                        fh.seek(entry.offset)
                        fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        _replace_with(bundle.index_path, _patched_index(bundle, new), bundle.index_path)  # step 4
        for s in shards:  # step 5
            with open(bundle.shard_path(s), "r+b") as fh:
                fh.truncate(lengths[s])
                os.fsync(fh.fileno())
    finally:
        bundle.close()


def bundle_files(prefix) -> list:
    bundle = tf_bundle.Bundle(prefix)
    try:
        return [bundle.index_path] + [bundle.shard_path(s) for s in range(bundle.num_shards)]
    finally:
        bundle.close()


def copy_checkpoint(prefix, new_prefix):
    """Copy a bundle's files to a new prefix, shards first and the index last."""
    files = bundle_files(prefix)
    for src in files[1:] + files[:1]:
        with replacing(new_prefix + src[len(prefix):], src) as fh:
            _copy_into(fh, src)


def read_back(prefix, edits):
    bundle = tf_bundle.Bundle(prefix)
    try:
        for e in edits:
            got = bundle.array(e.dataset, e.index)
            if got.tobytes() != np.asarray(e.values, dtype=got.dtype).tobytes():
                raise WriteError(f"read-back of {e.dataset} does not match what was written")
    finally:
        bundle.close()


def apply(src, edits, out=None, backup=False, check=None) -> str:
    """Write `edits` into the checkpoint or SavedModel `src` (in place), or into a copy at `out`."""
    loc = locate(src)
    try:
        if out is None or os.path.realpath(out) == os.path.realpath(src):
            if backup:
                _backup(src, loc)
            edit_in_place(loc.prefix, edits)
            read_back(loc.prefix, edits)
            return src
        return _write_copy(src, loc, out, edits, check)
    except tf_bundle.BundleError as e:
        raise ModelError(f"{src}: {e}") from None
    except OSError as e:
        reason = "disk full" if e.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT) else e.strerror
        raise WriteError(f"writing {out or src} failed ({reason}); the checkpoint on disk still loads") from None


def _backup(src, loc):
    if loc.savedmodel is not None:
        bak = free_backup_name(loc.savedmodel.rstrip(os.sep))
        shutil.copytree(loc.savedmodel, bak + ".tmp", symlinks=True)
        os.replace(bak + ".tmp", bak)
    else:
        copy_checkpoint(loc.prefix, free_backup_name(loc.prefix))


def _write_copy(src, loc, out, edits, check):
    """A SavedModel to a new directory (built under a temporary name, then renamed), or a
    checkpoint to a new prefix (shards first, the index last: it is what makes it exist)."""
    if loc.savedmodel is not None:
        tmp = temp_beside(out)
        os.unlink(tmp)
        try:
            shutil.copytree(loc.savedmodel, tmp, symlinks=True)
            prefix = os.path.join(tmp, "variables", "variables")
            edit_in_place(prefix, edits)
            read_back(prefix, edits)
            if check is not None:
                check(tmp)
            old = None
            if os.path.lexists(out):  # --force: the old directory goes only once the new one is in place
                old = temp_beside(out)
                os.unlink(old)
                os.rename(out, old)
            os.rename(tmp, out)
            if old is not None:
                shutil.rmtree(old) if os.path.isdir(old) else os.unlink(old)
            fsync_dir(out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return out
    new_prefix = out[: -len(".index")] if out.endswith(".index") else out
    _write_new_prefix(loc.prefix, new_prefix, edits)
    read_back(new_prefix, edits)
    return new_prefix


def _write_new_prefix(prefix, new_prefix, edits):
    """Edited shards first, then the index, which is what makes the new checkpoint exist:
    a kill before it leaves no checkpoint at `new_prefix`, never a half-edited one."""
    if os.path.lexists(new_prefix + ".index"):  # --force: the old one stops existing first
        os.unlink(new_prefix + ".index")
    bundle = tf_bundle.Bundle(prefix)
    try:
        new = _new_tensors(bundle, edits)
        for s in range(bundle.num_shards):
            src = bundle.shard_path(s)
            with replacing(tf_bundle.shard_name(new_prefix, s, bundle.num_shards), src) as fh:
                _copy_into(fh, src)
                for entry, data, _ in new.values():
                    if entry.shard == s:
                        fh.seek(entry.offset)
                        fh.write(data)
        _replace_with(new_prefix + ".index", _patched_index(bundle, new), bundle.index_path)
    finally:
        bundle.close()
