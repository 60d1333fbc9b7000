"""Synapses that cannot change an output spike, while training: the ``idle_first`` option.

In a chain of dense layers a synapse is idle when it feeds a hidden neuron that has lost every
outgoing synapse, or leaves a neuron that has lost every input (and has no bias to drive it):
:func:`gradr_deploy.netx.useful_in_chain`, the rule ``gradr-lava strip-idle`` applies after
training. A pruner that keeps them spends part of its budget on nothing (13-16% of layer 0's at
1.3% connectivity on MNIST 2FC, docs/results.md section 6); with ``idle_first`` magnitude
pruning drops them before any other synapse, and Grad R pushes them out of the network.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch

from gradr_deploy.netx.reachability import useful_in_chain
from gradr_lava.rewiring.errors import RewiringError
from gradr_lava.rewiring.layers import PrunableLayer


def check_dense_chain(layers: list[PrunableLayer]) -> None:
    """Raise unless ``layers``, in order, are dense and each takes the previous one's neurons.

    Raises:
        RewiringError: naming the first layer that breaks the chain.
    """
    for layer in layers:
        shape = tuple(layer.synapse.weight.shape)
        if len(shape) < 2 or any(size != 1 for size in shape[2:]):
            raise RewiringError(
                f"idle_first needs dense layers; layer {layer.index} ({layer.name!r}) has "
                f"a weight of shape {shape}: drop idle_first for this network")
    for before, after in itertools.pairwise(layers):
        outputs, inputs = before.synapse.weight.shape[0], after.synapse.weight.shape[1]
        if outputs != inputs:
            raise RewiringError(
                f"idle_first needs the dense layers to form a chain: layer {after.index} "
                f"({after.name!r}) takes {inputs} inputs, layer {before.index} has "
                f"{outputs} neurons: drop idle_first for this network")


def useful_synapses(present: list[torch.Tensor],
                    layers: list[PrunableLayer]) -> list[torch.Tensor]:
    """Per layer, where a present synapse can change an output spike.

    Args:
        present: per layer of the chain (in order), a boolean tensor of its weight's shape:
            where the synapse is present.
        layers: the same layers (their biases count as drive).

    Returns:
        Per layer, a boolean tensor of ``present[k]``'s shape and device.
    """
    # numpy on the CPU (zero-copy views; with torch's boolean reductions this pass takes 4 ms
    # a step at MNIST 2FC size, with numpy 0.45-0.7 ms), torch on an accelerator (no copy to the
    # host at every step)
    on_host = present[0].device.type == "cpu"

    def arrays(tensor: torch.Tensor) -> Any:
        return tensor.numpy() if on_host else tensor

    nonzero, driven = [], []
    for mask, layer in zip(present, layers, strict=True):
        nonzero.append(arrays(mask.detach().reshape(mask.shape[0], -1)))
        bias = getattr(layer.synapse, "bias", None)
        driven.append(None if bias is None else
                      arrays((bias.detach() != 0).expand(mask.shape[0])))
    return [(torch.from_numpy(useful) if on_host else useful).reshape(mask.shape)
            for useful, mask in zip(useful_in_chain(nonzero, driven), present, strict=True)]
