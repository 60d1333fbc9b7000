"""The exact reference: a netx network computed on Lava's integer grid, batched over samples.

Lava's CPU backend (``Loihi2SimCfg``, fixed point) runs a netx CUBA network as ``Dense`` /
``DelayDense`` / ``Conv`` synapse processes feeding ``LIFReset`` neurons. This module computes
the same integers, sample-parallel, with torch tensors, following Lava 0.10's bit-accurate
process models line by line:

- weights as netx programs them (:func:`lava.lib.dl.netx.utils.optimize_weight_bits` on the
  stored values truncated to int), then as Lava's ``Dense`` model holds them (``clip_weights``
  and ``truncate_weights``, the sign mode determined from the weights); the dendritic sum is
  shifted by the weight exponent (left, or arithmetic right); ``Conv`` uses the stored kernel as
  netx flips it, computes in float32 as Lava does, truncates to int and clamps to 24 bits;
- each synapse delivers at step ``t`` what it received at ``t - 1`` (``DelayDense``: ``t - 1 -
  d`` for a synapse of delay ``d``);
- ``LIFReset``: at steps ``t = (k + 1) mod window`` (layer ``k``, netx's staggered reset) ``u``
  and ``v`` are zeroed; then ``u = trunc(u (4096 - iDecay) / 4096) + (a << 6)`` wrapped to 24
  bits, ``v = trunc(v (4096 - vDecay) / 4096) + u + (bias << 6)`` clipped to +-(2^23 - 1), a
  spike where ``v > vThMant << 6``, and ``v = 0`` where it spiked (netx's LIF has no
  refractory period: ``refDelay`` is not used by Lava).

Because resets are staggered by one step per layer, layer ``k``'s stretch of steps between two
resets lines up with layer ``k - 1``'s: each sample is a "segment" that depends only on its own
spikes, plus the previous sample's last input step (and, with synaptic delays, the previous
samples' tails). :func:`exact_run` computes all segments of a layer at once and then lays them
out as Lava's recorders see them (sample ``n``'s slot holds global steps ``n * window + 1 ..
(n + 1) * window``).

Supported: ``dense``, ``dense_rec`` is not (raises :class:`ExactUnsupported`), ``conv``,
``flatten``, CUBA / LOIHI neurons with any decays, thresholds, biases and synaptic delays.
Imports torch and Lava's weight utilities: call only from the simulation step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from gradr_deploy.netx import Layer, NetxNetwork, dense_delays
from gradr_deploy.simulation import lava_compat

lava_compat.install()
from lava.lib.dl.netx.utils import optimize_weight_bits  # noqa: E402
from lava.utils.weightutils import (  # noqa: E402
    clip_weights,
    determine_sign_mode,
    truncate_weights,
)

UV_BITS = 24  # Lava LIF: u and v are 24-bit
DECAY_UNITY = 1 << 12
ACT_SHIFT = 6  # synaptic input is MSB-aligned by 6 bits
VTH_SHIFT = 6
BIAS_EXP = 6  # netx programs bias_exp = 6
FLOAT32_EXACT = 1 << 24  # float32 sums of integers are exact below this


class ExactUnsupported(Exception):
    """The file uses a layer or neuron the exact reference does not compute (says which)."""


@dataclass(frozen=True)
class FixedLayer:
    """One synaptic layer exactly as Lava holds it.

    Attributes:
        index: the netx layer index.
        kind: ``"dense"`` or ``"conv"``.
        shape: stored (C-order) output shape; conv ``(f, y, x)``.
        weight: dense ``[out, in]`` int64 as Lava's ``Dense`` model holds it; conv
            ``[out, in/groups, ky, kx]`` (PyTorch layout, correlation) as Lava's conv computes.
        weight_exp: dense only: the dendritic sum is shifted by this (left if > 0).
        delay: dense ``[out, in]`` delays in steps, or None.
        conv: stride, padding, dilation (each ``(y, x)``) and groups, or None.
        i_decay, v_decay: decays in 1/4096 per step, as Lava applies them.
        threshold: ``vThMant`` (the spike threshold is ``threshold << 6``).
        bias: ``(neurons,)`` bias mantissas (``bias << 6`` is added to ``v``), or None.
    """

    index: int
    kind: str
    shape: tuple[int, ...]
    weight: np.ndarray
    weight_exp: int
    delay: np.ndarray | None
    conv: tuple[tuple[int, int], tuple[int, int], tuple[int, int], int] | None
    i_decay: int
    v_decay: int
    threshold: int
    bias: np.ndarray | None

    @property
    def neurons(self) -> int:
        return int(np.prod(self.shape))


def _neuron(layer: Layer, source: str) -> tuple[int, int, int]:
    neuron = layer.neuron
    if neuron is None or neuron.kind not in ("CUBA", "LOIHI"):
        kind = None if neuron is None else neuron.kind
        raise ExactUnsupported(f"{source} layer {layer.index}: neuron type {kind} is not CUBA")
    params = neuron.params
    missing = [k for k in ("iDecay", "vDecay", "vThMant") if k not in params]
    if missing:
        raise ExactUnsupported(f"{source} layer {layer.index}: neuron lacks {missing}")
    i_decay = int(params["iDecay"])
    # netx passes du = iDecay - 1 to a 12-bit unsigned register and Lava adds 1 back; as
    # uint16 arithmetic iDecay = 0 wraps to 0 (no decay), like 4096 - 4096.
    du = (i_decay - 1) % (1 << 16)
    effective_i = (du + 1) % (1 << 16)
    return effective_i, int(params["vDecay"]), int(params["vThMant"])


def fixed_layers(network: NetxNetwork) -> list[FixedLayer]:
    """The synaptic layers of ``network`` as Lava holds them (flatten layers dropped).

    Raises:
        ExactUnsupported: input layers, recurrent or complex layers, pooling, non-CUBA neurons.
    """
    source = str(network.path)
    layers: list[FixedLayer] = []
    for layer in network.layers:
        if layer.kind == "flatten":
            continue
        if layer.kind not in ("dense", "conv"):
            raise ExactUnsupported(f"{source} layer {layer.index}: layer type {layer.kind!r}")
        i_decay, v_decay, threshold = _neuron(layer, source)
        bias = None
        if layer.bias is not None and np.any(layer.bias):
            bias = _bias(np.asarray(layer.bias).astype(int).reshape(-1), layer, source)
        if layer.kind == "dense":
            stored = np.asarray(layer.weight_matrix()).astype(int)
            weight, bits, weight_exp, _ = optimize_weight_bits(stored)
            weight = np.asarray(weight).astype(np.int32)
            sign = determine_sign_mode(weight)
            weight = truncate_weights(clip_weights(weight, sign, num_bits=8), sign, bits)
            delay = None
            if layer.delay is not None and np.any(layer.delay):
                try:
                    delay = dense_delays(np.asarray(layer.delay), weight.shape)
                except ValueError as exc:
                    raise ExactUnsupported(f"{source} layer {layer.index}: {exc}") from None
            layers.append(FixedLayer(layer.index, "dense", (layer.neurons,),
                                     np.asarray(weight, np.int64), int(weight_exp), delay, None,
                                     i_decay, v_decay, threshold, bias))
        else:
            if layer.delay is not None and np.any(layer.delay):
                raise ExactUnsupported(f"{source} layer {layer.index}: conv synaptic delays")
            geometry = layer.conv
            kernel = np.asarray(layer.kernel()).astype(int).astype(np.int64)
            conv = (geometry.stride, geometry.padding, geometry.dilation, geometry.groups)
            layers.append(FixedLayer(layer.index, "conv", tuple(layer.shape), kernel, 0, None,
                                     conv, i_decay, v_decay, threshold, bias))
    if not layers:
        raise ExactUnsupported(f"{source}: no synaptic layers")
    return layers


def _bias(values: np.ndarray, layer: Layer, source: str) -> np.ndarray:
    """Per-neuron bias mantissas in stored order, broadcast as netx does (a scalar, one per
    neuron, or one per channel of a conv layer); int16 as Lava's ``bias_mant``."""
    if values.size == 1:
        full = np.full(layer.neurons, values[0])
    elif values.size == layer.neurons:
        full = values
    elif len(layer.shape) == 3 and values.size == layer.shape[0]:
        full = np.repeat(values, layer.shape[1] * layer.shape[2])
    else:
        raise ExactUnsupported(f"{source} layer {layer.index}: bias of {values.size} values "
                               f"for {layer.neurons} neurons")
    return full.astype(np.int32).astype(np.int16).astype(np.int64)


