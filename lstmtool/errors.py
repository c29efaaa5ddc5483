"""Errors lstmtool reports to users as one line, with an exit status."""


class LstmtoolError(Exception):
    """Base class: the message is shown as-is, no traceback."""

    exit_code = 1


class ModelError(LstmtoolError):
    """The model file cannot be read, is damaged, or is not a Keras model."""

    exit_code = 1


class UsageError(LstmtoolError):
    """The request does not fit the model: unknown layer, bad target, bad shape."""

    exit_code = 2


class WriteError(LstmtoolError):
    """Writing the result failed; the original file is left as it was."""

    exit_code = 1


class StoreError(ModelError):
    """A remote store or the network failed (timeout, refused, cut short): the file may be
    fine, and trying again may work. Many-file jobs record these as failed, to redo."""

    exit_code = 1
