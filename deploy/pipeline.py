"""``gradr-lava deploy``: run a netx file in Lava on test samples and check it against PyTorch.

Steps, in order: read and validate the file -> map it onto the hardware profile's cores and
check the budget (before any simulation: an over-budget network fails fast with exit code 3)
-> decide data set, encoding and window (recorded in the file by gradr-lava, or given by the
user) -> build the test stimulus -> PyTorch reference forward (lava-dl blocks rebuilt from the
file) -> Lava run, recording every layer's spikes -> compare spike by spike -> energy per
inference from the measured activity -> write ``deploy.json``.

Only :func:`deploy_network` touches torch and Lava, by importing
:mod:`gradr_deploy.simulation.reference` and
:mod:`gradr_deploy.simulation.lava_sim` when it runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from gradr_deploy.atomic import atomic_path, check_writable, write_json
from gradr_deploy.datasets import load_dataset
from gradr_deploy.energy import INPUT_KEY, estimate_energy
from gradr_deploy.energy.neurobench import REFERENCE as NEUROBENCH_REFERENCE
from gradr_deploy.energy.neurobench import (
    activation_sparsity,
    connection_sparsity,
    synaptic_operations,
)
from gradr_deploy.errors import InputError, option
from gradr_deploy.hardware.profile import load_profile
from gradr_deploy.mapping import map_network
from gradr_deploy.mapping.budget import check_budget
from gradr_deploy.netx import ConvLayer, DenseLayer, NetxNetwork, PoolLayer, read_netx
from gradr_deploy.netx.metadata import METADATA_ATTR, NetworkMetadata
from gradr_deploy.simulation.encoding import RateEncoding, encoding_from_dict
from gradr_deploy.simulation.inputs import load_inputs
from gradr_deploy.simulation.stimulus import (
    append_drain,
    pad_window,
    payload_bits,
    present,
    run_window,
)

DEPLOY_FILE = "deploy.json"
SPIKES_FILE = "spikes.npz"
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
    copies: int | None = None  # network copies side by side in Lava (default: planned)
    save_spikes: bool = False  # write spikes.npz (inputs as presented, Lava's outputs)
    inputs: Path | None = None  # the user's own input spikes (simulation/inputs.py), not data


def network_metadata(network: NetxNetwork, options: DeployOptions) -> NetworkMetadata:
    """The recorded metadata, or one built from the options for a foreign netx file."""
    if METADATA_ATTR in network.attrs:
        recorded = NetworkMetadata.from_json(str(network.attrs[METADATA_ATTR]), str(network.path))
        if options.time_steps is not None and options.time_steps != recorded.time_steps:
            raise InputError(
                f"{option('time_steps', options.time_steps)} contradicts the "
                f"{recorded.time_steps} steps recorded in {network.path}; drop "
                f"{option('time_steps')}"
            )
        return recorded
    if options.dataset is None:
        raise InputError(
            f"{network.path} records no data set (it was not written by gradr-lava); "
            f"pass {option('dataset', 'NAME')}"
        )
    synaptic = len(network.synaptic_layers)
    steps = options.time_steps or DEFAULT_TIME_STEPS
    # a conv-first file records no input shape: conv_input_shape derives it from the data
    return NetworkMetadata(
        dataset=options.dataset, encoding=RateEncoding(time_steps=steps).to_dict(),
        time_steps=steps, drain_steps=synaptic, seed=0, input_shape=None,
    )


def conv_input_shape(network: NetxNetwork, image_shape: tuple[int, ...] | None = None,
                     features: int | None = None) -> tuple[int, int, int]:
    """netx's ``(x, y, f)`` input of a conv-first file that records none (not written by
    gradr-lava): the data set's ``(H, W)`` images (one channel), or the ``(y, x)`` the first
    layer's geometry maps onto its output shape with ``features`` inputs in all.

    Raises:
        InputError: no input fits (the message names the shapes), or several do.
    """
    first = network.layers[0]
    if not isinstance(first, ConvLayer | PoolLayer):
        raise InputError(f"{network.path}: layer 0 ({first.kind}) is not a conv layer")
    geometry = first.conv
    out_y, out_x = first.shape[1:]
    channels = geometry.in_channels
    if image_shape is not None:
        height, width = image_shape
        if channels != 1 or geometry.output_size(height, width) != (out_y, out_x):
            raise InputError(
                f"{network.path}: layer 0 is a conv reading {channels} channel(s) into "
                f"(y, x) = ({out_y}, {out_x}); the data set's {height}x{width} one-channel "
                f"images give {geometry.output_size(height, width)}. Give the network's own "
                f"input with {option('inputs', 'FILE.npy')}")
        return (width, height, 1)

    def sizes(axis: int, out: int) -> list[int]:
        k, s, p, d = (geometry.kernel[axis], geometry.stride[axis], geometry.padding[axis],
                      geometry.dilation[axis])
        low = max(1, (out - 1) * s - 2 * p + d * (k - 1) + 1)
        return [n for n in range(low, low + s) if geometry.output_size(n, n)[axis] == out]

    fits = [(x, y, channels) for y in sizes(0, out_y) for x in sizes(1, out_x)
            if features is None or x * y * channels == features]
    if len(fits) != 1:
        raise InputError(
            f"{network.path}: layer 0 is a conv layer and the file records no input shape; "
            f"{len(fits)} input shapes (x, y, f) fit its geometry and {features} inputs: "
            f"{fits[:4]}")
    return fits[0]


def check_programmable(network: NetxNetwork) -> None:
    """netx cannot program a synaptic layer whose weights are all zero (after its astype(int)):
    its optimize_weight_bits divides by the largest weight."""
    for layer in network.layers:
        if isinstance(layer, DenseLayer | ConvLayer) and layer.kind in ("dense", "conv") and \
                not np.any(np.trunc(np.asarray(layer.weight))):
            raise InputError(
                f"{network.path}: layer {layer.index} ({layer.kind}) has only zero weights "
                "(as netx truncates them to integers); netx cannot program such a layer. "
                "Prune less, or remove the layer")


def _conv_first(network: NetxNetwork) -> bool:
    return isinstance(network.layers[0], ConvLayer | PoolLayer)


def input_features(network: NetxNetwork, input_shape: tuple[int, ...] | None) -> int | None:
    """How many inputs the first layer reads (None: a conv-first file without a shape)."""
    first = network.layers[0]
    if first.kind == "input":
        return first.neurons
    if isinstance(first, ConvLayer | PoolLayer):
        return int(np.prod(input_shape)) if input_shape is not None else None
    return first.in_features


def _check_input_size(network: NetxNetwork, features: int, dataset: str,
                      input_shape: tuple[int, ...] | None = None,
                      image_shape: tuple[int, ...] = ()) -> None:
    first = network.layers[0]
    expected = input_features(network, input_shape)
    if isinstance(first, ConvLayer | PoolLayer) and input_shape is not None:
        channels = input_shape[2]
        if channels != first.conv.in_channels:
            raise InputError(
                f"{network.path}: layer 0 is a conv layer reading {first.conv.in_channels} "
                f"channels but the recorded input shape (x, y, f) = {tuple(input_shape)} has "
                f"{channels}; re-export the model")
    if expected is not None and expected != features:
        shape = f" (shape {tuple(first.shape)})" if first.kind == "input" else ""
        image = "x".join(str(v) for v in image_shape)
        raise InputError(
            f"{network.path}: layer 0 expects {expected} inputs{shape} but data set "
            f"{dataset!r} has {features} pixels per sample{f' ({image})' if image else ''}; "
            "choose the data set the network was trained on, or give the network's own input "
            f"with {option('inputs', 'FILE.npy')} (an array (N, {expected}, steps) or lava-dl "
            "events)"
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
    from gradr_deploy.progress import progress

    bar = progress(total=total, desc="lava", unit="sample", enabled=enabled)
    return bar.update, bar.close


def deploy_network(options: DeployOptions) -> dict[str, Any]:
    """Run the steps in the module docstring and return (and write) the deploy report."""
    from gradr_deploy.simulation import lava_exact, lava_sim

    lava_sim.run_config(options.target)  # a missing backend fails before any work
    network = read_netx(options.model)
    out = options.out or Path(options.model).parent
    check_writable(out)  # before any work: a result is never lost to an unwritable --out
    data = None
    if options.inputs is not None:
        metadata, spikes_in = _user_stimulus(network, options)
    else:
        metadata = network_metadata(network, options)
        if _conv_first(network) and metadata.input_shape is None:
            data = load_dataset(metadata.dataset, options.data_dir, download=options.download)
            metadata = replace(metadata, input_shape=conv_input_shape(
                network, image_shape=tuple(data.image_shape)))
    profile = load_profile(options.hardware, options.overrides)
    mapping = map_network(network, profile, input_shape=metadata.input_shape)
    check_budget(mapping, options.max_cores, options.chips)
    check_programmable(network)
    window = run_window(metadata.window, options.target)
    labels: np.ndarray | None
    if options.inputs is not None:
        dataset_name = None
        count = _sample_count(options.samples, len(spikes_in),
                              option("inputs", options.inputs))
        spikes = pad_window(append_drain(spikes_in[:count], metadata.drain_steps), window)
        labels = None
        message_bits = payload_bits(spikes)
    else:
        dataset_name = options.dataset or metadata.dataset
        if data is None:
            data = load_dataset(dataset_name, options.data_dir, download=options.download)
        test = data.test
        count = _sample_count(options.samples, len(test.labels),
                              f"the {dataset_name} test split")
        _check_input_size(network, int(np.prod(data.image_shape)), dataset_name,
                          metadata.input_shape, tuple(data.image_shape))
        encoding = encoding_from_dict(metadata.encoding)
        spikes = pad_window(present(encoding, test.images[:count], np.arange(count),
                                    metadata.seed, metadata.drain_steps), window)
        labels = test.labels[:count]
        message_bits = encoding.message_bits

    copies = options.copies or lava_sim.plan_copies(
        lava_sim.network_density(network), count, options.target,
        lava_sim.copies_limit(network))
    try:
        exact = lava_exact.exact_run(network, spikes, window, metadata.input_shape,
                                     streams=copies)
        exact_note = None
    except lava_exact.ExactUnsupported as exc:
        exact, exact_note = None, f"no exact reference: {exc}"
    training = _training_forward(network, spikes, metadata.input_shape, labels)

    update, close = _bar(count, options.progress)
    try:
        run = lava_sim.run_lava(
            network.path, spikes, window, metadata.input_shape, target=options.target,
            copies=copies, progress=update, record_hidden=options.record_activity,
            input_message_bits=message_bits,
        )
    finally:
        close()
    lava_pred = run.output_spikes.sum(axis=2).argmax(axis=1)
    training_out = training.pop("output", None)
    if training_out is not None:
        training["output_spike_agreement"] = spike_agreement(run.output_spikes, training_out)
        training["prediction_agreement"] = float(
            np.mean(training_out.sum(axis=2).argmax(axis=1) == lava_pred))
        training["output_spike_count_agreement"] = float(
            np.mean(training_out.sum(axis=2) == run.output_spikes.sum(axis=2)))
        if training["output_spike_agreement"] < 1.0:
            training["note"] = (
                "SLAYER's forward differs from Lava's integer arithmetic for this network "
                "(decays below 1, biases, delays or fractional weights round differently); "
                "the accuracy that runs in Lava is lava_accuracy (docs/lava.md)")
    energy = None
    neurobench: dict[str, Any] = {"connection_sparsity": connection_sparsity(network),
                                  "activation_sparsity": None, "synaptic_operations": None}
    if options.record_activity and run.layer_spikes is not None:
        neurobench["activation_sparsity"] = activation_sparsity(run.layer_spikes)
        neurobench["synaptic_operations"] = synaptic_operations(
            network, mapping, spikes, run.layer_spikes, metadata.input_shape).to_dict()
    if options.record_activity:
        activity = activity_per_inference(network, spikes, run.step_spike_counts)
        energy = estimate_energy(mapping, activity, window).to_dict()
    built = [layer for layer in network.layers if layer.kind != "flatten"]
    recorded = built if options.record_activity else built[-1:]
    layers = []
    for k, (layer, counts) in enumerate(zip(recorded, run.neuron_spike_counts, strict=True)):
        row: dict[str, Any] = {
            "layer": layer.index, "type": layer.kind, "neurons": layer.neurons,
            "spikes_total": int(counts.sum()), "spikes_per_sample": float(counts.sum()) / count,
            "spike_agreement": None,
        }
        if exact is not None and run.layer_spikes is not None:
            reference_k = exact.layers[len(built) - len(recorded) + k]
            row["spike_agreement"] = spike_agreement(run.layer_spikes[k], reference_k)
        layers.append(row)
    report: dict[str, Any] = {
        "model": str(options.model),
        "target": options.target,
        "dataset": dataset_name,
        "samples": count,
        "time_steps": metadata.time_steps,
        "drain_steps": metadata.drain_steps,
        "sample_window": metadata.window,
        "window": window,
        "window_note": (
            "each sample is presented for time_steps steps, then drain_steps empty steps let "
            "its spikes pass every layer (sample_window = time_steps + drain_steps); window is "
            "the reset interval the run used (a power of 2 on Loihi 2 hardware)"
        ),
        "encoding": metadata.encoding,
        "inputs": None if options.inputs is None else str(options.inputs),
        "lava_accuracy": _accuracy(lava_pred, labels),
        "torch_accuracy": None,
        "spike_agreement": None,
        "output_spike_agreement": None,
        "prediction_agreement": None,
        "reference": (
            "torch_accuracy and spike_agreement compare Lava with the network computed in "
            "PyTorch on Lava's integer grid (deploy/simulation/lava_exact.py), every layer, neuron "
            "and step; training_forward is lava-dl's SLAYER forward (what training optimised)"
        ),
        "layers": layers,
        "training_forward": training,
        "lava": {
            "copies": run.copies,
            "seconds": run.seconds,
            "samples_per_second": count / run.seconds if run.seconds > 0 else None,
            "time_steps_per_second": run.time_steps_per_second,
        },
        "time_steps_per_second": run.time_steps_per_second,
        "lava_seconds": run.seconds,
        "hardware": mapping.hardware.name,
        "cores": mapping.total_cores,
        "cores_decided_by": mapping.decided_by,
        "best_partition_cores": mapping.best_partition_cores,
        "chips": mapping.chips,
        "lower_bound_cores": mapping.lower_bound_cores,
        "energy": energy,
        **neurobench,
        "neurobench_note": (
            "connection_sparsity, activation_sparsity and synaptic_operations (per inference, "
            "over the window's steps) as NeuroBench defines them: " + NEUROBENCH_REFERENCE),
    }
    if exact is not None:
        torch_pred = exact.output.sum(axis=2).argmax(axis=1)
        report["torch_accuracy"] = _accuracy(torch_pred, labels)
        report["output_spike_agreement"] = spike_agreement(run.output_spikes, exact.output)
        report["prediction_agreement"] = float(np.mean(lava_pred == torch_pred))
        agreements = [row["spike_agreement"] for row in layers]
        sizes = [row["neurons"] for row in layers]
        report["spike_agreement"] = float(np.average(agreements, weights=sizes))
    else:
        report["note"] = exact_note
    if options.save_spikes:
        save_spikes(out / SPIKES_FILE, spikes, run.output_spikes, labels, window)
        report["spikes_file"] = str(out / SPIKES_FILE)
    write_json(out / DEPLOY_FILE, report)
    return report


def _training_forward(network: NetxNetwork, spikes: np.ndarray, input_shape, labels) -> dict:
    """lava-dl's SLAYER forward of the same file (what training computes), for comparison."""
    from gradr_deploy.simulation import reference

    try:
        out = reference.reference_output(network, spikes, input_shape)
    except reference.ReferenceUnsupported as exc:
        return {"accuracy": None, "note": f"not computed: {exc}"}
    return {"accuracy": _accuracy(out.sum(axis=2).argmax(axis=1), labels), "output": out}


