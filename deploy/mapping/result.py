"""What a mapping is: per layer the cores used and how full each one is, per network the totals.

:class:`Connectivity` is a layer's nonzero synapses as CSR in partition order (what every cost
is computed from); :class:`LayerMapping` one layer placed on cores, with per-core use of the four
resources and the lower bounds; :class:`NetworkMapping` the whole network on one profile.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradr_deploy.hardware.profile import HardwareProfile
from gradr_deploy.mapping.compiler_model import CompiledLayer, layer_summary

RESOURCES = ("neurons", "input_axons", "output_axons", "synapse_memory")
# the layer types placed on cores (flatten takes none; netx 0.6 runs no other type)
PLACED_KINDS = frozenset({"input", "dense", "dense_rec", "conv"})


@dataclass(frozen=True)
class Connectivity:
    """Nonzero synapses of one layer as CSR: rows are its neurons in partition order.

    ``indices`` hold presynaptic neuron numbers (C order of the previous layer's stored shape;
    for ``dense_rec`` the layer's own neurons follow as ``n_pre_external + i``). ``order[q]``
    is the stored (C-order) index of the neuron at partition position ``q``.
    """

    indptr: np.ndarray
    indices: np.ndarray
    n_pre: int
    order: np.ndarray

    @property
    def n_post(self) -> int:
        return len(self.indptr) - 1

    @property
    def synapses(self) -> int:
        return int(self.indptr[-1])


@dataclass(frozen=True)
class LayerMapping:
    """One layer placed on cores. Per-core arrays have one entry per core (partition order)."""

    index: int
    kind: str
    neurons: int
    synapses: int  # nonzero synapses into this layer
    weight_bits: int  # bits per weight in synapse memory (netx's derivation, capped)
    delay_bits: int
    core_neurons: np.ndarray
    core_input_axons: np.ndarray
    core_output_axons: np.ndarray
    core_synapse_bits: np.ndarray
    core_encoding: tuple[str, ...]  # "dense" / "sparse" / "mixed" (per axon) / "none" per core
    lower_bounds: Mapping[str, int]  # per resource; see lower_bounds()
    limits: Mapping[str, int]
    core_of: np.ndarray = field(repr=False)  # stored neuron index -> core number in the layer
    core_inputs: tuple[np.ndarray, ...] = field(repr=False)  # per core: presynaptic neurons
    fan_out_synapses: int = 0  # nonzero synapses leaving this layer (into the next)
    connections: int = 0  # dense-equivalent connections into the layer (an ANN's MACs)
    # synapses that cannot change an output spike (gradr_deploy.netx.reachability)
    idle_synapses: int = 0
    # what the partition was computed from (for what-if re-partitioning in
    # gradr_deploy.mapping.budget)
    connectivity: Connectivity | None = field(default=None, repr=False, compare=False)
    out_cost: np.ndarray | None = field(default=None, repr=False, compare=False)
    # the compiler model's placement (profiles with a [compiler] table), else None
    compiled: CompiledLayer | None = field(default=None, repr=False, compare=False)

    @property
    def best_cores(self) -> int:
        """Cores of the best partition under the same cost model (the compiler model's, for
        profiles that have one; else this partition)."""
        return self.compiled.best_cores if self.compiled is not None else self.cores

    @property
    def cores(self) -> int:
        return len(self.core_neurons)

    @property
    def lower_bound(self) -> int:
        return max(self.lower_bounds.values()) if self.cores else 0

    @property
    def bound_note(self) -> str:
        """Why the cores exceed the lower bound, with the numbers ("" when they are equal)."""
        return getattr(self.lower_bounds, "note", "") if self.cores else ""

    @property
    def ratio(self) -> float:
        """Cores used / lower bound (1.0 = provably optimal)."""
        return self.cores / self.lower_bound if self.lower_bound else float("nan")

    def used(self, resource: str) -> np.ndarray:
        """Per-core use of ``resource`` (neurons, axons, or bits for synapse_memory)."""
        return {
            "neurons": self.core_neurons,
            "input_axons": self.core_input_axons,
            "output_axons": self.core_output_axons,
            "synapse_memory": self.core_synapse_bits,
        }[resource]

    def utilization(self) -> dict[str, dict[str, float]]:
        """Per resource: ``max`` and ``mean`` over cores of used / limit."""
        out = {}
        for resource in RESOURCES:
            frac = self.used(resource) / self.limits[resource] if self.cores else np.zeros(1)
            out[resource] = {"max": float(frac.max()), "mean": float(frac.mean())}
        return out

    @property
    def limiting(self) -> str:
        """The resource closest to its limit (highest max-over-cores utilization)."""
        if not self.cores:
            return "-"
        util = self.utilization()
        return max(RESOURCES, key=lambda r: (util[r]["max"], util[r]["mean"]))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (per-core arrays as lists)."""
        return {
            "index": self.index,
            "type": self.kind,
            "neurons": self.neurons,
            "synapses": self.synapses,
            "fan_out_synapses": self.fan_out_synapses,
            "idle_synapses": self.idle_synapses,
            "connections": self.connections,
            "weight_bits": self.weight_bits,
            "delay_bits": self.delay_bits,
            "cores": self.cores,
            "lower_bound_cores": self.lower_bound,
            "lower_bounds": dict(self.lower_bounds),
            "cores_over_lower_bound": None if not self.cores else round(self.ratio, 4),
            "lower_bound_note": self.bound_note,
            "lower_bounds_refined": bool(getattr(self.lower_bounds, "refined", False)),
            "best_partition_cores": self.best_cores,
            "limiting_resource": self.limiting,
            "input_axons": int(self.core_input_axons.sum()),
            "output_axons": int(self.core_output_axons.sum()),
            "synapse_memory_bits": int(self.core_synapse_bits.sum()),
            "utilization": self.utilization(),
            "per_core": {
                "neurons": self.core_neurons.tolist(),
                "input_axons": self.core_input_axons.tolist(),
                "output_axons": self.core_output_axons.tolist(),
                "synapse_memory_bits": self.core_synapse_bits.tolist(),
                "encoding": list(self.core_encoding),
            },
            "compiler": None if self.compiled is None else layer_summary(self.compiled),
        }


@dataclass(frozen=True)
class NetworkMapping:
    """A whole network placed on a hardware profile."""

    source: str
    hardware: HardwareProfile
    layers: tuple[LayerMapping, ...]
    warnings: tuple[str, ...] = ()
    # compiler profiles: total cores under each release of the compiler model
    release_cores: Mapping[str, int] = field(default_factory=dict)

    @property
    def total_cores(self) -> int:
        """The cores that decide a budget: the compiler model's, where the profile has one."""
        return sum(layer.cores for layer in self.layers)

    @property
    def best_partition_cores(self) -> int:
        return sum(layer.best_cores for layer in self.layers)

    @property
    def lower_bound_cores(self) -> int:
        return sum(layer.lower_bound for layer in self.layers)

    @property
    def decided_by(self) -> str:
        """What ``total_cores`` models, in words."""
        compiler = self.hardware.compiler
        if compiler is None:
            return f"gradr-lava's partitioner ({self.hardware.name} profile)"
        return f"model of Intel's Loihi 2 compiler, release {compiler.release.name}"

    @property
    def chips(self) -> int:
        """Chips needed: ``ceil(total_cores / cores_per_chip)``."""
        return math.ceil(self.total_cores / self.hardware.cores_per_chip)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "total_cores": self.total_cores,
            "chips": self.chips,
            "lower_bound_cores": self.lower_bound_cores,
            "best_partition_cores": self.best_partition_cores,
            "cores_decided_by": self.decided_by,
            "compiler_release_cores": dict(self.release_cores),
            "total_neurons": sum(layer.neurons for layer in self.layers),
            "total_synapses": sum(layer.synapses for layer in self.layers),
            "layers": [layer.to_dict() for layer in self.layers],
            "hardware": self.hardware.to_dict(),
            "warnings": list(self.warnings),
        }



def limits(profile: HardwareProfile) -> dict[str, int]:
    """The four per-core limits of ``profile``, keyed as :data:`RESOURCES`."""
    return {
        "neurons": profile.neurons_per_core,
        "input_axons": profile.input_axons_per_core,
        "output_axons": profile.output_axons_per_core,
        "synapse_memory": profile.synapse_memory_bits_per_core,
    }


def empty_layer(index: int, kind: str, profile: HardwareProfile) -> LayerMapping:
    """A layer that takes no cores (``flatten``)."""
    none = np.zeros(0, np.int64)
    return LayerMapping(
        index, kind, 0, 0, 0, 0, none, none, none, none, (), dict.fromkeys(RESOURCES, 0),
        limits(profile), none, (),
    )  # fmt: skip
