"""``gradr-lava deploy``: run a netx file in Lava on test samples and check it against PyTorch.

Steps, in order: read and validate the file -> map it onto the hardware profile's cores and
check the budget (before any simulation: an over-budget network fails fast with exit code 3)
-> decide data set, encoding and window (recorded in the file by gradr-lava, or given by the
user) -> build the test stimulus -> PyTorch reference forward (lava-dl blocks rebuilt from the
file) -> Lava run, recording every layer's spikes -> compare spike by spike -> energy per
inference from the measured activity -> write ``deploy.json``.

Only :func:`deploy_network` touches torch and Lava, by importing :mod:`deploy.reference` and
:mod:`deploy.lava_sim` when it runs.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deploy.atomic import write_json
from deploy.budget import check_budget
from deploy.datasets import load_dataset
from deploy.encoding import RateEncoding
from deploy.energy import INPUT_KEY, estimate_energy
from deploy.errors import InputError
from deploy.mapping import map_network
from deploy.metadata import METADATA_ATTR, NetworkMetadata
from deploy.netx_file import NetxNetwork, read_netx
from deploy.profiles import load_profile
from deploy.stimulus import pad_window, present, run_window

DEPLOY_FILE = "deploy.json"
DEFAULT_TIME_STEPS = 16  # for files without gradr-lava metadata


@dataclass(frozen=True)
class DeployOptions:
    """What ``gradr-lava deploy`` was asked to do."""

    model: Path
    target: str = "lava-sim"
    dataset: str | None = None  # default: the data set recorded in the file
    data_dir: Path | None = None
    download: bool = False
    samples: int | None = None  # default: the whole test split
    out: Path | None = None  # default: the model's directory
    time_steps: int | None = None  # only for files without gradr-lava metadata
    progress: bool = True
    hardware: str = "loihi2"  # profile name or TOML path (deploy/profiles)
    overrides: Mapping[str, str] = field(default_factory=dict)  # profile constants (--set)
    max_cores: int | None = None
    chips: int | None = None
    record_activity: bool = True  # False: record only the output layer (faster, no energy)


def network_metadata(network: NetxNetwork, options: DeployOptions) -> NetworkMetadata:
    """The recorded metadata, or one built from the options for a foreign netx file."""
    if METADATA_ATTR in network.attrs:
        recorded = NetworkMetadata.from_json(str(network.attrs[METADATA_ATTR]), str(network.path))
        if options.time_steps is not None and options.time_steps != recorded.time_steps:
            raise InputError(
                f"--time-steps {options.time_steps} contradicts the {recorded.time_steps} steps "
                f"recorded in {network.path}; drop --time-steps"
            )
        return recorded
    if options.dataset is None:
        raise InputError(
            f"{network.path} records no data set (it was not written by gradr-lava); "
            "pass --dataset NAME"
        )
    synaptic = sum(layer.weight is not None for layer in network.layers)
    steps = options.time_steps or DEFAULT_TIME_STEPS
    first = network.layers[0] if network.layers else None
    input_shape = tuple(first.shape) if first is not None and first.conv is not None else None
    return NetworkMetadata(
        dataset=options.dataset, encoding=RateEncoding(time_steps=steps).to_dict(),
        time_steps=steps, drain_steps=synaptic, seed=0, input_shape=input_shape,
    )


def _check_input_size(network: NetxNetwork, features: int, dataset: str) -> None:
    first = network.layers[0]
    expected = first.in_features if first.conv is None else None
    if expected is not None and expected != features:
        raise InputError(
            f"{network.path}: layer 0 expects {expected} inputs but data set {dataset!r} has "
            f"{features} pixels per sample; choose the data set the network was trained on"
        )


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


def _bar(total: int, enabled: bool) -> tuple[Callable[[int], None], Callable[[], None]]:
    from tqdm import tqdm

    bar = tqdm(total=total, desc="lava", unit="sample", disable=not enabled, file=sys.stderr)
    return bar.update, bar.close


def deploy_network(options: DeployOptions) -> dict[str, Any]:
    """Run the steps in the module docstring and return (and write) the deploy report."""
    from deploy import lava_sim, reference

    lava_sim.run_config(options.target)  # a missing backend fails before any work
    network = read_netx(options.model)
    metadata = network_metadata(network, options)
    profile = load_profile(options.hardware, options.overrides)
    mapping = map_network(network, profile, metadata.input_shape)
    check_budget(mapping, options.max_cores, options.chips)
    dataset_name = options.dataset or metadata.dataset
    data = load_dataset(dataset_name, options.data_dir, download=options.download)
    test = data.test
    count = len(test.labels) if options.samples is None else options.samples
    if not 1 <= count <= len(test.labels):
        raise InputError(
            f"--samples {options.samples}: the {dataset_name} test split has "
            f"{len(test.labels)} samples; choose 1..{len(test.labels)}"
        )
    _check_input_size(network, int(np.prod(data.image_shape)), dataset_name)
    ids = np.arange(count)
    encoding = RateEncoding.from_dict(metadata.encoding)
    window = run_window(metadata.window, options.target)
    spikes = pad_window(
        present(encoding, test.images[:count], ids, metadata.seed, metadata.drain_steps), window
    )
    labels = test.labels[:count]

    try:
        torch_out = reference.reference_output(network, spikes, metadata.input_shape)
        torch_note = None
    except reference.ReferenceUnsupported as exc:
        torch_out, torch_note = None, f"no PyTorch reference: {exc}"

    update, close = _bar(count, options.progress)
    try:
        run = lava_sim.run_lava(
            network.path, spikes, window, metadata.input_shape,
            target=options.target, progress=update, record_hidden=options.record_activity,
        )
    finally:
        close()
    lava_pred = run.output_spikes.sum(axis=2).argmax(axis=1)
    energy = None
    if options.record_activity:
        activity = activity_per_inference(network, spikes, run.step_spike_counts)
        energy = estimate_energy(mapping, activity, window).to_dict()
    report: dict[str, Any] = {
        "model": str(options.model),
        "target": options.target,
        "dataset": dataset_name,
        "samples": count,
        "time_steps": metadata.time_steps,
        "window": window,
        "sample_window": metadata.window,
        "encoding": metadata.encoding,
        "lava_accuracy": float(np.mean(lava_pred == labels)),
        "torch_accuracy": None,
        "spike_agreement": None,
        "prediction_agreement": None,
        "time_steps_per_second": run.time_steps_per_second,
        "lava_seconds": run.seconds,
        "layers": [
            {"layer": name, "spikes": int(counts.sum()),
             "spikes_per_sample": float(counts.sum()) / count}
            for name, counts in zip(run.layer_names, run.neuron_spike_counts, strict=True)
        ],
        "hardware": mapping.hardware.name,
        "cores": mapping.total_cores,
        "cores_decided_by": mapping.decided_by,
        "best_partition_cores": mapping.best_partition_cores,
        "chips": mapping.chips,
        "lower_bound_cores": mapping.lower_bound_cores,
        "energy": energy,
    }
    if torch_out is not None:
        torch_pred = torch_out.sum(axis=2).argmax(axis=1)
        report["torch_accuracy"] = float(np.mean(torch_pred == labels))
        report["spike_agreement"] = spike_agreement(run.output_spikes, torch_out)
        report["prediction_agreement"] = float(np.mean(lava_pred == torch_pred))
    else:
        report["note"] = torch_note
    out = options.out or Path(options.model).parent
    write_json(out / DEPLOY_FILE, report)
    return report
