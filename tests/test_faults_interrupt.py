"""Interrupting a real ``deploy``: every Lava process stops, shared memory is freed, no partial
``deploy.json`` is left, and the exit code says what happened."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

SCRIPT = Path(sys.executable).parent / "gradr-lava"


def _lava_workers() -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        with __import__("contextlib").suppress(psutil.Error):
            if "gradr_deploy.simulation.lava_worker" in " ".join(proc.info["cmdline"] or []):
                found.append(proc)
    return found


def _segments() -> set[str]:
    return {name for name in os.listdir("/dev/shm") if name.startswith("psm_")}


def _long_run(tiny_run: Path, folder: Path) -> Path:
    """The tiny network presented for 300 steps per sample: with one copy, Lava needs about a
    minute for the 359 digits test samples, so a signal always lands mid-run."""
    import json

    import h5py

    path = folder / "long.net"
    path.write_bytes((tiny_run / "model.net").read_bytes())
    with h5py.File(path, "a") as handle:
        meta = json.loads(handle.attrs["gradr_lava"])
        meta["time_steps"] = meta["encoding"]["time_steps"] = 300
        handle.attrs["gradr_lava"] = json.dumps(meta)
    return path


def _start(tiny_run: Path, out: Path) -> subprocess.Popen:
    model = _long_run(tiny_run, out.parent)
    return subprocess.Popen(
        [str(SCRIPT), "deploy", str(model), "--target", "lava-sim", "--copies", "1",
         "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        # a shell that starts the test suite in the background ignores SIGINT, and its
        # children inherit that; a user's terminal does not: restore the default
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _cmdline(process: psutil.Process) -> str:
    """A process's command line, or "" if it ended since it was listed (short-lived helpers
    such as the compiler's subprocesses come and go while the test looks)."""
    try:
        return " ".join(process.cmdline())
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return ""


def _wait_for_lava(process: subprocess.Popen, timeout: float = 60.0) -> psutil.Process:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = psutil.Process(process.pid).children(recursive=True)
        workers = [c for c in children if "gradr_deploy.simulation.lava_worker" in _cmdline(c)]
        if workers and workers[0].children(recursive=True):  # Lava's processes are up
            time.sleep(1.0)
            return workers[0]
        assert process.poll() is None, process.communicate()
        time.sleep(0.1)
    raise AssertionError("Lava never started")


def _assert_clean(worker: psutil.Process, before: set[str], out: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and worker.is_running() and \
            worker.status() != psutil.STATUS_ZOMBIE:
        time.sleep(0.1)
    assert not [w for w in _lava_workers() if w.pid == worker.pid], "the Lava worker survived"
    assert not (_segments() - before), "shared memory segments were left in /dev/shm"
    assert not (out / "deploy.json").exists()
    assert not [p for p in out.glob(".*tmp")] if out.exists() else True


@pytest.mark.parametrize(("sig", "code", "words"), [
    (signal.SIGINT, 130, "interrupted"),
    (signal.SIGTERM, 143, "stopped by SIGTERM"),
    (signal.SIGHUP, 129, "stopped by SIGHUP"),
])
def test_signal_to_deploy_stops_every_lava_process(tiny_run: Path, tmp_path: Path, sig,
                                                   code: int, words: str) -> None:
    before = _segments()
    out = tmp_path / "out"
    process = _start(tiny_run, out)
    worker = _wait_for_lava(process)
    lava = worker.children(recursive=True)
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    assert words in stderr and "Traceback" not in stderr
    _assert_clean(worker, before, out)
    assert not [p for p in lava if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_ctrl_c_to_the_whole_process_group(tiny_run: Path, tmp_path: Path) -> None:
    before = _segments()
    out = tmp_path / "out"
    process = _start(tiny_run, out)
    worker = _wait_for_lava(process)
    os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert stderr.count("Traceback") == 0 and stderr.strip().endswith("interrupted")
    _assert_clean(worker, before, out)


def test_kill_9_of_deploy_takes_lava_along(tiny_run: Path, tmp_path: Path) -> None:
    before = _segments()
    out = tmp_path / "out"
    process = _start(tiny_run, out)
    worker = _wait_for_lava(process)
    process.kill()
    process.communicate(timeout=60)
    _assert_clean(worker, before, out)
