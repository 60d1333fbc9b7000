"""Weight parametrizations for rewiring, registered on ``block.synapse.weight``.

slayer's synapse reads ``self.weight`` and passes it through its ``pre_hook_fx`` (8-bit
quantization) in every forward pass, so a ``torch.nn.utils.parametrize`` parametrization on that
weight composes with quantization: an absent connection is an exact 0 before quantization, and
slayer's ``round(w / step) * step`` keeps it 0. The hidden tensors (theta, and the sign, active
and mask buffers) live in the model's ``state_dict`` under
``<block>.synapse.parametrizations.weight.original`` and ``...weight.0.<buffer>``.

Three parametrizations, all with the weight's shape (Dense: (out, in, 1, 1, 1); Conv:
(out, in/groups, kh, kw, 1)) and dtype:

* :class:`GradRWeight`:  w = s * relu(theta), backward dL/dtheta := s * dL/dw for EVERY element.
* :class:`DeepRWeight`:  w = s * relu(theta) * a, the true gradient s * H(theta) * a * dL/dw.
* :class:`MaskedWeight`: w = v * m, the true gradient m * dL/dw.
* :class:`SoftThresholdWeight`: w = sign(theta) * relu(|theta| - d) (STDS), backward
  dL/dtheta := dL/dw for EVERY element.
"""

from __future__ import annotations

import torch
from torch.nn.utils import parametrize


class _RedefinedGradient(torch.autograd.Function):
    """w = s * relu(theta) whose backward drops relu's Heaviside factor (Grad R, eq. 9)."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, theta: torch.Tensor,
                sign: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(sign)
        return sign * torch.relu(theta)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx,
                 grad_w: torch.Tensor) -> tuple[torch.Tensor, None]:
        (sign,) = ctx.saved_tensors  # type: ignore[attr-defined]
        # Absent connections (theta <= 0) get the same signal as present ones, so they can
        # compete to come back; the paper shows this still descends the loss.
        return grad_w * sign, None


def redefined_signed_relu(theta: torch.Tensor, sign: torch.Tensor) -> torch.Tensor:
    """Return ``sign * relu(theta)``; its gradient w.r.t. theta is ``sign * grad_w`` everywhere."""
    return _RedefinedGradient.apply(theta, sign)


def initial_sign(weight: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Return the fixed sign s (+1/-1, weight's dtype) of each connection.

    s = sign(w) where w != 0. An exact zero has no sign to keep: it gets a random +-1 drawn from
    ``generator`` (50/50), so it starts absent (theta = 0) yet can grow in either direction that
    was drawn. (The reference code gives it s = 0, a connection that can never grow.)
    """
    coin = torch.randint(0, 2, weight.shape, generator=generator, device=generator.device)
    random_sign = (2 * coin - 1).to(device=weight.device, dtype=weight.dtype)
    return torch.where(weight != 0, torch.sign(weight), random_sign)


