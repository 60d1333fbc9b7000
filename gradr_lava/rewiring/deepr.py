"""Deep R (Bellec et al., ICLR 2018) and soft Deep R, the rewiring baselines of the Grad R paper.

Every rewired weight is w = s * relu(theta) * a (:class:`~.parametrization.DeepRWeight`), with
the true gradient: only active connections (a = 1, theta > 0) learn from the loss. After each
optimizer step, with eta the learning rate and T the temperature:

* hard Deep R: active thetas get theta <- theta - eta * l1 + sqrt(2 eta T) * N(0, 1); an active
  theta that reaches <= 0 becomes dormant (theta := 0, a := 0); then as many dormant connections
  as needed, drawn uniformly at random among all dormant ones, are reactivated with
  theta = ``regrow_theta``, so every layer keeps exactly round(target * numel) active
  connections at all times. The initial active set is drawn uniformly at random.
* soft Deep R: no fixed count. Dormant thetas are kept (a dormant connection returns when its
  theta random-walks above 0): active thetas get the L1 step, ALL thetas get the noise, and theta
  is clipped below at theta_min = -T * p / (l1 * (1 - p)), p = 1 - target (the reference code's
  bound, in Bellec's T). Starts from the dense network.

The reference implementation (Chen et al.'s ``deeprewire.py``) fuses this into Adam and uses
lr / (1 - beta1^t) for eta; here eta is the plain learning rate, as in Bellec's SGD formulation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from gradr_deploy.errors import option
from gradr_lava.rewiring.base import LayerState, RewiringPruner
from gradr_lava.rewiring.errors import RewiringError
from gradr_lava.rewiring.layers import PrunableLayer, Targets
from gradr_lava.rewiring.parametrization import DeepRWeight, initial_sign, register
from gradr_lava.rewiring.schedule import target_count


def soft_theta_min(temperature: float, l1: float, target: float) -> float | None:
    """Lower bound of theta in soft Deep R, -T p / (l1 (1 - p)); None (unbounded) if l1 == 0."""
    if l1 <= 0.0:
        return None
    sparsity = 1.0 - target
    return -temperature * sparsity / (l1 * (1.0 - sparsity))


def sample_without_replacement(population: int, count: int,
                               generator: torch.Generator) -> torch.Tensor:
    """``count`` distinct indices drawn uniformly from range(population), in draw order.

    Draws with replacement and skips repeats (equivalent to drawing without replacement), so
    the cost is O(count), not the O(population) of a full ``randperm``: a Deep R step usually
    revives a handful of connections among hundreds of thousands of dormant ones.

    Raises:
        ValueError: count > population.
    """
    if count > population:
        raise ValueError(f"cannot draw {count} distinct indices from {population}")
    if 2 * count > population:  # dense draw: a permutation is cheaper than many repeats
        return torch.randperm(population, generator=generator)[:count]
    chosen: dict[int, None] = {}  # insertion-ordered set
    while len(chosen) < count:
        draws = torch.randint(population, (2 * (count - len(chosen)),), generator=generator)
        for index in draws.tolist():
            chosen.setdefault(index)
            if len(chosen) == count:
                break
    return torch.tensor(list(chosen), dtype=torch.long)


class DeepR(RewiringPruner):
    """Deep R pruner (hard by default, ``soft=True`` for soft Deep R).

    Args:
        target_connectivity: fraction of connections kept active per layer (hard), or the p
            that sets theta_min (soft); layers at 1.0 are not rewired.
        l1: L1 strength on active thetas, in weight units per unit learning rate (>= 0).
        temperature: T of the noise sqrt(2 eta T) N(0, 1) (>= 0; 0 = no noise).
        soft: soft Deep R instead of hard.
        regrow_theta: theta of a reactivated connection (> 0, hard Deep R).
        seed: seeds the initial active set, the noise, reactivation, initial-zero signs.
    """

    method = "deepr"

    def __init__(
        self,
        target_connectivity: Targets,
        *,
        l1: float = 1e-5,
        temperature: float = 0.0,
        soft: bool = False,
        regrow_theta: float = 1e-8,
        seed: int = 0,
    ) -> None:
        super().__init__(target_connectivity, seed)
        for name, value in (("l1", l1), ("temperature", temperature)):
            if not (math.isfinite(value) and value >= 0.0):
                raise RewiringError(f"Deep R {option(name)} must be >= 0, got {value!r}")
        if not regrow_theta > 0.0:
            raise RewiringError(f"{option('regrow_theta')} must be > 0, got {regrow_theta!r}")
        self.soft = soft
        self._l1 = float(l1)
        self._temperature = float(temperature)
        self._regrow_theta = float(regrow_theta)
        # Soft Deep R: theta of every layer as left by the last rewiring step, so that the
        # optimizer's momentum cannot move dormant thetas (only active ones learn).
        self._frozen: dict[int, torch.Tensor] = {}

    def _attach_layer(self, layer: PrunableLayer, target: float) -> None:
        weight = layer.synapse.weight.detach()
        sign = initial_sign(weight, self._generator)
        if self.soft:
            active = (weight != 0).to(weight.dtype)
        else:
            order = torch.randperm(weight.numel(), generator=self._generator)
            chosen = order[: target_count(target, weight.numel())].to(weight.device)
            active = torch.zeros(weight.numel(), dtype=weight.dtype, device=weight.device)
            active[chosen] = 1.0
            active = active.reshape(weight.shape)
        theta = register(layer.synapse, DeepRWeight(sign, active))
        theta.mul_(active)  # dormant: theta = 0
        if self.soft:
            self._frozen[layer.index] = theta.detach().clone()

    def _noise(self, theta: torch.Tensor, lr: float) -> torch.Tensor:
        normal = torch.randn(theta.shape, generator=self._generator, dtype=theta.dtype)
        return normal.to(theta.device) * math.sqrt(2.0 * lr * self._temperature)

    def _rewire(self, optimizer: torch.optim.Optimizer, lr: float | None) -> None:
        for state in self.rewired:
            step_lr = self._lr(optimizer, state, lr)
            if self.soft:
                self._soft_step(state, step_lr)
            else:
                self._hard_step(state, step_lr)

    def _hard_step(self, state: LayerState, lr: float) -> None:
        theta, active_buffer = state.hidden, state.param.active
        active = active_buffer.bool()
        theta.mul_(active)  # undo any optimizer move of dormant thetas (momentum)
        theta.sub_(active.to(theta.dtype), alpha=lr * self._l1)
        if self._temperature > 0.0:
            theta.add_(self._noise(theta, lr) * active)
        alive = active & (theta > 0)
        theta.mul_(alive)  # those that crossed 0 become dormant at exactly 0
        missing = target_count(state.target, theta.numel()) - int(torch.count_nonzero(alive))
        if missing > 0:
            dormant = torch.nonzero(~alive.flatten()).squeeze(1)
            pick = sample_without_replacement(dormant.numel(), missing, self._generator)
            revived = dormant[pick.to(dormant.device)]
            theta.view(-1)[revived] = self._regrow_theta
            alive.view(-1)[revived] = True
        active_buffer.copy_(alive)

    def _soft_step(self, state: LayerState, lr: float) -> None:
        theta, active_buffer = state.hidden, state.param.active
        active = active_buffer.bool()
        theta.copy_(torch.where(active, theta, self._frozen[state.layer.index]))
        theta.sub_(active.to(theta.dtype), alpha=lr * self._l1)
        if self._temperature > 0.0:
            theta.add_(self._noise(theta, lr))
        theta_min = soft_theta_min(self._temperature, self._l1, state.target)
        if theta_min is not None:
            theta.clamp_(min=theta_min)
        active_buffer.copy_(theta > 0)
        self._frozen[state.layer.index] = theta.detach().clone()

    def _layer_extra(self, state: LayerState) -> dict[str, Any]:
        extra: dict[str, Any] = {"soft": self.soft}
        if self.soft:
            extra["theta_min"] = soft_theta_min(self._temperature, self._l1, state.target)
        else:
            extra["active_count"] = target_count(state.target, state.layer.numel)
        return extra

    def _extra_state(self) -> dict[str, Any]:
        return {"frozen": {k: v.clone() for k, v in self._frozen.items()}}

    def _load_extra_state(self, extra: Mapping[str, Any]) -> None:
        self._frozen = {int(k): v.clone() for k, v in extra["frozen"].items()}
