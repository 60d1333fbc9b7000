"""How Intel's Loihi 2 compiler splits a netx network over cores: a model fitted to its printouts.

Intel's compiler (lava-loihi) is closed. When it runs a network it prints, per layer, the
resources of one core (AxonIn, NeuronGr, Neurons, Synapses, AxonMap, AxonMem, Total) and the
cores the layer takes; lava-dl's tutorials kept those printouts for Oxford, MNIST, PilotNet and
YOLO-KP. This module reproduces them (``docs/mapping.md`` lists every printed row beside the
model's) with the constants of a profile's ``[compiler]`` table
(:mod:`gradr_deploy.hardware.compiler_profile`):

- **Dense layers** are split into neuron groups, one per core. Every input axon of the layer
  reaches every core (zero weights are stored: ``count_zero_weights``), and its synapses into
  one core form a record of ``ceil((slot_bits * n + axon_header_bits) / unit_bits)`` SynMem
  units for the core's ``n`` neurons (``slot_bits``: 20 in the 2023-11 and 2024-04 releases,
  netx's weight bits + 12 in 2023-01). The group size follows the release's ``split`` rule:
  ``max-group`` takes the largest group whose cores keep Synapses within ``synmem_fill`` of
  the capacity (the last group takes the rest); ``iterative`` multiplies the number of equal
  groups by ``ceil(r)`` while the fullest core needs ``r`` times the capacity.
- **Conv and input layers** are cut into tiles of whole columns: the widest power-of-2 run of
  ``x`` positions whose ``y * x * channels`` neurons stay within ``conv_neurons_per_core`` (and
  rows, then channels, when one column is too many). A tile's Synapses are its kernel weights
  at ``weight bits + conv_slot_extra_bits`` each; AxonIn, AxonMap and AxonMem of conv tiles are
  not modelled.

Besides the compiler's answer, each layer gets the best partition under the same cost model and
a proven lower bound on any partition (both at the full capacity). For dense layers with zero
weights stored, a core's cost depends only on how many neurons it holds and grows with it, so
``ceil(neurons / largest group that fits)`` cores are optimal: the best partition equals the
bound.

numpy only; no Lava, no torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradr_deploy.errors import BudgetError
from gradr_deploy.hardware.compiler_profile import CompilerModel
from gradr_deploy.netx import Layer, weight_format

COLUMNS = ("axon_in", "neuron_groups", "neurons", "synapses", "axon_map", "axon_mem")
HEADINGS = ("AxonIn", "NeuronGr", "Neurons", "Synapses", "AxonMap", "AxonMem")


@dataclass(frozen=True)
class Capacity:
    """Per-core capacities the compiler checks, in its units (SynMem units, counts)."""

    neurons: int
    conv_neurons: int
    axon_in: int
    axon_map: int
    axon_mem: int
    neuron_groups: int
    synmem_units: int
    synmem_fill: float

    @property
    def synmem_allowed(self) -> int:
        """SynMem units the compiler lets one core use when it sizes groups."""
        return math.floor(self.synmem_units * self.synmem_fill + 1e-9)

    def of(self, column: str) -> int:
        return {"axon_in": self.axon_in, "neuron_groups": self.neuron_groups,
                "neurons": self.neurons, "synapses": self.synmem_units,
                "axon_map": self.axon_map, "axon_mem": self.axon_mem}[column]


@dataclass(frozen=True)
class CompiledLayer:
    """One layer as the modelled compiler places it.

    Per-core arrays have one entry per core; ``nan`` marks what the model does not know (conv
    tiles' AxonIn, AxonMap and AxonMem).

    Attributes:
        index, kind, neurons: the netx layer.
        core_of: ``(neurons,)`` core number of each neuron, netx stored (C) order.
        use: column name (:data:`COLUMNS`) -> ``(cores,)`` float array.
        tile: conv/input layers: the tile as ``(x, y, channels)`` (the printout's
            ``Conv(x, y, f)``); dense layers: None.
        best_cores: the fewest cores any partition needs under the same cost model at full
            capacity (optimal for dense layers with zero weights stored).
        lower_bound: a proven lower bound on the cores of any partition.
        slot_bits: bits per synapse slot used (dense) or per kernel weight (conv).
    """

    index: int
    kind: str
    neurons: int
    core_of: np.ndarray = field(repr=False)
    use: dict[str, np.ndarray]
    tile: tuple[int, int, int] | None
    best_cores: int
    lower_bound: int
    slot_bits: int

    @property
    def cores(self) -> int:
        return len(self.use["neurons"])

    def row(self, statistic: str) -> dict[str, float]:
        """The printed row: the largest core (``max``) or the layer's totals per core (``mean``).

        Tiled (conv, input) layers always print their full tile, as every printout does.
        """
        if statistic == "mean" and self.tile is None:
            return {c: float(np.sum(self.use[c]) / self.cores) for c in COLUMNS}
        first = int(np.argmax(self.use["neurons"]))
        return {c: float(self.use[c][first]) for c in COLUMNS}


def total_fraction(row: dict[str, float], capacity: Capacity, model: CompilerModel) -> float:
    """The printout's Total column (a fraction) for one row; nan where a term is unknown.

    Fitted: ``Total = a (AxonIn + Synapses + AxonMap + AxonMem) / 16000 + b Neurons / 4000`` with
    a = ``total_axon_weight``, b = ``total_neuron_weight`` and 16000 = the axon and SynMem
    capacity of the release the rows were printed by.
    """
    axon_terms = row["axon_in"] + row["synapses"] + row["axon_map"] + row["axon_mem"]
    return (model.total_axon_weight * axon_terms / capacity.synmem_units
            + model.total_neuron_weight * row["neurons"] / model.total_neuron_capacity)


def capacity_of(model: CompilerModel, neurons: int, axon_in: int, axon_map: int) -> Capacity:
    """Capacities of ``model``'s selected release; the counts come from the profile."""
    release = model.release
    return Capacity(neurons=neurons, conv_neurons=min(model.conv_neurons_per_core, neurons),
                    axon_in=axon_in, axon_map=axon_map, axon_mem=model.axon_mem_per_core,
                    neuron_groups=model.neuron_groups_per_core,
                    synmem_units=release.synmem_units_per_core,
                    synmem_fill=release.synmem_fill)


# --- dense layers ----------------------------------------------------------------------------


def record_units(synapses: np.ndarray | int, slot_bits: int, model: CompilerModel) -> np.ndarray:
    """SynMem units of input-axon records holding ``synapses`` synapses each (0 for none)."""
    k = np.asarray(synapses, dtype=np.int64)
    units = -(-(k * slot_bits + model.axon_header_bits) // model.unit_bits)
    return np.where(k > 0, units, 0)


def slot_bits_of(weights: np.ndarray, model: CompilerModel) -> int:
    """Bits of one synapse slot of a layer with ``weights`` in the selected release."""
    fixed = model.release.weight_slot_bits
    if fixed:
        return fixed
    return max(weight_format(weights).bits, 1) + model.slot_overhead_bits


def _dense_units(mask: np.ndarray | None, axons: int, sizes: np.ndarray, slot_bits: int,
                 model: CompilerModel) -> tuple[np.ndarray, np.ndarray]:
    """Per core (groups of ``sizes`` consecutive neurons): input axons and SynMem units.

    ``mask`` (``[out, in]`` nonzero) is used only when zero weights are not stored.
    """
    if mask is None:
        per_axon = record_units(sizes, slot_bits, model)
        return np.full(len(sizes), axons, np.float64), (axons * per_axon).astype(np.float64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    counts = np.add.reduceat(mask.astype(np.int64), starts, axis=0)  # (cores, in)
    units = record_units(counts, slot_bits, model).sum(axis=1)
    return np.count_nonzero(counts, axis=1).astype(np.float64), units.astype(np.float64)


def _groups(neurons: int, size: int, equal: bool) -> np.ndarray:
    cores = -(-neurons // size)
    if equal:  # ceil-sized groups, the last one smaller
        size = -(-neurons // cores)
    sizes = np.full(cores, size, np.int64)
    sizes[-1] = neurons - size * (cores - 1)
    return sizes


def _fits(mask, axons, sizes, slot_bits, model, cap: Capacity, units_cap: int) -> float:
    """Largest ratio of use to allowance over the cores (<= 1 means every core fits)."""
    axon_in, units = _dense_units(mask, axons, sizes, slot_bits, model)
    return max(float(units.max()) / units_cap, float(sizes.max()) / cap.neurons,
               float(axon_in.max()) / cap.axon_in, float(sizes.max()) / cap.axon_map)


def _largest_group(mask, axons, neurons, slot_bits, model, cap, units_cap) -> int:
    """Largest group size whose cores all fit ``units_cap`` (0 if not even one neuron)."""
    lo, hi = 0, min(neurons, cap.neurons, cap.axon_map)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        sizes = _groups(neurons, mid, equal=False)
        if _fits(mask, axons, sizes, slot_bits, model, cap, units_cap) <= 1:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _iterative_groups(mask, axons, neurons, slot_bits, model, cap) -> np.ndarray | None:
    groups = 1
    for _ in range(64):
        sizes = _groups(neurons, -(-neurons // groups), equal=True)
        ratio = _fits(mask, axons, sizes, slot_bits, model, cap, cap.synmem_allowed)
        if ratio <= 1:
            return sizes
        if groups >= neurons:
            return None
        groups = min(neurons, groups * math.ceil(ratio))
    return None


def compile_dense(layer: Layer, weights: np.ndarray, model: CompilerModel, cap: Capacity,
                  label: str) -> CompiledLayer:
    """Place a dense (or recurrent dense) layer with ``[out, in]`` ``weights``.

    Raises:
        BudgetError: one neuron alone exceeds a core (too many input axons or synapse memory).
    """
    neurons, axons = weights.shape
    slot = slot_bits_of(weights, model)
    mask = None if model.count_zero_weights else (np.trunc(weights) != 0)
    if model.release.split == "iterative":
        sizes = _iterative_groups(mask, axons, neurons, slot, model, cap)
    else:
        size = _largest_group(mask, axons, neurons, slot, model, cap, cap.synmem_allowed)
        sizes = _groups(neurons, size, equal=False) if size else None
    if sizes is None:
        one = int(axons * record_units(1, slot, model))
        raise BudgetError(
            f"{label}: one neuron alone does not fit a core of Intel's compiler (model, release "
            f"{model.release.name}): {axons} input axons (limit {cap.axon_in}), {one} SynMem "
            f"units (allowed {cap.synmem_allowed}); reduce the layer's fan-in"
        )
    axon_in, units = _dense_units(mask, axons, sizes, slot, model)
    best_size = _largest_group(mask, axons, neurons, slot, model, cap, cap.synmem_units)
    best = -(-neurons // best_size) if best_size else len(sizes)
    if mask is None:
        bound = best  # cost grows with the group only: optimal (module docstring)
    else:
        linear = float(mask.sum()) * slot / model.unit_bits
        bound = max(math.ceil(neurons / cap.neurons), math.ceil(linear / cap.synmem_units), 1)
        best = max(bound, min(best, len(sizes)))
    use = {
        "axon_in": axon_in, "neuron_groups": np.ones(len(sizes)),
        "neurons": sizes.astype(np.float64), "synapses": units,
        "axon_map": sizes.astype(np.float64), "axon_mem": np.zeros(len(sizes)),
    }
    core_of = np.repeat(np.arange(len(sizes)), sizes)
    return CompiledLayer(layer.index, layer.kind, neurons, core_of, use, None, best, bound, slot)


# --- conv and input layers -------------------------------------------------------------------


def _tile(channels: int, height: int, width: int, cap: int) -> tuple[int, int, int]:
    """The widest power-of-2 tile ``(x, y, f)`` of whole columns within ``cap`` neurons."""
    if channels * height <= cap:
        w = 1 << int(math.log2(cap // (channels * height)))
        return min(w, width), height, channels
    if channels <= cap:
        h = 1 << int(math.log2(cap // channels))
        return 1, min(h, height), channels
    return 1, 1, cap


def _tile_cores(shape: tuple[int, int, int], tile: tuple[int, int, int]) -> np.ndarray:
    """Core of each neuron (stored C order over ``(f, y, x)``) for tiles of ``tile``."""
    channels, height, width = shape
    tx, ty, tf = tile
    nx, ny = -(-width // tx), -(-height // ty)
    f, y, x = np.meshgrid(np.arange(channels), np.arange(height), np.arange(width),
                          indexing="ij")
    return ((f // tf) * ny * nx + (y // ty) * nx + x // tx).reshape(-1)


def compile_tiled(layer: Layer, model: CompilerModel, cap: Capacity,
                  kernel: np.ndarray | None = None) -> CompiledLayer:
    """Place a conv layer (``kernel`` = ``[out, in/groups, ky, kx]``) or an input layer."""
    shape = layer.shape if len(layer.shape) == 3 else (layer.neurons, 1, 1)
    channels = shape[0]
    slot = 0
    if kernel is not None:
        slot = max(weight_format(kernel).bits, 1) + model.conv_slot_extra_bits
        per_channel = int(np.prod(kernel.shape[1:]))
    limit = cap.conv_neurons
    while True:
        tile = _tile(*shape, limit)
        core_of = _tile_cores(shape, tile)
        cores = int(core_of.max()) + 1
        neurons = np.bincount(core_of, minlength=cores).astype(np.float64)
        units = np.zeros(cores)
        if kernel is not None:
            per_block = cores // -(-channels // tile[2])  # tiles per block of channels
            first = (np.arange(cores) // per_block) * tile[2]
            out_channels = np.minimum(tile[2], channels - first)
            units = np.ceil(out_channels * per_channel * slot / model.unit_bits)
        if units.max(initial=0) <= cap.synmem_allowed or limit == 1:
            break
        limit //= 2  # the synapse memory, not the neurons, is full: halve the tile
    nan = np.full(cores, np.nan)
    use = {"axon_in": nan, "neuron_groups": np.ones(cores), "neurons": neurons,
           "synapses": units, "axon_map": nan, "axon_mem": nan}
    columns = shape[0] * shape[1]
    full = max(1, cap.neurons // columns) if columns <= cap.neurons else 1
    best = -(-shape[2] // full) if columns <= cap.neurons else cores
    bound = max(1, math.ceil(layer.neurons / cap.neurons))
    return CompiledLayer(layer.index, layer.kind, layer.neurons, core_of, use,
                         tile, max(best, bound), bound, slot)


def layer_summary(layer: CompiledLayer) -> dict[str, Any]:
    """JSON-ready per-core use (nan -> None)."""
    return {
        "cores": layer.cores,
        "tile": None if layer.tile is None else list(layer.tile),
        "slot_bits": layer.slot_bits,
        "best_partition_cores": layer.best_cores,
        "lower_bound_cores": layer.lower_bound,
        "per_core": {c: [None if math.isnan(v) else v for v in layer.use[c].tolist()]
                     for c in COLUMNS},
    }
