"""``python -m gradr_deploy.simulation.lava_worker JOB_DIR``: one Lava job for
:func:`gradr_deploy.simulation.lava_sim.run_lava`.

``JOB_DIR`` holds ``job.json`` (the arguments of
:func:`gradr_deploy.simulation.lava_graph.run_in_process`) and
``spikes.npy`` (the input). The worker writes ``layer<k>.npy`` (each recorded layer's spikes,
``(N, neurons, window)`` uint8) and ``result.json``, prints ``progress <samples>`` lines on
stdout as the run advances, and records the name of every shared-memory segment Lava creates
in ``shm.txt``, so that the parent can free them if it has to kill the run. If the parent
dies, even by SIGKILL, the worker frees them itself and kills its session.

Exit codes: 0 done; 2 the network cannot be built or run (message on stderr, one line); 1 a
bug (traceback on stderr).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import os
import signal
import sys
from multiprocessing import shared_memory
from pathlib import Path

import numpy as np

from gradr_deploy.simulation.lava_sim import SHM_LOG, free_shared_memory


def _log_shared_memory(folder: Path) -> None:
    """Append the name of every segment created from now on (also in forked children)."""
    original = shared_memory.SharedMemory.__init__
    log = folder / SHM_LOG

    def logged(self, name=None, create=False, size=0):
        original(self, name, create, size)
        if create:
            with open(log, "a") as handle:
                handle.write(self.name + "\n")

    shared_memory.SharedMemory.__init__ = logged


def _die_with_parent(folder: Path, parent: int) -> None:
    """If the parent dies (even by SIGKILL), take every Lava process of this session along.

    Linux delivers SIGTERM to this process when its parent thread exits
    (``PR_SET_PDEATHSIG``); the handler frees Lava's shared memory and kills the session,
    this process included. Lava's processes are forked from here, so they are in it.
    """

    def handler(signum: int, _frame: object) -> None:
        free_shared_memory(folder)
        os.killpg(os.getpgid(0), signal.SIGKILL)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGHUP, handler)
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1
    if os.getppid() != parent:  # the parent died before prctl took effect
        handler(signal.SIGTERM, None)


def main(argv: list[str]) -> int:
    folder = Path(argv[0])
    job = json.loads((folder / "job.json").read_text())
    _die_with_parent(folder, int(job["parent"]))
    _log_shared_memory(folder)
    from gradr_deploy.simulation.lava_copies import CopiesUnsupported
    from gradr_deploy.simulation.lava_graph import run_in_process

    spikes = np.load(folder / "spikes.npy", mmap_mode="r")

    def progress(count: int) -> None:
        print(f"progress {count}", flush=True)

    try:
        run = run_in_process(
            job["model"], np.asarray(spikes), job["window"],
            None if job["input_shape"] is None else tuple(job["input_shape"]),
            target=job["target"], copies=job["copies"], progress=progress,
            record_hidden=job["record_hidden"], sparse=job["sparse"], summed=job["summed"],
            input_message_bits=job.get("input_message_bits", 0),
        )
    except CopiesUnsupported as exc:
        print(f"error: {job['model']}: {exc}", file=sys.stderr, flush=True)
        return 2
    for k, layer in enumerate(run.layer_spikes or []):
        np.save(folder / f"layer{k}.npy", layer)
    (folder / "result.json").write_text(json.dumps({
        "layer_names": run.layer_names, "seconds": run.seconds, "copies": run.copies,
        "time_steps": run.time_steps, "layers": len(run.layer_spikes or []),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
