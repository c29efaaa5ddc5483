"""Interchange layouts for export/import, one module each.

Every layout module offers
    export_group(path, cells) -> {key: array}      arrays in that layout
    import_group(path, cells, arrays) -> [(view, value)]   the inverse
    check_group(path, cells)    raises before anything is written if the layout cannot hold them
`cells` are the cells one Keras layer runs (one, a Bidirectional pair, or stacked cells).
Refusals raise UsageError naming why the layout cannot hold the cell.
"""
from . import keras_layout, onnx_layout, tf1_layout, torch_layout

LAYOUTS = {"keras": keras_layout, "torch": torch_layout, "onnx": onnx_layout, "tf1": tf1_layout}
