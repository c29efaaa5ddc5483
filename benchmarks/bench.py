"""Benchmarks against the obvious baselines, on a ~350 MB model (3 stacked LSTM(2048)).

    python benchmarks/bench.py            # builds /tmp/lstmtool-bench/*.h5|.keras once, then measures

Prints wall time (best of --repeat runs) and peak RSS of each command, each run in
its own process:
  inspect          lstmtool inspect   vs  bare h5py listing  vs  keras load_model + get_weights
  --help           lstmtool --help
  set-forget-bias  lstmtool set-forget-bias -o  vs  "copy file, write slice with h5py"
                   vs  keras load, set_weights, save
  upgrade          lstmtool upgrade (.h5 -> Keras 3 .keras)  vs  a durable copy of the file
  prune / widen    lstmtool prune --keep / widen --to of the middle layer  vs  a durable copy
  SavedModel       lstmtool inspect DIR  vs  a bare Python read of variables.index; the bytes
                   a gate view maps in (minor page faults x page size)
"""
import argparse
import os
import subprocess
import sys

DIR = "/tmp/lstmtool-bench"
PY = sys.executable

BUILD = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import keras
m = keras.Sequential([keras.Input((10, 128)), keras.layers.LSTM(2048, return_sequences=True, name="lstm"),
                      keras.layers.LSTM(2048, return_sequences=True, name="lstm_1"),
                      keras.layers.LSTM(2048, name="lstm_2"), keras.layers.Dense(1, name="dense")])
m.save(sys.argv[1] + ".h5")
m.save(sys.argv[1] + ".keras")
"""

BUILD_SAVEDMODEL = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tf_keras as k
m = k.Sequential([k.layers.LSTM(2048, return_sequences=True, name="lstm", input_shape=(10, 128)),
                  k.layers.LSTM(2048, return_sequences=True, name="lstm_1"),
                  k.layers.LSTM(2048, name="lstm_2"), k.layers.Dense(1, name="dense")])
m.save(sys.argv[1], save_format="tf", save_traces=False)  # traces would only add to saved_model.pb
"""

INDEX_READ = """
import sys
with open(sys.argv[1], "rb") as fh:
    data = fh.read()
print(len(data))
"""

GATE_BYTES = """
import resource, sys
import lstmtool
page = resource.getpagesize()
with lstmtool.load(sys.argv[1]) as m:
    cell = m.cells[0]
    for part in ("b", "U", "W"):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        view = cell.view(part, "f")
        arr = view.numpy()
        first = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) * page
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        arr = view.numpy()
        again = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) * page
        tensor = view.terms[0].tensor
        size = 4
        for d in tensor.shape:
            size *= d
        print(f"  {part}_f {view.source_text():<28} view {arr.nbytes / 1e6:8.3f} MB  tensor {size / 1e6:8.2f} MB"
              f"  first read {first / 1e6:8.2f} MB  again {again / 1e6:8.2f} MB")
"""

H5_LIST = """
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    f.visititems(lambda n, o: print(n, getattr(o, "shape", ""), getattr(o, "dtype", "")))
"""

KERAS_LOAD = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import keras
m = keras.models.load_model(sys.argv[1], compile=False)
w = m.get_weights()
print(sum(a.nbytes for a in w))
"""

H5_COPY_WRITE = """
import shutil, sys, h5py
src, dst = sys.argv[1], sys.argv[2]
shutil.copyfile(src, dst)
with h5py.File(dst, "r+") as f:
    ds = f["model_weights/lstm/sequential/lstm/lstm_cell/bias"] if "model_weights/lstm/sequential" in f \
        else f[[n for n in f["model_weights/lstm"].attrs["weight_names"] if n.endswith("bias")][0]]
    for name in ("lstm", "lstm_1", "lstm_2"):
        g = f["model_weights/" + name]
        bias = [n for n in g.attrs["weight_names"] if str(n).endswith("bias")][0]
        ds = g[bias]
        u = ds.shape[0] // 4
        ds[u:2 * u] = 1.0
"""

H5_COPY_WRITE_FSYNC = H5_COPY_WRITE + """
import os
fd = os.open(dst, os.O_RDONLY)
os.fsync(fd)
os.close(fd)
"""

KERAS_EDIT = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, keras
m = keras.models.load_model(sys.argv[1], compile=False)
for layer in m.layers:
    if isinstance(layer, keras.layers.LSTM):
        k, r, b = layer.get_weights()
        u = b.shape[0] // 4
        b[u:2 * u] = 1.0
        layer.set_weights([k, r, b])
m.save(sys.argv[2])
"""

MEASURE = """
import resource, subprocess, sys, time
t = time.perf_counter()
r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
dt = time.perf_counter() - t
if r.returncode:
    sys.stderr.write(r.stderr.decode()[-2000:])
    sys.exit(r.returncode)
print(dt, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
"""