# --- one layer over a batch of segments -------------------------------------------------------


def _trunc_decay(x: torch.Tensor, decay: int) -> torch.Tensor:
    """``sign(x) * (|x| * (4096 - decay) >> 12)``: Lava's decay, rounded toward zero."""
    product = x * (DECAY_UNITY - decay)
    return torch.sign(product) * torch.div(product.abs(), DECAY_UNITY, rounding_mode="floor")


def _shift(a: torch.Tensor, exp: int) -> torch.Tensor:
    if exp > 0:
        return a * (1 << exp)
    if exp < 0:
        return torch.div(a, 1 << -exp, rounding_mode="floor")  # arithmetic right shift
    return a


def _synaptic_input(layer: FixedLayer, spikes: torch.Tensor, in_shape: tuple[int, ...],
                    history: torch.Tensor | None) -> torch.Tensor:
    """Dendritic input ``(B, neurons, S)`` each step for input spikes ``(B, F, S)``.

    Step ``j``'s input comes from spikes of step ``j`` (the synapse's one-step delay is in the
    segment alignment); a delay ``d`` reaches back ``d`` more steps, into ``history`` (the
    previous segments' last steps, ``(B, F, H)``) where needed.
    """
    batch, _, steps = spikes.shape
    if layer.kind == "conv":
        stride, padding, dilation, groups = layer.conv
        c, h, w = in_shape
        x = spikes.permute(0, 2, 1).reshape(batch * steps, c, h, w).to(torch.float32)
        out = torch.nn.functional.conv2d(x, torch.as_tensor(layer.weight, dtype=torch.float32),
                                         stride=stride, padding=padding, dilation=dilation,
                                         groups=groups)
        a = torch.trunc(out).to(torch.int64).reshape(batch, steps, -1).permute(0, 2, 1)
        limit = (1 << (UV_BITS - 1)) - 1
        return a.clamp(-limit, limit)  # Lava's signed_clamp to 24 bits
    dtype = _matmul_dtype(layer.weight, spikes)
    if layer.delay is None:
        weight = torch.as_tensor(layer.weight, dtype=dtype)
        a = torch.einsum("oi,bis->bos", weight, spikes.to(dtype))
        return _shift(torch.round(a).to(torch.int64), layer.weight_exp)
    full = spikes if history is None else torch.cat([history, spikes], dim=2)
    offset = full.shape[2] - steps
    total = torch.zeros(batch, layer.neurons, steps, dtype=torch.int64)
    for d in np.unique(layer.delay):
        weight = torch.as_tensor(np.where(layer.delay == d, layer.weight, 0), dtype=dtype)
        start = offset - int(d)
        source = full[:, :, max(start, 0): max(start + steps, 0)]
        if start < 0:  # no history that far back: those steps saw no spikes
            missing = min(-start, steps)
            source = torch.cat([torch.zeros(batch, full.shape[1], missing, dtype=full.dtype),
                                source], dim=2)
        a = torch.einsum("oi,bis->bos", weight, source.to(dtype))
        total += torch.round(a).to(torch.int64)
    return _shift(total, layer.weight_exp)


