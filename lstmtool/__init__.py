"""lstmtool: look inside, and operate on, the recurrent layers of saved Keras models.

    import lstmtool
    with lstmtool.load("model.h5") as model:
        cell = model.cell("lstm")
        W_f = cell.W["f"].numpy()      # reads only that slice from disk
"""
from .errors import LstmtoolError, ModelError, UsageError, WriteError

from .version import __version__  # noqa: F401

__all__ = ["load", "upgrade", "prune", "widen", "scan_one", "upgrade_one", "verify_one", "trace_one",
           "LstmtoolError", "ModelError", "UsageError", "WriteError", "__version__"]

# The API's modules by the names docs/api.md gives them (lstmtool.edit.plan_set, ...).
MODULES = {"edit": "surgery.edit", "filelock": "surgery.filelock", "reference": "cells.reference",
           "compare": "pictures.compare", "verify": "reading.verify"}


def __getattr__(name):
    # Imported on first use so `lstmtool --help` does not pay for h5py and numpy.
    import importlib

    if name == "load":
        return importlib.import_module(".reading.reader", __name__).load
    if name == "upgrade":
        return importlib.import_module(".upgrader.keras3", __name__).upgrade
    if name in ("scan_one", "upgrade_one", "forget_bias_one", "set_one", "scale_one", "chrono_one", "verify_one",
                "trace_one"):
        return getattr(importlib.import_module(".fleet.work", __name__), name)
    if name in ("prune", "widen"):
        return getattr(importlib.import_module(".surgery.prune", __name__), name)
    if name in MODULES:
        return importlib.import_module(f".{MODULES[name]}", __name__)
    raise AttributeError(name)