def measure(cmd, repeat):
    best_t, peak = float("inf"), 0.0
    for _ in range(repeat):
        out = subprocess.run([PY, "-c", MEASURE, *cmd], capture_output=True, text=True)
        if out.returncode:
            raise SystemExit(f"failed: {' '.join(cmd)}\n{out.stderr}")
        t, mb = map(float, out.stdout.split())
        best_t, peak = min(best_t, t), max(peak, mb)
    return best_t, peak


DURABLE_COPY = """
import os, shutil, sys
tmp = sys.argv[2] + ".tmp"
shutil.copyfile(sys.argv[1], tmp)
fd = os.open(tmp, os.O_RDONLY)
os.fsync(fd)
os.close(fd)
os.replace(tmp, sys.argv[2])
fd = os.open(os.path.dirname(os.path.abspath(sys.argv[2])), os.O_RDONLY)
os.fsync(fd)
os.close(fd)
"""


def big_model_and_tool():
    """(stem of the ~350 MB model, built once; the lstmtool command as installed)."""
    os.makedirs(DIR, exist_ok=True)
    stem = os.path.join(DIR, "lstm3x2048")
    if not os.path.exists(stem + ".keras"):
        print("building the model with Keras 3 ...", flush=True)
        subprocess.run([PY, "-c", BUILD, stem], check=True)
    script = os.path.join(os.path.dirname(PY), "lstmtool")
    return stem, ([script] if os.path.exists(script) else [PY, "-m", "lstmtool"])


def row(label, t, mb, base=None):
    ratio = f"{t / base:6.2f}x" if base else ""
    print(f"  {label:<44} {t:8.3f} s  {mb:8.1f} MB  {ratio}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-keras", action="store_true", help="skip the slow Keras baselines")
    args = ap.parse_args()
    os.makedirs(DIR, exist_ok=True)
    stem = os.path.join(DIR, "lstm3x2048")
    if not os.path.exists(stem + ".keras"):
        print("building the model with Keras 3 ...", flush=True)
        subprocess.run([PY, "-c", BUILD, stem], check=True)
    # Measure lstmtool as installed: `pip install .` byte-compiles the package, but an editable
    # install under PYTHONDONTWRITEBYTECODE=1 recompiles it on every run, which is not what users see.
    pkg = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lstmtool")
    subprocess.run([PY, "-m", "compileall", "-q", pkg], check=True)
    script = os.path.join(os.path.dirname(PY), "lstmtool")
    lstmtool = [script] if os.path.exists(script) else [PY, "-m", "lstmtool"]
    for ext in (".h5", ".keras"):
        path = stem + ext
        print(f"\n{path}  ({os.path.getsize(path) / 1e6:.0f} MB)")
        base_t, base_mb = measure([PY, "-c", H5_LIST, path if ext == ".h5" else path], args.repeat) \
            if ext == ".h5" else (None, None)
        if ext == ".keras":
            # the baseline for an archive: list the weights member read in place, as lstmtool does
            base_t, base_mb = measure([PY, "-c", "import sys, zipfile, h5py\nz = zipfile.ZipFile(sys.argv[1])\n"
                                       "f = h5py.File(z.open('model.weights.h5'), 'r')\n"
                                       "f.visititems(lambda n, o: print(n, getattr(o, 'shape', '')))", path],
                                      args.repeat)
        row("bare h5py listing (baseline)", base_t, base_mb)
        t, mb = measure(lstmtool + ["inspect", path], args.repeat)
        row("lstmtool inspect", t, mb, base_t)
        t, mb = measure(lstmtool + ["inspect", path, "--json"], args.repeat)
        row("lstmtool inspect --json", t, mb, base_t)
        if not args.skip_keras:
            t, mb = measure([PY, "-c", KERAS_LOAD, path], 1)
            row("keras load_model + get_weights", t, mb, base_t)

        out = os.path.join(DIR, "out" + ext)
        if ext == ".h5":
            copy_t, copy_mb = measure([PY, "-c", H5_COPY_WRITE, path, out], args.repeat)
            row("copy file + write slices with h5py (baseline)", copy_t, copy_mb)
            fs_t, fs_mb = measure([PY, "-c", H5_COPY_WRITE_FSYNC, path, out], args.repeat)
            row("same + fsync (durable baseline)", fs_t, fs_mb, copy_t)
        else:
            copy_t, copy_mb = measure([PY, "-c", "import shutil,sys; shutil.copyfile(sys.argv[1], sys.argv[2])",
                                       path, out], args.repeat)
            row("copy file only (lower bound)", copy_t, copy_mb)
            fs_t, fs_mb = measure([PY, "-c", "import os,shutil,sys; shutil.copyfile(sys.argv[1], sys.argv[2]); "
                                   "fd = os.open(sys.argv[2], os.O_RDONLY); os.fsync(fd)", path, out], args.repeat)
            row("copy file + fsync (durable lower bound)", fs_t, fs_mb, copy_t)
        t, mb = measure(lstmtool + ["set-forget-bias", "1.0", path, "-o", out, "--force"], args.repeat)
        row("lstmtool set-forget-bias -o", t, mb, copy_t)
        ours = t
        if not args.skip_keras:
            kt, kmb = measure([PY, "-c", KERAS_EDIT, path, out], 1)
            row("keras load + set_weights + save", kt, kmb, copy_t)
            print(f"  lstmtool set-forget-bias is {kt / ours:.1f}x faster than Keras")
        if ext == ".keras":
            bench_prune(lstmtool, path, args.repeat)
        if ext == ".h5":  # upgrade: a legacy file -> Keras 3 .keras, against a durable copy of it
            up = os.path.join(DIR, "upgraded.keras")
            dc_t, dc_mb = measure([PY, "-c", DURABLE_COPY, path, up], args.repeat)
            row("copy file + fsync + rename (durable baseline)", dc_t, dc_mb)
            t, mb = measure(lstmtool + ["upgrade", path, "-o", up, "--force"], args.repeat)
            row("lstmtool upgrade -o .keras", t, mb, dc_t)
        bench_prune(lstmtool, path, args.repeat)
    bench_savedmodel(lstmtool, args.repeat)
    bench_pictures(lstmtool, stem + ".h5")
    t, mb = measure(lstmtool + ["--help"], 5)
    print()
    row("lstmtool --help", t, mb)


