"""Gradient Rewiring (Chen et al., IJCAI 2021): the prior step and the pruner.

Every rewired weight is w = s * relu(theta) (:class:`~.parametrization.GradRWeight`); the
optimizer (Adam in the paper) steps theta along the redefined gradient s * dL/dw. After each
optimizer step one of two modes moves theta further:

* ``"paper"``: the Laplace prior's MAP term, as the authors' code applies it after Adam:
  theta <- theta - eta * alpha * sign(theta - mu), mu = ln(2 (1 - p)) / alpha, p = 1 - target;
  eta = lr / (1 - beta1^t) for Adam-like optimizers (the reference's step size; t the Adam step),
  lr otherwise. Not divided by Adam's denominator: a constant drift.
* ``"schedule"``: the uniform shift theta <- theta - b_t with b_t the smallest shift that leaves
  exactly round(c(t) * numel) connections present, c(t) the cubic schedule from the initial
  connectivity to the target. b_t plays the part of eta * alpha with mu -> -inf (the paper's
  regime in practice), chosen per layer and step so each layer hits its target exactly; b_t < 0
  (everything pushed up, the absent connections nearest to 0 regrow) when the gradient pruned
  more than the schedule asks.

``shrink=False`` (schedule mode; not in the paper): the shift b_t is applied only to the
connections that cross the boundary at this step (those that leave drop by b_t, those that
regrow rise by -b_t); every other theta keeps its value. The kept weights then do not shrink
by the cumulative shift, which the gradient otherwise has to undo.

``idle_first=True`` (schedule mode; not in the paper): before each step's shift, every present
connection that cannot change an output spike (into a hidden neuron with no outgoing
connection present, out of a neuron with no input present: :mod:`.idle`) is reflected about
the presence boundary, theta <- 2 t - theta (t the count's threshold), so it leaves by as much
as it was above it, and the shift regrows the budget elsewhere. Such a connection gets no
gradient while its neuron is cut off (nothing downstream), so without this it stays as long as
its theta is large: Grad R left 16% of layer 0's synapses idle at 1.3% on MNIST 2FC, where
magnitude pruning with ``idle_first`` left none (docs/results.md section 6).

Optional fine-tuning (``finetune`` > 0, either mode; not in the paper): for the last
``finetune`` fraction of the steps the topology is frozen and the prior (or shift) is off. At
the first fine-tuning step every connection whose *deployed* (8-bit) weight is 0 becomes
absent for good: its theta is clamped to <= 0 after every step, so neither the redefined
gradient nor Adam's momentum can revive it. The survivors then train with the true gradient and
no shrinking force, which is what gradual magnitude pruning's fine-tuning phase gives its mask.
Why it matters: in paper mode the prior pulls every theta down by eta * alpha at every step,
survivors included, so at the end of training the kept weights are smaller than the loss wants
and more of them round to 0 in 8 bits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from gradr_deploy.errors import option
from gradr_lava.rewiring.base import LayerState, RewiringPruner
from gradr_lava.rewiring.errors import RewiringError
from gradr_lava.rewiring.idle import check_dense_chain, useful_synapses
from gradr_lava.rewiring.layers import PrunableLayer, Targets, per_layer
from gradr_lava.rewiring.parametrization import GradRWeight, initial_sign, register
from gradr_lava.rewiring.schedule import CubicSchedule, count_shift, target_count
from gradr_lava.rewiring.stats import effective_weight, slayer_weight_step

MODES = ("paper", "schedule")
COUNTS = ("deployed", "float")


def deployed_threshold(layer: PrunableLayer) -> float:
    """The largest |w| that slayer's 8-bit quantization rounds to 0: half its step (2 / w_scale),
    so 1/64 for CUBA blocks; 0.0 when the layer's weights are not quantized by slayer's hook.

    ``torch.round`` rounds half to even, so |w| = step / 2 itself becomes 0: a weight is
    nonzero on the chip exactly when |w| > this threshold.
    """
    step = slayer_weight_step(layer.block)
    return 0.0 if step is None else step / 2


def laplace_mu(sparsity: float, alpha: float) -> float:
    """Centre mu of the Laplace prior whose mass below 0 is ``sparsity``: ln(2(1-p)) / alpha.

    Raises:
        RewiringError: ``sparsity`` not in [0.5, 1) (the prior's mass below its centre is 1/2,
            so a smaller target cannot be expressed) or ``alpha`` <= 0.
    """
    if not 0.5 <= sparsity < 1.0:
        raise RewiringError(
            f"Grad R's prior needs a target sparsity p in [0.5, 1) (connectivity <= 0.5), got "
            f"p = {sparsity:g}; use {option('mode', 'schedule')} for a higher connectivity"
        )
    if not alpha > 0.0:
        raise RewiringError(f"Grad R's prior strength {option('alpha')} must be > 0, got "
                            f"{alpha!r}")
    return math.log(2.0 * (1.0 - sparsity)) / alpha


def prior_step_(theta: torch.Tensor, step_size: float, alpha: float, mu: float) -> None:
    """In place: theta <- theta - step_size * alpha * sign(theta - mu) (sign(0) = 0)."""
    theta.sub_(torch.sign(theta - mu), alpha=step_size * alpha)


def adam_step_scale(optimizer: torch.optim.Optimizer, group: Mapping[str, Any],
                    param: torch.Tensor) -> float:
    """1 / (1 - beta1^t) for an Adam-like optimizer (a ``betas`` group, a ``step`` state), else 1.

    The reference implementation scales its prior step by Adam's first bias correction (its
    ``step_size``); t is the optimizer's step count for ``param`` after the step just taken.
    """
    betas = group.get("betas")
    step = optimizer.state.get(param, {}).get("step")
    if betas is None or step is None:
        return 1.0
    return 1.0 / (1.0 - float(betas[0]) ** float(step))


class GradR(RewiringPruner):
    """Grad R pruner. Build it with :func:`~gradr_lava.rewiring.make_pruner`.

    Args:
        target_connectivity: final connectivity per layer (one value or a mapping); layers at
            1.0 (or missing from a mapping) are not rewired.
        mode: ``"paper"`` or ``"schedule"`` (module docstring).
        alpha: prior strength (paper mode only; one value or a mapping by layer), 1/weight units.
        total_steps: optimizer steps of the whole training (schedule mode, or ``finetune``).
        schedule: (start, end) of the cubic ramp as fractions of ``total_steps``.
        finetune: fraction of ``total_steps`` at the end spent fine-tuning a frozen topology
            with the prior off (module docstring); 0 = the paper's method throughout.
        regrow_theta: theta given to connections the schedule shift regrows (> 0).
        adam_bias_correction: paper mode: scale the prior step by 1/(1 - beta1^t) as the
            reference code does (False: plain lr).
        seed: seeds the random sign of initially-zero weights.
    """

    method = "gradr"

    def __init__(
        self,
        target_connectivity: Targets,
        *,
        mode: str = "paper",
        alpha: float | Mapping[int | str, float] | None = None,
        total_steps: int | None = None,
        schedule: tuple[float, float] = (0.0, 0.75),
        finetune: float = 0.0,
        regrow_theta: float = 1e-6,
        adam_bias_correction: bool = True,
        count: str = "float",
        shrink: bool = True,
        idle_first: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__(target_connectivity, seed)
        if mode not in MODES:
            raise RewiringError(f"Grad R {option('mode')} must be one of {MODES}, got {mode!r}")
        if count not in COUNTS:
            raise RewiringError(f"Grad R {option('count')} must be one of {COUNTS}, got "
                                f"{count!r}")
        if count == "deployed" and mode != "schedule":
            raise RewiringError(f"{option('count', 'deployed')} is a schedule-mode option "
                                "(the paper's prior has no count to aim at)")
        if not shrink and mode != "schedule":
            raise RewiringError(f"{option('shrink', False)} is a schedule-mode option")
        if not isinstance(idle_first, bool):
            raise RewiringError(f"{option('idle_first')} must be True or False, got "
                                f"{idle_first!r}")
        if idle_first and mode != "schedule":
            raise RewiringError(f"{option('idle_first')} is a schedule-mode option")
        self.idle_first = idle_first
        self.count = count
        self.shrink = shrink
        self.mode = mode
        self._schedule: CubicSchedule | None = None
        if mode == "paper":
            if alpha is None:
                raise RewiringError(f"Grad R {option('mode', 'paper')} needs "
                                    f"{option('alpha')} (the prior strength)")
            if total_steps is not None and not finetune:
                raise RewiringError(f"{option('total_steps')} is used by "
                                    f"{option('mode', 'schedule')} or {option('finetune')} "
                                    "only")
        else:
            if alpha is not None:
                raise RewiringError(f"{option('alpha')} is not used by "
                                    f"{option('mode', 'schedule')} (the shift replaces it)")
            if total_steps is None:
                raise RewiringError(f"Grad R {option('mode', 'schedule')} needs "
                                    f"{option('total_steps')}")
            self._schedule = CubicSchedule.from_fractions(total_steps, *schedule)
        self._freeze_step: int | None = None
        if finetune:
            if not 0.0 < finetune < 1.0:
                raise RewiringError(f"{option('finetune')} must be a fraction in (0, 1), got "
                                    f"{finetune!r}")
            if total_steps is None:
                raise RewiringError(f"Grad R {option('finetune')} needs {option('total_steps')} "
                                    "(epochs * batches)")
            self._freeze_step = round((1.0 - finetune) * total_steps)
            if self._schedule is not None and self._freeze_step < self._schedule.end:
                latest = 1.0 - self._schedule.end / total_steps
                raise RewiringError(
                    f"{option('finetune', f'{finetune:g}')} would start at step "
                    f"{self._freeze_step}, before the schedule reaches its target at step "
                    f"{self._schedule.end}; use {option('finetune', float(f'{latest:g}'))} or "
                    "less, or end the schedule earlier"
                )
        if not regrow_theta > 0.0:
            raise RewiringError(f"{option('regrow_theta')} must be > 0, got {regrow_theta!r}")
        self._alpha_spec = alpha
        self._regrow_theta = float(regrow_theta)
        self._adam_bias_correction = adam_bias_correction
        # Per layer index: alpha and mu (paper); initial connectivity and last shift (schedule).
        self._alpha: dict[int, float] = {}
        self._mu: dict[int, float] = {}
        self._initial: dict[int, float] = {}
        self._shift: dict[int, float] = {}
        # Per layer index, from the first fine-tuning step on: connections absent for good.
        self._frozen_absent: dict[int, torch.Tensor] = {}

    @property
    def finetuning(self) -> bool:
        """True once the frozen-topology fine-tuning phase has started."""
        return self._freeze_step is not None and self._step > self._freeze_step

    def _check_targets(self, targets: list[float], layers: list[PrunableLayer]) -> None:
        if self.idle_first:
            check_dense_chain(layers)
        if self.mode != "paper":
            return
        assert self._alpha_spec is not None  # checked in __init__
        alphas = per_layer(self._alpha_spec, layers, default=math.nan, what="alpha")
        for layer, target, alpha in zip(layers, targets, alphas, strict=True):
            if target < 1.0:
                if math.isnan(alpha):
                    raise RewiringError(f"alpha: no value for rewired layer {layer.index}")
                self._mu[layer.index] = laplace_mu(1.0 - target, alpha)
                self._alpha[layer.index] = alpha

    def _attach_layer(self, layer: PrunableLayer, target: float) -> None:
        weight = layer.synapse.weight.detach()
        register(layer.synapse, GradRWeight(initial_sign(weight, self._generator)))
        self._initial[layer.index] = float(torch.count_nonzero(weight)) / weight.numel()
        self._shift[layer.index] = 0.0

    def _threshold(self, state: LayerState) -> float:
        """The theta above which a connection counts as present (schedule mode)."""
        return deployed_threshold(state.layer) if self.count == "deployed" else 0.0

    def _drop_idle(self) -> None:
        """Reflect every present idle connection below the boundary (module docstring)."""
        thresholds = [self._threshold(state) if state.rewired else 0.0 for state in self._layers]
        present = [state.hidden.detach() > threshold if state.rewired
                   else state.layer.synapse.weight.detach() != 0
                   for state, threshold in zip(self._layers, thresholds, strict=True)]
        useful = useful_synapses(present, [state.layer for state in self._layers])
        for state, threshold, here, keep in zip(self._layers, thresholds, present, useful,
                                                strict=True):
            if state.rewired:
                idle = here & ~keep
                theta = state.hidden.data
                theta[idle] = 2.0 * threshold - theta[idle]

    def _rewire(self, optimizer: torch.optim.Optimizer, lr: float | None) -> None:
        if self.idle_first and not self.finetuning:  # idle_first implies schedule mode
            self._drop_idle()
        for state in self.rewired:
            index, theta = state.layer.index, state.hidden
            group = self._group_of(optimizer, state, forbid_weight_decay=True)
            if self.finetuning:
                self._hold_topology(state, theta)
            elif self.mode == "paper":
                step_size = float(group["lr"]) if lr is None else float(lr)
                if self._adam_bias_correction:
                    step_size *= adam_step_scale(optimizer, group, theta)
                prior_step_(theta, step_size, self._alpha[index], self._mu[index])
            else:
                count = target_count(self._target_now(state), theta.numel())
                threshold = self._threshold(state)
                shift = count_shift(theta, count, self._regrow_theta, threshold)
                if shift != 0.0 and self.shrink:
                    theta.sub_(shift)
                elif shift != 0.0:
                    # only the connections that cross the boundary move: those that leave
                    # (theta in (t, t + b]) drop by b, those that regrow rise by -b; the
                    # others keep their theta
                    level = theta - threshold
                    crossing = ((level > 0) & (level <= shift)) if shift > 0 else (
                        (level <= 0) & (level > shift))
                    theta.sub_(crossing.to(theta.dtype) * shift)
                self._shift[index] += shift

    def _hold_topology(self, state: LayerState, theta: torch.Tensor) -> None:
        index = state.layer.index
        absent = self._frozen_absent.get(index)
        if absent is None:
            # First fine-tuning step: whatever does not survive 8-bit rounding now is dropped.
            absent = effective_weight(state.layer, quantized=True) == 0
            self._frozen_absent[index] = absent
        theta.masked_fill_(absent & (theta > 0), 0.0)

    def _target_now(self, state: LayerState) -> float:
        assert self._schedule is not None
        return self._schedule.connectivity(
            self._step, self._initial[state.layer.index], state.target
        )

    def _layer_extra(self, state: LayerState) -> dict[str, Any]:
        index = state.layer.index
        if self.mode == "paper":
            return {"mode": "paper", "alpha": self._alpha[index], "mu": self._mu[index],
                    "finetuning": self.finetuning}
        extra = {"mode": "schedule", "count": self.count,
                 "scheduled_connectivity": self._target_now(state),
                 "shift": self._shift[index], "finetuning": self.finetuning}
        self._shift[index] = 0.0  # summed since the last end_epoch, like pruned/regrown
        return extra

    def _extra_state(self) -> dict[str, Any]:
        return {"initial": dict(self._initial), "shift": dict(self._shift),
                "frozen_absent": {k: v.clone() for k, v in self._frozen_absent.items()}}

    def _load_extra_state(self, extra: Mapping[str, Any]) -> None:
        self._initial = {int(k): float(v) for k, v in extra["initial"].items()}
        self._shift = {int(k): float(v) for k, v in extra["shift"].items()}
        devices = {s.layer.index: s.hidden.device for s in self.rewired}
        self._frozen_absent = {int(k): v.to(devices[int(k)]).clone()
                               for k, v in extra.get("frozen_absent", {}).items()}
