"""The connectivity benchmark's worker processes end with the benchmark that spawned them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# A stand-in for `mnist_connectivity.py --jobs 2`: the benchmark's own pool set-up, with runs
# that would sleep for a minute; it prints the workers' pids and waits to be killed.
PARENT = textwrap.dedent("""
    import multiprocessing, os, sys, time
    from concurrent.futures import ProcessPoolExecutor
    sys.path.insert(0, {benchmarks!r})
    import mnist_connectivity as bench

    if __name__ == "__main__":
        pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=bench._start_worker, initargs=(1, os.getpid()))
        busy = [pool.submit(time.sleep, 60) for _ in range(2)]
        # workers are spawned on demand: the pool's children, not the pids that answered a
        # task, are the ones that must go (one quick task after another reaches one worker)
        pids = sorted(child.pid for child in multiprocessing.active_children())
        assert len(pids) == 2, pids
        print(" ".join(map(str, pids)), flush=True)
        time.sleep(60)
""")


def _alive(pid: int) -> bool:
    """Running, not a zombie: a worker's new parent (PID 1 of a container) may never reap it."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:
        return not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):  # gone between the two looks
        return False


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_workers_exit_when_the_benchmark_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(PARENT.format(benchmarks=str(REPO / "benchmarks")))
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        workers = [int(pid) for pid in parent.stdout.readline().split()]
        assert len(workers) == 2 and all(_alive(pid) for pid in workers)
        parent.send_signal(signal.SIGTERM)  # no handler: the pool is never shut down
        parent.wait(timeout=10)
        deadline = time.monotonic() + 15  # the watchdog polls every 5 s
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(pid) for pid in workers), "workers outlived the benchmark"
    finally:
        parent.kill()
        parent.wait()
