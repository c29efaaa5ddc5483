"""Reading a model: `reader.load` (any format, told by content), `report` (what inspect,
explain and show print, as data), `verify` (against real Keras: the only Keras import),
`watchdog` (a deadline for damaged HDF5 metadata)."""
