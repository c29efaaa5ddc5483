"""Many files at once: `lstmtool scan` and the bulk forms of upgrade and set-forget-bias,
in this process, in local worker processes (--jobs) or on a Dask cluster (--scheduler).

The unit of work is a pure function per file returning plain data (work.scan_one,
work.upgrade_one, work.forget_bias_one): any engine can run it (docs/fleet.md).
"""
from .work import forget_bias_one, scan_one, upgrade_one  # noqa: F401
