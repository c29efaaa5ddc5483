"""Fixed cost per command (issue 31): inspect, set-forget-bias -o and upgrade against their
floors, on the ~350 MB model of bench.py and on a small one (where start-up dominates).

    python benchmarks/fixed_cost.py [--runs 9] [--importtime]

Each pair (tool, floor) runs interleaved, RUNS times, each run a new process; medians and
their ratio are printed. Floors: a bare h5py listing script (inspect); copy + h5py slice
write + fsync + rename (set-forget-bias); a Python durable copy (upgrade). --importtime
prints the ten slowest imports of `lstmtool inspect` on the small model.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
ROOT = os.path.dirname(HERE)
BIG = "/tmp/lstmtool-bench/lstm3x2048.h5"
SMALL = os.path.join(ROOT, "fixtures", "tfkeras", "lstm_gru.h5")
PY = sys.executable

H5_LIST = """
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    f.visititems(lambda n, o: print(n, getattr(o, "shape", ""), getattr(o, "dtype", "")))
"""

# copy, set every LSTM's forget-gate bias slice, fsync, rename: what set-forget-bias -o must do
H5_EDIT = """
import os, shutil, sys, h5py
src, dst = sys.argv[1], sys.argv[2]
tmp = dst + ".tmp"
shutil.copyfile(src, tmp)
with h5py.File(tmp, "r+") as f:
    def visit(name, obj):
        if isinstance(obj, h5py.Dataset) and name.endswith("bias:0") and "lstm" in name:
            u = obj.shape[0] // 4
            obj[u:2 * u] = 1.0
    f["model_weights"].visititems(visit)
fd = os.open(tmp, os.O_RDONLY)
os.fsync(fd)
os.close(fd)
os.replace(tmp, dst)
fd = os.open(os.path.dirname(os.path.abspath(dst)), os.O_RDONLY)
os.fsync(fd)
os.close(fd)
"""

from bench import DURABLE_COPY  # noqa: E402 - copy + fsync + rename + fsync of the directory


def timed(cmd):
    t = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if r.returncode:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{r.stderr.decode()[-2000:]}")
    return time.perf_counter() - t


def pair(label, tool, floor, runs, before=None):
    a, b = [], []
    for _ in range(runs):
        for cmd, out in ((tool, a), (floor, b)):
            if before:
                before()
            out.append(timed(cmd))
    ta, tb = statistics.median(a), statistics.median(b)
    print(f"  {label:<22} {ta * 1000:8.1f} ms  floor {tb * 1000:8.1f} ms  {ta / tb:5.2f}x", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--importtime", action="store_true")
    args = ap.parse_args()
    subprocess.run([PY, "-m", "compileall", "-q", os.path.join(ROOT, "lstmtool")], check=True)
    script = os.path.join(os.path.dirname(PY), "lstmtool")
    tool = [script] if os.path.exists(script) else [PY, "-m", "lstmtool"]
    work = "/tmp/lstmtool-bench/fixed"
    os.makedirs(work, exist_ok=True)
    for path in (BIG, SMALL):
        if not os.path.exists(path):
            print(f"{path}: missing (python benchmarks/bench.py builds it)")
            continue
        print(f"\n{path} ({os.path.getsize(path) / 1e6:.1f} MB), median of {args.runs} interleaved runs")
        pair("inspect", tool + ["inspect", path], [PY, "-c", H5_LIST, path], args.runs)
        out = os.path.join(work, "edited.h5")
        pair("set-forget-bias -o", tool + ["set-forget-bias", "1.0", path, "-o", out, "--force"],
             [PY, "-c", H5_EDIT, path, out], args.runs)
        up = os.path.join(work, "upgraded.keras")
        pair("upgrade -o .keras", tool + ["upgrade", path, "-o", up, "--force"],
             [PY, "-c", DURABLE_COPY, path, up], args.runs)
        # what no upgrade can go below: reading HDF5 needs h5py (and numpy), ~90 ms of imports
        pair("  vs copy + import h5py", tool + ["upgrade", path, "-o", up, "--force"],
             [PY, "-c", "import h5py\n" + DURABLE_COPY, path, up], args.runs)
    if args.importtime:
        r = subprocess.run([PY, "-X", "importtime", "-m", "lstmtool", "inspect", SMALL], capture_output=True,
                           text=True)
        rows = []
        for line in r.stderr.splitlines():
            if line.startswith("import time:") and "|" in line:
                _, cumulative, name = line[len("import time:"):].split("|")
                if cumulative.strip().isdigit():
                    rows.append((int(cumulative), name.rstrip()))
        print("\nimport time of `lstmtool inspect` (cumulative us), the ten largest:")
        for us, name in sorted(rows, reverse=True)[:10]:
            print(f"  {us / 1000:7.1f} ms  {name}")


if __name__ == "__main__":
    main()
