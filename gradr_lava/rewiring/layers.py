"""Finding the prunable layers of a slayer network and resolving per-layer targets.

A *prunable layer* is a block (any module) with a ``synapse`` attribute whose ``weight`` is a
trainable tensor: slayer's ``Dense``, ``Conv``, ``ConvT`` and ``Affine`` blocks. Pooling synapses
(fixed, ``requires_grad=False`` weights) are not connections to learn and are skipped; recurrent
blocks (``input_synapse`` / ``recurrent_synapse``) are not found by this rule. Layers are indexed
0, 1, ... in ``model.named_modules()`` order, which is the order the blocks were registered.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch.nn.utils import parametrize

from gradr_lava.rewiring.errors import RewiringError

# A target connectivity for every layer, or one per layer keyed by index or module name.
Targets = float | Mapping[int | str, float]


@dataclass(frozen=True)
class PrunableLayer:
    """One block whose ``synapse.weight`` can be pruned.

    Attributes:
        index: position among the prunable layers of the model (0-based).
        name: the block's name in ``model.named_modules()`` ("" for the model itself).
        block: the slayer block (holds ``synapse``, ``neuron``).
        synapse: ``block.synapse``, a ``torch.nn.Conv3d`` subclass; its weight has shape
            (out, in, 1, 1, 1) for Dense and (out, in/groups, kh, kw, 1) for Conv.
    """

    index: int
    name: str
    block: torch.nn.Module
    synapse: torch.nn.Module

    @property
    def numel(self) -> int:
        """Number of prunable weights (all entries of ``synapse.weight``)."""
        return self.synapse.weight.numel()


def _has_trainable_weight(synapse: torch.nn.Module) -> bool:
    if parametrize.is_parametrized(synapse, "weight"):
        return True
    weight = getattr(synapse, "weight", None)
    return isinstance(weight, torch.Tensor) and weight.requires_grad


def find_prunable_layers(model: torch.nn.Module) -> list[PrunableLayer]:
    """Return the prunable layers of ``model`` in registration order.

    Raises:
        RewiringError: a block has a complex synapse (``synapse.real``/``imag``), which the
            rewiring methods do not support.
    """
    layers: list[PrunableLayer] = []
    for name, module in model.named_modules():
        synapse = getattr(module, "synapse", None)
        if not isinstance(synapse, torch.nn.Module):
            continue
        if getattr(synapse, "complex", False) or hasattr(synapse, "real"):
            raise RewiringError(f"block {name!r} has a complex synapse, which cannot be pruned")
        if _has_trainable_weight(synapse):
            layers.append(PrunableLayer(len(layers), name, module, synapse))
    return layers


def check_rewirable(layer: PrunableLayer) -> None:
    """Raise if a layer's weight cannot carry a rewiring parametrization.

    Raises:
        RewiringError: weight normalization is on (slayer's ``weight_norm=True``: the weight is
            then ``g * v / |v|`` and a zero cannot be held by any single tensor; build the
            network with ``weight_norm=False``), the block uses slayer's ``mask=`` argument (it
            writes into ``weight.data``, which a parametrized weight silently ignores), or the
            weight is already parametrized.
    """
    synapse = layer.synapse
    where = f"layer {layer.index} ({layer.name!r})"
    if getattr(synapse, "weight_norm_enabled", False) or hasattr(synapse, "weight_g"):
        raise RewiringError(
            f"{where} uses weight normalization; rewiring needs the plain weight: build the "
            "network with weight_norm=False"
        )
    if getattr(layer.block, "mask", None) is not None:
        raise RewiringError(
            f"{where} was built with slayer's mask= argument; remove it, pruning does the masking"
        )
    if parametrize.is_parametrized(synapse, "weight"):
        raise RewiringError(
            f"{where} already has a parametrization on synapse.weight (attached twice?)"
        )


def per_layer(
    values: float | Mapping[int | str, float],
    layers: list[PrunableLayer],
    *,
    default: float,
    what: str,
) -> list[float]:
    """Expand one value, or a mapping from layer index or module name to value, to every layer.

    Layers missing from a mapping get ``default``.

    Raises:
        RewiringError: a key names no prunable layer, a layer is named twice, or a value is not
            a finite number.
    """
    if not isinstance(values, Mapping):
        values = {layer.index: values for layer in layers}
    resolved = [default] * len(layers)
    by_name = {layer.name: layer.index for layer in layers}
    seen: set[int] = set()
    for key, value in values.items():
        if isinstance(key, int) and not isinstance(key, bool) and 0 <= key < len(layers):
            index = key
        elif isinstance(key, str) and key in by_name:
            index = by_name[key]
        else:
            known = ", ".join(f"{layer.index}={layer.name!r}" for layer in layers)
            raise RewiringError(f"{what}: key {key!r} names no prunable layer ({known})")
        if index in seen:
            raise RewiringError(f"{what}: layer {index} is given twice")
        seen.add(index)
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise RewiringError(f"{what} of layer {index} is {value!r}, not a finite number")
        resolved[index] = float(value)
    return resolved


def resolve_targets(targets: Targets, layers: list[PrunableLayer]) -> list[float]:
    """Return one target connectivity in (0, 1] per layer.

    Args:
        targets: one fraction for all layers, or a mapping from layer index or module name to
            fraction. Layers missing from a mapping get 1.0: they stay dense, not rewired.

    Raises:
        RewiringError: see :func:`per_layer`; or a value is not in (0, 1].
    """
    resolved = per_layer(targets, layers, default=1.0, what="target connectivity")
    for index, value in enumerate(resolved):
        if not 0.0 < value <= 1.0:
            raise RewiringError(f"target connectivity of layer {index} is {value}, not in (0, 1]")
    return resolved
