"""`lstmtool health` on the ~350 MB model of bench.py (3 stacked LSTM(2048)) against
`inspect` (metadata only) and `inspect --stats` (which also reads every tensor), each in its
own process: wall time (best of --repeat) and peak RSS.

    python benchmarks/health.py [--repeat 3]

The health checks read every W, U and b once; sigma_max by power iteration (no SVD of the
2048 x 2048 gate blocks), the Jacobian at rest by differences of the reference step, orthogonality
by Hutchinson's estimator above 512 units.
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench import DIR, big_model_and_tool, measure, row  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    stem, tool = big_model_and_tool()
    src = stem + ".h5"
    print(f"\n{src} ({os.path.getsize(src) / 1e6:.0f} MB)")
    base_t, base_mb = measure(tool + ["inspect", src], args.repeat)
    row("lstmtool inspect (baseline)", base_t, base_mb)
    t, mb = measure(tool + ["inspect", src, "--stats"], args.repeat)
    row("lstmtool inspect --stats (reads every tensor)", t, mb, base_t)
    t, mb = measure(tool + ["health", src], args.repeat)
    row("lstmtool health", t, mb, base_t)
    t, mb = measure(tool + ["health", src, "--html", os.path.join(DIR, "health.html"), "--force"], args.repeat)
    row("lstmtool health --html", t, mb, base_t)


if __name__ == "__main__":
    main()
