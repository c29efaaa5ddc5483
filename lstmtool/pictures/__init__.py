"""Pictures and comparisons: `compare` (diff, trace: data) and `draw` (matplotlib renderings).

`lstmtool.pictures.plot_weights(...)` and the other drawing functions of docs/api.md are
found in `draw`, imported on first use.
"""
DRAWN = ("plot_weights", "plot_bias", "plot_timescales", "plot_diff", "plot_trace", "timescales", "trace_axis",
         "image_format", "reduce_blocks")


def __getattr__(name):
    if name in DRAWN:
        import importlib

        return getattr(importlib.import_module(".draw", __name__), name)
    raise AttributeError(name)
