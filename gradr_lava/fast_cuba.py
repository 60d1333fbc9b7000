"""A fast training path for slayer CUBA-LIF blocks: the same numbers, fewer operations.

slayer stays the model: its ``Dense``, ``Conv`` and ``Flatten`` blocks own the weights (and the
pruners' parametrizations on them), its 8-bit quantization is applied to them, and lava-dl
exports them. This module only evaluates those blocks differently:

* **time-major tensors** ``(T, N, ...)``: one GEMM (dense) or one ``conv2d`` (conv) over all
  ``T * N`` samples and steps, instead of slayer's ``conv3d`` with a time axis;
* **one neuron update per step** in float64, which holds Lava's integer state exactly: with
  weights on slayer's 8-bit grid (multiples of 2/64) and integer input (spikes, or graded
  payloads), the synaptic input is an exact float32 sum in any order, and
  ``trunc(x * keep / 4096)`` equals slayer's ``right_shift_to_zero(x * keep, 12)`` for
  ``|x * keep| < 2**53``;
* **a closed-form backward**: slayer's backward ignores the reset and uses fixed decays, so the
  gradient through current and voltage is one linear filter in time: a ``(T, T)`` matrix applied
  to all neurons at once instead of two reversed Python loops.

Forward spikes are identical to slayer's; gradients equal them to float32 rounding (the
recursion is summed in another order). ``tests/test_fast_cuba.py`` checks both against slayer's
blocks. What is covered is what :func:`unsupported_reason` accepts; anything else falls back to
slayer's own forward.

Shapes: dense input spikes ``(T, N, F)``; conv ``(T, N, C, H, W)``; outputs the same layouts.
"""

from __future__ import annotations

import os
import time
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from gradr_deploy.errors import InputError
from gradr_lava.rewiring.stats import slayer_weight_step

_STATE_SCALE = 1 << 12  # slayer's s_scale for CUBA (w_scale 64 << 6): state units per 1.0
_DECAY_SCALE = 1 << 12  # decays are integers out of 4096, as on Loihi
_GRID = 32  # slayer's 8-bit weight step is 2 / w_scale = 1/32 (w_scale = 64)
# slayer's surrogate constants (lava.lib.dl.slayer.neuron.cuba TAU_RHO_MULT, SCALE_RHO_MULT)
_TAU_RHO_MULT = 100
_SCALE_RHO_MULT = 0.1


def _block_kind(block: torch.nn.Module) -> str:
    """'dense', 'conv', 'flatten' or '' for a slayer CUBA block."""
    module = type(block).__module__
    if module != "lava.lib.dl.slayer.block.cuba":
        return ""
    return {"Dense": "dense", "Conv": "conv", "Flatten": "flatten"}.get(type(block).__name__, "")


def unsupported_reason(block: torch.nn.Module) -> str | None:
    """Why the fast path cannot evaluate ``block`` exactly as slayer does, or None if it can."""
    kind = _block_kind(block)
    name = type(block).__name__
    if not kind:
        return f"{type(block).__module__}.{name} is not a slayer CUBA Dense, Conv or Flatten block"
    if kind == "flatten":
        return None
    neuron, synapse = block.neuron, block.synapse
    checks = {
        "an axonal delay": block.delay is not None,
        "no delay shift": not block.delay_shift,
        "a synapse mask": getattr(block, "mask", None) is not None,
        "count_log": bool(getattr(block, "count_log", False)),
        "a complex synapse": bool(getattr(synapse, "complex", False)),
        "weight normalization": bool(synapse.weight_norm_enabled),
        "a synapse bias": synapse.bias is not None,
        "per-neuron parameters (shared_param=False)": not neuron.shared_param,
        "persistent state": bool(neuron.persistent_state),
        "learnable decays (requires_grad=True)": bool(neuron.requires_grad),
        "graded spikes": bool(neuron.graded_spike),
        "neuron normalization": neuron.norm is not None,
        "neuron dropout": neuron.drop is not None,
        "a non-unit time kernel": tuple(synapse.weight.shape[4:]) != (1,),
    }
    if kind == "conv":
        checks["a time stride, padding or dilation"] = (
            synapse.stride[2] != 1 or synapse.padding[2] != 0 or synapse.dilation[2] != 1)
    found = [what for what, present in checks.items() if present]
    return f"{name} block with {', '.join(found)}" if found else None


