"""The scan's inventory formats: JSON Lines (streamed, one record per line), CSV (streamed,
flattened), Parquet (pyarrow, written whole at the end under a temporary name). One table of
columns serves CSV and Parquet."""
from __future__ import annotations

import csv
import json
import os

from ..errors import UsageError

# (column, Parquet type) in order; `cells` and `warnings` are nested in Parquet, flat in CSV
COLUMNS = [("path", "string"), ("size", "int64"), ("sha256", "string"), ("etag", "string"),
           ("mtime_ns", "int64"), ("format", "string"), ("keras_version", "string"), ("backend", "string"),
           ("cells", "cells"), ("n_cells", "int64"), ("incomplete", "int64"), ("warnings", "strings"),
           ("upgrade", "string"), ("error", "string"), ("result", "string"), ("seconds", "float64")]


def kind_of(path) -> str:
    if path is None or path == "-":
        return "jsonl"
    for ext, kind in ((".jsonl", "jsonl"), (".json", "jsonl"), (".csv", "csv"), (".parquet", "parquet")):
        if str(path).lower().endswith(ext):
            return kind
    raise UsageError(f"{path}: name the inventory .jsonl, .csv or .parquet")


def previous(path) -> dict:
    """{path: last record} of an earlier JSON Lines inventory, for --resume."""
    from .manifest import read

    return read(path, key="path")


def flat(record) -> dict:
    cells = record.get("cells") or []
    return {**{k: record.get(k) for k, _ in COLUMNS},
            "cells": ";".join(f"{c['path']}:{c['class']}:{c['units']}" + ("" if c["complete"] else ":incomplete")
                              for c in cells),
            "n_cells": len(cells), "incomplete": len(record.get("incomplete") or []),
            "warnings": " | ".join(record.get("warnings") or [])}


class Writer:
    """Streams records to stdout or a file; Parquet collects them and writes at close."""

    def __init__(self, path, append=False):
        self.kind, self.path, self.rows = kind_of(path), path, []
        if self.kind == "parquet":
            try:
                import pyarrow  # noqa: F401
            except ImportError:
                raise UsageError("Parquet inventories need the fleet extra: pip install 'lstmtool[fleet]'") from None
            self.fh = None
            return
        if path in (None, "-"):
            import sys

            self.fh = sys.stdout
        else:
            self.fh = open(path, "a" if append else "x", encoding="utf-8", newline="")
        self.csv = None
        if self.kind == "csv":
            self.csv = csv.DictWriter(self.fh, [k for k, _ in COLUMNS])
            if not append or self.fh.tell() == 0:
                self.csv.writeheader()

    def add(self, record):
        if self.kind == "parquet":
            self.rows.append(record)
        elif self.kind == "csv":
            self.csv.writerow(flat(record))
            self.fh.flush()
        else:
            self.fh.write(json.dumps(record, default=str) + "\n")
            self.fh.flush()

    def close(self):
        if self.kind == "parquet":
            _write_parquet(self.path, self.rows)
        elif self.fh is not None and self.path not in (None, "-"):
            self.fh.close()


def _write_parquet(path, records):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ..core.files import atomic_path

    cell = pa.struct([("path", pa.string()), ("class", pa.string()), ("units", pa.int64()), ("complete", pa.bool_())])
    types = {"string": pa.string(), "int64": pa.int64(), "float64": pa.float64(), "cells": pa.list_(cell),
             "strings": pa.list_(pa.string())}
    schema = pa.schema([(k, types[t]) for k, t in COLUMNS])
    rows = []
    for r in records:
        row = {k: r.get(k) for k, _ in COLUMNS}
        row["n_cells"] = len(r.get("cells") or [])
        row["incomplete"] = len(r.get("incomplete") or [])
        row["cells"] = [{k: c.get(k) for k in ("path", "class", "units", "complete")} for c in r.get("cells") or []]
        rows.append(row)
    table = pa.Table.from_pylist(rows, schema=schema)
    with atomic_path(os.fspath(path)) as tmp:
        pq.write_table(table, tmp)
