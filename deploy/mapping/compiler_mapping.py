"""Turn the compiler model's placement of a layer into the mapper's :class:`LayerMapping`.

For a profile with a ``[compiler]`` table (``loihi2``),
:func:`gradr_deploy.mapping.map_network` places every layer as the modelled Intel compiler does
(:mod:`gradr_deploy.mapping.compiler_model`) instead of with its own packing, so the core counts
that
decide a budget are the compiler's. The per-core arrays the rest of the toolchain reads
(neurons, input axons, output axons, synapse memory in bits) are derived here, with the nonzero
connectivity kept for the energy model.
"""

from __future__ import annotations

import math

import numpy as np

from gradr_deploy.errors import InputError
from gradr_deploy.hardware.profile import HardwareProfile
from gradr_deploy.mapping.compiler_model import (
    Capacity,
    CompiledLayer,
    capacity_of,
    compile_dense,
    compile_tiled,
)
from gradr_deploy.netx import Layer


def capacity(profile: HardwareProfile) -> Capacity:
    """The compiler model's per-core capacities for ``profile`` (which must have one)."""
    if profile.compiler is None:
        raise InputError(f"hardware profile {profile.name} has no [compiler] model")
    return capacity_of(profile.compiler, profile.neurons_per_core,
                       profile.input_axons_per_core, profile.output_axons_per_core)


def compile_layer(layer: Layer, profile: HardwareProfile, label: str) -> CompiledLayer:
    """Place one netx layer as the modelled compiler of ``profile`` does."""
    model, cap = profile.compiler, capacity(profile)
    assert model is not None
    if layer.kind in ("dense", "dense_rec"):
        weights = np.asarray(layer.weight_matrix(), dtype=np.float64)
        if layer.kind == "dense_rec":
            rec = np.asarray(layer.weight_rec).reshape(layer.neurons, layer.neurons)
            weights = np.hstack([weights, rec])
        return compile_dense(layer, weights, model, cap, label)
    if layer.kind == "conv":
        return compile_tiled(layer, model, cap, layer.kernel())
    if layer.kind == "input":
        return compile_tiled(layer, model, cap)
    raise InputError(f"{label}: layer type {layer.kind!r} is not placed by the compiler model")


def core_inputs(indptr: np.ndarray, indices: np.ndarray, row_core: np.ndarray,
                cores: int) -> tuple[np.ndarray, ...]:
    """Per core, the presynaptic neurons its rows read (from CSR rows and each row's core)."""
    per_synapse = np.repeat(row_core, np.diff(indptr))
    pairs = np.unique(per_synapse.astype(np.int64) * (int(indices.max(initial=0)) + 1)
                      + indices.astype(np.int64))
    width = int(indices.max(initial=0)) + 1
    core, pre = np.divmod(pairs, width)
    bounds = np.searchsorted(core, np.arange(cores + 1))
    return tuple(pre[bounds[c]:bounds[c + 1]].astype(np.int32) for c in range(cores))


def bits_per_unit(profile: HardwareProfile) -> int:
    assert profile.compiler is not None
    return profile.compiler.unit_bits


def limits(profile: HardwareProfile) -> dict[str, int]:
    """The mapper's four limits in its units, for the compiler model's selected release."""
    cap = capacity(profile)
    return {
        "neurons": cap.neurons,
        "input_axons": cap.axon_in,
        "output_axons": cap.axon_map,
        "synapse_memory": cap.synmem_units * bits_per_unit(profile),
    }


def lower_bounds(compiled: CompiledLayer, profile: HardwareProfile) -> dict[str, int]:
    """Per-resource lower bounds in the mapper's vocabulary (the compiler model's bound)."""
    cap = capacity(profile)
    neurons = max(1, math.ceil(compiled.neurons / cap.neurons))
    return {"neurons": neurons, "input_axons": 1, "output_axons": 1,
            "synapse_memory": compiled.lower_bound}
