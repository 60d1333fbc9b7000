"""Core budget: a pure utilization report and a check that raises with a concrete fix.

Like nengo-loihi's ``validate``: :func:`utilization` only reports, :func:`check_budget` raises
:class:`~gradr_deploy.errors.BudgetError` (exit code 3) naming the layers that consume most, the
resource that limits them, the need and the limit, and suggestions computed by re-running the
partitioner on the layer with fewer synapses (random pruning) or fewer weight bits.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gradr_deploy.errors import BudgetError, option
from gradr_deploy.hardware.profile import HardwareProfile
from gradr_deploy.mapping import Connectivity, LayerMapping, NetworkMapping, partition

_UNITS = {"neurons": "neurons", "input_axons": "axons", "output_axons": "axons"}
_TRIES = 5  # candidate fixes tried per suggestion (each verified by re-partitioning)
_REFINE = 2  # bisection steps refining a verified pruning fraction
_TOP_LAYERS = 2  # layers for which fixes are computed
_SEED = 0


def available_cores(
    mapping: NetworkMapping, max_cores: int | None = None, chips: int | None = None
) -> int:
    """Cores the budget allows: the tighter of ``max_cores`` and ``chips * cores_per_chip``.

    Without either, the profile's ``chips`` (``override={"chips": N}``) decides.
    """
    hardware = mapping.hardware
    by_chips = hardware.cores_per_chip * (chips if chips is not None else hardware.chips)
    if max_cores is None:
        return by_chips
    return min(max_cores, by_chips) if chips is not None else max_cores


def utilization(
    mapping: NetworkMapping, max_cores: int | None = None, chips: int | None = None
) -> dict[str, Any]:
    """Report, never raise: cores used vs available and per-layer resource use.

    Returns a JSON-ready dict: ``total_cores``, ``available_cores``, ``chips_needed``,
    ``fits``, and ``layers``: per layer ``cores``, ``lower_bound_cores``, ``limiting_resource``
    and ``utilization`` (per resource, used / limit as ``max`` and ``mean`` over its cores).
    """
    available = available_cores(mapping, max_cores, chips)
    return {
        "hardware": mapping.hardware.name,
        "total_cores": mapping.total_cores,
        "available_cores": available,
        "chips_needed": mapping.chips,
        "fits": mapping.total_cores <= available,
        "layers": [
            {
                "index": layer.index,
                "type": layer.kind,
                "cores": layer.cores,
                "lower_bound_cores": layer.lower_bound,
                "limiting_resource": layer.limiting,
                "utilization": layer.utilization(),
            }
            for layer in mapping.layers
            if layer.cores
        ],
    }


def check_budget(
    mapping: NetworkMapping, max_cores: int | None = None, chips: int | None = None
) -> None:
    """Raise :class:`BudgetError` when the mapping needs more cores than the budget allows.

    The message names up to three layers using the most cores, each with its limiting
    resource (need and per-core limit) and, where the cost model finds one, a fix that alone
    would bring the network within budget: "prune layer 2 to <= 31% connectivity" or "use
    <= 3-bit weights in layer 2"; otherwise the chips the network needs.
    """
    available = available_cores(mapping, max_cores, chips)
    total = mapping.total_cores
    if total <= available:
        return
    hw = mapping.hardware
    excess = total - available
    lines = [
        f"{mapping.source}: needs {total} cores but the budget allows {available} "
        f"({hw.name}, {hw.cores_per_chip} cores per chip); {excess} too many."
    ]
    top = sorted((m for m in mapping.layers if m.cores), key=lambda m: -m.cores)[:3]
    for layer in top:
        lines.append("  " + describe_layer(layer))
    suggestions = [
        s for layer in top[:_TOP_LAYERS] for s in suggest(layer, layer.cores - excess, hw)
    ]
    chips_needed = math.ceil(total / hw.cores_per_chip)
    if chips_needed > (chips if chips is not None else hw.chips):
        suggestions.append(f"use {chips_needed} chips "
                           f"({option('override', {'chips': chips_needed})})")
    else:
        suggestions.append(f"allow {total} cores ({chips_needed} chip(s) of {hw.name})")
    lines.append("Fixes (each alone would do): " + "; or ".join(suggestions))
    hint = _compiler_hint(mapping)
    if hint:
        lines.append("Note: " + hint)
    raise BudgetError("\n".join(lines))


def _compiler_hint(mapping: NetworkMapping) -> str:
    compiler = mapping.hardware.compiler
    if compiler is None:
        return ""
    best = mapping.best_partition_cores
    text = (f"Intel's compiler (model, release {compiler.release.name}) sizes its neuron groups "
            f"itself; a partition under the same cost model needs {best} cores")
    if compiler.count_zero_weights:
        text += (", and as dense layers store zero weights too, pruning alone does not reduce "
                 "cores: use fewer neurons, or sparse storage (netx sparse_fc_layer=True; "
                 f"{option('override', {'count_zero_weights': 'false'})} models it, assumed)")
    return text


def describe_layer(layer: LayerMapping) -> str:
    """'layer 2 (conv): 30 cores, limited by synapse_memory: 27.3 Mbit needed, 1.0 Mbit/core'."""
    resource = layer.limiting
    need = int(layer.used(resource).sum())
    limit = layer.limits[resource]
    if resource == "synapse_memory":
        amount = f"{need / 2**20:.2f} Mibit needed, {limit / 2**20:.2f} Mibit per core"
    else:
        amount = f"{need} {_UNITS[resource]} needed, {limit} per core"
    return (
        f"layer {layer.index} ({layer.kind}): {layer.cores} cores (lower bound "
        f"{layer.lower_bound}), limited by {resource}: {amount}"
    )


def suggest(layer: LayerMapping, target: int, profile: HardwareProfile) -> list[str]:
    """Concrete fixes that map ``layer`` on at most ``target`` cores, from the cost model.

    Tries (1) random pruning of the layer's synapses, (2) fewer weight bits. Each candidate
    starts from a proportional estimate and is verified by re-partitioning the layer (same
    per-neuron output-axon costs); only verified fixes are returned.
    """
    conn, out_cost = layer.connectivity, layer.out_cost
    if layer.compiled is not None:
        return []  # the compiler model sizes groups itself: see _compiler_hint
    if target < 1 or conn is None or out_cost is None or conn.synapses == 0:
        return []
    if target < max(layer.lower_bounds["neurons"], layer.lower_bounds["output_axons"]):
        return []  # its neurons (or the next layer's fan-in) alone need more cores
    found = []
    keep = _keep_fraction(layer, conn, out_cost, target, profile)
    if keep is not None:
        density = conn.synapses / (conn.n_post * max(_possible_fan_in(layer, conn), 1))
        found.append(
            f"prune layer {layer.index} to <= {100 * density * keep:.1f}% connectivity "
            f"(now {100 * density:.1f}%: keep <= {100 * keep:.0f}% of its "
            f"{layer.synapses} synapses)"
        )
    guess = min(layer.weight_bits - 1, int(layer.weight_bits * target / layer.cores))
    for bits in range(guess, max(guess - _TRIES, 0), -1):
        if _cores(layer, conn, out_cost, bits + layer.delay_bits, profile) <= target:
            found.append(
                f"use <= {bits}-bit weights in layer {layer.index} (now {layer.weight_bits})"
            )
            break
    return found


def _possible_fan_in(layer: LayerMapping, conn: Connectivity) -> int:
    """Synapses per neuron of the unpruned layer: inputs (dense) or kernel size (conv)."""
    if layer.kind == "conv":
        return int(np.diff(conn.indptr).max()) if conn.n_post else 0
    return conn.n_pre


def _cores(
    layer: LayerMapping,
    conn: Connectivity,
    out_cost: np.ndarray,
    bits: int,
    profile: HardwareProfile,
) -> float:
    """Cores the partitioner needs for ``conn``; infinity when a neuron cannot fit at all."""
    try:
        return len(partition(conn, out_cost, bits, profile, f"layer {layer.index}").neurons)
    except BudgetError:
        return math.inf


def _keep_fraction(
    layer: LayerMapping,
    conn: Connectivity,
    out_cost: np.ndarray,
    target: int,
    profile: HardwareProfile,
) -> float | None:
    """A verified fraction of synapses (random, fixed seed) to keep for <= ``target`` cores."""
    score = np.random.default_rng(_SEED).random(conn.synapses)
    bits = layer.weight_bits + layer.delay_bits

    def fits(keep: float) -> bool:
        return _cores(layer, _pruned(conn, score, keep), out_cost, bits, profile) <= target

    failed, keep = 1.0, 0.98 * target / layer.cores
    for _ in range(_TRIES):
        if fits(keep):
            for _ in range(_REFINE):  # bisect between the last failure and this success
                middle = (keep + failed) / 2
                keep, failed = (middle, failed) if fits(middle) else (keep, middle)
            return keep
        failed, keep = keep, keep * 0.6
    return None


def _pruned(conn: Connectivity, score: np.ndarray, keep: float) -> Connectivity:
    """``conn`` with the synapses whose random score is >= ``keep`` removed."""
    kept = score < keep
    rows = np.repeat(np.arange(conn.n_post), np.diff(conn.indptr))
    indptr = np.zeros_like(conn.indptr)
    np.cumsum(np.bincount(rows[kept], minlength=conn.n_post), out=indptr[1:])
    return Connectivity(indptr, conn.indices[kept], conn.n_pre, conn.order)
