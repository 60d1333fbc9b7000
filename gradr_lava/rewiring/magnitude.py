"""Gradual magnitude pruning with fine-tuning (Zhu & Gupta 2017), the ANN-style baseline.

Every rewired weight is w = v * m (:class:`~.parametrization.MaskedWeight`), so a pruned weight
is an exact 0 in the forward pass and in the export, and gets no gradient. Every ``prune_every``
steps of the cubic ramp (:mod:`.schedule`, from connectivity 1 to the target) each layer keeps
its round(c(t) * numel) largest |v| among the still-unpruned weights; pruning is permanent.
After the ramp the mask is fixed and training goes on (fine-tuning).

``idle_first=True`` (not in Zhu & Gupta) first drops the synapses that cannot change an output
spike: those into hidden neurons that have lost every outgoing synapse, and those out of neurons
that have lost every input (:mod:`.idle`). Plain magnitude pruning
keeps them as long as they are large, and they take a share of the budget (13% of layer 0's
at 1.3% on MNIST 2FC, docs/results.md section 6) that can go to live neurons instead.
"""

from __future__ import annotations

from typing import Any

import torch

from gradr_lava.rewiring.base import LayerState, RewiringPruner
from gradr_lava.rewiring.errors import RewiringError
from gradr_lava.rewiring.idle import check_dense_chain, useful_synapses
from gradr_lava.rewiring.layers import PrunableLayer, Targets
from gradr_lava.rewiring.parametrization import MaskedWeight, register
from gradr_lava.rewiring.schedule import CubicSchedule, target_count


def keep_largest(value: torch.Tensor, mask: torch.Tensor, count: int,
                 useful: torch.Tensor | None = None) -> torch.Tensor:
    """New 0/1 mask keeping the ``count`` largest |value| among entries where ``mask`` is 1.

    Already-pruned entries are never chosen (score -1 < any |v|), so pruning is permanent; if
    fewer than ``count`` are unpruned, ``mask`` is returned unchanged. With ``useful`` (a
    boolean tensor of ``mask``'s shape), unpruned entries where it is False rank below every
    other unpruned entry (score -0.5): they are dropped first.
    """
    if int(torch.count_nonzero(mask)) <= count:
        return mask.clone()
    score = value.abs()
    if useful is not None:
        score = torch.where(useful, score, torch.full_like(value, -0.5))
    score = torch.where(mask > 0, score, torch.full_like(value, -1.0)).flatten()
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
        idle_first: at every mask update, drop the synapses that cannot change an output spike
            before any other (see the module docstring). Needs the prunable layers, in
            registration order, to be the network's chain of dense layers (each layer's inputs
            are the previous layer's neurons; the last is the output).
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
        idle_first: bool = False,
    ) -> None:
        super().__init__(target_connectivity, seed)
        if not isinstance(idle_first, bool):
            raise RewiringError(f"idle_first must be True or False, got {idle_first!r}")
        self._idle_first = idle_first
        self._schedule = CubicSchedule.from_fractions(total_steps, *schedule)
        ramp = self._schedule.end - self._schedule.start
        if prune_every is None:
            prune_every = max(1, round(ramp / 100))
        if not isinstance(prune_every, int) or prune_every < 1:
            raise RewiringError(f"prune_every must be a positive integer, got {prune_every!r}")
        self._every = prune_every

    def _check_targets(self, targets: list[float], layers: list[PrunableLayer]) -> None:
        if self._idle_first:
            check_dense_chain(layers)

    def _useful(self) -> list[torch.Tensor]:
        """Per layer (all of them, in order), where a synapse can change an output spike."""
        present = [(state.param.mask if state.rewired else state.layer.synapse.weight) != 0
                   for state in self._layers]
        return useful_synapses(present, [state.layer for state in self._layers])

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
        useful = self._useful() if update and self._idle_first else None
        for index, state in enumerate(self._layers):
            if not state.rewired:
                continue
            self._group_of(optimizer, state, forbid_weight_decay=False)
            value, mask = state.hidden, state.param.mask
            if update:
                count = target_count(self._target_now(state), value.numel())
                mask.copy_(keep_largest(value, mask, count,
                                        None if useful is None else useful[index]))
            # Keep pruned v at 0: the optimizer's momentum or weight decay may move them, and a
            # clean v makes the state (and a later unmasking by anyone) unambiguous.
            value.mul_(mask)

    def _layer_extra(self, state: LayerState) -> dict[str, Any]:
        mask = state.param.mask
        return {"scheduled_connectivity": self._target_now(state),
                "kept": int(torch.count_nonzero(mask))}
