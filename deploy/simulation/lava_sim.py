"""Run a netx HDF5 network in Lava on many samples, record every layer, stop cleanly.

Samples are presented back to back: each occupies a window of ``window`` steps (its spikes,
then empty drain steps) and netx resets every neuron every ``window`` steps, staggered by one
step per layer so that each layer resets exactly when its part of the previous sample has
passed. ``copies`` copies of the network run side by side in one Lava graph, each on its own
share of the samples (:mod:`gradr_deploy.simulation.lava_graph`); the graph is built and compiled
once.

The run happens in a worker process (:mod:`gradr_deploy.simulation.lava_worker`) in a session of
its own, with
every Lava process below it. :func:`run_lava` follows its progress; on an interrupt (Ctrl-C,
SIGTERM, SIGHUP, or any exception), or when the run stops advancing for ``stall_seconds``, it
kills the whole worker session and frees the shared memory Lava had allocated, so no process
and no ``/dev/shm`` segment outlives the call.

Targets: ``lava-sim`` is Lava's CPU backend (``Loihi2SimCfg``, fixed point, bit-accurate to
Loihi's integer arithmetic). ``loihi2`` builds ``Loihi2HwCfg`` and needs Intel's lava-loihi
package, which is not public; without it :func:`run_config` raises
:class:`~gradr_deploy.errors.BackendUnavailableError`.

Imports numpy only; the worker imports Lava.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gradr_deploy.errors import BackendUnavailableError, InputError, option

TARGETS = ("lava-sim", "loihi2")
DEFAULT_COPIES = 32  # network copies side by side in one Lava graph (benchmarks/lava_throughput)
PROGRESS_STEPS = 512  # Lava steps between progress reports
STALL_SECONDS = 600.0  # a run that reports no progress for this long is stuck: it is killed
SPARSE_DENSITY = 0.25  # below this share of nonzero weights, use more copies (cheaper synapses)


@dataclass
class LavaRun:
    """What a Lava run produced.

    Attributes:
        output_spikes: ``(N, C, window)`` uint8, the last layer's spikes per sample.
        neuron_spike_counts: per recorded layer, ``(neurons,)`` spikes of each neuron summed
            over samples (neurons in netx order: ``(x, y, f)`` C-order for conv layers).
        step_spike_counts: per recorded layer, ``(window,)`` spikes at each window step,
            summed over samples and neurons.
        layer_names: per recorded layer, ``"<index>:<type>"`` as netx built it.
        time_steps: sample steps simulated in total (samples x window, over all copies).
        seconds: wall time of the runs (building and compilation included).
        layer_spikes: per recorded layer, ``(N, neurons, window)`` uint8, neurons in stored
            C order; sample ``n``'s slot holds steps ``n * window + 1 .. (n + 1) * window`` of
            its copy's run.
        copies: network copies that ran side by side.
    """

    output_spikes: np.ndarray
    neuron_spike_counts: list[np.ndarray]
    step_spike_counts: list[np.ndarray]
    layer_names: list[str]
    time_steps: int
    seconds: float
    layer_spikes: list[np.ndarray] | None = None
    copies: int = 1

    @property
    def time_steps_per_second(self) -> float:
        return self.time_steps / self.seconds if self.seconds > 0 else float("nan")


def run_config(target: str) -> Any:
    """The Lava run configuration for ``target`` (see module docstring)."""
    from gradr_deploy.simulation import lava_compat

    lava_compat.install()
    from lava.magma.core.run_configs import Loihi2HwCfg, Loihi2SimCfg

    if target == "lava-sim":
        return Loihi2SimCfg(select_tag="fixed_pt")
    if target == "loihi2":
        from lava.utils import loihi

        if not loihi.is_installed():
            raise BackendUnavailableError(
                f"{option('target', 'loihi2')} needs Intel's lava-loihi package (available to "
                "Intel Neuromorphic Research Community members), which is not installed. Use "
                f"{option('target', 'lava-sim')} for Lava's bit-accurate CPU simulation of the "
                "same network."
            )
        return Loihi2HwCfg()
    raise ValueError(f"unknown target {target!r}; choose one of {TARGETS}")


class LavaStalled(InputError):
    """The Lava run stopped advancing (a Lava process failed or hangs); it was killed."""


def plan_copies(density: float, samples: int, target: str, limit: int | None = None) -> int:
    """Copies side by side for a network whose dense layers hold ``density`` nonzero weights.

    Measured on the 2-core machine (``benchmarks/lava_throughput.py``): a dense MNIST 2FC
    network is fastest with 32 copies (250 samples/s), a 4%-connected one with 64 (1400/s).
    A hardware run (``loihi2``) uses the plain network.
    """
    if target != "lava-sim":
        return 1
    copies = 64 if density < SPARSE_DENSITY else DEFAULT_COPIES
    return max(1, min(samples, copies, limit or copies))


def copies_limit(network) -> int | None:
    """The most copies the network can be built with (delayed dense layers), or None."""
    from gradr_deploy.simulation.lava_copies import max_delay_copies

    delayed = [np.asarray(layer.weight).size for layer in network.layers
               if layer.kind == "dense" and layer.delay is not None and np.any(layer.delay)]
    return min(max_delay_copies(size) for size in delayed) if delayed else None


def run_lava(
    path: str | Path,
    spikes: np.ndarray,
    window: int,
    input_shape: tuple[int, ...] | None = None,
    target: str = "lava-sim",
    copies: int | None = None,
    progress: Callable[[int], None] | None = None,
    record_hidden: bool = True,
    stall_seconds: float = STALL_SECONDS,
    input_message_bits: int = 0,
) -> LavaRun:
    """Present each sample's spikes to the netx network in ``path`` and record every layer.

    Args:
        path: netx HDF5 file (already validated by :func:`gradr_deploy.netx.read_netx`).
        spikes: ``(N, F, window)`` input spikes per sample, drain steps included; ``F`` in
            C order of the stored input shape.
        window: steps per sample; neuron states are reset every ``window`` steps.
        input_shape: netx ``(x, y, f)`` for conv-first networks, else None.
        target: ``lava-sim`` or ``loihi2``.
        copies: network copies side by side; default :func:`plan_copies`.
        progress: called with the number of samples finished as the run advances.
        record_hidden: record every layer; False records only the output layer.
        stall_seconds: kill the run when it reports no progress for this long.
        input_message_bits: payload bits of the input spikes (0: binary; direct input > 0).

    Raises:
        BackendUnavailableError: ``loihi2`` without Intel's lava-loihi.
        LavaStalled: the run stopped advancing (exit code 2 from the CLI).
        InputError: Lava could not build or run the network (the message says why).
    """
    path = Path(path)
    if spikes.ndim != 3 or spikes.shape[-1] != window:
        raise ValueError(f"spikes must be (N, F, {window}), got {spikes.shape}")
    run_config(target)  # fail before any work if the target is unavailable
    if copies is None:
        from gradr_deploy.netx import read_netx

        network = read_netx(path)
        copies = plan_copies(network_density(network), len(spikes), target,
                             copies_limit(network))
    started = time.perf_counter()
    hardware = target != "lava-sim"
    job = {"model": str(path.resolve()), "window": window, "parent": os.getpid(),
           "input_shape": None if input_shape is None else list(input_shape),
           "target": target, "copies": copies, "record_hidden": record_hidden,
           "sparse": not hardware, "summed": not hardware,
           "input_message_bits": int(input_message_bits)}
    with tempfile.TemporaryDirectory(prefix="gradr-lava-job-") as folder:
        job_dir = Path(folder)
        (job_dir / "job.json").write_text(json.dumps(job))
        binary = spikes.min(initial=0) >= 0 and spikes.max(initial=0) <= 255
        np.save(job_dir / "spikes.npy", spikes.astype(np.uint8 if binary else np.int32))
        _run_worker(job_dir, progress, stall_seconds, path)
        result = json.loads((job_dir / "result.json").read_text())
        layer_spikes = [np.load(job_dir / f"layer{k}.npy") for k in range(result["layers"])]
    return LavaRun(
        output_spikes=layer_spikes[-1],
        neuron_spike_counts=[s.sum(axis=(0, 2), dtype=np.int64) for s in layer_spikes],
        step_spike_counts=[s.sum(axis=(0, 1), dtype=np.int64) for s in layer_spikes],
        layer_names=result["layer_names"],
        time_steps=result["time_steps"],
        seconds=time.perf_counter() - started,  # the worker's start and Lava's build included
        layer_spikes=layer_spikes,
        copies=result["copies"],
    )


def network_density(network) -> float:
    """Nonzero share of the dense layers' weights (1.0 for networks without dense layers)."""
    total = nonzero = 0
    for layer in network.layers:
        if layer.kind in ("dense", "dense_rec"):
            w = np.asarray(layer.weight)
            total += w.size
            nonzero += int(np.count_nonzero(np.trunc(w)))
    return nonzero / total if total else 1.0