def _matmul_dtype(weight: np.ndarray, spikes: torch.Tensor) -> torch.dtype:
    bound = float(np.abs(weight).sum(axis=1).max(initial=0)) * float(spikes.abs().max())
    return torch.float32 if bound < FLOAT32_EXACT else torch.float64


def _neurons(layer: FixedLayer, a: torch.Tensor) -> torch.Tensor:
    """LIF spikes ``(B, neurons, S)`` for dendritic input ``a``; state starts at zero."""
    batch, neurons, steps = a.shape
    u = torch.zeros(batch, neurons, dtype=torch.int64)
    v = torch.zeros_like(u)
    bias = 0 if layer.bias is None else torch.as_tensor(layer.bias) * (1 << BIAS_EXP)
    threshold = layer.threshold << VTH_SHIFT
    top = 1 << (UV_BITS - 1)
    out = torch.zeros(batch, neurons, steps, dtype=torch.uint8)
    for j in range(steps):
        u = _trunc_decay(u, layer.i_decay) + a[:, :, j] * (1 << ACT_SHIFT)
        u = torch.where(u > top, u - 2 * top, u)
        u = torch.where(u <= -top, u + 2 * top, u)
        v = _trunc_decay(v, layer.v_decay) + u + bias
        v = v.clamp(-top + 1, top - 1)
        spiked = v > threshold
        v = torch.where(spiked, torch.zeros_like(v), v)
        out[:, :, j] = spiked
    return out


