"""STDS, the state transition of dendritic spines (Chen et al., ICML 2022): Grad R's successor.

Every rewired weight is w = sign(theta) * relu(|theta| - d) (:class:`~.parametrization.
SoftThresholdWeight`): a soft threshold ``d`` on a theta whose sign is free. The backward treats
the relu as the identity (the authors' ``stmod``, their "pseudo ReLU"), so dL/dtheta = dL/dw for
every connection, pruned ones included: a connection below the threshold (a "filopodium", in
the paper's picture) keeps learning and comes back when |theta| outgrows d, with either sign.
Grad R, by contrast, fixes each connection's sign and moves theta itself.

The threshold. The authors grow one global ``flat_width`` from 0 on a sine (or linear) ramp
over training and get whatever sparsity that gives. Here, so that ``target_connectivity`` alone
reaches its value (as with every method of this package), ``d`` is chosen per layer after each
optimizer step: the smallest d >= 0 that leaves round(c(t) * numel) weights nonzero, c(t) the
cubic schedule (:mod:`.schedule`) from the layer's initial connectivity to its target. By
default (``count="deployed"``) a weight counts when it stays nonzero in 8 bits (|w| > half the
quantization step: what the chip gets), so the threshold, not the later rounding, decides the
deployed connectivity; ``count="float"`` counts float nonzeros. d sits in the parametrization's
buffer, so a checkpoint of the model holds it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from gradr_deploy.errors import option
from gradr_lava.rewiring.base import LayerState, RewiringPruner
from gradr_lava.rewiring.errors import RewiringError
from gradr_lava.rewiring.gradr import deployed_threshold
from gradr_lava.rewiring.layers import PrunableLayer, Targets
from gradr_lava.rewiring.parametrization import SoftThresholdWeight, register
from gradr_lava.rewiring.schedule import CubicSchedule, target_count

COUNTS = ("deployed", "float")


def soft_threshold(magnitudes: torch.Tensor, count: int, margin: float) -> float:
    """The smallest d >= 0 with exactly ``count`` entries of ``magnitudes - d`` above ``margin``.

    With |theta| sorted descending as v_1 >= v_2 >= ...: d = v_{count+1} - margin, or 0 when
    fewer than ``count`` exceed ``margin`` even at d = 0 (a threshold cannot add connections).
    Ties across the boundary (v_count == v_{count+1}) leave fewer than ``count``.

    Args:
        magnitudes: |theta| of one layer (any shape).
        count: how many weights should stay nonzero, 0 <= count <= numel.
        margin: what |w| must exceed to count (0, or half the 8-bit step), weight units.
    """
    flat = magnitudes.detach().flatten()
    if count >= flat.numel():
        return 0.0
    # v_{count+1} is the (numel - count)-th smallest (kthvalue is 1-based)
    boundary = float(torch.kthvalue(flat, flat.numel() - count).values)
    return max(0.0, boundary - margin)


class STDS(RewiringPruner):
    """STDS pruner with a scheduled threshold. Build it with ``make_pruner("stds", ...)``.

    Args:
        target_connectivity: final connectivity per layer (one value or a mapping); layers at
            1.0 (or missing from a mapping) are not rewired.
        total_steps: optimizer steps of the whole training.
        schedule: (start, end) of the cubic ramp as fractions of ``total_steps``.
        count: ``"deployed"`` (default: weights nonzero after 8-bit rounding) or ``"float"``.
        seed: unused by this method's math; kept for the interface.
    """

    method = "stds"

    def __init__(
        self,
        target_connectivity: Targets,
        *,
        total_steps: int,
        schedule: tuple[float, float] = (0.0, 0.75),
        count: str = "deployed",
        seed: int = 0,
    ) -> None:
        super().__init__(target_connectivity, seed)
        if count not in COUNTS:
            raise RewiringError(f"STDS {option('count')} must be one of {COUNTS}, got {count!r}")
        self.count = count
        self._schedule = CubicSchedule.from_fractions(total_steps, *schedule)
        self._initial: dict[int, float] = {}

    def _attach_layer(self, layer: PrunableLayer, target: float) -> None:
        weight = layer.synapse.weight.detach()
        threshold = torch.zeros((), dtype=weight.dtype, device=weight.device)
        register(layer.synapse, SoftThresholdWeight(threshold))
        self._initial[layer.index] = float(torch.count_nonzero(weight)) / weight.numel()

    def _target_now(self, state: LayerState) -> float:
        return self._schedule.connectivity(self._step, self._initial[state.layer.index],
                                           state.target)

    def _rewire(self, optimizer: torch.optim.Optimizer, lr: float | None) -> None:
        for state in self.rewired:
            self._group_of(optimizer, state, forbid_weight_decay=True)
            theta = state.hidden
            margin = deployed_threshold(state.layer) if self.count == "deployed" else 0.0
            count = target_count(self._target_now(state), theta.numel())
            state.param.threshold.fill_(soft_threshold(theta.abs(), count, margin))

    def _layer_extra(self, state: LayerState) -> dict[str, Any]:
        return {"count": self.count, "scheduled_connectivity": self._target_now(state),
                "threshold": float(state.param.threshold)}

    def _extra_state(self) -> dict[str, Any]:
        return {"initial": dict(self._initial)}

    def _load_extra_state(self, extra: Mapping[str, Any]) -> None:
        self._initial = {int(k): float(v) for k, v in extra["initial"].items()}
