"""Many-file jobs: `scan` (an inventory record per file), `verify` and `trace` (a result
per file), and the bulk forms of upgrade and the edits (an output per input, mirrored under
-o DIR, with a manifest to resume by).

Each returns a Summary (trace: its table) and call `on_record(record)` as each file finishes, so the CLI can
print and count without knowing how the work was run.
"""
from __future__ import annotations

import hashlib
import os
import time
from collections import Counter
from dataclasses import dataclass, field

from ..errors import UsageError
from ..remote import urls
from . import engine, inputs, manifest, outputs, work


@dataclass
class Summary:
    files: int = 0
    skipped: int = 0  # unchanged since a finished entry of the manifest (or inventory)
    refused_before: int = 0  # of the skipped: refused then, so refused still (the reason is in the manifest)
    results: Counter = field(default_factory=Counter)  # done / refused / failed
    cells: Counter = field(default_factory=Counter)  # class -> count (scan)
    seconds: float = 0.0
    manifest: str = None

    @property
    def errors(self) -> int:
        return self.results["refused"] + self.results["failed"] + self.refused_before

    @property
    def inputs(self) -> int:
        return self.files + self.skipped

    def line(self, what="scanned") -> str:
        rate = self.files / self.seconds if self.seconds else 0.0
        parts = [f"{what} {self.files:,} file(s) in {self.seconds:.1f} s ({rate:.1f}/s)"]
        if self.cells:
            parts.append(f"{sum(self.cells.values()):,} cells (" +
                         ", ".join(f"{c} {n:,}" for c, n in self.cells.most_common()) + ")")
        if self.skipped:
            before = f" ({self.refused_before:,} refused before: their records say why)" if self.refused_before else ""
            parts.append(f"{self.skipped:,} unchanged, skipped{before}")
        done = [f"{self.results[r]:,} {r}" for r in ("done", "refused", "failed") if self.results[r]]
        if done and what != "scanned":
            parts.append(", ".join(done))
        parts.append(f"{self.errors:,} error(s)" if self.errors else "no errors")
        return "; ".join(parts)


def scan(args, hash=True, jobs=1, scheduler=None, timeout=None, previous=None, storage_options=None,
         on_record=None, on_start=None, isolate=False) -> Summary:
    """Inventory records for every model file in `args`. `previous` ({path: record}, from an
    earlier inventory): files whose record is finished and whose fingerprint is unchanged are
    not read again (their old record is not repeated either)."""
    items = inputs.expand(args, storage_options)
    summary, started = Summary(), time.monotonic()
    todo = []
    for item in items:
        old = (previous or {}).get(_key(item.source))
        if old and old.get("result") in ("done", "refused") and manifest.same_input(old, work.fingerprint(item.source)):
            summary.skipped += 1
            summary.refused_before += old["result"] == "refused"
            continue
        todo.append(((item.source,), {"hash": hash, **(storage_options or {})}))
    if on_start:
        on_start(len(todo), summary.skipped)
    for _, record in engine.run("scan", todo, jobs, scheduler, timeout, isolate):
        summary.files += 1
        summary.results[record.get("result") or "failed"] += 1
        for cell in record.get("cells") or []:
            summary.cells[cell["class"]] += 1
        if on_record:
            on_record(record)
    summary.seconds = time.monotonic() - started
    return summary


def _key(source):
    return urls.shown(source) if urls.is_remote(source) else source


def bulk(job, args, out_dir, jobs=1, scheduler=None, timeout=None, force=False, manifest_path=None,
         storage_options=None, on_record=None, on_start=None, isolate=False, **options) -> Summary:
    """Run `job` (upgrade or an edit: work.WRITES) on every model in `args`, writing each
    output under `out_dir` at the input's relative path; resumable through the manifest."""
    if job not in work.WRITES:
        raise UsageError(f"{job}: not a many-file job")
    items = inputs.expand(args, storage_options)
    names = outputs.output_names(items, job)
    path = manifest_path or default_manifest(out_dir)
    if urls.is_remote(out_dir) and not manifest_path and not os.path.exists(path):
        _fetch_manifest(out_dir, path)  # a rerun from another machine or a cleared cache resumes too
    last = manifest.read(path)
    summary, started = Summary(manifest=path), time.monotonic()
    todo, plan = [], []
    settings = {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()}
    for item in items:
        out = outputs.join(out_dir, names[item.source])
        entry = last.get(_key(item.source))
        if entry and entry.get("state") == "finished" and entry.get("job") == job \
                and entry.get("options") == settings and entry.get("result") in ("done", "refused") \
                and manifest.same_input(entry, work.fingerprint(item.source)) \
                and (entry["result"] == "refused" or outputs.exists(entry.get("real_output") or out)):
            summary.skipped += 1
            summary.refused_before += entry["result"] == "refused"
            continue
        ours = entry is not None  # this job wrote (or was writing) its output: it may be replaced
        taken = [o for o in _candidates(out, job) if outputs.exists(o)]
        if taken and not ours and not force:
            record = {"input": _key(item.source), "output": urls.shown(taken[0]), "result": "refused",
                      "error": f"{urls.shown(taken[0])}: already exists and this job did not write it; "
                               "pass --force to replace it"}
            plan.append(record)
            continue
        todo.append((item, out))
    if on_start:
        on_start(len(todo) + len(plan), summary.skipped)
    journal = manifest.Journal(path)
    try:
        for record in plan:
            _finish(summary, journal, job, settings, record, record["output"], on_record)
        tasks = []
        for item, out in todo:
            journal.add({"state": "started", "input": _key(item.source), "output": urls.shown(out), "job": job,
                         "options": settings})
            tasks.append(((item.source, out), {**options, **(storage_options or {})}))
        for k, record in engine.run(job, tasks, jobs, scheduler, timeout, isolate):
            _finish(summary, journal, job, settings, record, tasks[k][0][1], on_record)
    finally:
        journal.close()
        if urls.is_remote(out_dir) and os.path.exists(path):
            _publish_manifest(path, out_dir)
    summary.seconds = time.monotonic() - started
    return summary


