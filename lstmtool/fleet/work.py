"""The unit of work of a many-file job: one pure function per file, plain data out.

Any engine runs these (a loop, local processes, Dask, Ray): they take a path or URL and
options, never raise for a bad file (the record says why), and return dicts of str, int,
float, bool, None, lists and dicts, so nothing of h5py crosses a process boundary.

    from lstmtool import scan_one
    record = scan_one("s3://bucket/models/m.h5", anon=False)   # fsspec storage options
"""
from __future__ import annotations

import hashlib
import os
import time

from ..errors import LstmtoolError, StoreError

HASH_CHUNK = 8 << 20


def scan_one(url, hash=True, **storage_options) -> dict:
    """One inventory record: what `inspect --json` says of the file, the upgrade's verdict
    (`"ok"` or the one line a dry-run upgrade refuses with), and `error` (None, or the one line
    the single-file command prints). `hash=False` skips the sha256 (a remote file is then
    read only where inspect reads it)."""
    from ..remote.rangefile import STORAGE_OPTIONS

    started = time.monotonic()
    record = scan_record(url)
    token = STORAGE_OPTIONS.set(dict(storage_options) or None)
    try:
        record.update(fingerprint(url))
        if hash:
            record["sha256"] = sha256_of(url)
        _inspect_into(record, url)
        record["result"] = "done"
    except LstmtoolError as e:
        record["error"] = str(e)
        record["result"] = outcome(e)
    except MemoryError:
        record["error"], record["result"] = f"{record['path']}: out of memory while reading it", "failed"
    except Exception as e:  # a bug of ours: this file's record says so, the scan goes on
        record["error"] = f"internal error: {type(e).__name__}: {e}"
        record["result"] = "failed"
    finally:
        STORAGE_OPTIONS.reset(token)
    record["seconds"] = round(time.monotonic() - started, 4)
    return record


def scan_record(url) -> dict:
    """An inventory record with nothing known yet: every record has every key."""
    return {"path": _shown(url), "size": None, "sha256": None, "etag": None, "mtime_ns": None, "format": None,
            "keras_version": None, "backend": None, "cells": [], "incomplete": [], "warnings": [],
            "upgrade": None, "error": None, "result": None, "seconds": None}


def _inspect_into(record, url):
    from ..reading.reader import load
    from ..reading.report import inspect_model
    from ..upgrader.keras3 import upgrade

    with load(url) as model:
        doc = inspect_model(model)
        record.update(format=doc["format"], keras_version=doc["keras_version"], backend=doc["backend"],
                      warnings=doc["warnings"], incomplete=doc["incomplete"])
        record["cells"] = [{"path": c["path"], "class": c["class"], "units": c["units"], "complete": True}
                           for c in doc["cells"]]
        record["cells"] += [{"path": i["path"], "class": i.get("class"), "units": None, "complete": False}
                            for i in doc["incomplete"]]
        try:
            upgrade(url, "", dry_run=True, model=model)
            record["upgrade"] = "ok"
        except LstmtoolError as e:
            record["upgrade"] = str(e)


def outcome(error) -> str:
    """`refused`: the file itself is the reason (the same answer on every rerun); `failed`:
    the store, the network, a worker or a deadline (a rerun tries again)."""
    return "failed" if isinstance(error, StoreError) else "refused"


