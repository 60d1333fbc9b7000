"""Synapse-memory cost primitives shared by the partitioner and the lower bounds.

nengo-loihi's ``SynapseConfig.bits_per_axon``: an input axon's synapses on one core form
blocks of at most ``synapses_per_block``; a block of ``n`` synapses costs ``n * bits +
block_header_bits`` rounded up to a ``memory_word_bits`` word. Sparse synapses carry an index
of ``max(min_index_bits, ceil(log2(neurons on the core)))`` bits on top of ``bits``.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from gradr_deploy.hardware.profile import HardwareProfile


def block_bits(synapses: np.ndarray | int, bits: int, profile: HardwareProfile) -> np.ndarray:
    """Synapse-memory bits of axons carrying ``synapses`` synapses of ``bits`` bits each.

    nengo-loihi ``SynapseConfig.bits_per_axon``: blocks of ``synapses_per_block`` synapses,
    each ``n * bits + block_header_bits`` rounded up to ``memory_word_bits``.
    """
    k = np.asarray(synapses, dtype=np.int64)
    per_block = profile.synapses_per_block
    word = profile.memory_word_bits
    full, rest = np.divmod(k, per_block)
    full_cost = -(-(per_block * bits + profile.block_header_bits) // word) * word
    rest_cost = -(-(rest * bits + profile.block_header_bits) // word) * word
    return full * full_cost + np.where(rest > 0, rest_cost, 0)


def index_bits(neurons: int, profile: HardwareProfile) -> int:
    """Bits of a sparse synapse's target index in a core of ``neurons`` neurons."""
    return max(profile.min_index_bits, math.ceil(math.log2(max(neurons, 1))))


def envelope(bits: int, max_synapses: int, profile: HardwareProfile) -> tuple[np.ndarray, ...]:
    """Lower convex envelope (vertices k, cost) of ``block_bits(k)`` on 0..max_synapses."""
    return _hull(
        bits,
        max_synapses,
        profile.synapses_per_block,
        profile.block_header_bits,
        profile.memory_word_bits,
    )


@functools.lru_cache(maxsize=64)
def _hull(bits: int, max_k: int, per_block: int, header: int, word: int) -> tuple[np.ndarray, ...]:
    k = np.arange(max_k + 1)
    full, rest = np.divmod(k, per_block)
    cost = full * (-(-(per_block * bits + header) // word) * word)
    cost = (cost + np.where(rest > 0, -(-(rest * bits + header) // word) * word, 0)).astype(float)
    hull: list[int] = []
    for i in range(len(k)):
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            if (cost[b] - cost[a]) * (k[i] - k[a]) >= (cost[i] - cost[a]) * (k[b] - k[a]):
                hull.pop()
            else:
                break
        hull.append(i)
    return k[hull].astype(float), cost[hull]
