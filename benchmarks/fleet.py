"""Fleet scans: files/s of `lstmtool scan` with --jobs 1, --jobs 2 and a 2-worker Dask
cluster, against the shell loop `for f in ...; do lstmtool inspect --json $f; done`; and, for
an S3 prefix (moto's server on loopback), requests and bytes per file.

    python benchmarks/fleet.py [--files 1000] [--loop 60] [--s3 200]

The loop is timed on --loop files and given per file (a loop over 1,000 would take minutes
and say nothing more). Memory: the peak RSS of a local worker over the run.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(os.path.dirname(HERE), "fixtures")
SOURCES = ["tfkeras/bidir.h5", "tfkeras/lstm_gru.h5", "tfkeras/stacked.h5", "keras3/lstm_gru.keras",
           "keras3/convlstm.h5", "legacy/keras1_conv1d_lstm.h5", "tfkeras/nested.h5", "keras3/bidir.keras"]


def build(root, n):
    for k in range(n):
        src = SOURCES[k % len(SOURCES)]
        dst = os.path.join(root, f"{k // 100:03d}", f"{k:05d}_{os.path.basename(src)}")
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copyfile(os.path.join(FIXTURES, src), dst)


def timed(cmd, **kw):
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    return time.perf_counter() - t, r


def scan(args, env=None):
    out = tempfile.mktemp(suffix=".jsonl")
    dt, r = timed([sys.executable, "-m", "lstmtool", "scan", *args, "-o", out, "-q"], env=env)
    n = sum(1 for _ in open(out)) if os.path.exists(out) else 0
    if r.returncode not in (0, 1):
        print("   failed:", r.stderr.strip()[-300:])
    return dt, n


def cluster(where):
    file = os.path.join(where, "scheduler.json")
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", "0", "--no-dashboard", "--scheduler-file", file],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    while not os.path.exists(file):
        time.sleep(0.1)
    for _ in range(2):
        procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file", file,
                                       "--nworkers", "1", "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    from distributed import Client

    address = json.load(open(file))["address"]
    with Client(address) as c:
        c.wait_for_workers(2)
    return address, procs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--loop", type=int, default=60)
    ap.add_argument("--s3", type=int, default=200)
    a = ap.parse_args()
    where = tempfile.mkdtemp(prefix="lstmtool-fleet-")
    root = os.path.join(where, "models")
    build(root, a.files)
    print(f"{a.files} small models ({sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(root) for f in fs) / a.files / 1024:.0f} KB "
          f"each on average), {os.cpu_count()} cores")
    files = sorted(os.path.join(r, f) for r, _, fs in os.walk(root) for f in fs)[: a.loop]
    t = time.perf_counter()
    for f in files:
        subprocess.run([sys.executable, "-m", "lstmtool", "inspect", "--json", f], capture_output=True)
    loop = (time.perf_counter() - t) / len(files)
    print(f"  shell loop of inspect --json     {1 / loop:7.1f} files/s   ({loop * 1000:.0f} ms a file, {len(files)} timed)")
    rates = {}
    for label, extra in (("scan --jobs 1", ["--jobs", "1"]), ("scan --jobs 2", ["--jobs", "2"]),
                         ("scan --jobs 2 --no-hash", ["--jobs", "2", "--no-hash"])):
        dt, n = scan([root, *extra])
        rates[label] = n / dt
        print(f"  {label:32s} {n / dt:7.1f} files/s   ({n} records, {dt:.1f} s; {n / dt * loop:.1f}x the loop)")
    address, procs = cluster(where)
    try:
        dt, n = scan([root, "--scheduler", address])
        print(f"  scan on a 2-worker Dask cluster  {n / dt:7.1f} files/s   ({n} records, {dt:.1f} s; "
              f"{n / dt * loop:.1f}x the loop, {n / dt / rates['scan --jobs 2']:.2f}x local --jobs 2)")
    finally:
        for p in procs[::-1]:
            p.terminate()
    memory(root)
    if a.s3:
        s3(a.s3)
    shutil.rmtree(where, ignore_errors=True)


def memory(root):
    """A worker's memory against the number of files it has done: scan_one in this process."""
    import resource

    from lstmtool import scan_one

    files = sorted(os.path.join(r, f) for r, _, fs in os.walk(root) for f in fs)
    seen = []
    for k, f in enumerate(files, 1):
        scan_one(f)
        if k in (100, len(files) // 2, len(files)):
            seen.append(f"{k}: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB")
    print("  peak RSS of one worker after N files   " + ", ".join(seen))


def s3(n):
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = dict(os.environ, AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", AWS_DEFAULT_REGION="us-east-1",
               AWS_ENDPOINT_URL=f"http://{host}:{port}")
    os.environ.update({k: env[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION",
                                           "AWS_ENDPOINT_URL")})
    import boto3

    c = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"])
    c.create_bucket(Bucket="bench")
    h5 = [s for s in SOURCES if s.endswith(".h5")]
    for k in range(n):
        c.upload_file(os.path.join(FIXTURES, h5[k % len(h5)]), "bench", f"m/{k:05d}.h5")
    dt, got = scan(["s3://bench/m/", "--no-hash", "--jobs", "2"], env=env)
    print(f"  S3 prefix, {got} .h5 files, --no-hash --jobs 2: {got / dt:.1f} files/s")
    from lstmtool.remote import rangefile
    from lstmtool.fleet.work import scan_one

    calls = [0, 0]
    real = rangefile.call

    def counted(url, fn, *args, **kwargs):  # every store operation goes through call(): one request each
        calls[0] += 0 if getattr(fn, "__name__", "") == "open" else 1
        got = real(url, fn, *args, **kwargs)
        calls[1] += len(got) if isinstance(got, (bytes, bytearray)) else 0
        return got

    rangefile.call = counted
    sample = min(n, 50)
    for k in range(sample):
        scan_one(f"s3://bench/m/{k:05d}.h5", hash=False)
    rangefile.call = real
    size = os.path.getsize(os.path.join(FIXTURES, h5[0]))
    print(f"  S3 scan_one --no-hash: {calls[0] / sample:.1f} store requests and {calls[1] / sample / 1024:.0f} KB "
          f"a file (files of ~{size // 1024} KB; the prefix listing not counted), {sample} files")
    server.stop()


if __name__ == "__main__":
    main()
