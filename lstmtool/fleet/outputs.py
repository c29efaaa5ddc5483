"""Where a many-file job's outputs go, and how each arrives whole: never a partial file or
object under its final name.

Local: written under a hidden temporary name in the output's own directory (same
filesystem), fsynced by the writer, renamed into place. Remote (s3://, gs://, ...): written
to a local temporary file, uploaded to a temporary key beside the final one, moved into
place (the final key appears complete or not at all), the temporary key removed on failure.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
import uuid

from ..errors import StoreError, WriteError
from ..remote import urls

PARTIAL = ".lstmtool-partial-"


def suffix_of(name: str) -> str:
    return ".weights.h5" if name.endswith(".weights.h5") else os.path.splitext(name)[1]


def output_name(rel: str, job: str) -> str:
    """The output's path under -o DIR: upgrade writes .keras (a weights-only input a
    .weights.h5: decided when the input is read), edits keep the input's name."""
    if job != "upgrade":
        return rel
    stem = rel[: -len(".index")] if rel.endswith(".index") else rel.rstrip("/")
    for ext in (".weights.h5", ".hdf5", ".h5", ".keras"):
        if stem.endswith(ext):
            stem = stem[: -len(ext)]
            break
    return stem + ".keras"


def output_names(items, job) -> dict:
    """{source: output path under -o DIR}. Where two inputs would share a name (m.h5 and
    m.keras), the one that is not already .keras keeps its whole name: m.h5.keras."""
    from collections import Counter

    from ..errors import UsageError

    first = {item.source: output_name(item.rel, job) for item in items}
    counts = Counter(first.values())
    names = {}
    for item in items:
        name = first[item.source]
        if counts[name] > 1 and not item.rel.endswith(".keras"):
            name = item.rel.rstrip("/") + ".keras"
        names[item.source] = name
    seen = {}
    for source, name in names.items():
        if name in seen:
            raise UsageError(f"{source} and {seen[name]} would both write {name}: give their common "
                             "directory (or prefix) instead, so the outputs mirror their paths")
        seen[name] = source
    return names


def join(out_dir: str, rel: str) -> str:
    if urls.is_remote(out_dir):
        return out_dir.rstrip("/") + "/" + rel
    return os.path.join(out_dir, *rel.split("/"))


def exists(out: str) -> bool:
    if not urls.is_remote(out):
        return os.path.lexists(out)
    from ..remote.rangefile import filesystem

    fs, path = filesystem(out)
    try:
        return fs.exists(path)
    except Exception as e:  # noqa: BLE001 - the store's own errors
        raise StoreError(f"{urls.shown(out)}: cannot ask the store whether it exists ({e})") from None


@contextlib.contextmanager
def staged(out: str):
    """A temporary local path with `out`'s suffix; when the block ends well it becomes `out`."""
    if urls.is_remote(out):
        with tempfile.TemporaryDirectory(prefix="lstmtool-out-") as where:
            tmp = os.path.join(where, "out" + suffix_of(out))
            yield tmp
            _publish(tmp, out)
        return
    parent = os.path.dirname(os.path.abspath(out))
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as e:
        raise WriteError(f"{out}: cannot make its directory ({e.strerror})") from None
    tmp = os.path.join(parent, f"{PARTIAL}{uuid.uuid4().hex[:12]}{suffix_of(out)}")
    try:
        yield tmp
        if os.path.exists(tmp):
            os.replace(tmp, out)
            from ..core.files import fsync_dir

            fsync_dir(out)
    finally:
        if os.path.lexists(tmp):
            if os.path.isdir(tmp):
                import shutil

                shutil.rmtree(tmp, ignore_errors=True)
            else:
                os.unlink(tmp)


def _publish(local, out):
    from ..remote.rangefile import filesystem

    fs, path = filesystem(out)
    parent, name = path.rsplit("/", 1) if "/" in path else ("", path)
    partial = f"{parent}/{PARTIAL}{uuid.uuid4().hex[:12]}-{name}" if parent else f"{PARTIAL}{name}"
    try:
        fs.put_file(local, partial)
        fs.mv(partial, path)
    except Exception as e:  # noqa: BLE001 - the store's own errors
        with contextlib.suppress(Exception):
            fs.rm(partial)
        raise StoreError(f"{urls.shown(out)}: uploading the output failed ({type(e).__name__}: {e}); "
                         "nothing left under its name") from None


@contextlib.contextmanager
def local_input(url, needed, beside):
    """`url` itself, or (for jobs that need a local file) a downloaded copy beside the output."""
    if not needed or not urls.is_remote(url):
        yield url
        return
    from ..remote import downloaded

    with downloaded(url, beside) as local:
        yield local
