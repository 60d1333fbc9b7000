"""Run a netx HDF5 network in Lava, sample after sample, and record its spikes.

Samples are presented back to back in one Lava run: each occupies a window of ``window`` steps
(its spikes, then empty drain steps) and netx resets every neuron every ``window`` steps,
staggered by one step per layer so that each layer resets exactly when its part of the previous
sample has passed. Long test sets are run in chunks of samples, one Lava run each, to bound the
memory of the spike recorders.

Targets: ``lava-sim`` is Lava's CPU backend (``Loihi2SimCfg``, fixed point, bit-accurate to
Loihi's integer arithmetic). ``loihi2`` builds ``Loihi2HwCfg`` and needs Intel's lava-loihi
package, which is not public; without it :func:`run_config` raises
:class:`~deploy.errors.BackendUnavailableError`.

Imports Lava (through :mod:`deploy.lava_compat`) and, through netx, torch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deploy import lava_compat
from deploy.errors import BackendUnavailableError

lava_compat.install()
from lava.lib.dl import netx  # noqa: E402
from lava.magma.core.run_conditions import RunSteps  # noqa: E402
from lava.magma.core.run_configs import Loihi2HwCfg, Loihi2SimCfg  # noqa: E402
from lava.proc import io  # noqa: E402

TARGETS = ("lava-sim", "loihi2")


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
        time_steps: steps simulated in total.
        seconds: wall time of the runs (compilation included).
    """

    output_spikes: np.ndarray
    neuron_spike_counts: list[np.ndarray]
    step_spike_counts: list[np.ndarray]
    layer_names: list[str]
    time_steps: int
    seconds: float

    @property
    def time_steps_per_second(self) -> float:
        return self.time_steps / self.seconds if self.seconds > 0 else float("nan")


def run_config(target: str) -> Loihi2SimCfg | Loihi2HwCfg:
    """The Lava run configuration for ``target`` (see module docstring)."""
    if target == "lava-sim":
        return Loihi2SimCfg(select_tag="fixed_pt")
    if target == "loihi2":
        from lava.utils import loihi

        if not loihi.is_installed():
            raise BackendUnavailableError(
                "--target loihi2 needs Intel's lava-loihi package (available to Intel "
                "Neuromorphic Research Community members), which is not installed. Use "
                "--target lava-sim for Lava's bit-accurate CPU simulation of the same network."
            )
        return Loihi2HwCfg()
    raise ValueError(f"unknown target {target!r}; choose one of {TARGETS}")


def to_netx_layout(spikes: np.ndarray, input_shape: tuple[int, ...] | None) -> np.ndarray:
    """Reorder ``(N, F, S)`` spikes into Lava's ``(..., N * S)`` input stream.

    ``F`` is C-order over ``(f, y, x)`` (slayer's C, H, W); netx conv inputs are ``(x, y, f)``.
    """
    n, features, steps = spikes.shape
    if input_shape is None:
        return spikes.transpose(1, 0, 2).reshape(features, n * steps)
    width, height, channels = input_shape
    cube = spikes.reshape(n, channels, height, width, steps)
    return cube.transpose(3, 2, 1, 0, 4).reshape(width, height, channels, n * steps)


def _run_chunk(
    path: Path, spikes: np.ndarray, window: int, input_shape: tuple[int, ...] | None, target: str,
    record_hidden: bool,
) -> tuple[list[np.ndarray], list[str]]:
    """One Lava run over a chunk of samples; returns recorded layers' ``(neurons, steps)``."""
    steps = spikes.shape[0] * window
    network = netx.hdf5.Network(
        net_config=str(path), reset_interval=window, input_shape=input_shape
    )
    source = io.source.RingBuffer(data=to_netx_layout(spikes, input_shape).astype(np.float32))
    source.s_out.connect(network.inp)
    sinks = []
    recorded_layers = network.layers if record_hidden else network.layers[-1:]
    for layer in recorded_layers:
        sink = io.sink.RingBuffer(shape=layer.out.shape, buffer=steps)
        layer.out.connect(sink.a_in)
        sinks.append(sink)
    try:
        network.run(condition=RunSteps(num_steps=steps), run_cfg=run_config(target))
        recorded = [sink.data.get().reshape(-1, steps) for sink in sinks]
    finally:
        network.stop()
    names = [f"{i}:{type(layer).__name__.lower()}" for i, layer in enumerate(network.layers)]
    return recorded, names[-len(recorded) :]


def run_lava(
    path: str | Path,
    spikes: np.ndarray,
    window: int,
    input_shape: tuple[int, ...] | None = None,
    target: str = "lava-sim",
    chunk_size: int = 250,
    progress: Callable[[int], None] | None = None,
    record_hidden: bool = True,
) -> LavaRun:
    """Present each sample's spikes to the netx network in ``path`` and record all layers.

    Args:
        path: netx HDF5 file.
        spikes: ``(N, F, window)`` input spikes per sample (0/1), drain steps included.
        window: steps per sample; neuron states are reset every ``window`` steps.
        input_shape: netx ``(x, y, f)`` for conv-first networks, else None.
        target: ``lava-sim`` or ``loihi2``.
        chunk_size: samples per Lava run (bounds recorder memory).
        progress: called with the number of samples finished after each chunk.
        record_hidden: record every layer (for activity and energy); False records only the
            output layer, which runs faster (each recorder is one more Lava process).
    """
    path = Path(path)
    if spikes.ndim != 3 or spikes.shape[-1] != window:
        raise ValueError(f"spikes must be (N, F, {window}), got {spikes.shape}")
    run_config(target)  # fail before building anything if the target is unavailable
    outputs, neuron_counts, step_counts = [], None, None
    names: list[str] = []
    start = time.perf_counter()
    for first in range(0, len(spikes), chunk_size):
        chunk = spikes[first : first + chunk_size]
        recorded, names = _run_chunk(
            path, chunk, window, input_shape, target, record_hidden
        )
        per_sample = [r.reshape(r.shape[0], len(chunk), window) for r in recorded]
        chunk_neurons = [s.sum(axis=(1, 2)) for s in per_sample]
        chunk_steps = [s.sum(axis=(0, 1)) for s in per_sample]
        if neuron_counts is None:
            neuron_counts, step_counts = chunk_neurons, chunk_steps
        else:
            neuron_counts = [a + b for a, b in zip(neuron_counts, chunk_neurons, strict=True)]
            step_counts = [a + b for a, b in zip(step_counts, chunk_steps, strict=True)]
        outputs.append(per_sample[-1].transpose(1, 0, 2).astype(np.uint8))
        if progress is not None:
            progress(len(chunk))
    seconds = time.perf_counter() - start
    return LavaRun(
        output_spikes=np.concatenate(outputs),
        neuron_spike_counts=[c.astype(np.int64) for c in neuron_counts],
        step_spike_counts=[c.astype(np.int64) for c in step_counts],
        layer_names=names,
        time_steps=len(spikes) * window,
        seconds=seconds,
    )
