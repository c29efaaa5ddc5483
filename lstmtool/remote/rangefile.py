"""A remote file read by range requests through a block cache.

HDF5 reads its metadata in small pieces scattered over the file (a 340 MB Keras file: 95
reads of 49 KB in all, in 7 separate 64 KiB blocks), so small reads fetch whole 64 KiB
blocks (a run of missing blocks in one request) and keep them; large reads (tensor data)
fetch exactly what is asked, once, uncached. fsspec's own read-ahead is switched off: in
a measurement it fetched more than a whole 42 MB file to list it.

With a cache directory, fetched blocks are kept on disk, keyed by the URL, the size and
the store's ETag/mtime, so a repeated command on an unchanged file fetches nothing.
"""
from __future__ import annotations

import contextvars
import hashlib
import os
import threading
from collections import OrderedDict

from ..core.files import PositionedReader
from ..errors import ModelError, StoreError, UsageError
from .failures import IgnoresRange, call, timeout  # noqa: F401 - call: the one way to reach a store
from .urls import shown

BLOCK = 1 << 16
LARGE = 4 * BLOCK  # reads this size or more are data, fetched as asked
SMALL_FILE = 4 << 20  # a server that ignores Range may still give us a file this small, whole
UNKNOWN = 1 << 62  # the size of a data shard nobody asked the store about
MEMORY_BLOCKS = 1024  # 64 MiB of metadata blocks at most


def _options(url):
    """Each store's own way of saying how long to wait; credentials stay the stores' business."""
    scheme = url.split("://", 1)[0].lower()
    t = timeout()
    if scheme in ("http", "https"):
        import aiohttp

        return {"client_kwargs": {"timeout": aiohttp.ClientTimeout(total=None, sock_connect=t, sock_read=t)}}
    if scheme == "s3":
        return {"config_kwargs": {"connect_timeout": t, "read_timeout": t, "retries": {"max_attempts": 3}}}
    if scheme in ("gs", "gcs"):
        import logging

        os.environ.setdefault("GRPC_VERBOSITY", "ERROR")  # gcsfs probes the bucket type over gRPC
        logging.getLogger("gcsfs").setLevel(logging.ERROR)  # ... and logs its fallback as a warning
        return {"timeout": t}
    return {}


_FILESYSTEMS = {}  # (scheme, timeout, options) -> one filesystem: its connections serve every file of a run
_FS_LOCK = threading.Lock()
# fsspec storage options of the work in hand (lstmtool.scan_one(url, **storage_options)): per
# thread and task, so a Dask worker's tasks with different credentials never share a filesystem
STORAGE_OPTIONS = contextvars.ContextVar("lstmtool_storage_options", default=None)


def filesystem(url, options=None):
    """(fsspec filesystem, path in it) for `url`, with the run's timeouts and `options`."""
    if options is None:
        return _filesystem(url)
    token = STORAGE_OPTIONS.set(dict(options))
    try:
        return _filesystem(url)
    finally:
        STORAGE_OPTIONS.reset(token)


def _filesystem(url):
    try:
        import fsspec
    except ImportError:
        raise UsageError(f"{shown(url)}: remote files need the remote extra: pip install 'lstmtool[remote]'") from None
    extra = STORAGE_OPTIONS.get() or {}
    try:
        key = (url.split("://", 1)[0].lower(), timeout(), repr(sorted(extra.items())))
        with _FS_LOCK:
            fs = _FILESYSTEMS.get(key)
            if fs is None:
                fs = _FILESYSTEMS[key] = fsspec.core.url_to_fs(url, **{**_options(url), **extra})[0]
        return fs, fs._strip_protocol(url)
    except ImportError as e:
        raise UsageError(f"{shown(url)}: the filesystem for this store is not installed ({e}); "
                         "pip install 'lstmtool[remote]'") from None
    except ValueError as e:
        raise UsageError(f"{shown(url)}: {e}") from None


class Stats:
    def __init__(self):
        self.requests, self.bytes = 0, 0
        self.lock = threading.Lock()

    def add(self, n):
        with self.lock:
            self.requests += 1
            self.bytes += n


class RemoteFile(PositionedReader):
    """Seekable and read-only; `clone()` gives another position over the same cache."""

    def __init__(self, url, cache_dir=None, block_size=None, _shared=None, size=None):
        self.url, self.pos = url, 0
        if _shared is not None:
            self.shared = _shared
            return
        self.shared = _Shared(url, cache_dir, block_size or BLOCK, size)

    @property
    def size(self):
        return self.shared.size

    @property
    def stats(self):
        return self.shared.stats

    def clone(self):
        return RemoteFile(self.url, _shared=self.shared)

    def readinto(self, buffer):
        n = max(0, min(len(buffer), self.size - self.pos))
        if n:
            memoryview(buffer)[:n] = self.shared.read(self.pos, n)
        self.pos += n
        return n

    def close(self):
        super().close()


