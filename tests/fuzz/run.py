"""Fuzz campaign: mutate fixture models, run every command on each mutant, check the oracles.

    python tests/fuzz/run.py --count 1200 --seed 7      # by hand: figures printed at the end
    (CI runs a smaller campaign through tests/test_fuzz.py)

Oracles, per mutant and command:
  - exit status is 0, 1 or 2; no "internal error", no traceback; an error is one line
  - the input file is byte-identical afterwards (in-place edits: unchanged, or a valid edit)
  - an output exists only on success, and then lstmtool reads it (and a .keras passes its CRCs)
  - memory stays bounded: the worker runs under an address-space limit, and peak RSS is checked
Commands run in this process through click's CliRunner, so a campaign is fast.
"""
import argparse
import collections
import hashlib
import os
import resource
import shutil
import sys
import tempfile
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, ROOT)

from fuzz import mutants  # noqa: E402

RSS_LIMIT_MB = 512
ADDRESS_SPACE = 6 << 30  # a runaway allocation fails fast instead of swapping


def sources():
    fx = os.path.join(ROOT, "fixtures")
    picked = [os.path.join(fx, "keras3", n) for n in ("lstm_gru.keras", "bidir.keras", "stacked.h5", "nested.keras",
                                                       "lstm_gru.weights.h5")]
    picked += [os.path.join(fx, "tfkeras", n) for n in ("lstm_gru.h5", "bidir.wonly.h5")]
    picked += [os.path.join(fx, "legacy", "keras1_lstm_theano.h5"), os.path.join(fx, "upgrade", "two_inputs.h5")]
    return [p for p in picked if os.path.exists(p)]


def digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest() if os.path.exists(path) else None


def readable(path):
    import lstmtool

    if path.endswith(".keras"):
        with zipfile.ZipFile(path) as zf:
            if zf.testzip() is not None:
                return False
    with lstmtool.load(path) as m:
        for c in m.cells:
            for views in (c.W, c.U, c.b):
                for v in views.values():
                    v.numpy()
    return True


def peak_rss_mb():
    return max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) / 1024


def run_case(runner, cli, mutant, work, check_rss=True):
    """[(command, problem)] for one mutant. `check_rss`: the process's peak RSS is the
    campaign's oracle for memory (meaningless inside a test run that loaded TensorFlow)."""
    problems = []
    ext = ".keras" if mutant.endswith(".keras") else ".h5"
    before = digest(mutant)
    try:
        valid_input = readable(mutant)
    except Exception:
        valid_input = False  # an edit of a damaged file can only be as readable as the file was
    commands = {
        "inspect": (["inspect", mutant, "--json", "--stats"], None),
        "export": (["export", mutant, "-o", os.path.join(work, "exp")], None),
        "set-forget-bias -o": (["set-forget-bias", "1", mutant, "-o", os.path.join(work, "out" + ext)],
                               os.path.join(work, "out" + ext)),
        "upgrade": (["upgrade", mutant, "-o", os.path.join(work, "up.keras")], os.path.join(work, "up.keras")),
    }
    for name, (args, output) in commands.items():
        r = runner.invoke(cli, args, catch_exceptions=True)
        problems += check(name, r, output if valid_input or name == "upgrade" else None)
        if output and os.path.exists(output):
            os.unlink(output)
        if digest(mutant) != before:
            problems.append((name, "input modified"))
    inplace = os.path.join(work, "inplace" + ext)
    shutil.copy(mutant, inplace)
    r = runner.invoke(cli, ["set-forget-bias", "1", inplace], catch_exceptions=True)
    problems += check("set-forget-bias in place", r, None)
    if digest(inplace) != before:
        try:
            ok = r.exit_code == 0 and readable(inplace)
        except Exception:
            ok = False
        if not ok and valid_input:
            problems.append(("set-forget-bias in place", "file changed but is not a valid edit"))
    if check_rss and peak_rss_mb() > RSS_LIMIT_MB:
        problems.append(("any", f"peak RSS {peak_rss_mb():.0f} MB"))
    return problems


