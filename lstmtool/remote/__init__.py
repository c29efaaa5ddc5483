"""Model files where they live: s3://, gs://, hf:// and http(s):// read by range requests.

Only the bytes a command needs are fetched: HDF5 metadata through a block cache sized for
it, a .keras archive's directory and its weights member in place, and the slices asked
for. The stores' own filesystems (fsspec: s3fs, gcsfs, huggingface_hub, aiohttp for
HTTP) do the talking and follow each store's credential conventions; they are imported
only when a remote path is given, and installed by the `lstmtool[remote]` extra.
"""
from __future__ import annotations

import contextlib

from .urls import SCHEMES, is_remote, shown  # noqa: F401


def open_remote(url: str, cache_dir=None, block_size=None):
    """A seekable, read-only file object over the remote file at `url` (see rangefile)."""
    from .rangefile import RemoteFile

    return RemoteFile(url, cache_dir=cache_dir, block_size=block_size)


@contextlib.contextmanager
def downloaded(url: str, beside: str):
    """The whole remote file as a temporary local file beside `beside` (an edit's output),
    removed afterwards: edits of a remote file work on a local copy."""
    import os
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=".lstmtool-download-", suffix=os.path.splitext(url.split("?")[0])[1],
                               dir=os.path.dirname(os.path.abspath(beside)))
    os.close(fd)
    try:
        source = open_remote(url)
        with open(tmp, "wb") as fh:
            pos = 0
            while pos < source.size:
                data = source.shared.fetch(pos, min(source.size, pos + (8 << 20)))
                fh.write(data)
                pos += len(data)
        yield tmp
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