def _candidates(out, job):
    """The names an output may take (a weights-only upgrade writes .weights.h5)."""
    if job == "upgrade" and out.endswith(".keras"):
        return [out, out[: -len(".keras")] + ".weights.h5"]
    return [out]


def _finish(summary, journal, job, settings, record, out, on_record):
    summary.files += 1
    summary.results[record.get("result") or "failed"] += 1
    entry = {"state": "finished", "job": job, "options": settings, **record}
    if record.get("output") and record["output"] != urls.shown(out):
        entry["real_output"] = out[: -len(".keras")] + ".weights.h5" if out.endswith(".keras") else out
    journal.add(entry)
    if on_record:
        on_record(record)


def default_manifest(out_dir) -> str:
    """Beside the outputs; for a remote prefix, a local journal in the user's cache, named
    after the prefix (uploaded beside the outputs when the job ends: an object store cannot
    append)."""
    if not urls.is_remote(out_dir):
        return os.path.join(out_dir, manifest.NAME)
    tag = hashlib.sha256(urls.shown(out_dir).rstrip("/").encode()).hexdigest()[:16]
    return os.path.join(manifest.cache_dir(), "manifests", f"{tag}.jsonl")


def _fetch_manifest(out_dir, path):
    from ..remote.rangefile import filesystem

    remote = outputs.join(out_dir, manifest.NAME)
    fs, key = filesystem(remote)
    try:
        if not fs.exists(key):
            return
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fs.get_file(key, path + ".part")
        os.replace(path + ".part", path)
    except Exception as e:  # noqa: BLE001 - the store's own errors
        from ..errors import StoreError

        raise StoreError(f"{urls.shown(remote)}: cannot read the manifest of the earlier run ({e})") from None


def _publish_manifest(path, out_dir):
    with outputs.staged(outputs.join(out_dir, manifest.NAME)) as tmp:
        import shutil

        shutil.copyfile(path, tmp)


# -- jobs that read: a result per input, nothing written --------------------------------------

def verify(args, tolerance=None, seed=0, jobs=1, scheduler=None, timeout=None, storage_options=None,
           on_record=None, on_start=None, isolate=False) -> Summary:
    """`verify` of every model in `args`: one record per file ({"input", "ok", "keras",
    "layers", "error", "result"}); a file Keras and the reference disagree on is `refused`."""
    items = inputs.expand(args, storage_options)
    tasks = [((item.source,), {"tolerance": tolerance, "seed": seed, **(storage_options or {})}) for item in items]
    summary, started = Summary(), time.monotonic()
    if on_start:
        on_start(len(tasks), 0)
    for _, record in engine.run("verify", tasks, jobs, scheduler, timeout, isolate):
        summary.files += 1
        summary.results[record.get("result") or "failed"] += 1
        if on_record:
            on_record(record)
    summary.seconds = time.monotonic() - started
    return summary


def trace(args, stat="mean", part="b", gate="f", patterns=(), jobs=1, scheduler=None, timeout=None,
          storage_options=None, on_record=None, on_start=None, isolate=False) -> dict:
    """`trace` over every model in `args` (directories, prefixes, @lists too), run by the
    engine (local processes or a Dask cluster): the table pictures.compare.trace returns."""
    from ..core.names import natural_key
    from ..pictures.compare import STATS, assemble

    if stat not in STATS:
        raise UsageError(f"unknown statistic {stat!r}")
    items = sorted(inputs.expand(args, storage_options), key=lambda i: natural_key(_key(i.source)))
    tasks = [((item.source,), {"stat": stat, "part": part, "gate": gate, "patterns": tuple(patterns),
                               **(storage_options or {})}) for item in items]
    rows = [None] * len(tasks)
    if on_start:
        on_start(len(tasks), 0)
    for k, row in engine.run("trace", tasks, jobs, scheduler, timeout, isolate):
        rows[k] = row
        if on_record:
            on_record(row)
    return assemble(rows, stat, part, gate)
