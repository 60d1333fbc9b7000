"""What ``deploy`` computes from the recorded spikes: agreement, activity per inference, the
training forward's accuracy beside Lava's, and the ``spikes.npz`` it can save."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gradr_deploy.atomic import atomic_path
from gradr_deploy.energy import INPUT_KEY
from gradr_deploy.netx import NetxNetwork


def spike_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of (sample, neuron, time step) bins where two spike arrays agree."""
    if a.shape != b.shape:
        raise ValueError(f"spike arrays differ in shape: {a.shape} vs {b.shape}")
    return float(np.mean(a == b)) if a.size else float("nan")


def activity_per_inference(
    network: NetxNetwork, spikes: np.ndarray, step_spike_counts: list[np.ndarray]
) -> dict[int | str, np.ndarray]:
    """Spikes per time step of one (average) inference, keyed as :func:`estimate_energy` wants:
    ``"input"`` for the stimulus, the file's layer index for each layer netx built (netx builds
    no process for ``flatten`` layers)."""
    samples = len(spikes)
    built = [layer.index for layer in network.layers if layer.kind != "flatten"]
    if len(built) != len(step_spike_counts):
        raise ValueError(f"recorded {len(step_spike_counts)} layers, expected {len(built)}")
    activity: dict[int | str, np.ndarray] = {INPUT_KEY: spikes.sum(axis=(0, 1)) / samples}
    for index, counts in zip(built, step_spike_counts, strict=True):
        activity[index] = counts / samples
    return activity


def training_forward(network: NetxNetwork, spikes: np.ndarray, input_shape, labels) -> dict:
    """lava-dl's SLAYER forward of the same file (what training computes), for comparison."""
    from gradr_deploy.simulation import reference

    try:
        out = reference.reference_output(network, spikes, input_shape)
    except reference.ReferenceUnsupported as exc:
        return {"accuracy": None, "note": f"not computed: {exc}"}
    return {"accuracy": accuracy(out.sum(axis=2).argmax(axis=1), labels), "output": out}


def accuracy(predictions: np.ndarray, labels: np.ndarray | None) -> float | None:
    return None if labels is None else float(np.mean(predictions == labels))


def save_spikes(path: Path, inputs: np.ndarray, outputs: np.ndarray,
                labels: np.ndarray | None, window: int) -> Path:
    """Write ``spikes.npz``: ``inputs`` ``(N, features, window)`` exactly as presented to Lava
    (drain steps included), ``outputs`` ``(N, outputs, window)`` as Lava produced them,
    ``labels`` (absent for ``--inputs`` runs) and ``window`` (reset every ``window`` steps to
    replay it)."""
    extra = {} if labels is None else {"labels": labels}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, inputs=inputs.astype(np.uint8), outputs=outputs,
                                window=np.int64(window), **extra)
    return path
