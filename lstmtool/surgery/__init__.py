"""Changing a model's weights safely: `edit` (plans: set, scale, forget bias, chrono),
`writeback` (atomic byte-offset writes, read back and checked), `filelock` (one writer at a time)."""
