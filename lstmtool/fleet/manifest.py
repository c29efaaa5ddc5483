"""lstmtool-manifest.jsonl: what a many-file job did to each input, so a rerun skips what is
done and unchanged and redoes the rest.

One JSON object per line, appended and flushed as the job goes (a killed run loses at most
the line being written; a torn last line is ignored on reading):
    {"state": "started", "input": ..., "output": ..., "job": ..., "options": ...}
    {"state": "finished", "input": ..., "output": ..., "result": "done|refused|failed",
     "error": ..., "size": ..., "mtime_ns" | "etag": ..., "sha256": ..., ...}
An input's last line decides: finished done/refused with the same fingerprint and options
is skipped (a done one only while its output is there); failed, started (the run was killed
while on it) or changed is redone, and its output may be replaced (this job wrote it).
"""
from __future__ import annotations

import json
import os

from ..errors import UsageError

NAME = "lstmtool-manifest.jsonl"
FINGERPRINT = ("size", "mtime_ns", "etag")


def read(path, key="input") -> dict:
    """{entry[key]: the last entry with it} of a JSON Lines file (a manifest by input, an
    inventory by path); {} when there is none yet."""
    last = {}
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue  # the torn last line of a killed run
                if isinstance(entry, dict) and key in entry:
                    last[entry[key]] = entry
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"{path}: cannot read this manifest ({e})") from None
    return last


def cache_dir() -> str:
    """Where local journals of remote jobs live: $LSTMTOOL_CACHE_DIR, else
    $XDG_CACHE_HOME/lstmtool, else ~/.cache/lstmtool (never the working directory)."""
    if os.environ.get("LSTMTOOL_CACHE_DIR"):
        return os.environ["LSTMTOOL_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "lstmtool")


def same_input(entry, fingerprint) -> bool:
    got = {k: entry.get(k) for k in FINGERPRINT if entry.get(k) is not None}
    now = {k: fingerprint.get(k) for k in FINGERPRINT if fingerprint.get(k) is not None}
    return bool(now) and got == now


class Journal:
    """Appends entries, one line each, flushed at once."""

    def __init__(self, path):
        self.path = path
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.fh = open(path, "a", encoding="utf-8")

    def add(self, entry: dict):
        self.fh.write(json.dumps(entry, sort_keys=True, default=str) + "\n")
        self.fh.flush()

    def close(self):
        try:
            os.fsync(self.fh.fileno())
        except OSError:
            pass
        self.fh.close()
