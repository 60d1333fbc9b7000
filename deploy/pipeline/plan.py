"""What ``deploy`` presents to the network: data set, encoding, window and input shape, from the
file's gradr-lava metadata, the user's options or the user's own input file.

A netx file from another lava-dl user records none of it: the data set then comes from the
options, the input shape of a conv-first network from the data (:func:`conv_input_shape`).
"""

from __future__ import annotations

import numpy as np

from gradr_deploy.errors import InputError, option
from gradr_deploy.netx import ConvLayer, DenseLayer, NetxNetwork, PoolLayer
from gradr_deploy.netx.metadata import NetworkMetadata, recorded_metadata
from gradr_deploy.pipeline.options import DEFAULT_TIME_STEPS, DeployOptions
from gradr_deploy.simulation.encoding import RateEncoding
from gradr_deploy.simulation.inputs import load_inputs


def network_metadata(network: NetxNetwork, options: DeployOptions) -> NetworkMetadata:
    """The recorded metadata, or one built from the options for a foreign netx file."""
    recorded = recorded_metadata(network.attrs, str(network.path))
    if recorded is not None:
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


def conv_first(network: NetxNetwork) -> bool:
    return isinstance(network.layers[0], ConvLayer | PoolLayer)


def input_features(network: NetxNetwork, input_shape: tuple[int, ...] | None) -> int | None:
    """How many inputs the first layer reads (None: a conv-first file without a shape)."""
    first = network.layers[0]
    if first.kind == "input":
        return first.neurons
    if isinstance(first, ConvLayer | PoolLayer):
        return int(np.prod(input_shape)) if input_shape is not None else None
    return first.in_features


def check_input_size(network: NetxNetwork, features: int, dataset: str,
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


def sample_count(samples: int | None, available: int, source: str) -> int:
    count = available if samples is None else samples
    if not 1 <= count <= available:
        raise InputError(f"{option('samples', samples)}: {source} has {available} samples; "
                         f"choose 1..{available}")
    return count


def user_stimulus(network: NetxNetwork,
                   options: DeployOptions) -> tuple[NetworkMetadata, np.ndarray]:
    """Metadata and ``(N, F, steps)`` spikes for ``--inputs``: the file decides the steps."""
    if options.dataset is not None:
        raise InputError(f"{option('inputs')} and {option('dataset')} exclude each other: give "
                         "one input source")
    recorded = recorded_metadata(network.attrs, str(network.path))
    input_shape = recorded.input_shape if recorded is not None else None
    if input_shape is None and conv_first(network):
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
