"""`lstmtool convert` against its baselines (issue 27).

    python benchmarks/convert.py [--repeat 3]

1. The ~350 MB model of bench.py (3 stacked LSTM(2048)): conversion time and peak RSS
   against a durable copy of the file (copy + fsync + rename), each in its own process.
2. onnxruntime's inference latency on the converted model against Keras 3 `predict` of the
   original (batch 8, 10 steps; median of 20 calls after 3 warm-up calls; 1 thread each
   where the runtime allows it).
3. A small model (tf-keras LSTM + Dense): lstmtool convert against tf2onnx.convert.from_keras,
   when tf2onnx is importable (PYTHONPATH=/tmp/tf2onnx after
   `pip install --no-deps --target /tmp/tf2onnx tf2onnx`, which leaves the venv alone):
   both times, and whether both outputs equal tf-keras'.
"""
import argparse
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench import DIR, DURABLE_COPY, PY, big_model_and_tool, measure, row  # noqa: E402

# what any converter to ONNX's recurrent operators must do: read every kernel, lay it out as
# [gates x units, inputs] (a transpose), write the bytes durably
RELAY = """
import os, sys, h5py, numpy as np
out = open(sys.argv[2], "wb")
with h5py.File(sys.argv[1], "r") as f:
    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            a = obj[()]
            out.write(np.ascontiguousarray(a.T if a.ndim == 2 else a).tobytes())
    f.visititems(visit)
out.flush()
os.fsync(out.fileno())
out.close()
"""

LATENCY = """
import os, sys, time, statistics
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np
which, path = sys.argv[1], sys.argv[2]
x = np.random.default_rng(0).normal(0, 1, (8, 10, 128)).astype("float32")
if which == "ort":
    import onnxruntime as ort
    so = ort.SessionOptions()
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    run = lambda: s.run(None, {name: x})
else:
    import keras
    m = keras.saving.load_model(path, compile=False)
    run = lambda: m.predict(x, verbose=0)
for _ in range(3):
    run()
times = []
for _ in range(20):
    t = time.perf_counter(); run(); times.append(time.perf_counter() - t)
print(statistics.median(times))
"""

SMALL = """
import os, sys, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np
import tf_keras as k
out = sys.argv[1]
m = k.Sequential([k.Input((20, 8)), k.layers.LSTM(32), k.layers.Dense(4)])
m.save(os.path.join(out, "small.h5"))
x = np.random.default_rng(0).normal(0, 1, (4, 20, 8)).astype("float32")
np.save(os.path.join(out, "x.npy"), x)
np.save(os.path.join(out, "y.npy"), m.predict(x, verbose=0))
try:
    import tensorflow as tf
    import tf2onnx
except ImportError as e:
    print("tf2onnx: not importable", e)
    sys.exit(0)
t = time.perf_counter()
try:
    tf2onnx.convert.from_keras(m, input_signature=[tf.TensorSpec((None, 20, 8), tf.float32, name="x")],
                               output_path=os.path.join(out, "tf2onnx.onnx"))
    print("tf2onnx seconds", time.perf_counter() - t)
except Exception as e:
    print("tf2onnx: failed", type(e).__name__, str(e).splitlines()[0][:200])
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    stem, tool = big_model_and_tool()
    src, out = stem + ".h5", os.path.join(DIR, "lstm3x2048.onnx")
    print(f"\n{src} ({os.path.getsize(src) / 1e6:.0f} MB)")
    copy_t, copy_mb = measure([PY, "-c", DURABLE_COPY, src, os.path.join(DIR, "copy.h5")], args.repeat)
    row("copy + fsync + rename (baseline)", copy_t, copy_mb)
    relay_t, relay_mb = measure([PY, "-c", RELAY, src, os.path.join(DIR, "relaid.bin")], args.repeat)
    row("h5py read + transpose + durable write (floor)", relay_t, relay_mb, copy_t)
    t, mb = measure(tool + ["convert", src, "-o", out, "--force"], args.repeat)
    row("lstmtool convert -o .onnx", t, mb, copy_t)
    print(f"  convert / floor: {t / relay_t:.2f}x")
    print(f"  peak memory {mb:.0f} MB = {mb / (os.path.getsize(src) / 2 ** 20):.2f}x the file")
    ort_t = float(subprocess.run([PY, "-c", LATENCY, "ort", out], capture_output=True, text=True,
                                 check=True).stdout.split()[-1])
    keras_t = float(subprocess.run([PY, "-c", LATENCY, "keras", stem + ".keras"], capture_output=True, text=True,
                                   check=True).stdout.split()[-1])
    print(f"  inference, batch 8 x 10 steps: onnxruntime {ort_t * 1000:.1f} ms, Keras 3 predict "
          f"{keras_t * 1000:.1f} ms ({keras_t / ort_t:.2f}x)")
    with tempfile.TemporaryDirectory() as work:
        p = subprocess.run([PY, "-c", SMALL, work], capture_output=True, text=True)
        print("\nsmall model (LSTM(32) + Dense):")
        print("  " + "\n  ".join(line for line in p.stdout.splitlines()))
        t, mb = measure(tool + ["convert", os.path.join(work, "small.h5"), "-o", os.path.join(work, "l.onnx")], 1)
        row("lstmtool convert", t, mb)
        import numpy as np
        import onnxruntime as ort

        x, y = np.load(os.path.join(work, "x.npy")), np.load(os.path.join(work, "y.npy"))
        for name in ("l.onnx", "tf2onnx.onnx"):
            path = os.path.join(work, name)
            if os.path.exists(path):
                s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
                got = s.run(None, {s.get_inputs()[0].name: x})[0]
                print(f"  {name}: max |diff| vs tf-keras {float(np.max(np.abs(got - y))):.2e}")


if __name__ == "__main__":
    main()
