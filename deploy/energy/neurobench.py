"""NeuroBench's metrics of a deployed network: connection sparsity, activation sparsity and
synaptic operations, under NeuroBench's names.

Definitions follow the NeuroBench paper (Yik et al., "The neurobench framework for
benchmarking neuromorphic computing algorithms and systems", Nature Communications 16, 1545,
2025) and its harness (``neurobench/metrics``: ``static/connection_sparsity.py``,
``workload/activation_sparsity.py``, ``workload/synaptic_operations.py``,
``utils/layers/macs.py``):

- ``connection_sparsity``: zero weights / all weights of the synaptic layers (dense and conv
  kernels, recurrent weights included), as deployed (the integers netx programs);
- ``activation_sparsity``: zero activations / all activations of every spiking layer's output,
  over all neurons, time steps and samples;
- ``synaptic_operations``: per inference (sample), summed over the sample's time steps:
  ``Effective_ACs``: for every layer whose input is binary spikes, the (nonzero input, nonzero
  weight) pairs that reach an output, i.e. each input event times its fan-out of nonzero
  synapses; ``Effective_MACs``: the same for layers whose input is not binary (graded
  payloads, e.g. direct input), which NeuroBench counts as multiply-accumulates; ``Dense``:
  the operations with every input active and every weight nonzero (a dense processor's work).
  Biases are not synaptic operations (NeuroBench's default).

Time steps are those of the run's window (the presentation and the drain steps a Loihi
inference takes). Only numpy is needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gradr_deploy.mapping import NetworkMapping
from gradr_deploy.netx import ConvLayer, DenseLayer, Layer, NetxNetwork

REFERENCE = ("Yik et al., Nature Communications 16, 1545 (2025); NeuroBench harness "
             "neurobench/metrics (connection_sparsity, activation_sparsity, "
             "synaptic_operations)")


@dataclass(frozen=True)
class SynapticOperations:
    """NeuroBench's ``synaptic_operations`` of one inference (operations per sample)."""

    effective_macs: float
    effective_acs: float
    dense: float

    def to_dict(self) -> dict[str, float]:
        return {"Effective_MACs": self.effective_macs, "Effective_ACs": self.effective_acs,
                "Dense": self.dense}


def connection_sparsity(network: NetxNetwork) -> float:
    """Zero weights / all weights over the synaptic layers, as netx programs them."""
    zeros = total = 0
    for layer in network.layers:
        if not isinstance(layer, DenseLayer | ConvLayer) or \
                layer.kind not in ("dense", "dense_rec", "conv"):
            continue
        for weight in (layer.weight, getattr(layer, "weight_rec", None)):
            if weight is None:
                continue
            values = np.trunc(np.asarray(weight))
            zeros += int(np.count_nonzero(values == 0))
            total += int(values.size)
    return zeros / total if total else float("nan")


def activation_sparsity(layer_spikes: Sequence[np.ndarray]) -> float:
    """Zero activations / all activations over the given ``(N, neurons, steps)`` outputs."""
    nonzero = sum(int(np.count_nonzero(s)) for s in layer_spikes)
    total = sum(int(s.size) for s in layer_spikes)
    return (total - nonzero) / total if total else float("nan")


def synaptic_operations(network: NetxNetwork, mapping: NetworkMapping, inputs: np.ndarray,
                        layer_spikes: Sequence[np.ndarray],
                        input_shape: tuple[int, ...] | None = None) -> SynapticOperations:
    """NeuroBench's effective and dense synaptic operations per inference.

    Args:
        network: the deployed network.
        mapping: its mapping (each synaptic layer's nonzero synapses as CSR).
        inputs: ``(N, F, steps)`` the input presented to the first layer (0/1 spikes or graded
            payloads), in the stored C order.
        layer_spikes: per layer netx builds (every layer but ``flatten``), its output
            ``(N, neurons, steps)`` in the stored order.
        input_shape: netx's ``(x, y, f)`` input of a conv-first network.

    Raises:
        ValueError: ``layer_spikes`` does not hold one array per built layer.
    """
    built = [layer for layer in network.layers if layer.kind != "flatten"]
    if len(built) != len(layer_spikes):
        raise ValueError(f"{len(layer_spikes)} recorded layers, {len(built)} built")
    outputs = {layer.index: spikes for layer, spikes in zip(built, layer_spikes, strict=True)}
    by_index = {m.index: m for m in mapping.layers}
    samples, steps = inputs.shape[0], inputs.shape[-1]
    macs = acs = dense = 0.0
    source = inputs
    shape: tuple[int, ...] = (inputs.shape[1],)
    if input_shape is not None:
        shape = (input_shape[2], input_shape[1], input_shape[0])
    for layer in network.layers:
        placed = by_index.get(layer.index)
        conn = placed.connectivity if placed is not None else None
        if conn is not None and conn.synapses:
            presynaptic = source
            if layer.kind == "dense_rec":  # recurrent synapses read the layer's own spikes
                presynaptic = np.concatenate([source, outputs[layer.index]], axis=1)
            flat = presynaptic.reshape(samples, -1, steps)
            fan_out = np.bincount(conn.indices, minlength=conn.n_pre).astype(np.float64)
            events = np.count_nonzero(flat, axis=(0, 2)).astype(np.float64)[: conn.n_pre]
            effective = float(events @ fan_out[: events.size]) / samples
            binary = bool(np.isin(flat, (0, 1)).all())
            acs, macs = (acs + effective, macs) if binary else (acs, macs + effective)
            dense += float(_dense_connections(layer, shape, placed.connections)) * steps
        if layer.index in outputs:
            source = outputs[layer.index]
        shape = tuple(layer.shape)
    return SynapticOperations(effective_macs=macs, effective_acs=acs, dense=dense)


def _dense_connections(layer: Layer, in_shape: tuple[int, ...], connections: int) -> int:
    """Synapses with every weight nonzero: a conv counts only kernel taps inside the input
    (NeuroBench runs the layer on an all-ones input, whose zero padding adds nothing)."""
    if not isinstance(layer, ConvLayer) or len(in_shape) != 3:
        return connections
    geometry = layer.conv
    _, h_in, w_in = in_shape
    _, h_out, w_out = layer.shape
    taps = []
    for n_in, n_out, k, s, p, d in zip((h_in, w_in), (h_out, w_out), geometry.kernel,
                                       geometry.stride, geometry.padding, geometry.dilation,
                                       strict=True):
        position = np.arange(n_out)[:, None] * s - p + np.arange(k)[None, :] * d
        taps.append(int(np.count_nonzero((position >= 0) & (position < n_in))))
    per_channel = geometry.in_channels // geometry.groups
    return geometry.out_channels * per_channel * taps[0] * taps[1]