def bench_prune(lstmtool, path, repeat):
    """prune / widen the middle layer (its own tensors and the next layer's kernel change,
    the rest is copied), against a durable copy of the file."""
    ext = ".keras" if path.endswith(".keras") else ".h5"
    out = os.path.join(DIR, "reshaped" + ext)
    dc_t, dc_mb = measure([PY, "-c", DURABLE_COPY, path, out], repeat)
    row("copy file + fsync + rename (durable baseline)", dc_t, dc_mb)
    t, mb = measure(lstmtool + ["prune", path, "lstm_1", "--keep", "1024", "-o", out, "--force"], repeat)
    row("lstmtool prune lstm_1 --keep 1024 (l1)", t, mb, dc_t)
    t, mb = measure(lstmtool + ["widen", path, "lstm_1", "--to", "2304", "-o", out, "--force"], repeat)
    row("lstmtool widen lstm_1 --to 2304", t, mb, dc_t)


def bench_pictures(lstmtool, path):
    """plot must stream: peak RSS under 200 MB on the 340 MB model; trace over 100 files in one process."""
    print(f"\npictures of {path}")
    png = os.path.join(DIR, "gates.png")
    t, mb = measure(lstmtool + ["plot", path, "-o", png, "--force"], 1)
    row("lstmtool plot --kind weights", t, mb)
    t, mb = measure(lstmtool + ["plot", os.path.join(DIR, "lstm3x2048_savedmodel"), "-o", png, "--force"], 1)
    row("lstmtool plot (the SavedModel)", t, mb)
    small = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "keras3",
                         "lstm_gru.h5")
    series = os.path.join(DIR, "series")
    os.makedirs(series, exist_ok=True)
    import shutil

    for k in range(100):
        shutil.copyfile(small, os.path.join(series, f"weights-{k}.h5"))
    t, mb = measure(lstmtool + ["trace", os.path.join(series, "weights-*.h5"), "--json"], 1)
    row("lstmtool trace over 100 checkpoints", t, mb)


def bench_savedmodel(lstmtool, repeat):
    saved = os.path.join(DIR, "lstm3x2048_savedmodel")
    if not os.path.exists(os.path.join(saved, "saved_model.pb")):
        print("building the SavedModel with tf-keras ...", flush=True)
        subprocess.run([PY, "-c", BUILD_SAVEDMODEL, saved], check=True)
    data = os.path.join(saved, "variables", "variables.data-00000-of-00001")
    print(f"\n{saved}  (SavedModel, {os.path.getsize(data) / 1e6:.0f} MB of variables)")
    base_t, base_mb = measure([PY, "-c", INDEX_READ, os.path.join(saved, "variables", "variables.index")], repeat)
    row("bare Python read of variables.index (baseline)", base_t, base_mb)
    t, mb = measure(lstmtool + ["inspect", saved], repeat)
    row("lstmtool inspect", t, mb, base_t)
    t, mb = measure(lstmtool + ["show", saved, "lstm", "--part", "b", "--gate", "f"], repeat)
    row("lstmtool show lstm --part b --gate f", t, mb, base_t)
    print("  bytes a gate view maps in (the first read of a tensor checks its CRC32C over the whole tensor):")
    subprocess.run([PY, "-c", GATE_BYTES, saved], check=True)


if __name__ == "__main__":
    main()
