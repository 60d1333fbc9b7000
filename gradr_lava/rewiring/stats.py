"""Connectivity: nonzero weights / prunable weights, per layer and in total (the paper's measure).

Two counts exist for the same network: *float* nonzeros (the weight the optimizer sees) and
*quantized* nonzeros (after slayer's ``pre_hook_fx``, 8-bit rounding with step 2/w_scale, which
is what ``export_hdf5`` writes and what runs on Loihi). Rounding zeroes every |w| < step/2, so the
quantized count is never larger and is the one to report for a deployed network.
"""

from __future__ import annotations

from typing import Any

import torch

from gradr_lava.rewiring.layers import PrunableLayer, find_prunable_layers


def slayer_weight_step(block: torch.nn.Module) -> float | None:
    """The step of slayer's 8-bit weight grid on ``block`` (2 / w_scale, 1/32 for CUBA blocks),
    or None when its synapse's ``pre_hook_fx`` is not its own neuron's ``quantize_8bit``."""
    neuron = getattr(block, "neuron", None)
    hook = getattr(getattr(block, "synapse", None), "pre_hook_fx", None)
    if (neuron is None or getattr(hook, "__func__", None) is not type(neuron).quantize_8bit
            or getattr(hook, "__self__", None) is not neuron):
        return None
    return 2.0 / neuron.w_scale


def effective_weight(layer: PrunableLayer, quantized: bool) -> torch.Tensor:
    """The weight slayer multiplies with, without autograd; quantized by ``pre_hook_fx`` if asked.

    Shape: ``synapse.weight``'s. Units: slayer's float weight units (not the exported x w_scale).
    """
    with torch.no_grad():
        weight = layer.synapse.weight
        hook = getattr(layer.synapse, "pre_hook_fx", None)
        if quantized and hook is not None:
            weight = hook(weight)
        return weight.detach()


def layer_nonzero(layer: PrunableLayer, quantized: bool) -> int:
    """Number of nonzero weights of one layer (float or after slayer's quantization)."""
    return int(torch.count_nonzero(effective_weight(layer, quantized)))


def _ratio(nonzero: int, numel: int) -> float:
    return nonzero / numel if numel else 0.0


def connectivity(model: torch.nn.Module, quantized: bool = True) -> dict[str, Any]:
    """Connectivity of every prunable layer of a slayer ``model`` and of all of them together.

    Args:
        model: a network of slayer blocks (parametrized by a pruner or not, folded or not).
        quantized: count nonzeros after slayer's 8-bit ``pre_hook_fx`` (what is exported) if
            True, else nonzeros of the float weight.

    Returns:
        JSON-ready ``{"quantized": bool, "numel": int, "nonzero": int, "connectivity": float,
        "layers": [{"index", "name", "numel", "nonzero", "connectivity"}, ...]}``; the same
        keys whatever ``quantized`` is.
    """
    layers = []
    for layer in find_prunable_layers(model):
        nonzero = layer_nonzero(layer, quantized)
        layers.append({
            "index": layer.index,
            "name": layer.name,
            "numel": layer.numel,
            "nonzero": nonzero,
            "connectivity": _ratio(nonzero, layer.numel),
        })
    numel = sum(entry["numel"] for entry in layers)
    nonzero = sum(entry["nonzero"] for entry in layers)
    return {
        "quantized": quantized,
        "numel": numel,
        "nonzero": nonzero,
        "connectivity": _ratio(nonzero, numel),
        "layers": layers,
    }


def present_mask(layer: PrunableLayer) -> torch.Tensor:
    """Boolean mask (weight's shape) of connections present in the float weight."""
    return effective_weight(layer, quantized=False) != 0


def layer_report(layer: PrunableLayer) -> dict[str, Any]:
    """Float and quantized counts of one layer, JSON-ready."""
    nonzero = layer_nonzero(layer, quantized=False)
    nonzero_q = layer_nonzero(layer, quantized=True)
    return {
        "index": layer.index,
        "name": layer.name,
        "numel": layer.numel,
        "nonzero": nonzero,
        "connectivity": _ratio(nonzero, layer.numel),
        "nonzero_quantized": nonzero_q,
        "connectivity_quantized": _ratio(nonzero_q, layer.numel),
    }


def total_report(layers: list[dict[str, Any]]) -> dict[str, Any]:
    """Sums of :func:`layer_report` entries (plus ``pruned``/``regrown`` when present)."""
    numel = sum(entry["numel"] for entry in layers)
    total: dict[str, Any] = {"numel": numel}
    for key in ("nonzero", "nonzero_quantized", "pruned", "regrown"):
        total[key] = sum(int(entry.get(key, 0)) for entry in layers)
    total["connectivity"] = _ratio(total["nonzero"], numel)
    total["connectivity_quantized"] = _ratio(total["nonzero_quantized"], numel)
    return total
