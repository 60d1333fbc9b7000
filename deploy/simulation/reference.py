"""The training forward of a netx file: lava-dl SLAYER blocks rebuilt from the HDF5 contents.

This is what training computes (the "quantized PyTorch forward"). ``deploy`` reports it beside Lava
as ``training_forward``, and ``train`` checks it against the exact reference
(:mod:`gradr_deploy.simulation.lava_exact`, which is what Lava is compared with): for
``current_decay = 1`` they agree spike for spike, for other decays SLAYER rounds differently. The
blocks are rebuilt from the file alone, so this works for any lava-dl user's network, not only
gradr-lava's: CUBA neuron parameters come from the ``neuron/`` group through slayer's own
``neuron_params`` translation and the weights are the stored 8-bit values divided by slayer's
weight scale (2^6), which slayer's quantizer maps onto themselves. Supported layers: ``dense``,
``conv`` and ``flatten`` with CUBA neurons, without axonal delays, biases or graded spikes;
anything else raises :class:`ReferenceUnsupported`.

Imports torch and lava-dl (through :mod:`gradr_deploy.simulation.lava_compat`): call only from the
simulation step.
"""

from __future__ import annotations

import numpy as np
import torch

from gradr_deploy.netx import ConvLayer, DenseLayer, Layer, NetxNetwork
from gradr_deploy.simulation import lava_compat

lava_compat.install()
import lava.lib.dl.slayer as slayer  # noqa: E402

WEIGHT_SCALE = 1 << 6  # slayer's w_scale: stored weight = quantized weight * 2^6


class ReferenceUnsupported(Exception):
    """The file uses a feature the PyTorch reference does not rebuild (the message says which)."""


def _neuron_params(layer: Layer, source: str) -> dict[str, float]:
    if layer.neuron is None or layer.neuron.kind != "CUBA":
        kind = None if layer.neuron is None else layer.neuron.kind
        raise ReferenceUnsupported(f"{source} layer {layer.index}: neuron type {kind} is not CUBA")
    params = layer.neuron.params
    if params.get("gradedSpike", 0):
        raise ReferenceUnsupported(f"{source} layer {layer.index}: graded spikes")
    device = {key: float(params[key]) for key in ("vThMant", "iDecay", "vDecay")}
    # slayer stores integer vThMant = threshold * 2^6; divide back exactly.
    return {**slayer.neuron.cuba.neuron_params(device), "requires_grad": False}


def _check_plain(layer: DenseLayer | ConvLayer, source: str) -> None:
    if layer.bias is not None and np.any(layer.bias):
        raise ReferenceUnsupported(f"{source} layer {layer.index}: biases")
    if layer.delay is not None and np.any(layer.delay):
        raise ReferenceUnsupported(f"{source} layer {layer.index}: axonal delays")


def _load_weight(block: torch.nn.Module, stored: np.ndarray) -> None:
    shape = block.synapse.weight.shape
    weight = torch.as_tensor(np.asarray(stored, dtype=np.float32) / WEIGHT_SCALE)
    block.synapse.weight.data = weight.reshape(shape)


def _block(layer: Layer, source: str) -> torch.nn.Module:
    if layer.kind == "flatten":
        return slayer.block.cuba.Flatten()
    if not isinstance(layer, DenseLayer | ConvLayer) or layer.kind not in ("dense", "conv"):
        raise ReferenceUnsupported(f"{source} layer {layer.index}: layer type {layer.kind!r}")
    _check_plain(layer, source)
    params = _neuron_params(layer, source)
    weight = np.asarray(layer.weight)
    if layer.kind == "dense":
        block = slayer.block.cuba.Dense(params, weight.shape[1], weight.shape[0])
    else:
        geometry = layer.conv
        block = slayer.block.cuba.Conv(
            params,
            geometry.in_channels,
            geometry.out_channels,
            tuple(geometry.kernel),
            stride=tuple(geometry.stride),
            padding=tuple(geometry.padding),
            dilation=tuple(geometry.dilation),
            groups=geometry.groups,
        )
    _load_weight(block, weight)
    return block


class ReferenceNetwork(torch.nn.Module):
    """lava-dl blocks equivalent to a netx file, for inference.

    Args:
        network: the file, as read by :func:`gradr_deploy.netx.read_netx`.
        input_shape: netx's ``(x, y, f)`` input shape for conv-first networks, else None.
    """

    def __init__(self, network: NetxNetwork, input_shape: tuple[int, ...] | None = None):
        super().__init__()
        source = str(network.path)
        self.blocks = torch.nn.ModuleList(_block(layer, source) for layer in network.layers)
        self.input_shape = tuple(input_shape) if input_shape is not None else None
        self.eval()

    def shaped_input(self, spikes: torch.Tensor) -> torch.Tensor:
        """Input spikes ``(N, F, S)`` (F in C-order of (f, y, x)) in the first block's layout:
        ``(N, f, y, x, S)`` for a conv-first network, else unchanged."""
        if self.input_shape is None:
            return spikes
        width, height, channels = self.input_shape
        return spikes.reshape(spikes.shape[0], channels, height, width, spikes.shape[-1])

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        """Input spikes ``(N, F, S)`` (F in C-order of (f, y, x)) -> output spikes ``(N, C, S)``."""
        x = self.shaped_input(spikes)
        for block in self.blocks:
            x = block(x)
        return x.reshape(x.shape[0], -1, x.shape[-1])


def reference_output(
    network: NetxNetwork, spikes: np.ndarray, input_shape: tuple[int, ...] | None = None,
    batch_size: int = 256,
) -> np.ndarray:
    """Output spikes ``(N, C, S)`` of the PyTorch reference for input spikes ``(N, F, S)``."""
    model = ReferenceNetwork(network, input_shape)
    outputs = []
    with torch.no_grad():
        for start in range(0, len(spikes), batch_size):
            batch = torch.as_tensor(spikes[start : start + batch_size], dtype=torch.float32)
            outputs.append(model(batch).numpy().astype(np.uint8))
    return np.concatenate(outputs)
