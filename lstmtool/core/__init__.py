"""The data lstmtool hands out and the facts it reads them by: `model` (Model, Cell, lazy
GateView), `config` (Keras configs parsed into Specs), `names` (layer paths, globs, targets).
Everything else imports these; they import nothing of lstmtool but `errors`."""
