"""Fuzzing TF SavedModels and checkpoints: damage one file of a fixture directory, run the
commands, check the oracles (as tests/fuzz/run.py does for single-file formats).

Random damage to an .index is caught by its block checksums, so half the mutants repair
them (and the object graph's tensor CRC) after the damage, to reach the parsers behind.

    python tests/test_tf_fuzz.py --count 1000 --seed 3     # by hand; CI runs 120 mutants
"""
import argparse
import hashlib
import os
import random
import shutil
import struct
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

from conftest import FIXTURES, run_cli  # noqa: E402
from lstmtool.containers import tf_bundle  # noqa: E402

SOURCES = ["seq_savedmodel", "mix_ckpt", "sharded_ckpt"]


def _reseal_index(path):
    """Recompute every block checksum of a (damaged) .index, so the damage reaches the parser."""
    data = bytearray(open(path, "rb").read())
    try:
        footer = data[-tf_bundle.FOOTER_SIZE:]
        _, pos = tf_bundle._handle(footer, 0)
        index_handle, _ = tf_bundle._handle(footer, pos)
        handles = [index_handle]
        for _, value, _ in tf_bundle._entries(bytes(data), *index_handle):
            handles.append(tf_bundle._handle(value, 0)[0])
    except (ValueError, IndexError, struct.error):
        return
    for offset, size in handles:
        if offset + size + tf_bundle.TRAILER_SIZE <= len(data):
            crc = tf_bundle.mask(tf_bundle.crc32c(bytes(data[offset:offset + size + 1])))
            struct.pack_into("<I", data, offset + size + 1, crc)
    open(path, "wb").write(bytes(data))


def mutate(work, rng):
    files = sorted(os.path.join(r, f) for r, _, fs in os.walk(work) for f in fs if f != "saved_model.pb")
    target = rng.choice(files)
    data = bytearray(open(target, "rb").read())
    kind = rng.choice(["flip", "truncate", "zero", "flip_resealed", "graph"])
    if kind == "graph":  # damage the object graph and fix its CRC in the index: the graph parser sees it
        index = [f for f in files if f.endswith(".index")][0]
        b = tf_bundle.Bundle(index[:-len(".index")])
        e = b.entries.get("_CHECKPOINTABLE_OBJECT_GRAPH")
        shard = b.shard_path(e.shard) if e else None
        b.close()
        if e is None or e.size < 8:
            return "graph (none)"
        blob = bytearray(open(shard, "rb").read())
        for _ in range(rng.randint(1, 6)):
            blob[e.offset + rng.randrange(e.size)] = rng.randrange(256)
        open(shard, "wb").write(bytes(blob))
        return "graph"
    if not data:
        return f"{kind} (empty file)"
    if kind in ("flip", "flip_resealed"):
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif kind == "truncate":
        data = data[: rng.randrange(len(data))]
    else:
        start = rng.randrange(len(data))
        data[start:start + rng.randint(1, 64)] = bytes(min(64, len(data) - start))
    open(target, "wb").write(bytes(data))
    if kind == "flip_resealed" and target.endswith(".index"):
        _reseal_index(target)
    return f"{kind} {os.path.basename(target)}"


def digest(work):
    out = {}
    for r, _, fs in os.walk(work):
        for f in fs:
            out[os.path.relpath(os.path.join(r, f), work)] = hashlib.sha256(open(os.path.join(r, f), "rb").read()).hexdigest()
    return out


def problems_of(result, what):
    out = []
    if result.exit_code not in (0, 1, 2):
        out.append(f"{what}: exit {result.exit_code}")
    text = result.stderr or ""
    if "internal error" in text or "Traceback" in text:
        out.append(f"{what}: {text.strip()[:200]}")
    if result.exit_code and len(text.strip().splitlines()) != 1:
        out.append(f"{what}: error is not one line: {text.strip()[:200]!r}")
    return out


def campaign(count, seed):
    rng = random.Random(seed)
    base = tempfile.mkdtemp(prefix="lstmtool-tf-fuzz-")
    problems, outcomes = [], {"ok": 0, "refused": 0}
    try:
        for k in range(count):
            name = SOURCES[k % len(SOURCES)]
            work = os.path.join(base, f"m{k}")
            shutil.copytree(os.path.join(FIXTURES, "tf", name), work)
            target = os.path.join(work, "ckpt") if name == "sharded_ckpt" else work
            what = mutate(work, rng)
            before = digest(work)
            r = run_cli("inspect", target, "--json", "--stats")
            problems += problems_of(r, f"#{k} {name} {what} inspect")
            outcomes["ok" if r.exit_code == 0 else "refused"] += 1
            for args in (["export", target, "-o", os.path.join(base, f"x{k}")],
                         ["set-forget-bias", "1.5", target, "-o", os.path.join(base, f"o{k}")],
                         ["upgrade", target, "-o", os.path.join(base, f"u{k}.keras")]):
                problems += problems_of(run_cli(*args), f"#{k} {name} {what} {args[0]}")
            if digest(work) != before:
                problems.append(f"#{k} {name} {what}: input changed by a command that writes elsewhere")
            r = run_cli("set-forget-bias", "2.5", target)
            problems += problems_of(r, f"#{k} {name} {what} set-forget-bias in place")
            if r.exit_code:
                if digest(work) != before:
                    problems.append(f"#{k} {name} {what}: a refused in-place edit changed the input")
            else:
                r = run_cli("inspect", target)
                if r.exit_code:
                    problems.append(f"#{k} {name} {what}: edited in place, then unreadable: {r.stderr.strip()}")
            shutil.rmtree(work, ignore_errors=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return problems, outcomes


def test_tf_fuzz_campaign():
    problems, outcomes = campaign(120, seed=5)
    print(f"\nTF fuzz: 120 mutants, {outcomes}")
    assert not problems, "\n".join(problems[:20])


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=600)
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args()
    found, seen = campaign(args.count, args.seed)
    print(f"{args.count} mutants: {seen}; {len(found)} problems")
    for p in found:
        print("  " + p)
