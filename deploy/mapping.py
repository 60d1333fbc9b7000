"""Map a netx network onto neuromorphic cores under per-core limits.

Every layer's neurons are split into contiguous runs, one per core, in a fixed order (dense:
as stored; conv and 3-D input layers: position-major ``(y, x, channel)`` so that a core holds
whole receptive-field neighbourhoods). Each core must satisfy four limits of the profile:

- neurons (compartments) per core;
- input axons: the presynaptic neurons with at least one nonzero synapse into the core;
- output axons: for each neuron of the core, the number of cores of the next layer that read it
  (one axon per destination core; layers are therefore mapped last to first);
- synapse memory in bits, nengo-loihi's cost model: per input axon the core's synapses form
  blocks of at most ``synapses_per_block``, each costing ``synapses * bits + header`` rounded up
  to a memory word; ``bits`` = weight bits (as netx derives them from the stored weights) +
  delay bits, plus index bits in the sparse encoding. The dense encoding stores one weight for
  every compartment from the axon's first to its last target in the core, zeros included (an
  axon's synapse-map entry carries a compartment base). Each axon uses the cheaper encoding.

The packing is greedy: each core takes the longest run that fits (binary search on one
vectorised cost evaluation), which is optimal for the order; :func:`map_file` also tries two
other orders for dense layers. Per layer the result reports a proven lower bound on the cores
any placement needs: the counting bounds of :func:`lower_bounds`, refined on first use by
:mod:`gradr_deploy.lower_bound` (:class:`LayerBounds`). Conv layers are costed synapse by synapse
(no weight sharing), which is conservative for hardware that shares conv kernels.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gradr_deploy.compiler_model import CompiledLayer, layer_summary
from gradr_deploy.cost import block_bits, envelope, index_bits
from gradr_deploy.errors import BudgetError, InputError
from gradr_deploy.lower_bound import (
    LayerStats,
    axon_lower_bound,
    layer_stats,
    memory_lower_bound,
    refine_cores,
)
from gradr_deploy.netx_file import Layer, NetxNetwork, delay_bits, weight_format
from gradr_deploy.profiles import HardwareProfile, load_profile

RESOURCES = ("neurons", "input_axons", "output_axons", "synapse_memory")
SYNAPSE_KINDS = frozenset({"dense", "dense_rec", "conv"})
NEURON_KINDS = SYNAPSE_KINDS | {"input"}
_CONV_CHUNK = 1 << 22  # (position, kernel entry) pairs built at once when expanding a conv
ORDER_SEARCH_MAX_NEURONS = 2048  # larger layers keep their stored order


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
    # what the partition was computed from (for what-if re-partitioning in gradr_deploy.budget)
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
        bounds = self.lower_bounds
        return bounds.note if isinstance(bounds, LayerBounds) and self.cores else ""

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
            "connections": self.connections,
            "weight_bits": self.weight_bits,
            "delay_bits": self.delay_bits,
            "cores": self.cores,
            "lower_bound_cores": self.lower_bound,
            "lower_bounds": dict(self.lower_bounds),
            "cores_over_lower_bound": None if not self.cores else round(self.ratio, 4),
            "lower_bound_note": self.bound_note,
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


# --- cost model ------------------------------------------------------------------------------


def axon_synapse_bits(
    counts: np.ndarray, spans: np.ndarray, neurons: int, bits: int, profile: HardwareProfile
) -> tuple[int, int]:
    """Synapse bits of one core and how many of its axons use the dense encoding.

    Per input axon, the cheaper of two nengo-loihi encodings (each block carries its own format
    index, and an axon's synapse-map entry has its own compartment base):

    - dense: one weight for every compartment from the axon's first to its last target
      (``spans``; zeros included), no index bits;
    - sparse: one ``bits + index_bits`` entry per nonzero synapse (``counts``).
    """
    if counts.size == 0:
        return 0, 0
    dense = block_bits(spans, bits, profile)
    sparse = block_bits(counts, bits + index_bits(neurons, profile), profile)
    return int(np.minimum(dense, sparse).sum()), int(np.count_nonzero(dense <= sparse))


def lower_bounds(
    fan_in: np.ndarray,
    pre_used: int,
    out_cost: np.ndarray,
    bits: int,
    profile: HardwareProfile,
) -> dict[str, int]:
    """Cores any placement of a layer needs, per resource (each a proven lower bound).

    - neurons: ``ceil(N / neurons_per_core)``.
    - input_axons: ``ceil(presynaptic neurons used / input_axons_per_core)``.
    - output_axons: ``ceil(sum of per-neuron destination cores / output_axons_per_core)`` and
      ``ceil(N / n)`` where ``n`` = most neurons whose cheapest destinations fit one core.
    - synapse_memory: a core whose ``A`` input axons carry ``S`` synapses needs at least
      ``A * g(S / A)`` bits, ``g`` the convex envelope of the block cost (Jensen), and this
      falls as ``A`` grows, so ``A = min(used presynaptic neurons, axon limit)`` bounds every
      core; a core of ``n`` neurons carries at least the ``n`` smallest fan-ins. Hence each core
      holds at most ``n_max`` neurons and ``ceil(N / n_max)`` cores are needed; also
      ``ceil(synapses * min_k g(k)/k / memory)``.
    """
    n = len(fan_in)
    bounds = {r: 0 for r in RESOURCES}
    if n == 0:
        return bounds
    bounds["neurons"] = math.ceil(n / profile.neurons_per_core)
    bounds["input_axons"] = math.ceil(pre_used / profile.input_axons_per_core)
    limit_out = profile.output_axons_per_core
    sorted_out = np.cumsum(np.sort(out_cost))
    fit_out = int(np.searchsorted(sorted_out, limit_out, side="right"))
    bounds["output_axons"] = max(
        math.ceil(int(out_cost.sum()) / limit_out), math.ceil(n / max(fit_out, 1))
    )
    synapses = int(fan_in.sum())
    if synapses:
        cap = profile.synapse_memory_bits_per_core
        max_k = min(n, profile.neurons_per_core)
        ks, gs = envelope(bits, max_k, profile)
        per_synapse = float(np.min(gs[1:] / ks[1:]))
        axons = min(pre_used, profile.input_axons_per_core)
        s_min = np.cumsum(np.sort(fan_in))[:max_k]
        need = axons * np.interp(s_min / axons, ks, gs)
        fit = int(np.searchsorted(need, cap, side="right"))
        bounds["synapse_memory"] = max(
            math.ceil(synapses * per_synapse / cap), math.ceil(n / max(fit, 1))
        )
    return bounds


# --- connectivity ----------------------------------------------------------------------------


def _nonzero(weight: np.ndarray) -> np.ndarray:
    """Synapses netx programs: weights that stay nonzero after netx's ``astype(int)``."""
    return np.trunc(np.asarray(weight)) != 0


def dense_connectivity(mask: np.ndarray) -> Connectivity:
    """CSR of a ``[out, in]`` nonzero mask (rows in stored order)."""
    rows, cols = np.nonzero(mask)
    indptr = np.zeros(mask.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=mask.shape[0]), out=indptr[1:])
    return Connectivity(indptr, cols.astype(np.int32), mask.shape[1], np.arange(mask.shape[0]))


