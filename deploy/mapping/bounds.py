"""Proven lower bounds on the cores a layer needs, and why the cores found may exceed them.

:func:`lower_bounds` are counting bounds, cheap enough for every mapping. On request
(:meth:`LayerBounds.refine`, ``map_network(..., refine_bounds=True)``, ``gradr-lava map
--refine-bounds``) :mod:`gradr_deploy.mapping.lower_bound` raises the synapse-memory bound of a
small layer where the counting bounds are below the cores found, and :attr:`LayerBounds.note`
says, with the numbers, why any gap remains.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from gradr_deploy.hardware.profile import HardwareProfile
from gradr_deploy.mapping.cost import envelope
from gradr_deploy.mapping.layer_stats import LayerStats, layer_stats
from gradr_deploy.mapping.lower_bound import axon_lower_bound, memory_lower_bound, refine_cores
from gradr_deploy.mapping.partition import CoreRuns, run_cost
from gradr_deploy.mapping.result import RESOURCES, Connectivity


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



class LayerBounds(Mapping[str, int]):
    """Per-resource lower bounds on a layer's cores: counting bounds, refined on request.

    Starts from the counting bounds of :func:`lower_bounds`. :meth:`refine` (small layers only)
    runs :func:`gradr_deploy.mapping.lower_bound.refine_cores` where they are below the cores
    found and explains any remaining gap in :attr:`note`; it is never run implicitly, so
    mapping callers that only need the cores (e.g. a planner mapping many candidate layers) and
    reports that do not ask for it never pay for it.
    """

    def __init__(
        self,
        counting: dict[str, int],
        conn: Connectivity | None = None,
        cores: CoreRuns | None = None,
        out_cost: np.ndarray | None = None,
        bits: int = 0,
        profile: HardwareProfile | None = None,
    ) -> None:
        self._bounds = dict(counting)
        self._args: tuple[Any, ...] | None = (conn, cores, out_cost, bits, profile)
        self._refined = False
        self._note = ""

    def refine(self) -> LayerBounds:
        """Raise the bounds by :mod:`gradr_deploy.mapping.lower_bound` (once) and return self."""
        if not self._refined:
            if self._args is not None and self._args[0] is not None:
                self._bounds, self._note = _refine(self._bounds, *self._args)
            self._refined, self._args = True, None
        return self

    @property
    def refined(self) -> bool:
        """Whether :meth:`refine` has run (else these are the counting bounds)."""
        return self._refined

    @property
    def note(self) -> str:
        """After :meth:`refine`: why the cores found exceed the bound, with the numbers ("" when
        they are equal, or before refinement)."""
        return self._note

    def __getitem__(self, key: str) -> int:
        return self._bounds[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._bounds)

    def __len__(self) -> int:
        return len(self._bounds)

    def __repr__(self) -> str:
        state = "refined" if self._refined else "counting"
        return f"LayerBounds({self._bounds!r}, {state})"


def _refine(
    bounds: dict[str, int],
    conn: Connectivity,
    cores: CoreRuns,
    out_cost: np.ndarray,
    bits: int,
    profile: HardwareProfile,
) -> tuple[dict[str, int], str]:
    """Counting bounds raised by :mod:`gradr_deploy.mapping.lower_bound` where they are below
    the cores found.

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
    return bounds, gap_note(conn, cores, out_cost, bounds, bits, profile, stats)


def gap_note(
    conn: Connectivity,
    cores: CoreRuns,
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

