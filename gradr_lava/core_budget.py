"""Per-layer connectivity targets that make a network fit a Loihi core budget.

The cost model is the mapper's own (:func:`gradr_deploy.mapping.map_network`): for each prunable
layer the planner maps synthetic layers of the same shape whose weights are random 8-bit values
with a random connectivity ``c``, on a grid of ``c``, and records the cores each needs. That gives
``c_max(layer, k)``, the highest connectivity at which the layer fits on ``k`` cores.

Splitting the budget. Every layer first gets the fewest cores it can have at all (the cores
at the grid's lowest connectivity). Each remaining core goes, one at a time, to the layer whose
kept connections grow most in relative terms, ``log c_max(l, k_l + 1) - log c_max(l, k_l)``.
This maximises the sum of log-connectivities (the geometric mean), so no layer is starved to
feed another: a small layer (the 800 x 10 readout) reaches 100% on its single core while a
wide layer (784 x 800) takes most of the budget at lower connectivity. Layers thus get
different rates according to their fan-in and size; a uniform rate is the special case the
benchmark compares against (:func:`uniform_targets`).

A safety margin (default 0.97) scales every target down, because trained weights are not
uniformly random: neurons with more than the average fan-in can cost a core more. The run ends
with a real mapping of the exported file, which is the verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gradr_deploy.errors import InputError, option
from gradr_deploy.hardware.profile import HardwareProfile, load_profile
from gradr_deploy.mapping import map_network
from gradr_deploy.netx import dense_network

GRID = tuple(np.unique(np.concatenate([np.geomspace(0.002, 0.1, 30), np.linspace(0.1, 1, 46)])))


@dataclass(frozen=True)
class LayerPlan:
    index: int  # prunable layer number (gradr_lava.rewiring's layer index)
    shape: tuple[int, int]  # (out, in)
    cores: int  # cores planned for this layer
    target_connectivity: float  # nonzero fraction the layer is trained to

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "shape": list(self.shape), "cores": self.cores,
                "target_connectivity": self.target_connectivity}


@dataclass(frozen=True)
class BudgetPlan:
    hardware: str
    budget_cores: int
    allocation: str  # "budget-aware" or "uniform"
    layers: tuple[LayerPlan, ...]
    margin: float
    notes: tuple[str, ...] = field(default=())

    @property
    def planned_cores(self) -> int:
        return sum(layer.cores for layer in self.layers)

    @property
    def targets(self) -> dict[int, float]:
        return {layer.index: layer.target_connectivity for layer in self.layers}

    def to_dict(self) -> dict[str, Any]:
        return {"hardware": self.hardware, "budget_cores": self.budget_cores,
                "allocation": self.allocation, "planned_cores": self.planned_cores,
                "margin": self.margin, "layers": [layer.to_dict() for layer in self.layers],
                "notes": list(self.notes)}


def synthetic_weights(shape: tuple[int, int], connectivity: float,
                      rng: np.random.Generator) -> np.ndarray:
    """``(out, in)`` exported-style weights (even integers in [-256, 254], full 8-bit width)
    with each connection present with probability ``connectivity``."""
    mask = rng.random(shape) < connectivity
    values = rng.choice(np.array([-256, -130, -66, 66, 130, 254]), size=shape)
    return np.where(mask, values, 0).astype(np.float32)


def cores_curve(shape: tuple[int, int], profile: HardwareProfile, seed: int = 0) -> np.ndarray:
    """Cores the mapper needs for a ``(out, in)`` dense layer at each connectivity of GRID."""
    rng = np.random.default_rng(seed)
    cores = []
    for connectivity in GRID:
        network = dense_network([synthetic_weights(shape, connectivity, rng)], input_layer=False)
        cores.append(map_network(network, profile).layers[0].cores)
    return np.maximum.accumulate(np.array(cores))  # monotone: more synapses never cost less


def _zero_weight_hint(profile: HardwareProfile) -> str:
    """Why pruning cannot help on a compiler model that stores zero weights, and the way out."""
    compiler = profile.compiler
    if compiler is None or not compiler.count_zero_weights:
        return ""
    return (f". On {profile.name}, Intel's compiler (model, release {compiler.release.name}) "
            "stores every weight slot of a dense layer, zeros included, so pruning alone does "
            "not reduce its cores; to plan for sparse storage (netx sparse_fc_layer=True, "
            f"assumed, see docs/mapping.md) pass "
            f"{option('override', {'count_zero_weights': 'false'})}")


def _max_connectivity(curve: np.ndarray, cores: int) -> float:
    fits = np.flatnonzero(curve <= cores)
    return float(GRID[fits[-1]]) if len(fits) else 0.0


def _plan(layers: list[LayerPlan], profile: HardwareProfile, budget: int, allocation: str,
          margin: float, notes: list[str]) -> BudgetPlan:
    final = tuple(
        LayerPlan(p.index, p.shape, p.cores,
                  1.0 if p.target_connectivity >= 1.0 else p.target_connectivity * margin)
        for p in layers
    )
    return BudgetPlan(profile.name, budget, allocation, final, margin, tuple(notes))


def plan_budget(
    shapes: list[tuple[int, int]], budget_cores: int, hardware: str | Path = "loihi2",
    overrides: dict[str, str] | None = None, margin: float = 0.97, seed: int = 0,
) -> BudgetPlan:
    """Budget-aware per-layer targets (see the module docstring).

    Args:
        shapes: ``(out, in)`` of each prunable dense layer, in order.
        budget_cores: cores the whole network may use.
        hardware: profile name or TOML path; ``overrides`` as for ``gradr-lava map --override``.
        margin: factor applied to every target below 100%.

    Raises:
        InputError: the budget is below the fewest cores the layers can have at all.
    """
    profile = load_profile(hardware, overrides)
    curves = [cores_curve(shape, profile, seed) for shape in shapes]
    cores = [int(curve[0]) for curve in curves]
    if sum(cores) > budget_cores:
        raise InputError(
            f"{option('fit_cores', budget_cores)}: even at {100 * GRID[0]:.1f}% connectivity "
            f"the layers need {sum(cores)} cores on {profile.name} ({cores} per layer): allow "
            f"at least {sum(cores)} cores{_zero_weight_hint(profile)}"
        )
    while sum(cores) < budget_cores:
        gains = []
        for curve, k in zip(curves, cores, strict=True):
            now, more = _max_connectivity(curve, k), _max_connectivity(curve, k + 1)
            gains.append(math.log(more / now) if now < 1.0 and more > now else 0.0)
        best = int(np.argmax(gains))
        if gains[best] <= 0.0:
            break  # every layer is at 100% or cannot use another core
        cores[best] += 1
    notes = []
    if sum(cores) < budget_cores:
        notes.append(f"the network needs only {sum(cores)} of {budget_cores} cores")
    layers = [LayerPlan(i, shape, k, _max_connectivity(curve, k))
              for i, (shape, curve, k) in enumerate(zip(shapes, curves, cores, strict=True))]
    return _plan(layers, profile, budget_cores, "budget-aware", margin, notes)


def uniform_targets(
    shapes: list[tuple[int, int]], budget_cores: int, hardware: str | Path = "loihi2",
    overrides: dict[str, str] | None = None, margin: float = 0.97, seed: int = 0,
) -> BudgetPlan:
    """The baseline: one connectivity for every layer, the highest that fits the budget."""
    profile = load_profile(hardware, overrides)
    curves = [cores_curve(shape, profile, seed) for shape in shapes]
    totals = np.sum(curves, axis=0)
    fits = np.flatnonzero(totals <= budget_cores)
    if not len(fits):
        raise InputError(f"no uniform connectivity fits {budget_cores} cores on {profile.name}"
                         f"{_zero_weight_hint(profile)}")
    c = float(GRID[fits[-1]])
    layers = [LayerPlan(i, shape, int(curve[fits[-1]]), c)
              for i, (shape, curve) in enumerate(zip(shapes, curves, strict=True))]
    return _plan(layers, profile, budget_cores, "uniform", margin, [])
