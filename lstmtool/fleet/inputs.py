"""The files of a many-file job: paths, directories, globs, URL prefixes and @lists, each
with the relative path its output mirrors.

A directory or prefix is searched for models: `.h5`/`.hdf5`/`.keras` files, SavedModel
directories (one item each, never descended into) and TF checkpoints (their `.index`).
A file named explicitly is taken whatever its name.
"""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass

from ..core.names import natural_key
from ..errors import UsageError
from ..remote import urls

MODEL_SUFFIXES = (".h5", ".hdf5", ".keras")
GLOB_CHARS = "*?["


@dataclass(frozen=True)
class Item:
    source: str  # a local path or a URL
    rel: str  # where its output goes under -o DIR, with / separators


def expand(args, storage_options=None) -> list:
    """Items for command-line arguments, in a stable order, each source once."""
    items, seen = [], set()
    for arg in args:
        for item in _expand_one(os.fspath(arg), storage_options or {}):
            if item.source not in seen:
                seen.add(item.source)
                items.append(item)
    if not items:
        raise UsageError("no model files found in " + ", ".join(map(str, args)))
    return items


def _expand_one(arg, options):
    if arg.startswith("@"):
        return _listed(arg[1:], options)
    if urls.is_remote(arg):
        return _remote(arg, options)
    if os.path.isdir(arg):
        if _is_bundle_dir(arg):
            return [Item(arg, os.path.basename(os.path.normpath(arg)))]
        return [Item(p, _rel(p, arg)) for p in _walk(arg)]
    if os.path.exists(arg) or not any(ch in arg for ch in GLOB_CHARS):
        if not os.path.exists(arg) and not os.path.exists(arg + ".index"):
            raise UsageError(f"{arg}: no such file or directory")
        return [Item(arg, os.path.basename(arg))]
    base = _glob_base(arg)
    found = sorted(glob.glob(arg, recursive=True), key=natural_key)
    if not found:
        raise UsageError(f"{arg}: no file matches this pattern")
    out = []
    for p in found:
        if os.path.isdir(p) and not _is_bundle_dir(p):
            out += [Item(q, _rel(q, base)) for q in _walk(p)]
        elif not os.path.basename(p).startswith("."):
            out.append(Item(p, _rel(p, base)))
    return out


def _listed(path, options):
    try:
        with open(path, encoding="utf-8") as fh:
            lines = [line.strip() for line in fh]
    except OSError as e:
        raise UsageError(f"@{path}: cannot read this list ({e.strerror})") from None
    out = []
    for line in lines:
        if line and not line.startswith("#"):
            if line.startswith("@"):
                raise UsageError(f"@{path}: lists do not include other lists ({line})")
            out += _expand_one(line, options)
    return out


def _walk(top):
    """Model files under `top`; SavedModel directories whole; hidden files (our temporaries) skipped."""
    found = []
    for root, dirs, files in os.walk(top):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        keep = []
        for d in dirs:
            full = os.path.join(root, d)
            if _is_bundle_dir(full):
                found.append(full)
            else:
                keep.append(d)
        dirs[:] = keep
        for name in files:
            if name.startswith("."):
                continue
            if name.lower().endswith(MODEL_SUFFIXES) or (name.endswith(".index") and _is_checkpoint_index(root, name)):
                found.append(os.path.join(root, name))
    return sorted(found, key=natural_key)


def _is_bundle_dir(path):
    return os.path.isfile(os.path.join(path, "saved_model.pb"))


def _is_checkpoint_index(root, name):
    """A checkpoint's .index (not a SavedModel's variables/variables.index, found with its directory)."""
    from ..containers.tf_locate import is_index

    return is_index(os.path.join(root, name))


def _glob_base(pattern):
    parts = pattern.split(os.sep)
    fixed = []
    for part in parts:
        if any(ch in part for ch in GLOB_CHARS):
            break
        fixed.append(part)
    return os.sep.join(fixed) or "."


def _rel(path, base):
    return os.path.relpath(path, base).replace(os.sep, "/")


def _remote(url, options):
    from ..remote.rangefile import filesystem

    fs, path = filesystem(url, options)
    scheme = url.split("://", 1)[0]
    query = "?" + url.split("?", 1)[1] if "?" in url else ""
    bare = url.split("?", 1)[0]
    if any(ch in bare.split("://", 1)[1] for ch in GLOB_CHARS):
        base = _glob_base(path.replace("/", os.sep)).replace(os.sep, "/")
        found = sorted(fs.glob(path), key=natural_key)
        if not found:
            raise UsageError(f"{urls.shown(url)}: no remote file matches this pattern")
        return [Item(_url(scheme, p, fs) + query, _rel_posix(p, base)) for p in found]
    if bare.endswith("/"):
        found = [p for p in fs.find(path) if _remote_model(p)]
        if not found:
            raise UsageError(f"{urls.shown(url)}: no model files under this prefix")
        bundles = {p[: -len("/saved_model.pb")] for p in found if p.endswith("/saved_model.pb")}
        out = []
        for p in sorted(found, key=natural_key):
            if p.endswith("/saved_model.pb"):
                d = p[: -len("/saved_model.pb")]
                out.append(Item(_url(scheme, d, fs) + "/" + query, _rel_posix(d, path)))
            elif not any(p.startswith(b + "/") for b in bundles):
                out.append(Item(_url(scheme, p, fs) + query, _rel_posix(p, path)))
        return out
    return [Item(url, bare.rstrip("/").rsplit("/", 1)[-1])]


def _remote_model(p):
    name = p.rsplit("/", 1)[-1]
    if name.startswith("."):
        return False
    return name.lower().endswith(MODEL_SUFFIXES) or name == "saved_model.pb" or name.endswith(".index")


def _url(scheme, path, fs):
    if scheme in ("http", "https"):
        return path  # HTTP paths are whole URLs already
    return f"{scheme}://{path}"


def _rel_posix(p, base):
    base = base.rstrip("/")
    return p[len(base) + 1:] if p.startswith(base + "/") else p.rsplit("/", 1)[-1]
