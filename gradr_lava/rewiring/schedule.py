"""Connectivity schedules, pure functions of the optimizer step.

The cubic schedule of Zhu & Gupta (2017, "To prune, or not to prune", eq. 1), written for
connectivity c = 1 - sparsity:

    c(t) = c_f + (c_i - c_f) * (1 - (t - t_0) / (t_1 - t_0))^3   for t_0 <= t <= t_1,

c_i before t_0 and c_f after t_1. It prunes fast while many redundant weights remain and slowly
near the target.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gradr_lava.rewiring.errors import RewiringError


@dataclass(frozen=True)
class CubicSchedule:
    """Where the cubic ramp lies in training, in optimizer steps.

    Attributes:
        start: t_0, the step at which pruning starts (0 = from the first step).
        end: t_1 >= t_0, the step at which the target connectivity is reached.
    """

    start: int
    end: int

    @classmethod
    def from_fractions(cls, total_steps: int, start: float, end: float) -> CubicSchedule:
        """Ramp from ``start * total_steps`` to ``end * total_steps`` (fractions of training).

        Raises:
            RewiringError: total_steps < 1 or not 0 <= start <= end <= 1.
        """
        if not isinstance(total_steps, int) or total_steps < 1:
            raise RewiringError(f"total_steps must be a positive integer, got {total_steps!r}")
        if not 0.0 <= start <= end <= 1.0:
            raise RewiringError(
                f"schedule fractions must satisfy 0 <= start <= end <= 1, got ({start}, {end})"
            )
        return cls(round(start * total_steps), round(end * total_steps))

    def connectivity(self, step: int, initial: float, final: float) -> float:
        """c(step): ``initial`` before the ramp, ``final`` after it, cubic in between."""
        if step <= self.start:
            return initial
        if step >= self.end:
            return final
        remaining = 1.0 - (step - self.start) / (self.end - self.start)
        return final + (initial - final) * remaining**3


def target_count(connectivity: float, numel: int) -> int:
    """Number of connections to keep: round(c * numel), at least 1."""
    return max(1, min(numel, round(connectivity * numel)))


def count_shift(theta: torch.Tensor, count: int, margin: float, threshold: float = 0.0) -> float:
    """Smallest uniform shift b such that exactly ``count`` entries of ``theta - b`` are
    > ``threshold`` (0: present in float; half the 8-bit step: nonzero once deployed).

    With theta sorted descending as v_1 >= v_2 >= ...: b = 0 if ``count`` are positive already;
    b = v_{count+1} (> 0) when too many are present (the (count+1)-th lands on 0: absent);
    b = max(v_{count+1}, v_count - margin) (<= 0) when too few are (the count-th regrows to a
    theta of ``margin``, or less when v_{count+1} is closer). b is computed in theta's dtype
    and kept strictly below v_count, so the count is exact unless theta has ties across the
    boundary (v_count == v_{count+1}).

    Args:
        theta: hidden parameters of one layer (any shape).
        count: how many should be present, 0 <= count <= theta.numel().
        margin: theta a regrown connection gets above ``threshold``, in weight units (> 0).
        threshold: what a theta must exceed to count, in weight units (>= 0).
    """
    flat = theta.detach().flatten()
    if threshold:
        flat = flat - threshold
    positive = flat > 0
    present = int(torch.count_nonzero(positive))
    if present == count:
        return 0.0
    if present > count:
        # v_{count+1} is the (present - count)-th smallest positive theta (kthvalue is 1-based).
        return float(torch.kthvalue(flat[positive], present - count).values)
    # v_count and v_{count+1} are the (count - present)-th and next largest non-positive theta.
    missing = count - present
    rest = flat[~positive]
    top = torch.topk(rest, min(missing + 1, rest.numel())).values
    v_count = top[missing - 1]
    below = torch.nextafter(v_count, torch.full_like(v_count, -torch.inf))
    shift = torch.minimum(v_count - margin, below)  # rounding must not reach v_count
    if missing < rest.numel():
        shift = torch.maximum(shift, top[missing])  # v_{count+1}
    return float(shift)