@lru_cache(maxsize=64)
def _backward_filter(current_decay: int, voltage_decay: int, steps: int,
                     dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``(T, T)`` matrix ``H`` with ``grad_synaptic = H @ grad_voltage`` for every neuron.

    Cached: every backward of a layer asks for the same one (read only, never written).

    slayer's backward runs two reversed leaky-integrator recursions (voltage, then current)
    with the reset ignored and decays ``1 - d / 4096`` in float32; composed, they are one linear
    filter: ``H[t, u] = h(u - t)`` for ``u >= t``, ``h(k) = sum_j a**j b**(k - j)``.
    """
    a = 1.0 - float(torch.tensor(voltage_decay / _DECAY_SCALE, dtype=torch.float32))
    b = 1.0 - float(torch.tensor(current_decay / _DECAY_SCALE, dtype=torch.float32))
    h = torch.tensor([sum(a**j * b ** (k - j) for j in range(k + 1)) for k in range(steps)],
                     dtype=torch.float64)
    lag = torch.arange(steps)[None, :] - torch.arange(steps)[:, None]  # u - t
    matrix = torch.where(lag >= 0, h[lag.clamp(min=0)], torch.zeros((), dtype=torch.float64))
    return matrix.to(dtype=dtype, device=device)


class _CubaSpikes(torch.autograd.Function):
    """Synaptic input of steps ``[first, first + S)`` -> delayed output spikes ``(T, N, ...)``.

    Steps outside the given ones have zero synaptic input (see :func:`_active_steps`).
    """

    @staticmethod
    def forward(ctx, synaptic: torch.Tensor, first: int, steps: int, current_decay: int,
                voltage_decay: int, threshold: float, tau_rho: float, scale_rho: float,
                exact: bool) -> torch.Tensor:
        synaptic = synaptic.detach()
        shape = (steps, *synaptic.shape[1:])
        keep_current = (_DECAY_SCALE - current_decay) / _DECAY_SCALE  # exact dyadic numbers
        keep_voltage = (_DECAY_SCALE - voltage_decay) / _DECAY_SCALE
        # slayer spikes when voltage >= threshold + 0.01 / s_scale: on the integer grid, when
        # the state exceeds threshold * s_scale (an integer: thresholds are multiples of 1/64).
        threshold_state = float(round(threshold * _STATE_SCALE))
        # slayer adds (s_scale * input).to(int64): the float32 product, truncated; it is exact
        # (an integer below 2**24 times a power of 2) and so is its float64 copy
        drive = synaptic.to(torch.float64).mul_(_STATE_SCALE)
        if not exact:
            _truncate_(drive, torch.empty_like(drive))
        scratch = torch.empty_like(drive[0])
        current = torch.zeros_like(drive[0])
        voltage = torch.zeros_like(drive[0])
        record = drive.new_empty(shape)  # pre-reset voltage, state units
        for t in range(steps):
            i = t - first
            has_input = 0 <= i < len(drive)
            if keep_current == 0:  # no synaptic current memory: the current is this input
                current = drive[i] if has_input else None
            else:
                _decay_(current, keep_current, scratch)
                if has_input:
                    current.add_(drive[i])
            _decay_(voltage, keep_voltage, scratch)
            if current is not None:
                voltage.add_(current)
            record[t].copy_(voltage)
            torch.le(voltage, threshold_state, out=scratch)  # 1.0 where it did not fire
            voltage.mul_(scratch)  # reset to zero where it fired
        spikes = torch.empty(shape, dtype=synaptic.dtype, device=synaptic.device)
        spikes[0] = 0
        spikes[1:] = record[:-1] > threshold_state  # one step of delay (slayer's delay_shift)
        # slayer's surrogate: scale / (2 tau) exp(-|v - theta| / tau) on its float32 voltage,
        # theta including its epsilon
        theta = threshold + 0.01 / _STATE_SCALE
        surrogate = record[:-1].div_(_STATE_SCALE).to(synaptic.dtype)
        surrogate.sub_(theta).abs_().mul_(-1.0 / tau_rho).exp_().mul_(scale_rho / 2 / tau_rho)
        ctx.save_for_backward(surrogate)
        ctx.decays = (current_decay, voltage_decay)
        ctx.active = (first, len(synaptic))
        return spikes

    @staticmethod
    def backward(ctx, grad_spikes: torch.Tensor):
        (surrogate,) = ctx.saved_tensors
        steps = grad_spikes.shape[0]
        first, count = ctx.active
        # output step t + 1 carries the spike of step t: shift the gradient back one step
        grad_voltage = torch.empty_like(grad_spikes)
        grad_voltage[-1] = 0
        torch.mul(surrogate, grad_spikes[1:], out=grad_voltage[:-1])
        matrix = _backward_filter(*ctx.decays, steps, grad_spikes.dtype, grad_spikes.device)
        matrix = matrix[first:first + count]  # only the steps that had synaptic input
        grad = (matrix @ grad_voltage.reshape(steps, -1)).reshape(count, *grad_spikes.shape[1:])
        return grad, None, None, None, None, None, None, None, None


def _truncate_(values: torch.Tensor, scratch: torch.Tensor) -> torch.Tensor:
    """Round multiples of 1/4096 toward zero in place (slayer's ``right_shift_to_zero``).

    ``floor(y + 4095/4096)`` is ``ceil(y)`` for such ``y``: added where ``y < 0``, then floor.
    (``torch.trunc`` is several times slower than ``floor`` on the CPU.)
    """
    torch.lt(values, 0, out=scratch)
    return values.add_(scratch, alpha=(_DECAY_SCALE - 1) / _DECAY_SCALE).floor_()


def _decay_(state: torch.Tensor, keep: float, scratch: torch.Tensor) -> None:
    """``state = trunc(state * keep)``: Loihi's decay, exact for integer states below 2**41."""
    if keep == 1.0:
        return
    state.mul_(keep)
    _truncate_(state, scratch)


def _neuron_spikes(block: torch.nn.Module, synaptic: torch.Tensor, first: int,
                   steps: int, exact: bool) -> torch.Tensor:
    neuron = block.neuron
    if neuron.shape is None:  # slayer learns it in the first forward; its export needs it
        neuron.shape = torch.Size(synaptic.shape[2:])
        neuron.num_neurons = int(np.prod(neuron.shape))
    current_decay = int(torch.round(neuron.current_decay.detach().clamp(0, _DECAY_SCALE)))
    voltage_decay = int(torch.round(neuron.voltage_decay.detach().clamp(0, _DECAY_SCALE)))
    return _CubaSpikes.apply(synaptic, first, steps, current_decay, voltage_decay,
                             float(neuron.threshold), float(neuron.tau_rho * _TAU_RHO_MULT),
                             float(neuron.scale_rho * _SCALE_RHO_MULT), exact)


INT8_GEMM_VARIABLE = "GRADR_LAVA_INT8_GEMM"
INT8_GEMM_SETTINGS = ("auto", "on", "off")


@lru_cache(maxsize=1)
def int8_gemm_is_used() -> bool:
    """Whether dense blocks on the CPU use the int8 GEMM (:class:`_GridLinear`).

    Both products are exact, so the choice changes speed only, never a number. Which is faster
    depends on the CPU: on the x86_64 machine of issue 12's measurements the int8 GEMM was
    several times faster than float32; on an AVX2-only AMD EPYC (no int8 dot-product
    instructions) torch 2.13's ``torch._int_mm`` was 25x *slower* (1172 ms against 46 ms for
    3200x784 @ 784x800 spikes times weights). "auto" (the default) times both once per process
    on a small product and keeps the faster; ``GRADR_LAVA_INT8_GEMM=on`` / ``off`` decides
    without timing.
    """
    setting = os.environ.get(INT8_GEMM_VARIABLE, "auto").strip().lower() or "auto"
    if setting not in INT8_GEMM_SETTINGS:
        raise InputError(f"{INT8_GEMM_VARIABLE}={setting!r} is not a setting; use "
                         f"{', '.join(INT8_GEMM_SETTINGS)} (or leave it unset: auto)")
    if setting != "auto":
        return setting == "on"
    generator = torch.Generator().manual_seed(0)
    spikes = torch.randint(0, 2, (512, 784), generator=generator, dtype=torch.int8)
    grid = torch.randint(-128, 128, (784, 256), generator=generator, dtype=torch.int8)
    as_float = spikes.float(), grid.float()
    return _best_seconds(lambda: torch._int_mm(spikes, grid)) < _best_seconds(
        lambda: torch.mm(*as_float))


def _best_seconds(product, repeats: int = 3) -> float:
    product()  # the first call may allocate or pick a kernel
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        product()
        best = min(best, time.perf_counter() - started)
    return best


class _GridLinear(torch.autograd.Function):
    """``x @ weight.T`` for integer ``x`` in [-128, 127] (spikes, graded payloads) and weights
    on slayer's 8-bit grid, on the CPU.

    On the grid (multiples of 1/32 in [-4, 127/32]) a weight is an int8 times 1/32, and the
    input is int8: the product is an exact int8 GEMM with int32 sums, equal to float32 bit for
    bit (both are exact); faster than float32 only on CPUs with int8 dot-product instructions
    (:func:`int8_gemm_is_used`). The backward is the float one.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        flat = x.reshape(-1, x.shape[-1]).to(torch.int8)
        sums = torch._int_mm(flat, torch.mul(weight, _GRID).to(torch.int8).t())
        return sums.mul(1.0 / _GRID).reshape(*x.shape[:-1], weight.shape[0])

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, weight = ctx.saved_tensors
        grad_x = grad @ weight if ctx.needs_input_grad[0] else None
        grad_weight = None
        if ctx.needs_input_grad[1]:
            grad_weight = grad.reshape(-1, grad.shape[-1]).t() @ x.reshape(-1, x.shape[-1])
        return grad_x, grad_weight


def _on_8bit_grid(block: torch.nn.Module) -> bool:
    """Whether the block's weights pass through slayer's own 8-bit quantization (its default
    ``pre_hook_fx``) with the 1/32 step, the int8 grid used by :class:`_GridLinear`."""
    return slayer_weight_step(block) == 1.0 / _GRID


def _weight(block: torch.nn.Module) -> torch.Tensor:
    synapse = block.synapse
    weight = synapse.weight  # the pruners' parametrization, if any, is evaluated here
    hook = synapse._pre_hook_fx
    return weight if hook is None else hook(weight)


def block_forward(block: torch.nn.Module, x: torch.Tensor,
                  integer_input: bool = False) -> torch.Tensor:
    """Evaluate one supported slayer block on time-major input (see module docstring).

    ``integer_input=True`` promises that ``x`` holds integers in [-128, 127] (spikes, or the
    graded payloads of direct input), which makes the synaptic input exact and lets a dense
    block on the CPU use the exact int8 GEMM (:class:`_GridLinear`).
    """
    kind = _block_kind(block)
    if kind == "flatten":
        if block.shape is None:  # as slayer's Flatten records it, for its export
            block.shape = [int(np.prod(x.shape[2:5])), 1, 1]
        return x.reshape(x.shape[0], x.shape[1], -1)
    weight = _weight(block)
    # integer input on the 8-bit grid: the synaptic input is a multiple of 1/32 (exact)
    exact = integer_input and _on_8bit_grid(block)
    first, last = _active_steps(x)
    active = x[first:last]
    steps, batch = active.shape[:2]
    if kind == "dense":
        weight = weight.reshape(weight.shape[0], -1)
        if exact and active.device.type == "cpu" and int8_gemm_is_used():
            synaptic = _GridLinear.apply(active, weight)
        else:
            synaptic = F.linear(active, weight)
    else:
        s = block.synapse
        out = F.conv2d(active.reshape(steps * batch, *active.shape[2:]), weight[..., 0], None,
                       s.stride[:2], s.padding[:2], s.dilation[:2], s.groups)
        synaptic = out.reshape(steps, batch, *out.shape[1:])
    return _neuron_spikes(block, synaptic, first, x.shape[0], exact)


def _active_steps(x: torch.Tensor) -> tuple[int, int]:
    """``[first, last)``: the time steps outside it carry no spike in any sample.

    The input's drain steps and each layer's first (delayed) step are silent: the GEMMs (forward
    and weight gradient) skip them, as the synapse has no bias. Checked from both ends, a step
    at a time, so the usual case costs a few small reductions.
    """
    steps = x.shape[0]
    first = 0
    while first < steps and not bool(x[first].any()):
        first += 1
    last = steps
    while last > first and not bool(x[last - 1].any()):
        last -= 1
    return (first, last) if first < last else (0, 1)


def to_time_major(x: torch.Tensor) -> torch.Tensor:
    """slayer layout ``(N, ..., T)`` -> ``(T, N, ...)`` (contiguous)."""
    return x.movedim(-1, 0).contiguous()


def to_slayer_layout(x: torch.Tensor) -> torch.Tensor:
    """``(T, N, ...)`` -> slayer layout ``(N, ..., T)``."""
    return x.movedim(0, -1)


def forward_blocks(blocks: list[torch.nn.Module], x: torch.Tensor,
                   engine: str = "fast") -> list[torch.Tensor]:
    """Spikes in slayer layout ``(N, ..., S)`` through ``blocks``, in order: every block's output
    spikes, each ``(N, ..., S)`` (on the fast engine, views of time-major tensors).

    ``engine`` is "fast" (this module; the blocks must pass :func:`network_unsupported_reason`)
    or "slayer" (the blocks' own forward). ``x`` must hold integers (spikes, or the graded
    payloads of direct input), as every network input and hidden layer's spikes do.
    """
    outputs = []
    if engine == "slayer":
        for block in blocks:
            x = block(x)
            outputs.append(x)
        return outputs
    x = to_time_major(x)
    for block in blocks:
        x = block_forward(block, x, integer_input=True)
        outputs.append(to_slayer_layout(x))
    return outputs


def network_unsupported_reason(blocks: list[torch.nn.Module]) -> str | None:
    """The first block the fast path does not cover, as a sentence, or None."""
    for index, block in enumerate(blocks):
        reason = unsupported_reason(block)
        if reason is not None:
            return f"block {index}: {reason}"
    return None
