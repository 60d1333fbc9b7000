"""``gradr-lava deploy``: run a netx file in Lava on test samples and check it against PyTorch.

Steps, in order: read and validate the file -> map it onto the hardware profile's cores and
check the budget (before any simulation: an over-budget network fails fast with exit code 3)
-> decide data set, encoding and window (recorded in the file by gradr-lava, or given by the
user) -> build the test stimulus -> PyTorch reference forward (lava-dl blocks rebuilt from the
file) -> Lava run, recording every layer's spikes -> compare spike by spike -> energy per
inference from the measured activity -> write ``deploy.json``.

Only :func:`deploy_network` touches torch and Lava, by importing
:mod:`gradr_deploy.simulation.reference` and :mod:`gradr_deploy.simulation.lava_sim` when it
runs. The steps are in :mod:`~gradr_deploy.pipeline.plan` (what is presented) and
:mod:`~gradr_deploy.pipeline.measures` (what is computed from the recorded spikes);
:class:`~gradr_deploy.pipeline.options.DeployOptions` says what was asked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from gradr_deploy.atomic import check_writable, write_json
from gradr_deploy.datasets import load_dataset
from gradr_deploy.energy import estimate_energy
from gradr_deploy.energy.neurobench import REFERENCE as NEUROBENCH_REFERENCE
from gradr_deploy.energy.neurobench import (
    activation_sparsity,
    connection_sparsity,
    synaptic_operations,
)
from gradr_deploy.errors import option
from gradr_deploy.hardware.profile import load_profile
from gradr_deploy.mapping import map_network
from gradr_deploy.mapping.budget import check_budget
from gradr_deploy.netx import read_netx
from gradr_deploy.pipeline.measures import (
    accuracy,
    activity_per_inference,
    save_spikes,
    spike_agreement,
    training_forward,
)
from gradr_deploy.pipeline.options import (
    DEFAULT_TIME_STEPS,
    DEPLOY_FILE,
    SPIKES_FILE,
    DeployOptions,
)
from gradr_deploy.pipeline.plan import (
    check_input_size,
    check_programmable,
    conv_first,
    conv_input_shape,
    input_features,
    network_metadata,
    sample_count,
    user_stimulus,
)
from gradr_deploy.simulation.encoding import encoding_from_dict
from gradr_deploy.simulation.stimulus import (
    append_drain,
    pad_window,
    payload_bits,
    present,
    run_window,
)


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
        metadata, spikes_in = user_stimulus(network, options)
    else:
        metadata = network_metadata(network, options)
        if conv_first(network) and metadata.input_shape is None:
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
        count = sample_count(options.samples, len(spikes_in),
                              option("inputs", options.inputs))
        spikes = pad_window(append_drain(spikes_in[:count], metadata.drain_steps), window)
        labels = None
        message_bits = payload_bits(spikes)
    else:
        dataset_name = options.dataset or metadata.dataset
        if data is None:
            data = load_dataset(dataset_name, options.data_dir, download=options.download)
        test = data.test
        count = sample_count(options.samples, len(test.labels),
                              f"the {dataset_name} test split")
        check_input_size(network, int(np.prod(data.image_shape)), dataset_name,
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
    training = training_forward(network, spikes, metadata.input_shape, labels)

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
        "lava_accuracy": accuracy(lava_pred, labels),
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
        report["torch_accuracy"] = accuracy(torch_pred, labels)
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


__all__ = ["DEFAULT_TIME_STEPS", "DEPLOY_FILE", "SPIKES_FILE", "DeployOptions", "accuracy",
           "activity_per_inference", "check_programmable", "conv_input_shape", "deploy_network",
           "input_features", "network_metadata", "save_spikes", "spike_agreement"]
