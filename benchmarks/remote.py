"""Remote reads: requests, bytes and wall time per command and format, against a local
Range-honouring HTTP server with added latency (tests/rangeserver.py), next to what a
whole download would cost.

    python benchmarks/remote.py [--latency 0.05]     # uses /tmp/lstmtool-bench (bench.py builds it)
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
from rangeserver import RangeServer  # noqa: E402

DIR = "/tmp/lstmtool-bench"


def run(server, *args):
    server.reset()
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "lstmtool", *args], capture_output=True, text=True)
    dt = time.perf_counter() - t
    if r.returncode:
        print("   failed:", r.stderr.strip().splitlines()[-1])
    return dt, server.requests, server.bytes_sent


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--latency", type=float, default=0.05)
    a = ap.parse_args()
    if not os.path.exists(os.path.join(DIR, "lstm3x2048.h5")):
        sys.exit("run benchmarks/bench.py first (it builds the model)")
    with RangeServer(DIR) as server, tempfile.TemporaryDirectory() as tmp:
        server.latency = a.latency
        print(f"latency {a.latency * 1000:.0f} ms per request; the file is "
              f"{os.path.getsize(os.path.join(DIR, 'lstm3x2048.h5')) / 1e6:.0f} MB")
        rows = []
        for name in ("lstm3x2048.h5", "lstm3x2048.keras", "lstm3x2048_savedmodel/"):
            if not os.path.exists(os.path.join(DIR, name)):
                continue
            url = server.url(name)
            rows.append((name, "inspect") + run(server, "inspect", url))
            out = os.path.join(tmp, "x")
            rows.append((name, "export --layer lstm_1") + run(server, "export", url, "-o", out, "--layer", "lstm_1",
                                                                  "--force"))
            cache = os.path.join(tmp, "cache")
            run(server, "--cache", cache, "inspect", url)
            rows.append((name, "inspect (2nd, --cache)") + run(server, "--cache", cache, "inspect", url))
        print(f"  {'file':<24} {'command':<24} {'time':>7} {'requests':>9} {'bytes':>13}")
        for name, what, dt, n, b in rows:
            print(f"  {name:<24} {what:<24} {dt:6.2f}s {n:9d} {b:13,d}")


if __name__ == "__main__":
    main()