def _run_worker(job_dir: Path, progress: Callable[[int], None] | None, stall_seconds: float,
                model: Path) -> None:
    """Run the worker to completion, or kill its whole session and free its shared memory."""
    stderr = open(job_dir / "stderr.txt", "w+b")
    process = subprocess.Popen(
        [sys.executable, "-m", "gradr_deploy.simulation.lava_worker", str(job_dir)],
        stdout=subprocess.PIPE,
        stderr=stderr, stdin=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        _follow(process, progress, stall_seconds)
        code = process.wait()
        if code != 0:
            stderr.seek(0)
            lines = stderr.read().decode(errors="replace").strip().splitlines()
            last = lines[-1] if lines else f"exit code {code}"
            if code == 2:
                raise InputError(last.removeprefix("error: "))
            raise RuntimeError(f"Lava worker failed on {model} ({last}); see the traceback:\n"
                               + "\n".join(lines[-20:]))
    finally:
        _kill_session(process)
        free_shared_memory(job_dir)
        stderr.close()


def _follow(process: subprocess.Popen, progress: Callable[[int], None] | None,
            stall_seconds: float) -> None:
    """Read ``progress N`` lines until the worker closes stdout; raise if it stalls."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        last = time.monotonic()
        buffer = b""
        while True:
            if not selector.select(timeout=1.0):
                if time.monotonic() - last > stall_seconds:
                    raise LavaStalled(
                        f"the Lava run made no progress for {stall_seconds:.0f} s and was "
                        "stopped: a Lava process failed or hangs (a layer whose shapes or "
                        "parameters Lava cannot run?)"
                    )
                continue
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                return
            last = time.monotonic()
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                if line.startswith(b"progress ") and progress is not None:
                    progress(int(line.split()[1]))


def _kill_session(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL, every process of the worker's session (Lava's included)."""
    for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if process.poll() is not None and not _session_alive(process.pid):
                return
            time.sleep(0.05)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=1.0)


def _session_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


SHM_LOG = "shm.txt"  # in a job folder: the shared-memory segments the worker's Lava created


def free_shared_memory(job_dir: Path) -> None:
    """Unlink the shared-memory segments the worker's Lava created (already gone if it ended
    normally)."""
    log = job_dir / SHM_LOG
    if not log.exists():
        return
    for name in set(log.read_text().split()):
        with contextlib.suppress(FileNotFoundError, OSError):
            os.unlink(f"/dev/shm/{name.lstrip('/')}")
