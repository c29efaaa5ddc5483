"""`verify`: run each recurrent layer in real Keras and in lstmtool's NumPy reference.

This is the only module that imports Keras: Keras 3 for files Keras 3 wrote,
tf-keras for Keras 2 files. Everything else in lstmtool reads files directly.
"""
from __future__ import annotations

import contextlib
import os

import numpy as np

from ..cells import reference
from ..errors import ModelError, UsageError
from .reader import load


@contextlib.contextmanager
def native_stderr_quiet():
    """TensorFlow's C++ side logs to fd 2 at import and first use (oneDNN, CUDA, CPU
    features), whatever TF_CPP_MIN_LOG_LEVEL says. Python errors still arrive as exceptions;
    LSTMTOOL_DEBUG=1 shows everything."""
    if os.environ.get("LSTMTOOL_DEBUG"):
        yield
        return
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_keras(major):
    with native_stderr_quiet():
        return _import_keras(major)


def _import_keras(major):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if major == 3:
        try:
            import keras
        except ImportError:
            raise UsageError("verify needs Keras 3 for this file: pip install 'lstmtool[verify]'") from None
        return keras, f"keras {keras.__version__}"
    if major == 2:
        try:
            import tf_keras
        except ImportError:
            raise UsageError("verify needs tf-keras for this Keras 2 file: pip install tf-keras") from None
        return tf_keras, f"tf-keras {tf_keras.__version__}"
    raise UsageError(f"no installable Keras loads Keras {major or 'unknown-version'} files; "
                     "lstmtool reads them, but verify cannot compare against Keras")


def find_layer(kmodel, path):
    layer = kmodel
    for name in path.split("/"):
        layer = layer.get_layer(name)
    while type(layer).__name__ == "TimeDistributed":
        layer = layer.layer  # the wrapped RNN holds the weights and runs on (batch, T, in)
    return layer


def _run(cells, x, major, seq, back):
    """One recurrent layer (a cell or stacked cells): Keras feeds a go_backwards layer the
    reversed sequence and returns its outputs in processing order."""
    if back:
        x = x[:, ::-1]
    out = reference.run_stack(cells, x, major) if len(cells) > 1 else reference.run_cell(cells[0], x, major)
    return out if seq else out[:, -1]


def numpy_output(layer, cells, x, major):
    """What lstmtool's reference computes for `layer` (a Keras layer) on x: an array, or a
    list of two for a Bidirectional with merge_mode=None."""
    cfg = layer.get_config()
    if layer.__class__.__name__ == "Bidirectional":
        fw_cells = [c for c in cells if c.path.startswith(_prefix(cells, "forward"))]
        bw_cells = [c for c in cells if c.path.startswith(_prefix(cells, "backward"))]
        inner = cfg["layer"]["config"]
        seq = inner.get("return_sequences", False)
        fw = _run(fw_cells, x, major, True, False)
        bw = _run(bw_cells, x, major, True, True)[:, ::-1]  # the backward half, aligned with time
        if not seq:
            fw, bw = fw[:, -1], bw[:, 0]
        mode = cfg.get("merge_mode", "concat")
        return [fw, bw] if mode is None else reference.merge(fw, bw, mode)
    return _run(cells, x, major, cfg.get("return_sequences", False), cfg.get("go_backwards", False))


def _prefix(cells, half):
    path = cells[0].path
    base = path[: path.rfind("/forward")] if "/forward" in path else path[: path.rfind("/backward")]
    return f"{base}/{half}"


def first_output(y):
    """A layer with return_state=True returns [output, *states]: the output is compared."""
    return y[0] if isinstance(y, (list, tuple)) else y


def keras_groups(kmodel, cells) -> dict:
    """Cells by the Keras layer that runs them, found by walking the real model: a
    component is a Bidirectional half or a stacked cell only if the layer there is one
    (a layer merely named `forward` or `cell_0` is a layer)."""
    groups = {}
    for cell in cells:
        layer, key = kmodel, []
        for name in cell.path.split("/"):
            kind = type(layer).__name__
            if kind == "Bidirectional" and name in ("forward", "backward"):
                break
            if kind in ("RNN",) and name.startswith("cell_"):
                break
            layer = layer.get_layer(name)
            key.append(name)
        groups.setdefault("/".join(key), []).append(cell)
    return groups


