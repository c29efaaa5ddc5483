"""Where a TF SavedModel or checkpoint is, from the file system alone: the paths a user types
(a SavedModel directory, a checkpoint prefix, its `.index` or `.data-*` file, the `checkpoint`
state file, or a directory holding one), each recognised by content: the table magic at the
end of the `.index`. Kept apart from the bundle readers so that every command, which asks
this of every path, does not import them.
"""
from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass
from typing import Optional

from ..errors import ModelError, UsageError

TABLE_MAGIC = 0xDB4775248B80FB57  # the last 8 bytes of a TF table (a bundle's .index)
FOOTER_SIZE = 48

SHARD = re.compile(r"^(?P<prefix>.+)\.data-\d{5}-of-\d{5}$")


@dataclass
class Location:
    kind: str  # tf-savedmodel or tf-checkpoint
    prefix: str  # bundle prefix: PREFIX.index, PREFIX.data-*
    savedmodel: Optional[str] = None  # the SavedModel directory


def is_index(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            if fh.tell() < FOOTER_SIZE:
                return False
            fh.seek(-8, os.SEEK_END)
            return struct.unpack("<Q", fh.read(8))[0] == TABLE_MAGIC
    except OSError:
        return False


def _named_checkpoint(state_file: str) -> str:
    """The prefix a `checkpoint` state file names (model_checkpoint_path: "...")."""
    try:
        with open(state_file, encoding="utf-8") as fh:
            text = fh.read(1 << 16)
    except (OSError, UnicodeDecodeError):
        raise ModelError(f"{state_file}: cannot read this TensorFlow checkpoint state file") from None
    named = checkpoint_named_in(text, state_file)
    return named if os.path.isabs(named) else os.path.join(os.path.dirname(state_file), named)


def checkpoint_named_in(text: str, state_file: str) -> str:
    """The model_checkpoint_path a `checkpoint` state file's text names, as written."""
    m = re.search(r'^model_checkpoint_path:\s*"((?:[^"\\]|\\.)*)"', text, re.MULTILINE)
    if not m:
        raise ModelError(f"{state_file}: a `checkpoint` file that names no model_checkpoint_path")
    try:
        named = m[1].encode("utf-8").decode("unicode_escape")
    except UnicodeDecodeError:
        named = "\x00"
    if "\x00" in named or not named:
        raise ModelError(f"{state_file}: names a checkpoint path that is not a file name (damaged?)")
    return named


def locate(path: str) -> Optional[Location]:
    """Where the bundle of `path` is, if `path` means a TF SavedModel or checkpoint."""
    if os.path.isdir(path):
        if os.path.exists(os.path.join(path, "saved_model.pb")):
            prefix = os.path.join(path, "variables", "variables")
            if not os.path.exists(prefix + ".index"):
                raise ModelError(f"{path}: a TensorFlow SavedModel without variables/variables.index "
                                 "(no weights saved, or the directory is incomplete)")
            return Location("tf-savedmodel", prefix, path)
        state = os.path.join(path, "checkpoint")
        if os.path.isfile(state):
            return _prefix_location(_named_checkpoint(state), path)
        return _only_index(path)
    if os.path.basename(path) == "checkpoint" and os.path.isfile(path) and not is_index(path):
        with open(path, "rb") as fh:
            if fh.read(22) == b"model_checkpoint_path:":
                return _prefix_location(_named_checkpoint(path), path)
        return None
    if path.endswith(".index") and is_index(path):
        return _prefix_location(path[: -len(".index")], path)
    m = SHARD.match(path)
    if m and os.path.isfile(path) and is_index(m["prefix"] + ".index"):
        return _prefix_location(m["prefix"], path)
    if not os.path.exists(path) and is_index(path + ".index"):
        return _prefix_location(path, path)
    return None


def _only_index(directory: str) -> Optional[Location]:
    """A directory without a `checkpoint` state file: its one checkpoint, or the candidates named
    (not a SavedModel's variables/: the SavedModel is the model, named by its own directory)."""
    if os.path.isfile(os.path.join(os.path.dirname(os.path.abspath(directory)), "saved_model.pb")):
        return None
    try:
        names = sorted(n for n in os.listdir(directory) if n.endswith(".index"))
    except OSError:
        return None
    prefixes = [os.path.join(directory, n[: -len(".index")]) for n in names
                if is_index(os.path.join(directory, n))]
    if len(prefixes) == 1:
        return _prefix_location(prefixes[0], directory)
    if prefixes:
        shown = ", ".join(os.path.basename(p) for p in prefixes[:5]) + (" ..." if len(prefixes) > 5 else "")
        raise UsageError(f"{directory}: {len(prefixes)} TensorFlow checkpoints here and no `checkpoint` file "
                         f"to say which: name one ({shown})")
    return None


def _prefix_location(prefix: str, given: str) -> Location:
    if not is_index(prefix + ".index"):
        raise ModelError(f"{given}: names checkpoint {prefix}, whose .index is missing or not a checkpoint index")
    variables = os.path.dirname(os.path.abspath(prefix))
    if os.path.basename(prefix) == "variables" and os.path.basename(variables) == "variables":
        root = os.path.dirname(variables)
        if os.path.exists(os.path.join(root, "saved_model.pb")):
            return Location("tf-savedmodel", prefix, root)
    return Location("tf-checkpoint", prefix)
