"""The pruner a training run asks for, and the per-layer targets of a core budget.

Grad R without ``alpha`` or ``gradr_mode`` runs in schedule mode, the mode that reaches
``target_connectivity``; a core budget (``fit_cores`` / ``fit_chips``) derives the per-layer
targets from the hardware profile (:mod:`gradr_lava.core_budget`) and trains with Grad R.
"""

from __future__ import annotations

from gradr_deploy.errors import InputError, option, renamed_options
from gradr_deploy.hardware.profile import load_profile
from gradr_lava.config import ModelConfig
from gradr_lava.core_budget import BudgetPlan, plan_budget, uniform_targets
from gradr_lava.network import SpikingNetwork
from gradr_lava.options import PRUNER_KEYWORDS, PRUNER_OPTIONS, TrainOptions
from gradr_lava.rewiring import Pruner, RewiringError, make_pruner


def plan_core_budget(o: TrainOptions, network: SpikingNetwork,
                     config: ModelConfig) -> BudgetPlan | None:
    """Per-layer targets that fit ``fit_cores`` / ``fit_chips`` (None without a budget)."""
    if o.fit_cores is None and o.fit_chips is None:
        return None
    if o.target_connectivity is not None or o.prune not in ("none", "gradr"):
        raise InputError(
            f"{option('fit_cores')}/{option('fit_chips')} derive "
            f"{option('target_connectivity')} per layer and train with Grad R: drop "
            f"{option('target_connectivity')} and {option('method')}"
        )
    shapes = []
    for block in network.synaptic_blocks:
        if type(block).__name__ != "Dense":
            raise InputError(f"{option('fit_cores')} supports dense layers only; "
                             f"{config.source} has a {type(block).__name__} layer")
        shapes.append(tuple(block.synapse.weight.shape[:2]))
    budget = o.fit_cores
    if o.fit_chips is not None:
        chip_cores = load_profile(o.hardware, o.hardware_overrides).cores_per_chip * o.fit_chips
        budget = chip_cores if budget is None else min(budget, chip_cores)
    plan = plan_budget if o.budget_allocation == "budget-aware" else uniform_targets
    return plan(shapes, budget, o.hardware, o.hardware_overrides, seed=o.seed)

def build_pruner(o: TrainOptions, budget_plan: BudgetPlan | None,
                 total_steps: int) -> tuple[Pruner, bool]:
    """The pruner, and whether it is laid out over ``total_steps``.

    Grad R without ``--alpha`` or ``--gradr-mode`` runs in schedule mode: it is the mode
    that reaches ``--target-connectivity``, and by default it counts the weights that stay
    nonzero in 8 bits, so the target is the deployed connectivity.
    """
    method, mode, targets = o.prune, o.prune_mode, o.target_connectivity
    if budget_plan is not None:
        method, mode, targets = "gradr", o.prune_mode or "schedule", budget_plan.targets
    if method == "gradr" and mode is None and o.alpha is None:
        mode = "schedule"
    count = shrink = None
    if method == "gradr" and mode == "schedule":
        count = o.gradr_count or "deployed"
        shrink = (o.gradr_shift or "all") == "all"
    else:
        for name, value in (("gradr_count", o.gradr_count), ("gradr_shift", o.gradr_shift)):
            if value is not None:
                raise InputError(f"{option(name)} is a Grad R schedule-mode option "
                                 f"({option('method', 'gradr')} "
                                 f"{option('gradr_mode', 'schedule')})")
    needs_steps = method in ("magnitude", "stds") or (
        method == "gradr" and (mode == "schedule" or bool(o.finetune)))
    extra = dict(o.pruner_options)
    unknown = sorted(set(extra) - PRUNER_OPTIONS)
    if unknown:
        raise InputError(f"pruner options {unknown} unknown; the options without a flag are "
                         f"{sorted(PRUNER_OPTIONS)}")
    if o.prune_ramp is not None:
        extra["schedule"] = tuple(o.prune_ramp)
    if method == "gradr" and mode == "paper" and o.alpha is None:
        raise InputError(
            f"{option('method', 'gradr')} {option('gradr_mode', 'paper')} needs "
            f"{option('alpha')} (the prior strength; the reference's MNIST value is 0.06 for "
            f"~5% connectivity), or drop {option('gradr_mode', 'paper')} to reach "
            f"{option('target_connectivity')} exactly")
    # the pruner's keywords are the trainer's under other names: its messages name ours
    with renamed_options(PRUNER_KEYWORDS):
        try:
            pruner = make_pruner(
                method, target_connectivity=targets, alpha=o.alpha,
                mode=mode, total_steps=total_steps if needs_steps else None,
                finetune=o.finetune, count=count, shrink=shrink, seed=o.seed, **extra,
            )
        except RewiringError as exc:
            raise InputError(f"{option('method', o.prune)}: {exc}") from None
    return pruner, needs_steps
