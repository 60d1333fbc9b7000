"""Run a netx network in Lava, in this process: the worker side of
:mod:`gradr_deploy.simulation.lava_sim`.

Builds ``copies`` copies of the network side by side (:mod:`gradr_deploy.simulation.lava_copies`),
streams each copy's samples through memory-mapped files
(:mod:`gradr_deploy.simulation.lava_io.files`) and
records every layer. :mod:`gradr_deploy.simulation.lava_sim` runs this in a worker process
(:mod:`gradr_deploy.simulation.lava_worker`) so an interrupt can stop every Lava process at once.

Imports Lava (through :mod:`gradr_deploy.simulation.lava_compat`) and, through netx, torch.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from gradr_deploy.simulation import lava_compat
from gradr_deploy.simulation.lava_sim import DEFAULT_COPIES, PROGRESS_STEPS, LavaRun, run_config

lava_compat.install()
from lava.magma.core.run_conditions import RunSteps  # noqa: E402


def _per_copy(data: np.ndarray, copies: int, conv: bool) -> np.ndarray:
    """Sink data ``(copies * n, S)`` or ``(x, y, copies * f, S)`` -> ``(copies, n, S)`` with
    each copy's neurons in stored C order (``(f, y, x)`` for conv layers)."""
    if not conv:
        return data.reshape(copies, -1, data.shape[-1])
    x, y, cf, steps = data.shape
    cube = data.reshape(x, y, copies, cf // copies, steps)
    return cube.transpose(2, 3, 1, 0, 4).reshape(copies, -1, steps)


def _stream(spikes: np.ndarray, copies: int, groups: int, input_shape) -> np.ndarray:
    """Input ``(copies * groups, F, W)`` -> the source's data: copy ``c`` presents samples
    ``c * groups .. (c + 1) * groups - 1`` back to back."""
    _, features, window = spikes.shape
    per_copy = spikes.reshape(copies, groups, features, window).transpose(0, 2, 1, 3)
    per_copy = per_copy.reshape(copies, features, groups * window)
    if input_shape is None:
        return per_copy.reshape(copies * features, groups * window)
    x, y, f = input_shape
    cube = per_copy.reshape(copies, f, y, x, groups * window)  # stored (f, y, x) per copy
    return cube.transpose(3, 2, 0, 1, 4).reshape(x, y, copies * f, groups * window)


def run_in_process(
    path: str | Path,
    spikes: np.ndarray,
    window: int,
    input_shape: tuple[int, ...] | None = None,
    target: str = "lava-sim",
    copies: int = DEFAULT_COPIES,
    progress: Callable[[int], None] | None = None,
    record_hidden: bool = True,
    sparse: bool = True,
    summed: bool = False,
    input_message_bits: int = 0,
) -> LavaRun:
    """Present each sample's spikes to the netx network in ``path`` and record every layer.

    ``copies`` copies of the network run side by side in one Lava graph
    (:mod:`gradr_deploy.simulation.lava_copies`); copy ``c`` presents samples ``c * G .. (c + 1) *
    G - 1``
    back to back (``G = ceil(N / copies)``), all in one run of ``G * window`` steps. Input and
    recordings go through memory-mapped files (:mod:`gradr_deploy.simulation.lava_io`). The run is
    split into
    stretches of :data:`PROGRESS_STEPS` steps only to report progress.

    Args:
        path: netx HDF5 file.
        spikes: ``(N, F, window)`` input spikes per sample (0/1), drain steps included.
        window: steps per sample; neuron states are reset every ``window`` steps.
        input_shape: netx ``(x, y, f)`` for conv-first networks, else None.
        target: ``lava-sim`` or ``loihi2``.
        copies: network copies side by side (1 = the plain network, as netx builds it).
        progress: called with the number of samples finished after each stretch.
        record_hidden: record every layer; False records only the output layer.
        sparse: block-diagonal ``Sparse`` synapses for dense layers (else ``Dense``).
        summed: binary spikes through Lava's graded-input path
        (:mod:`gradr_deploy.simulation.lava_copies`).
        input_message_bits: payload bits of the input spikes (0 binary, > 0 graded).
    """
    from gradr_deploy.simulation.lava_copies import build_copies
    from gradr_deploy.simulation.lava_io.files import FileSink, FileSource

    path = Path(path)
    if spikes.ndim != 3 or spikes.shape[-1] != window:
        raise ValueError(f"spikes must be (N, F, {window}), got {spikes.shape}")
    config = run_config(target)
    n = len(spikes)
    copies = max(1, min(copies, n))
    groups = -(-n // copies)
    steps = groups * window
    start = time.perf_counter()
    net = build_copies(path, copies, window, input_shape, sparse=sparse, summed=summed,
                       input_message_bits=input_message_bits)
    padded = np.zeros((copies * groups, *spikes.shape[1:]), np.int32)
    padded[:n] = spikes
    with tempfile.TemporaryDirectory(prefix="gradr-lava-run-") as folder:
        stream = _stream(padded, copies, groups, input_shape)
        np.save(Path(folder) / "input.npy", stream)
        source = FileSource(shape=stream.shape[:-1], path=str(Path(folder) / "input.npy"))
        source.s_out.connect(net.inp)
        recorded = net.layers if record_hidden else net.layers[-1:]
        files = []
        for k, layer in enumerate(recorded):
            file = Path(folder) / f"layer{k}.npy"
            np.save(file, np.zeros((*layer.out.shape, steps), np.uint8))
            sink = FileSink(shape=layer.out.shape, path=str(file))
            layer.out.connect(sink.a_in)
            files.append(file)
        done = 0
        try:
            while done < steps:
                stretch = min(PROGRESS_STEPS - PROGRESS_STEPS % window or window, steps - done)
                net.layers[0].run(condition=RunSteps(num_steps=stretch), run_cfg=config)
                done += stretch
                if progress is not None:
                    progress(min(n, copies * (done // window)) - min(n, copies * (
                        (done - stretch) // window)))
        finally:
            net.layers[0].stop()
        layer_spikes = []
        for layer, file in zip(recorded, files, strict=True):
            data = _per_copy(np.load(file), copies, len(layer.out.shape) == 3)
            per_sample = data.reshape(copies, data.shape[1], groups, window)
            per_sample = per_sample.transpose(0, 2, 1, 3).reshape(copies * groups, -1, window)
            layer_spikes.append(np.ascontiguousarray(per_sample[:n]))
    seconds = time.perf_counter() - start
    names = [f"{i}:{type(layer).__name__.lower()}" for i, layer in zip(net.indices, net.layers,
                                                                          strict=True)]
    return LavaRun(
        output_spikes=layer_spikes[-1],
        neuron_spike_counts=[s.sum(axis=(0, 2), dtype=np.int64) for s in layer_spikes],
        step_spike_counts=[s.sum(axis=(0, 1), dtype=np.int64) for s in layer_spikes],
        layer_names=names[-len(recorded):],
        time_steps=n * window,
        seconds=seconds,
        layer_spikes=layer_spikes,
        copies=copies,
    )