class _Shared:
    def __init__(self, url, cache_dir, block, size=None):
        self.url, self.block, self.stats = url, block, Stats()
        self.lock = threading.RLock()
        self.fs, self.path = _filesystem(url)
        if size is not None:  # told by the caller (a data shard whose index says where tensors end)
            info = {"size": size}
        else:
            info = self._call(self.fs.info, self.path)
            self.stats.add(0)  # the size query is a request too
        if info.get("type") == "directory":
            raise UsageError(f"{shown(url)}: is a directory (name a model file)")
        size = info.get("size")
        if size is None:
            raise ModelError(f"{shown(url)}: the store does not say how large the file is, so it cannot be "
                             "read in ranges; download it first")
        self.size = int(size)
        self.handle = None
        self.blocks = OrderedDict()
        self.whole = None  # the file itself, when a server ignored Range on a small file
        self.disk = None
        if cache_dir:
            tag = str(info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("LastModified") or "")
            key = hashlib.sha256(f"{url}\0{self.size}\0{tag}".encode()).hexdigest()[:32]
            self.disk = os.path.join(os.fspath(cache_dir), key)
            os.makedirs(self.disk, exist_ok=True)

    # -- reading -------------------------------------------------------------------------

    def read(self, start, n) -> bytes:
        if self.whole is not None:
            return self.whole[start:start + n]
        if n >= LARGE:
            return self.fetch(start, start + n)
        first, last = start // self.block, (start + n - 1) // self.block
        with self.lock:
            missing = [k for k in range(first, last + 1) if self._cached(k) is None]
            for a, b in _runs(missing):
                data = self.fetch(a * self.block, min(self.size, (b + 1) * self.block))
                for k in range(a, b + 1):
                    self._keep(k, data[(k - a) * self.block:(k - a + 1) * self.block])
            parts = b"".join(self._cached(k) for k in range(first, last + 1))
        offset = start - first * self.block
        return parts[offset:offset + n]

    def _cached(self, k):
        got = self.blocks.get(k)
        if got is not None:
            self.blocks.move_to_end(k)
            return got
        if self.disk is not None:
            try:
                with open(os.path.join(self.disk, str(k)), "rb") as fh:
                    got = fh.read()
            except OSError:
                return None
            self.blocks[k] = got
            return got
        return None

    def _keep(self, k, data):
        self.blocks[k] = data
        while len(self.blocks) > MEMORY_BLOCKS:
            self.blocks.popitem(last=False)
        if self.disk is not None:
            tmp = os.path.join(self.disk, f".{k}.{os.getpid()}")
            try:
                with open(tmp, "wb") as fh:
                    fh.write(data)
                os.replace(tmp, os.path.join(self.disk, str(k)))
            except OSError:
                pass  # a cache that cannot be written is only slower

    def fetch(self, start, end) -> bytes:
        """Bytes [start, end) in one request, checked for length."""
        end = min(end, self.size)
        if end <= start:
            return b""
        with self.lock:
            if self.handle is None:
                self.handle = self._call(self.fs.open, self.path, "rb", cache_type="none", block_size=self.block,
                                         size=self.size)
            try:
                self.handle.seek(start)
                data = self._call(self.handle.read, end - start)
            except IgnoresRange:
                return self._whole()[start:end]
        self.stats.add(len(data))
        if len(data) != end - start and not (self.size >= UNKNOWN and data):
            raise StoreError(f"{shown(self.url)}: the server sent {len(data)} bytes where {end - start} were asked "
                             "(a truncated response); try again")
        return data

    def _whole(self):
        size = self.size
        if size >= UNKNOWN:  # a data shard opened without a size query: ask the store now
            size = self._call(self.fs.info, self.path).get("size")
            self.stats.add(0)
        if size is None or int(size) > SMALL_FILE:
            what = f"this {int(size):,}-byte file" if size is not None else "this file (of a size it does not say)"
            raise ModelError(f"{shown(self.url)}: the server ignores Range requests, so reading part of "
                             f"{what} would download all of it; download it first")
        self.whole = self._call(self.fs.cat_file, self.path)
        self.stats.add(len(self.whole))
        return self.whole

    def _call(self, fn, *args, **kwargs):
        return call(self.url, fn, *args, **kwargs)


def _runs(ks):
    """[(first, last)] of consecutive integers in sorted `ks`."""
    out = []
    for k in ks:
        if out and k == out[-1][1] + 1:
            out[-1][1] = k
        else:
            out.append([k, k])
    return [tuple(r) for r in out]


class RemoteFiles:
    """The files of a remote SavedModel or checkpoint: small ones (.index, keras_metadata.pb)
    read whole in one request each, data shards by range (only the tensors asked for)."""

    def __init__(self, url, cache_dir=None):
        self.url, self.cache_dir = url, cache_dir
        self.fs, _ = _filesystem(url)
        self.stats, self.whole, self.shards = Stats(), {}, {}

    def _path(self, url):
        return self.fs._strip_protocol(url) if hasattr(self.fs, "_strip_protocol") else url

    def read(self, url, missing_ok=False):
        if url not in self.whole:
            try:
                data = call(url, self.fs.cat_file, self._path(url))
            except ModelError as e:
                if "(404)" not in str(e):
                    raise
                data = None
            self.stats.add(len(data or b""))
            self.whole[url] = data
        data = self.whole[url]
        if data is None and not missing_ok:
            raise ModelError(f"{shown(url)}: no such remote file (404)")
        return data

    def shard(self, url):
        """No size query: the index says where each tensor lies; a shard shorter than that
        shows as a short (truncated) read."""
        if url not in self.shards:
            self.shards[url] = _Shard(RemoteFile(url, cache_dir=self.cache_dir, size=UNKNOWN))
        return self.shards[url]

    @property
    def requests(self):
        return self.stats.requests + sum(s.file.stats.requests for s in self.shards.values())

    @property
    def bytes(self):
        return self.stats.bytes + sum(s.file.stats.bytes for s in self.shards.values())


class _Shard:
    """Slices like the mapped data shard a local bundle reads: `shard[a:b]` fetches those bytes."""

    def __init__(self, file):
        self.file = file

    def __len__(self):
        return self.file.size

    def __getitem__(self, s):
        start, stop, _ = s.indices(self.file.size)
        data = self.file.shared.read(start, stop - start) if stop > start else b""
        if len(data) != stop - start:
            raise ModelError(f"{shown(self.file.url)}: shorter than its index says (truncated data shard)")
        return data