def fingerprint(url) -> dict:
    """size, and what says the file changed without reading it: mtime (local) or ETag (remote)."""
    from ..remote import urls

    if not urls.is_remote(url):
        path = url
        if os.path.isdir(url):  # a SavedModel or checkpoint directory: its newest file
            stats = [os.stat(os.path.join(r, f)) for r, _, fs in os.walk(url) for f in fs]
            return {"size": sum(s.st_size for s in stats), "mtime_ns": max((s.st_mtime_ns for s in stats), default=0)}
        if not os.path.exists(path) and os.path.exists(path + ".index"):
            path += ".index"
        try:
            st = os.stat(path)
        except OSError:
            return {}  # load() says what is wrong, in its own words
        return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    from ..remote.rangefile import call, filesystem

    bare = url.split("?", 1)[0]
    if bare.endswith("/") or not bare.lower().rsplit("/", 1)[-1].count("."):
        return {}  # a remote SavedModel or checkpoint prefix: no single object to ask about
    fs, path = filesystem(url)
    try:
        info = call(url, fs.info, path)
    except LstmtoolError:
        return {}  # load() gives the reason
    tag = next((info[k] for k in ("ETag", "etag", "blob_id", "oid", "LastModified", "mtime") if info.get(k)), None)
    return {"size": info.get("size"), "etag": str(tag).strip('"') if tag is not None else None}


def sha256_of(url) -> str | None:
    """The file's sha256, read in 8 MiB pieces (a directory bundle: None)."""
    from ..remote import urls

    digest = hashlib.sha256()
    if not urls.is_remote(url):
        if os.path.isdir(url) or not os.path.isfile(url):
            return None
        with open(url, "rb") as fh:
            for chunk in iter(lambda: fh.read(HASH_CHUNK), b""):
                digest.update(chunk)
        return digest.hexdigest()
    from ..remote.rangefile import call, filesystem

    if url.split("?", 1)[0].endswith("/"):
        return None
    fs, path = filesystem(url)
    handle = call(url, fs.open, path, "rb", block_size=HASH_CHUNK, cache_type="none")
    try:
        while True:
            chunk = call(url, handle.read, HASH_CHUNK)
            if not chunk:
                break
            digest.update(chunk)
    finally:
        handle.close()
    return digest.hexdigest()


# -- jobs that write: one output per input ------------------------------------------------------

def upgrade_one(url, out, **storage_options) -> dict:
    """Upgrade `url` to Keras 3 at `out` (a local path or a URL: staged, then moved in whole;
    a weights-only input writes `<stem>.weights.h5` instead, the name Keras requires)."""
    from ..reading.reader import load
    from ..upgrader.keras3 import upgrade
    from . import outputs

    def job(record):
        nonlocal out
        with load(url) as model:
            if model.format in ("legacy-h5-weights", "keras3-weights") and out.endswith(".keras"):
                out = out[: -len(".keras")] + ".weights.h5"
                record["output"] = _shown(out)
            with outputs.staged(out) as dest:
                plan = upgrade(url, dest, force=True, model=model)
        return {"from_format": plan.from_format, "from_keras": plan.from_keras, "notes": plan.notes}

    return _recorded(url, out, job, storage_options)


def forget_bias_one(url, out, value=1.0, patterns=(), **storage_options) -> dict:
    """set-forget-bias written to a new file `out` (the input is never changed)."""
    from ..surgery.edit import plan_forget_bias

    return _edited(url, out, lambda src: plan_forget_bias(src, value, patterns), storage_options)


def set_one(url, out, target, value, allow_nonfinite=False, **storage_options) -> dict:
    """`set` TARGET (LAYERPATH:PART_GATE) to VALUE, written to a new file `out`."""
    from ..surgery.edit import plan_set

    return _edited(url, out, lambda src: plan_set(src, target, value, None, allow_nonfinite), storage_options)


def scale_one(url, out, target, factor, **storage_options) -> dict:
    """`scale` TARGET by FACTOR, written to a new file `out`."""
    from ..surgery.edit import plan_scale

    return _edited(url, out, lambda src: plan_scale(src, target, factor), storage_options)


def chrono_one(url, out, tmax, seed=None, patterns=(), **storage_options) -> dict:
    """`chrono-init` written to a new file `out` (with a seed, every file gets the same draw
    for cells of the same width: the seed is the draw)."""
    from ..surgery.edit import plan_chrono

    return _edited(url, out, lambda src: plan_chrono(src, tmax, seed, patterns), storage_options)


