"""Gradual magnitude pruning with fine-tuning (Zhu & Gupta 2017), the ANN-style baseline.

Every rewired weight is w = v * m (:class:`~.parametrization.MaskedWeight`), so a pruned weight
is an exact 0 in the forward pass and in the export, and gets no gradient. Every ``prune_every``
steps of the cubic ramp (:mod:`.schedule`, from connectivity 1 to the target) each layer keeps
its round(c(t) * numel) largest |v| among the still-unpruned weights; pruning is permanent.
After the ramp the mask is fixed and training goes on (fine-tuning).
"""

from __future__ import annotations

from typing import Any

import torch

from gradr_lava.rewiring.base import LayerState, RewiringPruner
from gradr_lava.rewiring.errors import RewiringError
from gradr_lava.rewiring.layers import PrunableLayer, Targets
from gradr_lava.rewiring.parametrization import MaskedWeight, register
from gradr_lava.rewiring.schedule import CubicSchedule, target_count


def keep_largest(value: torch.Tensor, mask: torch.Tensor, count: int) -> torch.Tensor:
    """New 0/1 mask keeping the ``count`` largest |value| among entries where ``mask`` is 1.

    Already-pruned entries are never chosen (score -1 < any |v|), so pruning is permanent; if
    fewer than ``count`` are unpruned, ``mask`` is returned unchanged.
    """
    if int(torch.count_nonzero(mask)) <= count:
        return mask.clone()
    score = torch.where(mask > 0, value.abs(), torch.full_like(value, -1.0)).flatten()
    keep = torch.zeros_like(score)
    keep[torch.topk(score, count, sorted=False).indices] = 1.0
    return keep.reshape(mask.shape)


class GradualMagnitude(RewiringPruner):
    """Zhu & Gupta gradual magnitude pruning. Build it with ``make_pruner("magnitude", ...)``.

    Args:
        target_connectivity: final connectivity per layer; layers at 1.0 are not pruned.
        total_steps: optimizer steps of the whole training.
        schedule: (start, end) of the ramp as fractions of ``total_steps``; fine-tuning after.
        prune_every: steps between mask updates (Zhu & Gupta's Delta t); None: about 100
            updates over the ramp.
        seed: unused by this method's math (pruning is deterministic); kept for the interface.
    """

    method = "magnitude"

    def __init__(
        self,
        target_connectivity: Targets,
        *,
        total_steps: int,
        schedule: tuple[float, float] = (0.0, 0.75),
        prune_every: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(target_connectivity, seed)
        self._schedule = CubicSchedule.from_fractions(total_steps, *schedule)
        ramp = self._schedule.end - self._schedule.start
        if prune_every is None:
            prune_every = max(1, round(ramp / 100))
        if not isinstance(prune_every, int) or prune_every < 1:
            raise RewiringError(f"prune_every must be a positive integer, got {prune_every!r}")
        self._every = prune_every

    def _attach_layer(self, layer: PrunableLayer, target: float) -> None:
        register(layer.synapse, MaskedWeight(torch.ones_like(layer.synapse.weight.detach())))

    def _is_update_step(self) -> bool:
        start, end = self._schedule.start, self._schedule.end
        return start < self._step <= end and (
            (self._step - start) % self._every == 0 or self._step == end
        )

    def _target_now(self, state: LayerState) -> float:
        return self._schedule.connectivity(self._step, 1.0, state.target)

    def _rewire(self, optimizer: torch.optim.Optimizer, lr: float | None) -> None:
        update = self._is_update_step()
        for state in self.rewired:
            self._group_of(optimizer, state, forbid_weight_decay=False)
            value, mask = state.hidden, state.param.mask
            if update:
                count = target_count(self._target_now(state), value.numel())
                mask.copy_(keep_largest(value, mask, count))
            # Keep pruned v at 0: the optimizer's momentum or weight decay may move them, and a
            # clean v makes the state (and a later unmasking by anyone) unambiguous.
            value.mul_(mask)

    def _layer_extra(self, state: LayerState) -> dict[str, Any]:
        mask = state.param.mask
        return {"scheduled_connectivity": self._target_now(state),
                "kept": int(torch.count_nonzero(mask))}
