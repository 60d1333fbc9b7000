"""Pruning while training for slayer networks: Grad R and STDS, and Deep R and magnitude
baselines.

One interface (:class:`Pruner`) for every method; build one with :func:`make_pruner`. See
docs/rewiring.md for the formulas, the options and what differs from the papers.

Importing this package imports torch but not Lava or slayer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gradr_deploy.errors import option
from gradr_lava.rewiring.base import Pruner, RewiringPruner
from gradr_lava.rewiring.deepr import DeepR
from gradr_lava.rewiring.errors import RewiringError
from gradr_lava.rewiring.gradr import GradR, laplace_mu, prior_step_
from gradr_lava.rewiring.layers import PrunableLayer, Targets, find_prunable_layers
from gradr_lava.rewiring.magnitude import GradualMagnitude
from gradr_lava.rewiring.parametrization import fold
from gradr_lava.rewiring.stats import connectivity
from gradr_lava.rewiring.stds import STDS

__all__ = [
    "METHODS",
    "STDS",
    "DeepR",
    "GradR",
    "GradualMagnitude",
    "PrunableLayer",
    "Pruner",
    "RewiringError",
    "RewiringPruner",
    "Targets",
    "connectivity",
    "find_prunable_layers",
    "fold",
    "laplace_mu",
    "make_pruner",
    "prior_step_",
]

# The options each method accepts (beyond ``seed``), and the class that implements it.
_OPTIONS: dict[str, tuple[type[RewiringPruner], frozenset[str]]] = {
    "none": (RewiringPruner, frozenset()),
    "gradr": (GradR, frozenset({"target_connectivity", "mode", "alpha", "total_steps",
                                "schedule", "finetune", "regrow_theta",
                                "adam_bias_correction", "count", "shrink", "idle_first"})),
    "deepr": (DeepR, frozenset({"target_connectivity", "l1", "temperature", "soft",
                                "regrow_theta"})),
    "magnitude": (GradualMagnitude, frozenset({"target_connectivity", "total_steps",
                                               "schedule", "prune_every", "idle_first"})),
    "stds": (STDS, frozenset({"target_connectivity", "total_steps", "schedule", "count"})),
}
METHODS = tuple(_OPTIONS)


def make_pruner(
    method: str,
    *,
    target_connectivity: Targets | None = None,
    alpha: float | Mapping[int | str, float] | None = None,
    mode: str | None = None,
    total_steps: int | None = None,
    schedule: tuple[float, float] | None = None,
    prune_every: int | None = None,
    finetune: float | None = None,
    l1: float | None = None,
    temperature: float | None = None,
    soft: bool | None = None,
    regrow_theta: float | None = None,
    adam_bias_correction: bool | None = None,
    count: str | None = None,
    shrink: bool | None = None,
    idle_first: bool | None = None,
    seed: int = 0,
) -> Pruner:
    """Build the pruner for ``method``; an option a method does not use is an error, not ignored.

    Args:
        method: "none" (dense, statistics only), "gradr", "stds", "deepr" or "magnitude".
        target_connectivity: final fraction of nonzero weights, one value for every prunable
            layer or a mapping {layer index or block name: fraction}; layers missing from the
            mapping (or at 1.0) stay dense. Required by all methods but "none".
        alpha: gradr paper mode: Laplace prior strength (1/weight units), one or per layer.
        mode: gradr: "paper" (default, the reference's prior) or "schedule" (exact per-layer
            connectivity following a cubic schedule).
        total_steps: optimizer steps of the whole run (epochs * batches per epoch): gradr
            schedule mode, stds and magnitude.
        schedule: (start, end) fractions of total_steps over which connectivity ramps down
            (default (0.0, 0.75)): gradr schedule mode, stds and magnitude.
        prune_every: magnitude: steps between mask updates (default: ~100 over the ramp).
        finetune: gradr: fraction of total_steps at the end spent fine-tuning the frozen
            8-bit topology with the prior off (default 0: the paper's method throughout).
        l1, temperature, soft: deepr: L1 strength (default 1e-5), noise temperature (default
            0), soft Deep R (default False).
        regrow_theta: theta of a connection revived by deepr (default 1e-8) or by the gradr
            schedule shift (default 1e-6).
        adam_bias_correction: gradr paper mode: scale the prior step by 1/(1 - beta1^t) like the
            reference code (default True).
        count: gradr schedule mode: what the schedule counts, "float" (theta > 0, the default)
            or "deployed" (weights that stay nonzero after 8-bit rounding, |w| > half a step:
            the connectivity the chip gets); stds: the same choice, "deployed" by default.
        shrink: gradr schedule mode: True (default) moves every theta by the shift, as the
            paper's prior drifts every theta; False moves only the connections that cross the
            boundary (leave or regrow), so kept weights keep their size.
        idle_first: magnitude: at every mask update drop first the synapses that cannot
            change an output spike (into neurons with no outgoing synapse left, out of neurons
            with no input left), so the budget goes to live neurons; gradr schedule mode: before
            every step's shift, push such connections out (default False; needs a chain of
            dense layers; :mod:`.idle`).
        seed: seeds every random choice a pruner makes (its own generator, not torch's global).

    Raises:
        RewiringError (a ValueError): unknown method, missing or unused option, bad value.
    """
    if method not in _OPTIONS:
        raise RewiringError(f"unknown pruning method {method!r}; choose from {METHODS}")
    cls, allowed = _OPTIONS[method]
    given: dict[str, Any] = {
        name: value
        for name, value in {
            "target_connectivity": target_connectivity, "alpha": alpha, "mode": mode,
            "total_steps": total_steps, "schedule": schedule, "prune_every": prune_every,
            "finetune": finetune, "l1": l1, "temperature": temperature, "soft": soft,
            "regrow_theta": regrow_theta,
            "adam_bias_correction": adam_bias_correction, "count": count, "shrink": shrink,
            "idle_first": idle_first,
        }.items()
        if value is not None
    }
    unused = sorted(set(given) - allowed)
    if unused:
        raise RewiringError(f"{option('method', method)} does not use "
                            f"{', '.join(option(name) for name in unused)}")
    if method == "none":
        return RewiringPruner(seed=seed)
    if "target_connectivity" not in given:
        raise RewiringError(f"{option('method', method)} needs "
                            f"{option('target_connectivity')}")
    if method in ("magnitude", "stds") and "total_steps" not in given:
        raise RewiringError(f"{option('method', method)} needs {option('total_steps')}")
    return cls(given.pop("target_connectivity"), seed=seed, **given)