def _edited(url, out, make_plan, storage_options) -> dict:
    from ..surgery.edit import write
    from . import outputs

    def job(record):
        with outputs.staged(out) as dest, outputs.local_input(url, True, dest) as src:
            plan = write(make_plan(src), out=dest)
        return {"changed": sum(c.changed for c in plan.changes)}

    return _recorded(url, out, job, storage_options)


# -- jobs that only read: a result per input ------------------------------------------------------

def verify_one(url, tolerance=None, seed=0, **storage_options) -> dict:
    """`verify` of one file: each recurrent layer in Keras against the NumPy reference.
    {"input", "ok", "keras", "layers", "error", "result"}; a remote file is verified from
    a temporary local copy (Keras reads local files)."""
    import contextlib
    import tempfile

    from ..reading.verify import verify_file

    def job(record):
        with contextlib.ExitStack() as stack:
            src = url
            if _is_remote(url):
                from ..remote import downloaded

                where = stack.enter_context(tempfile.TemporaryDirectory(prefix="lstmtool-verify-"))
                src = stack.enter_context(downloaded(url, os.path.join(where, "x")))
            result = verify_file(src, tolerance=tolerance, seed=seed)
        if not result["ok"]:
            bad = ", ".join(r["path"] for r in result["layers"] if not r["ok"])
            record["error"] = f"{_shown(url)}: verify failed: difference above tolerance in {bad}"
        return {"ok": result["ok"], "keras": result["keras"], "layers": result["layers"]}

    record = _recorded(url, None, job, storage_options)
    record.pop("output", None)
    record.setdefault("ok", False)
    if record["result"] == "done" and not record["ok"]:
        record["result"] = "refused"  # the file computes differently from its Keras: a finding, not a fault
    return record


def trace_one(url, stat="mean", part="b", gate="f", patterns=(), **storage_options) -> dict:
    """`trace`'s row of one file: {"file", "values": {cell path: stat}[, "error"]}."""
    from ..pictures.compare import trace_row
    from ..remote.rangefile import STORAGE_OPTIONS

    token = STORAGE_OPTIONS.set(dict(storage_options) or None)
    try:
        row = trace_row(url, stat, part, gate, patterns)
    finally:
        STORAGE_OPTIONS.reset(token)
    row["file"] = _shown(url)
    return row


def _is_remote(path):
    from ..remote import urls

    return urls.is_remote(path)


def _shown(path):
    from ..remote import urls

    return urls.shown(path) if urls.is_remote(path) else path


def _recorded(url, out, job, storage_options) -> dict:
    from ..remote.rangefile import STORAGE_OPTIONS

    started = time.monotonic()
    record = {"input": _shown(url), "output": _shown(out) if out else None, "result": None, "error": None}
    token = STORAGE_OPTIONS.set(dict(storage_options) or None)
    try:
        record.update(fingerprint(url))
        if not _is_remote(url):  # a remote input is known by its ETag: hashing would download it
            record["sha256"] = sha256_of(url)
        record.update(job(record))
        record["result"] = "done" if record["error"] is None else "refused"
    except LstmtoolError as e:
        record["error"], record["result"] = str(e), outcome(e)
    except MemoryError:
        record["error"], record["result"] = f"{record['input']}: out of memory", "failed"
    except Exception as e:  # a bug of ours: this file's record says so, the job goes on
        record["error"], record["result"] = f"internal error: {type(e).__name__}: {e}", "failed"
    finally:
        STORAGE_OPTIONS.reset(token)
    record["seconds"] = round(time.monotonic() - started, 4)
    return record


JOBS = {"scan": scan_one, "upgrade": upgrade_one, "set-forget-bias": forget_bias_one, "set": set_one,
        "scale": scale_one, "chrono-init": chrono_one, "verify": verify_one, "trace": trace_one}
WRITES = ("upgrade", "set-forget-bias", "set", "scale", "chrono-init")  # an output per input, under -o DIR/
