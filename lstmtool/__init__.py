"""lstmtool: look inside, and operate on, the recurrent layers of saved Keras models.

    import lstmtool
    with lstmtool.load("model.h5") as model:
        cell = model.cell("lstm")
        W_f = cell.W["f"].numpy()      # reads only that slice from disk
"""
from .errors import LstmtoolError, ModelError, UsageError, WriteError

__all__ = ["load", "upgrade", "LstmtoolError", "ModelError", "UsageError", "WriteError"]
__version__ = "0.1.0"


def __getattr__(name):
    # Imported on first use so `lstmtool --help` does not pay for h5py and numpy.
    if name == "load":
        from .reader import load

        return load
    if name == "upgrade":
        from .keras3_upgrade import upgrade

        return upgrade
    raise AttributeError(name)
