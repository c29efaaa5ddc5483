"""A remote SavedModel directory or TF checkpoint (prefix, .index, or a directory with a
`checkpoint` state file): its index and keras_metadata.pb read whole, tensors by range."""
from __future__ import annotations

from ..errors import ModelError


def remote_bundle(url, base, cache, from_checkpoint):
    """A remote SavedModel directory or checkpoint prefix (its .index named or not); None if
    `url` is neither. The index and keras_metadata.pb are read whole, tensors by range."""
    from ..remote import urls as remote
    from ..containers.tf_locate import Location
    from ..remote.rangefile import RemoteFiles

    files = RemoteFiles(url, cache)
    savedmodel = lambda: files.read(base + "/variables/variables.index", missing_ok=True) is not None  # noqa
    checkpoint = lambda: files.read(base + ".index", missing_ok=True) is not None  # noqa
    # a trailing / says directory (a SavedModel): ask for that first, else for a checkpoint first
    if base.endswith(".index"):
        loc = Location("tf-checkpoint", base[: -len(".index")])
    elif (url.endswith("/") and savedmodel()) or (not url.endswith("/") and not checkpoint() and savedmodel()):
        loc = Location("tf-savedmodel", base + "/variables/variables", savedmodel=base)
    elif url.endswith("/") and checkpoint() or base + ".index" in files.whole and files.whole[base + ".index"]:
        loc = Location("tf-checkpoint", base)
    elif files.read(base + "/checkpoint", missing_ok=True) is not None:  # a checkpoint directory
        loc = Location("tf-checkpoint", _remote_named_checkpoint(base, files))
    else:
        return None
    model = from_checkpoint(remote.shown(url), loc, files)  # the reader's: no import back up
    model.store.remote_files = files
    return model


def _remote_named_checkpoint(base, files):
    """The prefix a remote directory's `checkpoint` state file names (relative to the directory)."""
    from ..containers.tf_locate import checkpoint_named_in
    from ..remote import urls as remote

    state = base + "/checkpoint"
    try:
        text = files.read(state).decode("utf-8")
    except UnicodeDecodeError:
        raise ModelError(f"{remote.shown(state)}: not a TensorFlow checkpoint state file (not text)") from None
    named = checkpoint_named_in(text, remote.shown(state))
    if named.startswith("/") or "://" in named:  # written on the training machine: keep its last part
        named = named.rstrip("/").rsplit("/", 1)[-1]
    prefix = base + "/" + named
    if files.read(prefix + ".index", missing_ok=True) is None:
        raise ModelError(f"{remote.shown(state)}: names checkpoint {named}, whose .index is not there")
    return prefix
