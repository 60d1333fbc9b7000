"""How netx programs weights and delays: bits per weight, exponent, sign mode, delay bits.

A numpy re-implementation (no Lava import) of what lava-dl 0.6's netx derives from the stored
weights when it builds Lava processes; the mapper's synapse-memory cost starts from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from gradr_deploy.errors import InputError
from gradr_deploy.netx.layers import MAX_DELAY, MAX_WEIGHT_BITS


class SignMode(IntEnum):
    """Loihi synapse sign modes, numbered as in netx's ``SYNAPSE_SIGN_MODE``."""

    MIXED = 1
    EXCITATORY = 2
    INHIBITORY = 3


@dataclass(frozen=True)
class WeightFormat:
    """How netx programs a layer's weights: bits per weight, exponent, sign mode.

    ``bits`` is what netx computes: 1-8, or 9 for mixed-sign weights beyond -128..127 (netx
    passes 9 on; Loihi stores at most :data:`MAX_WEIGHT_BITS`, the mapper caps and warns).
    """

    bits: int
    exponent: int
    sign_mode: SignMode


def weight_format(weight: np.ndarray) -> WeightFormat:
    """Bits, exponent and sign mode netx's ``optimize_weight_bits`` derives from ``weight``.

    A numpy re-implementation (no Lava import) of lava-dl 0.6 ``netx.utils.optimize_weight_bits``
    applied to the weights as netx loads them (``astype(int)``). Differences, on purpose: values
    beyond -256..254 are an error here where netx prints a warning and clips; an all-zero matrix
    gives 1 bit where netx divides by zero.

    Args:
        weight: integer-valued weight mantissas, any shape.

    Returns:
        the weight format; ``bits`` is the synapse-memory width of one weight in bits.
    """
    w = np.asarray(weight)
    if w.size == 0:
        return WeightFormat(1, 0, SignMode.EXCITATORY)
    if not np.isfinite(w).all():
        raise InputError("weights contain NaN or infinity; re-export the network")
    w_max, w_min = int(np.trunc(w.max())), int(np.trunc(w.min()))  # netx: astype(int)
    if max(abs(w_max), abs(w_min)) >= 2**62:
        raise InputError(f"weights up to {max(abs(w_max), abs(w_min))} are not integer mantissas")
    if w_max == 0 and w_min == 0:
        return WeightFormat(1, 0, SignMode.EXCITATORY)
    if (w_max > 254 and w_min < 0) or (w_min < -256 and w_max > 0):
        raise InputError(
            f"weights span {w_min}..{w_max}: beyond Loihi's -256..254 for mixed-sign synapses "
            "(netx would clip them); re-export with 8-bit weight quantization"
        )
    if w_max < 0:
        mode, signed, scale = SignMode.INHIBITORY, 0, -256 / w_min
    elif w_min >= 0:
        mode, signed, scale = SignMode.EXCITATORY, 0, 255 / w_max
    else:
        pos_scale = 127 / w_max if w_max > 0 else math.inf
        mode, signed, scale = SignMode.MIXED, 1, min(pos_scale, -128 / w_min)
    scale_bits = math.floor(math.log2(scale)) + signed
    # n: the largest power of two (<= 8) dividing every weight = the trailing zero bits of the
    # bitwise OR of all magnitudes
    magnitudes = np.abs(w.astype(np.int64 if max(abs(w_min), abs(w_max)) >= 2**31 else np.int32))
    combined = int(np.bitwise_or.reduce(magnitudes, axis=None))
    trailing = (combined & -combined).bit_length() - 1
    n = min(trailing, MAX_WEIGHT_BITS) - signed
    bits = MAX_WEIGHT_BITS - scale_bits - n
    return WeightFormat(int(bits), -scale_bits, mode)


def delay_bits(delay: np.ndarray | None) -> int:
    """Bits per synapse for the delays (0 when there are none or all are 0; 6 for up to 62)."""
    if delay is None:
        return 0
    d = np.asarray(delay)
    if d.size == 0 or d.max() <= 0:
        return 0
    return math.ceil(math.log2(min(float(d.max()), MAX_DELAY) + 1))


def dense_delays(delay: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A dense layer's stored ``delay`` as one delay per synapse ``[out, in]``, as netx expands
    it: a scalar for all, one per output neuron or one per input, or the full matrix; truncated
    to integers and clamped to 0 .. :data:`MAX_DELAY`.

    Raises:
        ValueError: the delay's shape fits none of these.
    """
    delay = np.clip(np.trunc(np.asarray(delay, dtype=np.float64)), 0, MAX_DELAY).astype(np.int64)
    if delay.ndim == 0:
        return np.full(shape, int(delay))
    if delay.ndim == 1 and delay.size == shape[0]:
        return np.repeat(delay.reshape(-1, 1), shape[1], axis=1)
    if delay.ndim == 1 and delay.size == shape[1]:
        return np.repeat(delay.reshape(1, -1), shape[0], axis=0)
    if delay.size == shape[0] * shape[1]:
        return delay.reshape(shape)
    raise ValueError(f"delay of shape {delay.shape} does not fit weight {shape}")