def _accuracy(predictions: np.ndarray, labels: np.ndarray | None) -> float | None:
    return None if labels is None else float(np.mean(predictions == labels))


def _sample_count(samples: int | None, available: int, source: str) -> int:
    count = available if samples is None else samples
    if not 1 <= count <= available:
        raise InputError(f"{option('samples', samples)}: {source} has {available} samples; "
                         f"choose 1..{available}")
    return count


def _user_stimulus(network: NetxNetwork,
                   options: DeployOptions) -> tuple[NetworkMetadata, np.ndarray]:
    """Metadata and ``(N, F, steps)`` spikes for ``--inputs``: the file decides the steps."""
    if options.dataset is not None:
        raise InputError(f"{option('inputs')} and {option('dataset')} exclude each other: give "
                         "one input source")
    recorded = None
    if METADATA_ATTR in network.attrs:
        recorded = NetworkMetadata.from_json(str(network.attrs[METADATA_ATTR]),
                                             str(network.path))
    input_shape = recorded.input_shape if recorded is not None else None
    if input_shape is None and _conv_first(network):
        # the array's feature count decides among the shapes the geometry allows; a file that
        # does not read is reported by load_inputs below
        try:
            given = np.load(options.inputs, mmap_mode="r", allow_pickle=False)
            features_given = int(given.shape[-2]) if given.ndim in (2, 3) else None
        except (ValueError, OSError):
            features_given = None
        input_shape = conv_input_shape(network, features=features_given)
    features = input_features(network, input_shape)
    if features is None:
        raise InputError(f"{network.path}: a conv-first network without a recorded input "
                         f"shape; {option('inputs')} cannot tell its size")
    spikes = load_inputs(options.inputs, features, options.time_steps, input_shape)
    drain = recorded.drain_steps if recorded is not None else len(network.synaptic_layers)
    metadata = NetworkMetadata(
        dataset=None, encoding={"name": "inputs", "file": str(options.inputs)},
        time_steps=int(spikes.shape[2]), drain_steps=drain, seed=0, input_shape=input_shape)
    metadata.validate(option("inputs", options.inputs))
    return metadata, spikes


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