# --- the whole network -----------------------------------------------------------------------


@dataclass
class ExactRun:
    """Spikes of every synaptic layer, laid out as Lava's recorders see them.

    Attributes:
        layers: per synaptic layer, ``(N, neurons, window)`` uint8 (conv neurons in stored
            ``(f, y, x)`` C order): sample ``n``'s slot holds global steps ``n * window + 1 ..
            (n + 1) * window`` of a continuous Lava run.
        indices: netx layer index of each entry.
    """

    layers: list[np.ndarray]
    indices: list[int]

    @property
    def output(self) -> np.ndarray:
        return self.layers[-1]


def _input_shape(network: NetxNetwork, first: FixedLayer,
                 input_shape: tuple[int, ...] | None) -> tuple[int, ...]:
    if first.kind == "dense":
        return (first.weight.shape[1],)
    if input_shape is None:
        raise ExactUnsupported(f"{network.path}: a conv-first network needs its input shape")
    x, y, f = input_shape
    return (f, y, x)


def exact_run(network: NetxNetwork, spikes: np.ndarray, window: int,
              input_shape: tuple[int, ...] | None = None, batch_size: int = 256,
              streams: int = 1) -> ExactRun:
    """Every layer's spikes for input ``spikes`` ``(N, F, window)`` presented back to back.

    The samples form ``streams`` streams of ``ceil(N / streams)`` consecutive samples, each
    presented back to back from step 1 of a run (as
    :func:`gradr_deploy.simulation.lava_sim.run_lava` runs one
    stream per network copy); a sample's neighbours matter only within its stream.

    Args:
        network: the netx file as read by :func:`gradr_deploy.netx.read_netx`.
        spikes: per sample, its input (0/1, or graded integers), drain steps included; ``F`` in
            C order of the stored input shape (``(f, y, x)`` for conv-first networks).
        window: steps per sample; Lava resets each layer every ``window`` steps.
        input_shape: netx's ``(x, y, f)`` for conv-first networks without an input layer.
        batch_size: samples computed at once (memory: batch x neurons x window int64).
        streams: how many streams the samples are split into (the Lava run's copies).

    Raises:
        ExactUnsupported: see :func:`fixed_layers`; also more layers than ``window - 1``.
    """
    layers = fixed_layers(network)
    if len(layers) >= window:
        raise ExactUnsupported(
            f"{network.path}: {len(layers)} layers need a window of at least "
            f"{len(layers) + 1} steps (got {window})")
    n = len(spikes)
    per_stream = -(-n // max(1, streams))
    shapes = [_input_shape(network, layers[0], input_shape)] + [la.shape for la in layers[:-1]]
    # how many earlier samples a segment can depend on: the previous input step, and delays
    reach = max((int(la.delay.max()) for la in layers if la.delay is not None), default=0)
    back = max(1, math.ceil(reach / window))  # samples of history a delayed synapse reads
    overlap = 1 + sum(math.ceil(int(la.delay.max()) / window) for la in layers
                      if la.delay is not None)
    outputs = [np.zeros((n, la.neurons, window), np.uint8) for la in layers]
    with torch.no_grad():
        pre = _pre_segments(layers, shapes)
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            first = max(0, start - overlap)
            chunk = torch.as_tensor(np.asarray(spikes[first:stop]), dtype=torch.int64)
            position = torch.as_tensor(np.arange(first, stop) % per_stream)
            segments = _segments(chunk, position)
            for k, layer in enumerate(layers):
                history = _history(segments, position, back) if layer.delay is not None else None
                a = _synaptic_input(layer, segments, shapes[k], history)
                segments = _neurons(layer, a)
                keep = segments[start - first:].numpy()
                _place(outputs[k], keep, start, k, window, pre[k], per_stream)
    return ExactRun(outputs, [la.index for la in layers])


def _segments(chunk: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
    """Layer 0's input per segment: the previous sample's last step (nothing at the start of
    a stream), then steps 0..W-2. ``position``: each sample's place in its stream."""
    previous = torch.zeros_like(chunk[:, :, -1:])
    previous[1:] = chunk[:-1, :, -1:]
    previous[position == 0] = 0
    return torch.cat([previous, chunk[:, :, :-1]], dim=2)


def _history(segments: torch.Tensor, position: torch.Tensor, back: int) -> torch.Tensor:
    """The ``back`` previous segments of each segment in its stream, oldest first (zeros
    before the stream's start), for synaptic delays."""
    parts = []
    for b in range(back, 0, -1):
        shifted = torch.zeros_like(segments)
        shifted[b:] = segments[:-b]
        shifted[position < b] = 0  # the b-th predecessor is in another stream, or none
        parts.append(shifted)
    return torch.cat(parts, dim=2)


def _pre_segments(layers: list[FixedLayer], shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    """Steps 1..k of layer k, before its first reset: zero input, only biases act."""
    pre: list[np.ndarray] = []
    previous = torch.zeros(1, int(np.prod(shapes[0])), 0, dtype=torch.int64)
    for k, layer in enumerate(layers):
        # layer k at global steps 1..k reads layer k-1 at steps 0..k-1 (step 0: nothing)
        source = torch.cat([torch.zeros(1, previous.shape[1], 1, dtype=torch.int64),
                            previous], dim=2)[:, :, :k]
        a = _synaptic_input(layer, source, shapes[k], None) if k else torch.zeros(
            1, layer.neurons, 0, dtype=torch.int64)
        out = _neurons(layer, a).to(torch.int64)
        pre.append(out[0].numpy().astype(np.uint8))
        previous = out
    return pre


def _place(out: np.ndarray, segments: np.ndarray, start: int, k: int, window: int,
           pre: np.ndarray, per_stream: int) -> None:
    """Write segments of samples ``start..`` into Lava's recorder layout (see ExactRun)."""
    count = len(segments)
    out[start: start + count, :, k:] = segments[:, :, : window - k]
    if k == 0:
        return
    spill = segments[:, :, window - k:]  # the segment's last k steps: next sample's slots
    for i in range(count):
        sample = start + i
        if sample + 1 < len(out) and (sample + 1) % per_stream:
            out[sample + 1, :, :k] = spill[i]
    for sample in range(start, start + count):
        if sample % per_stream == 0:  # a stream's first steps: the layer before its first reset
            out[sample, :, :k] = pre