class GradRWeight(torch.nn.Module):
    """Grad R: w = s * relu(theta) with the redefined gradient s * dL/dw.

    Buffers: ``sign`` (weight's shape, +-1). theta (the hidden parameter, ``original``) is
    initialised by :meth:`right_inverse` to s * w = |w|.
    """

    def __init__(self, sign: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("sign", sign)

    def forward(self, theta: torch.Tensor) -> torch.Tensor:
        return redefined_signed_relu(theta, self.sign)

    def right_inverse(self, weight: torch.Tensor) -> torch.Tensor:
        # s * w: |w| where the sign matches, <= 0 (absent) where it does not.
        return weight * self.sign


class DeepRWeight(torch.nn.Module):
    """Deep R: w = s * relu(theta) * a, true gradient (dormant connections get none).

    Buffers: ``sign`` (+-1) and ``active`` (0/1), both of the weight's shape and dtype. ``active``
    is what the forward pass uses, so an optimizer moving a dormant theta (Adam momentum) cannot
    revive it between two rewiring steps; :class:`~gradr_lava.rewiring.deepr.DeepR` owns it.
    """

    def __init__(self, sign: torch.Tensor, active: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("sign", sign)
        self.register_buffer("active", active)

    def forward(self, theta: torch.Tensor) -> torch.Tensor:
        return self.sign * torch.relu(theta) * self.active

    def right_inverse(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * self.sign


class MaskedWeight(torch.nn.Module):
    """Magnitude pruning: w = v * m. Buffer ``mask`` (0/1, weight's shape and dtype)."""

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask)

    def forward(self, value: torch.Tensor) -> torch.Tensor:
        return value * self.mask


class _SoftThresholdIdentityGradient(torch.autograd.Function):
    """w = sign(theta) * relu(|theta| - d) whose backward treats relu as the identity (STDS's
    "pseudo ReLU"): d w / d theta = sign(theta)^2 = 1."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, theta: torch.Tensor,
                threshold: torch.Tensor) -> torch.Tensor:
        return torch.sign(theta) * torch.relu(theta.abs() - threshold)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx,
                 grad_w: torch.Tensor) -> tuple[torch.Tensor, None]:
        # Connections under the threshold get the signal too, so they can grow back.
        return grad_w, None


class SoftThresholdWeight(torch.nn.Module):
    """STDS: w = sign(theta) * relu(|theta| - d), gradient dL/dw for every theta.

    Buffer ``threshold`` (a 0-d tensor, weight units), which
    :class:`~gradr_lava.rewiring.stds.STDS` sets after every step. theta (``original``) starts
    as the weight itself (d = 0).
    """

    def __init__(self, threshold: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("threshold", threshold)

    def forward(self, theta: torch.Tensor) -> torch.Tensor:
        return _SoftThresholdIdentityGradient.apply(theta, self.threshold)

    def right_inverse(self, weight: torch.Tensor) -> torch.Tensor:
        return weight + self.threshold * torch.sign(weight)


PARAMETRIZATIONS = (GradRWeight, DeepRWeight, MaskedWeight, SoftThresholdWeight)


def register(synapse: torch.nn.Module, parametrization: torch.nn.Module) -> torch.nn.Parameter:
    """Parametrize ``synapse.weight`` and return the hidden parameter (theta or v).

    The hidden parameter is the same ``Parameter`` object the weight was (torch moves the data
    in with ``set_``), so an optimizer built before this call still holds the right object.
    """
    parametrize.register_parametrization(synapse, "weight", parametrization)
    return hidden_parameter(synapse)


def hidden_parameter(synapse: torch.nn.Module) -> torch.nn.Parameter:
    """The parameter behind a parametrized ``synapse.weight`` (theta, or v for masking)."""
    return synapse.parametrizations["weight"].original


def rewiring_of(synapse: torch.nn.Module) -> torch.nn.Module | None:
    """The rewiring parametrization on ``synapse.weight``, or None if it has none."""
    if not parametrize.is_parametrized(synapse, "weight"):
        return None
    first = synapse.parametrizations["weight"][0]
    return first if isinstance(first, PARAMETRIZATIONS) else None


def fold(model: torch.nn.Module) -> int:
    """Replace every rewiring parametrization in ``model`` by a plain weight Parameter.

    Afterwards ``synapse.weight`` is a NEW ``Parameter`` holding s * relu(theta) (or v * m), with
    absent connections exactly +0.0, and the parametrization buffers are gone from the
    state_dict; slayer's ``export_hdf5`` then writes exact zeros. theta itself is not touched
    (anything holding it, an optimizer included, keeps seeing theta, now detached from the
    model).

    Why not ``torch.nn.utils.parametrize.remove_parametrizations``: with
    ``leave_parametrized=True`` it writes the weight into theta's storage (``set_``), so holders
    of theta silently read weights; and it deletes the ``weight`` property from the module's
    class, which ``copy.deepcopy`` SHARES between a parametrized module and its copy, so folding
    a copy breaks the original. Here only the instance's class pointer is reset.

    Returns:
        the number of weights folded.

    Raises:
        ValueError: a module carries other parametrizations besides the rewiring one.
    """
    count = 0
    for module in list(model.modules()):
        if rewiring_of(module) is None:
            continue
        if len(module.parametrizations) != 1 or len(module.parametrizations["weight"]) != 1:
            raise ValueError(f"{type(module).__name__}: other parametrizations besides rewiring")
        with torch.no_grad():
            # -0.0 + 0.0 = +0.0: absent weights of sign -1 become +0.0.
            weight = module.weight.detach().clone().add_(0.0)
        requires_grad = hidden_parameter(module).requires_grad
        plain_class = parametrize.type_before_parametrizations(module)
        delattr(module, "parametrizations")
        module.__class__ = plain_class
        module.weight = torch.nn.Parameter(weight, requires_grad=requires_grad)
        count += 1
    return count