def check(name, r, output):
    problems = []
    err = (r.stderr or "") + (r.stdout if r.exit_code else "")
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        problems.append((name, f"uncaught {type(r.exception).__name__}: {r.exception}"))
    if r.exit_code not in (0, 1, 2):
        problems.append((name, f"exit status {r.exit_code}"))
    if "internal error" in err or "Traceback" in err:
        line = next((x for x in err.splitlines() if "internal error" in x), err.strip().splitlines()[-1])
        problems.append((name, line[:300]))
    elif r.exit_code and len([x for x in (r.stderr or "").strip().splitlines() if not x.startswith("warning:")]) > 1 \
            and "Usage:" not in r.stderr:
        problems.append((name, "error message is more than one line: " + r.stderr[:200]))
    if output:
        if r.exit_code and os.path.exists(output):
            problems.append((name, "failed but left an output file"))
        elif r.exit_code == 0:
            try:
                if not readable(output):
                    problems.append((name, "output fails its zip CRC"))
            except Exception as e:
                problems.append((name, f"output unreadable: {type(e).__name__}: {e}"[:300]))
        if os.path.exists(output):
            os.unlink(output)
    return problems


WATCHDOG_SECONDS = 10


def isolated(fn, *args):
    """Run fn(*args) -> problems in a forked child, so that a hang inside the HDF5 library
    (which lstmtool's CLI watchdog ends by killing the process) cannot stop the campaign.
    Returns (problems, 1 if the watchdog ended a hang else 0)."""
    import json

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            out = json.dumps(fn(*args)).encode()
        except BaseException as e:
            out = json.dumps([("harness", f"{type(e).__name__}: {e}")]).encode()
        with os.fdopen(write, "wb") as fh:
            fh.write(out)
        os._exit(0)
    os.close(write)
    import select

    chunks, deadline = [], time.monotonic() + 30 * WATCHDOG_SECONDS
    with os.fdopen(read, "rb") as fh:
        while True:  # EOF when the child exits or is killed; a child that hangs past every deadline is killed
            ready, _, _ = select.select([fh], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                return [("any", "hang: no answer within the harness deadline")], 0
            block = fh.read1(1 << 16)
            if not block:
                break
            chunks.append(block)
    data = b"".join(chunks)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == 9:
        return [], 1  # the CLI's metadata watchdog ended an endless HDF5 read: a one-line error, exit 137
    if not data:
        return [("any", f"worker died with status {status}")], 0
    return [tuple(p) for p in json.loads(data)], 0


def campaign(count, seed, verbose=False):
    from click.testing import CliRunner

    from lstmtool.cli import cli

    from lstmtool.reading import watchdog

    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
    os.environ["LSTMTOOL_LOAD_TIMEOUT"] = str(WATCHDOG_SECONDS)
    watchdog.ENABLED = True  # also for the harness's own reads of each mutant
    runner = CliRunner()
    results = collections.Counter()
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        cases = mutants.make(sources(), count, os.path.join(tmp, "mutants"), seed)
        for mutant, kind, src in cases:
            work = tempfile.mkdtemp(dir=tmp)
            problems, hung = isolated(run_case, runner, cli, mutant, work)
            results["watchdog"] += hung
            shutil.rmtree(work, ignore_errors=True)
            results["mutants"] += 1
            results["runs"] += 5
            if problems:
                failures.append((os.path.basename(mutant), kind, os.path.relpath(src, ROOT), problems))
                if verbose:
                    print(failures[-1], flush=True)
            os.unlink(mutant)
    return results, failures


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=1200)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    results, failures = campaign(args.count, args.seed, args.verbose)
    kinds = collections.Counter(p for _, _, _, ps in failures for _, p in ps)
    print(f"{results['mutants']} mutants, {results['runs']} command runs, peak RSS {peak_rss_mb():.0f} MB; "
          f"{results['watchdog']} endless HDF5 reads ended by the watchdog; {len(failures)} mutants with problems")
    for problem, n in kinds.most_common(40):
        print(f"  {n:5d}  {problem}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