def conv_connectivity(
    mask: np.ndarray,
    in_shape: tuple[int, int, int],
    out_shape: tuple[int, int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    groups: int,
) -> Connectivity:
    """CSR of a convolution from its ``[out, in/groups, ky, kx]`` nonzero kernel mask.

    Rows are output neurons in ``(y, x, channel)`` order; columns are input neurons in the
    stored ``(channel, y, x)`` C order. Padding positions have no synapse.
    """
    c_in, h_in, w_in = in_shape
    c_out, h_out, w_out = out_shape
    eo, ec, eky, ekx = (a.astype(np.int64) for a in np.nonzero(mask))  # sorted by eo
    ec = ec + (eo // (c_out // groups)) * (c_in // groups)
    positions = h_out * w_out
    py, px = np.divmod(np.arange(positions), w_out)
    counts = np.zeros(positions * c_out, dtype=np.int64)
    chunks: list[np.ndarray] = []
    step = max(1, _CONV_CHUNK // max(len(eo), 1))
    for start in range(0, positions, step):
        sl = slice(start, min(start + step, positions))
        iy = py[sl, None] * stride[0] - padding[0] + eky[None, :] * dilation[0]
        ix = px[sl, None] * stride[1] - padding[1] + ekx[None, :] * dilation[1]
        valid = (iy >= 0) & (iy < h_in) & (ix >= 0) & (ix < w_in)
        rows = np.arange(sl.start, sl.stop)[:, None] * c_out + eo[None, :]
        counts += np.bincount(rows[valid], minlength=positions * c_out)
        chunks.append(((ec[None, :] * h_in + iy) * w_in + ix)[valid].astype(np.int32))
    indptr = np.zeros(positions * c_out + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    q = np.arange(positions * c_out)
    order = (q % c_out) * positions + q // c_out
    indices = np.concatenate(chunks) if chunks else np.zeros(0, np.int32)
    return Connectivity(indptr, indices, c_in * h_in * w_in, order)


def neuron_order(shape: tuple[int, ...]) -> np.ndarray:
    """Partition order of a layer without synapses: position-major for (c, y, x) shapes."""
    n = int(np.prod(shape))
    if len(shape) != 3 or shape[0] == n:
        return np.arange(n)
    channels, positions = shape[0], n // shape[0]
    q = np.arange(n)
    return (q % channels) * positions + q // channels


# --- partitioning ----------------------------------------------------------------------------


@dataclass
class _Cores:
    neurons: list[int] = field(default_factory=list)
    axons: list[int] = field(default_factory=list)
    out: list[int] = field(default_factory=list)
    bits: list[int] = field(default_factory=list)
    encoding: list[str] = field(default_factory=list)
    inputs: list[np.ndarray] = field(default_factory=list)


def run_cost(
    conn: Connectivity, a: int, n: int, bits: int, profile: HardwareProfile
) -> tuple[int, int, str, np.ndarray]:
    """Input axons, synapse bits, encoding and used axons of one core holding rows a..a+n-1."""
    indptr, indices = conn.indptr, conn.indices
    cols = indices[indptr[a] : indptr[a + n]]
    rows = np.repeat(np.arange(n), np.diff(indptr[a : a + n + 1]))
    counts = np.bincount(cols, minlength=conn.n_pre)
    used = np.flatnonzero(counts)
    first = np.full(conn.n_pre, n, np.int64)
    last = np.zeros(conn.n_pre, np.int64)
    np.minimum.at(first, cols, rows)
    np.maximum.at(last, cols, rows)
    spans = last[used] - first[used] + 1
    used_bits, n_dense = axon_synapse_bits(counts[used], spans, n, bits, profile)
    return used.size, used_bits, _encoding_name(n_dense, used.size), used


def partition(
    conn: Connectivity, out_cost: np.ndarray, bits: int, profile: HardwareProfile, label: str
) -> _Cores:
    """Greedy contiguous packing of ``conn``'s rows; ``out_cost`` per row (partition order).

    Raises:
        BudgetError: a single neuron exceeds a per-core limit on its own.
    """
    cap_n, cap_in = profile.neurons_per_core, profile.input_axons_per_core
    cap_out, cap_bits = profile.output_axons_per_core, profile.synapse_memory_bits_per_core
    indptr = conn.indptr
    out_cum = np.concatenate([[0], np.cumsum(out_cost, dtype=np.int64)])
    ks, gs = envelope(bits, profile.synapses_per_block, profile)
    per_synapse = float(np.min(gs[1:] / ks[1:]))  # 0 only for free synapses (no header, 0 bits)
    max_synapses = int(cap_bits // per_synapse) if per_synapse > 0 else conn.synapses
    cores = _Cores()

    def evaluate(a: int, n: int) -> tuple[bool, int, int, str, np.ndarray]:
        axons, used_bits, encoding, used = run_cost(conn, a, n, bits, profile)
        return axons <= cap_in and used_bits <= cap_bits, axons, used_bits, encoding, used

    start, guess, total = 0, 0, conn.n_post
    while start < total:
        hi = min(cap_n, total - start)
        hi = min(hi, int(np.searchsorted(out_cum, out_cum[start] + cap_out, "right")) - 1 - start)
        hi = min(
            hi, int(np.searchsorted(indptr, indptr[start] + max_synapses, "right")) - 1 - start
        )
        best = evaluate(start, hi) if hi >= 1 else None
        n = hi
        if best is None or not best[0]:
            lo, bad = 0, max(hi, 1)
            if 0 < guess < bad:
                trial = evaluate(start, guess)
                lo, bad = (guess, bad) if trial[0] else (0, guess)
                best = trial if trial[0] else None
            while bad - lo > 1:
                mid = (lo + bad) // 2
                trial = evaluate(start, mid)
                if trial[0]:
                    lo, best = mid, trial
                else:
                    bad = mid
            n = lo
            if n == 0 or best is None:
                raise BudgetError(
                    _single_neuron_message(conn, start, out_cost, bits, profile, label)
                )
        _, axons, used_bits, encoding, used = best
        cores.neurons.append(n)
        cores.axons.append(axons)
        cores.out.append(int(out_cum[start + n] - out_cum[start]))
        cores.bits.append(used_bits)
        cores.encoding.append(encoding)
        cores.inputs.append(used.astype(np.int32))
        start, guess = start + n, n
    return cores


def _encoding_name(dense_axons: int, axons: int) -> str:
    if axons == 0:
        return "none"
    if dense_axons == axons:
        return "dense"
    return "sparse" if dense_axons == 0 else "mixed"


def _single_neuron_message(
    conn: Connectivity,
    q: int,
    out_cost: np.ndarray,
    bits: int,
    profile: HardwareProfile,
    label: str,
) -> str:
    fan_in = int(conn.indptr[q + 1] - conn.indptr[q])
    one_bits = int(block_bits(np.ones(fan_in, np.int64), bits, profile).sum())
    return (
        f"{label}: neuron {int(conn.order[q])} alone does not fit one core: fan-in {fan_in} "
        f"input axons (limit {profile.input_axons_per_core}), {one_bits} synapse bits (limit "
        f"{profile.synapse_memory_bits_per_core}), {int(out_cost[q])} output axons (limit "
        f"{profile.output_axons_per_core}); prune its fan-in to <= "
        f"{profile.input_axons_per_core} inputs or use fewer weight bits"
    )


# --- whole network ---------------------------------------------------------------------------


def map_file(
    path: str | Path,
    hardware: str | Path = "loihi2",
    overrides: Mapping[str, str | float | int | bool] | None = None,
) -> NetworkMapping:
    """Read a netx file or a NIR graph and map it onto ``hardware`` (profile name or TOML).

    A conv-first network without an input layer is mapped with the input shape gradr-lava
    recorded in the file (:mod:`gradr_deploy.metadata`) or the NIR graph's input type. A NIR graph
    is converted as :mod:`gradr_deploy.interop.nir_import` describes. Dense layers may be packed
    in another neuron order when that needs fewer cores (see :func:`map_network`).
    """
    from gradr_deploy.interop import read_network

    net, input_shape, _notes = read_network(path)
    return map_network(net, load_profile(hardware, overrides), input_shape)


def map_network(
    net: NetxNetwork,
    profile: HardwareProfile,
    input_shape: tuple[int, ...] | None = None,
) -> NetworkMapping:
    """Place every layer of ``net`` on cores of ``profile`` (layers mapped last to first).

    The one mapping path of the toolchain: ``map``, ``deploy``, ``train --fit-cores`` and the
    Python API all call it. For a profile with a ``[compiler]`` model (``loihi2``) each layer
    is placed as Intel's compiler is modelled to place it (:mod:`gradr_deploy.compiler_model`), and
    ``best_partition_cores`` says what the best partition under that cost model needs. Else
    the greedy partitioner runs, and a dense layer whose cores exceed its counting bounds is
    also packed in two other neuron orders, keeping the order needing fewest cores
    (:func:`_try_orders`).

    ``input_shape`` is netx's ``(x, y, f)`` input shape, needed when the first layer is conv
    and the file has no input layer (as gradr-lava records it in its metadata).

    Raises:
        InputError: a layer type netx cannot run either (pool, average, ...), or a conv layer
            without a known input shape.
        BudgetError: a single neuron exceeds a per-core limit.
    """
    layers = net.layers
    warnings: list[str] = []
    pre_of: dict[int, int | None] = {}
    previous: int | None = None
    for layer in layers:
        if layer.kind == "flatten":
            continue
        if layer.kind not in NEURON_KINDS:
            raise InputError(
                f"{net.path}: layer {layer.index} has type '{layer.kind}', which lava-dl 0.6's "
                "netx cannot run (NotImplementedError) and this mapper does not place"
            )
        pre_of[layer.index] = previous
        previous = layer.index
    dests: dict[int, np.ndarray] = {i: np.zeros(layers[i].neurons, np.int64) for i in pre_of}
    fan_out = dict.fromkeys(pre_of, 0)
    mapped: dict[int, LayerMapping] = {}
    for i in reversed(list(pre_of)):
        layer, pre = layers[i], pre_of[i]
        label = f"{net.path.name}: layer {i} ({layer.kind})"
        conn, wbits, dbits = _connectivity(net, i, pre, profile, warnings, input_shape)
        bits = wbits + dbits
        if profile.compiler is not None:
            mapped[i] = _compiled_mapping(layer, conn, wbits, dbits, profile, label)
            if pre is not None:
                n_ext = conn.n_pre - (layer.neurons if layer.kind == "dense_rec" else 0)
                fan_out[pre] += int(np.count_nonzero(conn.indices < n_ext))
                fan_out[i] += conn.synapses - int(np.count_nonzero(conn.indices < n_ext))
            continue
        own = np.zeros(layer.neurons, np.int64)
        for _ in range(2 if layer.kind == "dense_rec" else 1):
            cores = partition(conn, (dests[i] + own)[conn.order], bits, profile, label)
            if layer.kind == "dense_rec":
                own = _input_use(cores.inputs, conn.n_pre)[conn.n_pre - layer.neurons :]
        fan_in = np.diff(conn.indptr)
        pre_used = int(np.count_nonzero(np.bincount(conn.indices, minlength=conn.n_pre)))
        counting = lower_bounds(fan_in, pre_used, dests[i] + own, bits, profile)
        if (
            layer.kind == "dense"
            and layer.neurons <= ORDER_SEARCH_MAX_NEURONS
            and max(counting.values()) < len(cores.neurons)
        ):
            conn, cores = _try_orders(conn, cores, dests[i] + own, bits, profile, label)
        bounds = LayerBounds(counting, conn, cores, (dests[i] + own)[conn.order], bits, profile)
        n_ext = conn.n_pre - (layer.neurons if layer.kind == "dense_rec" else 0)
        external = int(np.count_nonzero(conn.indices < n_ext))
        if pre is not None:
            dests[pre] += _input_use(cores.inputs, conn.n_pre)[:n_ext]
            fan_out[pre] += external
        fan_out[i] += conn.synapses - external  # recurrent synapses leave this layer too
        core_of = np.empty(layer.neurons, np.int64)
        core_of[conn.order] = np.repeat(np.arange(len(cores.neurons)), cores.neurons)
        mapped[i] = LayerMapping(
            index=i,
            kind=layer.kind,
            neurons=layer.neurons,
            synapses=conn.synapses,
            weight_bits=wbits if conn.synapses else 0,
            delay_bits=dbits,
            core_neurons=np.asarray(cores.neurons, np.int64),
            core_input_axons=np.asarray(cores.axons, np.int64),
            core_output_axons=np.asarray(cores.out, np.int64),
            core_synapse_bits=np.asarray(cores.bits, np.int64),
            core_encoding=tuple(cores.encoding),
            lower_bounds=bounds,
            limits=_limits(profile),
            core_of=core_of,
            core_inputs=tuple(cores.inputs),
            connectivity=conn,
            out_cost=(dests[i] + own)[conn.order],
            connections=_connections(layer),
        )
        _check_recurrent_out(mapped[i], profile, label)
    result = []
    for layer in layers:
        if layer.index in mapped:
            m = mapped[layer.index]
            result.append(_with_fan_out(m, fan_out[layer.index]))
        else:
            result.append(_empty(layer.index, layer.kind, profile))
    return NetworkMapping(str(net.path), profile, tuple(result), tuple(warnings),
                          _release_cores(net, profile, sum(m.cores for m in result)))


def _compiled_mapping(
    layer: Layer, conn: Connectivity, wbits: int, dbits: int, profile: HardwareProfile,
    label: str,
) -> LayerMapping:
    """A layer placed by the compiler model, as a :class:`LayerMapping`."""
    from gradr_deploy import compiler_mapping as cm

    compiled = cm.compile_layer(layer, profile, label)
    row_core = compiled.core_of[conn.order]
    inputs = cm.core_inputs(conn.indptr, conn.indices, row_core, compiled.cores)
    use = compiled.use
    return LayerMapping(
        index=layer.index,
        kind=layer.kind,
        neurons=layer.neurons,
        synapses=conn.synapses,
        weight_bits=wbits if conn.synapses else 0,
        delay_bits=dbits,
        core_neurons=use["neurons"].astype(np.int64),
        core_input_axons=np.asarray([len(x) for x in inputs], np.int64),
        core_output_axons=use["neurons"].astype(np.int64),
        core_synapse_bits=(use["synapses"] * cm.bits_per_unit(profile)).astype(np.int64),
        core_encoding=("dense" if conn.synapses else "none",) * compiled.cores,
        lower_bounds=cm.lower_bounds(compiled, profile),
        limits=cm.limits(profile),
        core_of=compiled.core_of,
        core_inputs=inputs,
        connections=_connections(layer),
        connectivity=conn,
        compiled=compiled,
    )


def _release_cores(net: NetxNetwork, profile: HardwareProfile, selected: int) -> dict[str, int]:
    """Total cores under every release of the profile's compiler model (empty without one);
    ``selected``: the total already mapped under the profile's own release."""
    from gradr_deploy import compiler_mapping as cm

    if profile.compiler is None:
        return {}
    totals = {}
    for name in profile.compiler.releases:
        if name == profile.compiler.release.name:
            totals[name] = selected
            continue
        other = dataclasses.replace(profile, compiler=profile.compiler.with_release(name))
        try:
            totals[name] = sum(cm.compile_layer(layer, other, "").cores
                               for layer in net.layers if layer.kind in cm.PLACED_KINDS)
        except BudgetError:
            totals[name] = -1  # a neuron does not fit a core of that release
    return totals


class LayerBounds(Mapping[str, int]):
    """Per-resource lower bounds on a layer's cores, refined on first use.

    Starts from the counting bounds of :func:`lower_bounds`; where they are below the cores
    found, the first lookup runs :func:`gradr_deploy.lower_bound.refine_cores` (small layers only)
    and explains any remaining gap in :attr:`note`. Mapping callers that only need the cores
    (e.g. a planner mapping many candidate layers) never pay for it.
    """

    def __init__(
        self,
        counting: dict[str, int],
        conn: Connectivity | None = None,
        cores: _Cores | None = None,
        out_cost: np.ndarray | None = None,
        bits: int = 0,
        profile: HardwareProfile | None = None,
    ) -> None:
        self._counting = dict(counting)
        self._args: tuple[Any, ...] | None = (conn, cores, out_cost, bits, profile)
        self._refined: dict[str, int] | None = None
        self._note = ""

    def _resolve(self) -> dict[str, int]:
        if self._refined is None:
            bounds, note = self._counting, ""
            if self._args is not None and self._args[0] is not None:
                bounds, note = _refine(bounds, *self._args)
            self._refined, self._note, self._args = bounds, note, None
        return self._refined

    @property
    def note(self) -> str:
        """Why the cores found exceed the bound, with the numbers ("" when they are equal)."""
        self._resolve()
        return self._note

    def __getitem__(self, key: str) -> int:
        return self._resolve()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._resolve())

    def __len__(self) -> int:
        return len(self._resolve())

    def __repr__(self) -> str:
        return f"LayerBounds({self._resolve()!r})"


def _refine(
    bounds: dict[str, int],
    conn: Connectivity,
    cores: _Cores,
    out_cost: np.ndarray,
    bits: int,
    profile: HardwareProfile,
) -> tuple[dict[str, int], str]:
    """Counting bounds raised by :mod:`gradr_deploy.lower_bound` where they are below the cores
    found.

    Synapse memory only for layers small enough for its pair tables; returns the bounds and a
    note explaining any remaining gap.
    """
    found = len(cores.neurons)
    if max(bounds.values()) >= found:
        return bounds, ""
    stats = None
    if conn.synapses:
        stats = layer_stats(conn.indptr, conn.indices, conn.n_pre)
        refined = refine_cores(stats, bits, profile, max(bounds.values()), found)
        bounds = {r: max(v, refined.get(r, 0)) for r, v in bounds.items()}
    if max(bounds.values()) >= found:
        return bounds, ""
    return bounds, _gap_note(conn, cores, out_cost, bounds, bits, profile, stats)


def _try_orders(
    conn: Connectivity,
    cores: _Cores,
    out_all: np.ndarray,
    bits: int,
    profile: HardwareProfile,
    label: str,
) -> tuple[Connectivity, _Cores]:
    """Greedy packing is optimal for a fixed order; try two other orders and keep one that
    needs fewer cores (else the stored order).

    Orders: by the mean index of each neuron's inputs (groups neurons reading nearby inputs),
    and spectral (second singular vector of the degree-normalised synapse matrix, which groups
    neurons sharing inputs).
    """
    best = conn, cores
    for perm in (_centroid_order(conn), _spectral_order(conn)):
        if perm is None or np.array_equal(perm, np.arange(conn.n_post)):
            continue
        other = _reordered(conn, perm)
        trial = partition(other, out_all[other.order], bits, profile, label)
        if len(trial.neurons) < len(best[1].neurons):
            best = other, trial
    return best


def _reordered(conn: Connectivity, perm: np.ndarray) -> Connectivity:
    """``conn`` with its rows taken in the order ``perm`` (positions in the current order)."""
    lengths = np.diff(conn.indptr)[perm]
    indptr = np.zeros(len(perm) + 1, np.int64)
    np.cumsum(lengths, out=indptr[1:])
    offsets = np.arange(indptr[-1]) - np.repeat(indptr[:-1] - conn.indptr[perm], lengths)
    return Connectivity(indptr, conn.indices[offsets], conn.n_pre, conn.order[perm])


def _row_ids(conn: Connectivity) -> np.ndarray:
    return np.repeat(np.arange(conn.n_post), np.diff(conn.indptr))


def _centroid_order(conn: Connectivity) -> np.ndarray:
    fan_in = np.diff(conn.indptr)
    total = np.bincount(_row_ids(conn), weights=conn.indices, minlength=conn.n_post)
    return np.argsort(total / np.maximum(fan_in, 1), kind="stable")


def _spectral_order(conn: Connectivity, iterations: int = 20) -> np.ndarray | None:
    """Neurons sorted by the second left singular vector of ``D_in^-1/2 M D_out^-1/2``."""
    rows, cols = _row_ids(conn), conn.indices
    fan_in = np.diff(conn.indptr).astype(np.float64)
    fan_out = np.bincount(cols, minlength=conn.n_pre).astype(np.float64)
    if conn.n_post < 3 or not conn.synapses:
        return None
    r_in = np.where(fan_in > 0, 1 / np.sqrt(np.maximum(fan_in, 1)), 0.0)
    r_out = np.where(fan_out > 0, 1 / np.maximum(fan_out, 1), 0.0)
    top = np.sqrt(fan_in) / np.linalg.norm(np.sqrt(fan_in))
    v = np.random.default_rng(0).standard_normal(conn.n_post)
    for _ in range(iterations):
        v -= top * (top @ v)
        u = np.bincount(cols, weights=(r_in * v)[rows], minlength=conn.n_pre) * r_out
        v = r_in * np.bincount(rows, weights=u[cols], minlength=conn.n_post)
        norm = np.linalg.norm(v)
        if norm == 0:
            return None
        v /= norm
    return np.argsort(v * r_in, kind="stable")


def _gap_note(
    conn: Connectivity,
    cores: _Cores,
    out_cost: np.ndarray,
    bounds: Mapping[str, int],
    bits: int,
    profile: HardwareProfile,
    stats: LayerStats | None,
) -> str:
    """Why ``cores - 1`` cores are neither found nor excluded, with the numbers."""
    found, bound = len(cores.neurons), max(bounds.values())
    fewer = found - 1
    n = math.ceil(conn.n_post / fewer)
    cap_bits = profile.synapse_memory_bits_per_core
    cap_in, cap_out = profile.input_axons_per_core, profile.output_axons_per_core
    out_cum = np.concatenate([[0], np.cumsum(out_cost, dtype=np.int64)])
    starts = np.concatenate([[0], np.cumsum(cores.neurons)[:-1]])
    best: tuple[float, int, int, int] | None = None
    for s in np.unique(np.minimum(starts, conn.n_post - n)):
        axons, used_bits, _, _ = run_cost(conn, int(s), n, bits, profile)
        out = int(out_cum[s + n] - out_cum[s])
        worst = max(used_bits / cap_bits, axons / cap_in, out / cap_out)
        if best is None or worst < best[0]:
            best = (worst, used_bits, axons, out)
    assert best is not None
    worst, used_bits, axons, out = best
    found_text = (
        f"the best {n}-neuron run found needs {used_bits} synapse bits "
        f"({used_bits / cap_bits:.1%} of {cap_bits}), {axons} input axons (limit {cap_in}) and "
        f"{out} output axons (limit {cap_out})"
    )
    head = f"{found} cores vs lower bound {bound}: {fewer} core(s) need a core of >= {n} neurons"
    if worst <= 1:
        return (
            f"{head}, and {found_text}, so core size alone cannot exclude {fewer} cores; the "
            "bound does not decide whether all other neurons fit the remaining cores, and the "
            "packing (optimal for this neuron order) needs more"
        )
    if stats is not None and stats.refinable:
        proven = memory_lower_bound(stats, n, bits, profile)
        return (
            f"{head}; any such core needs >= {proven:.0f} synapse bits ({proven / cap_bits:.1%}, "
            f"proven) and >= {axon_lower_bound(stats, n)} input axons; {found_text}: the bound "
            "cannot decide between them"
        )
    if stats is None:
        return f"{head}; {found_text}"
    return (
        f"{head}; {found_text}; for a layer this large ({conn.n_post} neurons, {stats.axons} "
        "axons) the memory bound counts synapses at their cheapest block cost only, not stored "
        "zeros or index bits"
    )


def _connectivity(
    net: NetxNetwork, i: int, pre: int | None, profile: HardwareProfile, warnings: list[str],
    input_shape: tuple[int, ...] | None = None,
) -> tuple[Connectivity, int, int]:
    layer = net.layers[i]
    if layer.kind == "input":
        order = neuron_order(layer.shape)
        empty = np.zeros(layer.neurons + 1, np.int64)
        return Connectivity(empty, np.zeros(0, np.int32), 0, order), 0, 0
    if layer.kind == "conv":
        if pre is None and input_shape is None:
            raise InputError(
                f"{net.path}: conv layer {i} is the first layer; its input size is unknown. "
                "Export the network with an input layer (slayer.block.*.Input)"
            )
        # netx's input_shape is (x, y, f); stored shapes are (f, y, x)
        pre_shape = tuple(reversed(input_shape)) if pre is None else net.layers[pre].shape
        geometry, kernel = layer.conv, layer.kernel()
        if geometry is None:
            raise InputError(f"{net.path}: conv layer {i} has no geometry")
        weights = kernel
        conn = conv_connectivity(
            _nonzero(kernel),
            pre_shape,  # type: ignore[arg-type]
            layer.shape,  # type: ignore[arg-type]
            geometry.stride,
            geometry.padding,
            geometry.dilation,
            geometry.groups,
        )
    else:
        weights = layer.weight_matrix()
        if layer.kind == "dense_rec":
            rec = np.asarray(layer.weight_rec).reshape(layer.neurons, layer.neurons)
            weights = np.hstack([weights, rec])
        conn = dense_connectivity(_nonzero(weights))
    fmt = weight_format(weights)
    wbits = min(max(fmt.bits, 1), profile.max_weight_bits)
    if fmt.bits > profile.max_weight_bits:
        warnings.append(
            f"layer {i}: netx derives {fmt.bits}-bit weights; {profile.name} stores at most "
            f"{profile.max_weight_bits} (precision is lost on hardware)"
        )
    dbits = min(delay_bits(layer.delay), profile.max_delay_bits)
    return conn, wbits, dbits


def _connections(layer: Layer) -> int:
    """Connections a dense (non-spiking) implementation computes: weights incl. zeros."""
    if layer.kind == "conv" and layer.conv is not None:
        ky, kx = layer.conv.kernel
        return layer.neurons * (layer.conv.in_channels // layer.conv.groups) * ky * kx
    if layer.features is not None:
        n_in, n_out = layer.features
        return n_out * (n_in + (n_out if layer.kind == "dense_rec" else 0))
    return 0


def _input_use(inputs: list[np.ndarray], n_pre: int) -> np.ndarray:
    """How many cores use each presynaptic neuron as an input axon."""
    if not inputs:
        return np.zeros(n_pre, np.int64)
    return np.bincount(np.concatenate(inputs), minlength=n_pre).astype(np.int64)


def _limits(profile: HardwareProfile) -> dict[str, int]:
    return {
        "neurons": profile.neurons_per_core,
        "input_axons": profile.input_axons_per_core,
        "output_axons": profile.output_axons_per_core,
        "synapse_memory": profile.synapse_memory_bits_per_core,
    }


def _check_recurrent_out(m: LayerMapping, profile: HardwareProfile, label: str) -> None:
    worst = int(m.core_output_axons.max()) if m.cores else 0
    if worst > profile.output_axons_per_core:
        raise BudgetError(
            f"{label}: recurrent connections need {worst} output axons on one core (limit "
            f"{profile.output_axons_per_core}); prune the recurrent weights"
        )


def _with_fan_out(m: LayerMapping, fan_out: int) -> LayerMapping:
    return dataclasses.replace(m, fan_out_synapses=fan_out)


def _empty(index: int, kind: str, profile: HardwareProfile) -> LayerMapping:
    none = np.zeros(0, np.int64)
    return LayerMapping(
        index, kind, 0, 0, 0, 0, none, none, none, none, (), dict.fromkeys(RESOURCES, 0),
        _limits(profile), none, (),
    )  # fmt: skip