def compare_slices(layer, cells) -> float:
    """ConvLSTM: no NumPy forward pass; compare every gate view with Keras' arrays (a
    Bidirectional's halves each with their own layer's)."""
    worst = 0.0
    for cell in cells:
        owner = layer
        if type(layer).__name__ == "Bidirectional":
            owner = layer.backward_layer if cell.path.rsplit("/", 1)[-1] == "backward" else layer.forward_layer
        arrays = owner.get_weights()
        kernel, rk = arrays[0], arrays[1]
        bias = arrays[2] if len(arrays) > 2 else None
        u = cell.units
        for k, g in enumerate(cell.gates):
            pairs = [(cell.W[g], kernel[..., k * u:(k + 1) * u]), (cell.U[g], rk[..., k * u:(k + 1) * u])]
            if bias is not None:
                pairs.append((cell.b[g], bias[..., k * u:(k + 1) * u]))
            for view, expected in pairs:
                worst = max(worst, float(np.max(np.abs(view.numpy() - expected))))
    return worst


# Keras computes in the weights' dtype; the reference in float64.
DEFAULT_TOLERANCE = {"float16": 1e-2, "bfloat16": 5e-2}


def tolerance_for(cells, tolerance):
    if tolerance is not None:
        return tolerance
    return max(DEFAULT_TOLERANCE.get(c.W[c.gates[0]].dtype, 1e-5) for c in cells)


def cpu_equivalent(k, layer, cells):
    """CuDNNLSTM/CuDNNGRU run only on a GPU. On a CPU, Keras' own LSTM / GRU(reset_after=True)
    computes the same, with the weights converted by Keras' own loader
    (`preprocess_weights_for_loading`), not by lstmtool: the check stays independent."""
    name = type(layer).__name__
    if name not in ("CuDNNLSTM", "CuDNNGRU"):
        return layer
    from tf_keras.src.saving.legacy.hdf5_format import preprocess_weights_for_loading

    cfg = layer.get_config()
    common = {key: cfg[key] for key in ("units", "return_sequences", "return_state", "go_backwards", "stateful")
              if key in cfg}
    equivalent = (k.layers.LSTM(**common) if name == "CuDNNLSTM"
                  else k.layers.GRU(reset_after=True, recurrent_activation="sigmoid", **common))
    equivalent.build((None, None, cells[0].input_dim))
    equivalent.set_weights(preprocess_weights_for_loading(equivalent, layer.get_weights()))
    return equivalent


def verify_file(filename, tolerance=None, seed=0) -> dict:
    """Per layer, max |Keras - NumPy reference|; tolerance defaults to 1e-5 (1e-2 for float16)."""
    if tolerance is not None and not (np.isfinite(tolerance) and tolerance >= 0):
        raise UsageError(f"--tolerance {tolerance}: a finite number >= 0")
    with load(filename) as model:
        if model.config is None:
            if model.format == "tf-checkpoint":
                raise UsageError(f"{filename}: a TF checkpoint holds weights only; verify needs the model itself "
                                 "(its SavedModel directory, .h5 or .keras)")
            raise UsageError(f"{filename}: weights only (no model config): verify needs a full model")
        k, which = import_keras(model.keras_major)
        # tf-keras loads a SavedModel's directory, whichever of its paths named it
        target = model.store.location.savedmodel if model.format == "tf-savedmodel" else filename
        try:
            with native_stderr_quiet():
                kmodel = k.models.load_model(target, compile=False, safe_mode=True) if model.keras_major == 3 \
                    else k.models.load_model(target, compile=False)
        except Exception as e:  # Keras' own refusal, reported in one line
            raise ModelError(f"{which} cannot load {filename}: {type(e).__name__}: {str(e).splitlines()[0]}") from None
        rng = np.random.default_rng(seed)
        with native_stderr_quiet():
            rows = _compare(k, kmodel, model, tolerance, rng)
    return {"file": filename, "keras": which, "layers": rows,
            "ok": all(r["ok"] for r in rows)}


def _compare(k, kmodel, model, tolerance, rng):
    rows = []
    for path, cells in keras_groups(kmodel, model.cells).items():
        layer = find_layer(kmodel, path)
        layer = cpu_equivalent(k, layer, cells)
        if cells[0].conv:
            diff, what = compare_slices(layer, cells), "gate slices"
        else:
            x = rng.normal(0, 1, (3, 7, cells[0].input_dim)).astype(cells[0].W[cells[0].gates[0]].dtype)
            y = layer(x)
            got = numpy_output(layer, cells, x.astype(np.float64), model.keras_major)
            expected = list(y)[:2] if isinstance(got, list) else first_output(y)
            pairs = zip(got, expected) if isinstance(got, list) else [(got, expected)]
            diff = max(float(np.max(np.abs(g - np.asarray(e)))) for g, e in pairs)
            what = "forward pass"
        tol = tolerance_for(cells, tolerance)
        rows.append({"path": path, "what": what, "max_abs_diff": diff, "tolerance": tol, "ok": diff <= tol})
    return rows
