"""Run one job function over many files: in this process, in local worker processes, or
on a Dask cluster. Each yields (index, record) as files finish, in the order they finish.

Local processes are a small pool of our own rather than concurrent.futures': a worker that
dies (killed, out of memory, a crash in the HDF5 library) breaks a ProcessPoolExecutor for
every file in flight, while here the parent knows which one file each worker holds, gives
that file one more try in a fresh worker, then records it as failed with the reason; and a
file past its deadline has its worker killed, not the run.
"""
from __future__ import annotations

import multiprocessing
import os
import time
from multiprocessing.connection import wait

from ..errors import UsageError

RETRIES = 1  # a file whose worker died gets one more worker before it is recorded as failed


def run(job, tasks, jobs=1, scheduler=None, timeout=None, isolate=False):
    """`tasks`: [(args, kwargs)] for work.JOBS[job]. Yields (index, record). `isolate`: even
    one job runs in a worker process (the command line: a file that hangs or crashes the HDF5
    library then ends its worker, not the run)."""
    if scheduler:
        yield from _dask(job, tasks, scheduler)
    elif not isolate and (jobs <= 1 or len(tasks) <= 1):
        from .work import JOBS

        for k, (args, kwargs) in enumerate(tasks):
            yield k, JOBS[job](*args, **kwargs)
    else:
        yield from _pool(job, tasks, jobs, timeout)


def failed(job, args, reason) -> dict:
    """The record of a file no worker could finish."""
    from . import work

    error = f"{work._shown(args[0])}: {reason}"
    if job == "trace":
        return {"file": work._shown(args[0]), "values": {}, "error": error}
    if job == "scan":
        record = work.scan_record(args[0])
    elif job == "verify":
        record = {"input": work._shown(args[0]), "ok": False}
    else:
        record = {"input": work._shown(args[0]), "output": work._shown(args[1])}
    record.update(work.fingerprint(args[0]))
    record.update(result="failed", error=error)
    return record


# -- local processes -----------------------------------------------------------------------------

def _serve(conn):
    """A worker: run the tasks it is sent, one at a time, until told to stop."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    from ..reading import watchdog
    from .work import JOBS

    watchdog.ENABLED = True  # a process of our own: a hung HDF5 read ends it, and the parent says so

    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        k, job, args, kwargs = message
        conn.send((k, JOBS[job](*args, **kwargs)))


class _Worker:
    def __init__(self, ctx):
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(child,), daemon=True)
        self.process.start()
        child.close()
        self.task, self.started = None, None

    def give(self, k, job, args, kwargs):
        self.task, self.started = k, time.monotonic()
        self.conn.send((k, job, args, kwargs))

    def kill(self):
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.conn.close()


def _pool(job, tasks, jobs, timeout):
    # spawned, not forked: a worker gets this process's environment as it is now (store
    # credentials, endpoints), never a fork of its threads or open HDF5 handles
    ctx = multiprocessing.get_context("spawn")
    queue = list(range(len(tasks)))[::-1]  # popped from the end: the given order
    tries = [0] * len(tasks)
    workers = [_Worker(ctx) for _ in range(min(jobs, len(tasks)))]
    try:
        done = 0
        while done < len(tasks):
            for w in workers:
                if w.task is None and queue:
                    k = queue.pop()
                    w.give(k, job, *tasks[k])
            busy = [w for w in workers if w.task is not None]
            ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout=1.0)
            now = time.monotonic()
            for i, w in enumerate(list(workers)):
                if w.task is None:
                    continue
                k = w.task
                if w.conn in ready:
                    try:
                        got, record = w.conn.recv()
                    except (EOFError, OSError):
                        got = None
                    if got == k:
                        w.task = None
                        done += 1
                        yield k, record
                        continue
                if w.process.sentinel in ready or not w.process.is_alive():
                    code = w.process.exitcode
                    w.kill()
                    workers[i] = _Worker(ctx)
                    tries[k] += 1
                    if tries[k] <= RETRIES:
                        queue.append(k)  # next, in a fresh worker
                    else:
                        done += 1
                        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit {code}"
                        yield k, failed(job, tasks[k][0], f"the worker process died on this file ({how}, "
                                                          f"{tries[k]} tries): damaged metadata that hangs the "
                                                          "HDF5 library (stopped after LSTMTOOL_LOAD_TIMEOUT s), "
                                                          "out of memory, or killed")
                elif timeout and now - w.started > timeout:
                    w.kill()
                    workers[i] = _Worker(ctx)
                    done += 1
                    yield k, failed(job, tasks[k][0], f"no result after {timeout:g} s (--timeout); its worker "
                                                      "was stopped")
    finally:
        for w in workers:
            if w.task is None and w.process.is_alive():
                try:
                    w.conn.send(None)
                except OSError:
                    pass
        for w in workers:
            w.process.join(2)
            w.kill()


# -- Dask distributed ----------------------------------------------------------------------------

def run_batch(job, batch):
    """A few files in one Dask task: [(index, record)]. Small files take milliseconds, about
    what the scheduler spends on a task, so one task per file would leave the workers idle."""
    from .work import JOBS

    return [(k, JOBS[job](*args, **kwargs)) for k, args, kwargs in batch]


BATCH = 8  # files per Dask task, at most


def _dask(job, tasks, address):
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise UsageError("--scheduler needs the fleet extra: pip install 'lstmtool[fleet]'") from None
    try:
        client = Client(address, timeout=30)
    except (OSError, TimeoutError) as e:
        raise UsageError(f"--scheduler {address}: cannot reach the Dask scheduler ({e})") from None
    try:
        threads = max(1, sum(client.nthreads().values()))
        size = max(1, min(BATCH, len(tasks) // (threads * 8)))  # enough tasks to keep every thread busy
        batches = {}
        for i in range(0, len(tasks), size):
            batch = [(k, *tasks[k]) for k in range(i, min(i + size, len(tasks)))]
            f = client.submit(run_batch, job, batch, pure=False, key=f"lstmtool-{job}-{os.getpid()}-{i}")
            batches[f.key] = (f, batch)
        for f in as_completed([f for f, _ in batches.values()]):
            batch = batches[f.key][1]
            if f.status == "finished":
                yield from f.result()
            else:
                error = f.exception()
                name = type(error).__name__
                reason = ("the Dask workers running this file died" if name == "KilledWorker"
                          else f"the Dask task failed ({name}: {error})")
                for k, args, _ in batch:
                    yield k, failed(job, args, reason)
            f.release()
    finally:
        client.close()
