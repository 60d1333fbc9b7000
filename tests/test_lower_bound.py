"""Tests for gradr_deploy.mapping.lower_bound: the refined core bound is never above an exact
optimum.

Brute force on tiny layers (every neuron subset, every order within a core, an independent
re-implementation of the cost model), the bound on random small layers against the cores the
partitioner finds, and the acceptance criterion on trained-like MNIST 2FC weights.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradr_deploy.errors import BudgetError
from gradr_deploy.hardware.profile import HardwareProfile, load_profile
from gradr_deploy.mapping import dense_connectivity, map_network
from gradr_deploy.mapping.layer_stats import layer_stats, miss_count
from gradr_deploy.mapping.lower_bound import CoreProblem, axon_lower_bound, memory_lower_bound
from gradr_deploy.netx import dense_network as net_of

# --- an independent cost model (pure Python) ------------------------------------------------


def block_cost(k: int, bits: int, p: HardwareProfile) -> int:
    """nengo-loihi bits_per_axon, written out again (not gradr_deploy.mapping.cost.block_bits)."""
    words = 0
    while k > 0:
        take = min(k, p.synapses_per_block)
        words += -(-(take * bits + p.block_header_bits) // p.memory_word_bits)
        k -= take
    return words * p.memory_word_bits


def core_cost(mask: np.ndarray, order: tuple[int, ...], bits: int, p: HardwareProfile) -> int:
    """Synapse bits of one core holding neurons ``order`` (in that order)."""
    n = len(order)
    index = max(p.min_index_bits, math.ceil(math.log2(n))) if n > 1 else p.min_index_bits
    total = 0
    for a in range(mask.shape[1]):
        positions = [q for q, j in enumerate(order) if mask[j, a]]
        if positions:
            span = positions[-1] - positions[0] + 1
            total += min(block_cost(span, bits, p), block_cost(len(positions), bits + index, p))
    return total


def cheapest(mask: np.ndarray, neurons: tuple[int, ...], bits: int, p: HardwareProfile) -> int:
    """Least synapse bits of a core holding ``neurons`` over every order."""
    return min(core_cost(mask, order, bits, p) for order in itertools.permutations(neurons))


def tiny_profile(draw: st.DrawFn) -> HardwareProfile:
    return load_profile(
        "loihi1",
        {
            "synapses_per_block": draw(st.integers(1, 4)),
            "block_header_bits": draw(st.integers(0, 3)),
            "memory_word_bits": draw(st.sampled_from([1, 4, 8])),
            "min_index_bits": draw(st.integers(0, 2)),
            "synapse_memory_bits_per_core": draw(st.integers(8, 120)),
            "input_axons_per_core": draw(st.integers(2, 8)),
            "neurons_per_core": draw(st.integers(2, 6)),
        },
    )


@st.composite
def tiny_layers(draw: st.DrawFn) -> tuple[np.ndarray, int, HardwareProfile]:
    n_post = draw(st.integers(1, 6))
    n_pre = draw(st.integers(1, 6))
    density = draw(st.sampled_from([0.3, 0.6, 0.85, 1.0]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    mask = rng.random((n_post, n_pre)) < density
    mask[:, 0] |= ~mask.any(axis=1)  # every neuron has an input (dead neurons are tested below)
    return mask, draw(st.integers(1, 4)), tiny_profile(draw)


# --- brute force ------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tiny_layers())
def test_core_memory_bound_never_exceeds_the_cheapest_core(case) -> None:
    mask, bits, p = case
    conn = dense_connectivity(mask)
    stats = layer_stats(conn.indptr, conn.indices, conn.n_pre)
    assert stats.refinable == (mask.shape[0] >= 2)
    for n in range(1, mask.shape[0] + 1):
        subsets = list(itertools.combinations(range(mask.shape[0]), n))
        exact = min(cheapest(mask, c, bits, p) for c in subsets)
        bound = memory_lower_bound(stats, n, bits, p)
        assert bound <= exact + 1e-6, (n, bound, exact)
        axons = min(int(mask[list(c)].any(axis=0).sum()) for c in subsets)
        assert axon_lower_bound(stats, n) <= axons


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tiny_layers())
def test_layer_bound_never_exceeds_the_optimal_core_count(case) -> None:
    """Exact optimum: dynamic programming over all sets of neurons (feasible = fits a core)."""
    mask, _, p = case
    weights = np.where(mask, 1.0, 0.0)
    weights[mask] = 3.0  # two-bit excitatory weights
    n_post = mask.shape[0]
    try:
        layer = map_network(net_of([weights]), p, refine_bounds=True).layers[1]
    except BudgetError:  # some neuron alone exceeds a core: no placement exists
        bits = 2
        assert not all(
            int(mask[j].sum()) <= p.input_axons_per_core
            and cheapest(mask, (j,), bits, p) <= p.synapse_memory_bits_per_core
            for j in range(n_post)
        )
        return
    bits = layer.weight_bits + layer.delay_bits
    feasible = {}
    for mask_bits in range(1, 1 << n_post):
        members = tuple(j for j in range(n_post) if mask_bits >> j & 1)
        fits = (
            len(members) <= p.neurons_per_core
            and int(mask[list(members)].any(axis=0).sum()) <= p.input_axons_per_core
            and cheapest(mask, members, bits, p) <= p.synapse_memory_bits_per_core
        )
        feasible[mask_bits] = fits
    best = [0] + [math.inf] * ((1 << n_post) - 1)
    for full in range(1, 1 << n_post):
        low = full & -full
        sub = full
        while sub:
            if sub & low and feasible[sub]:
                best[full] = min(best[full], best[full ^ sub] + 1)
            sub = (sub - 1) & full
    optimum = best[(1 << n_post) - 1]
    assert layer.lower_bound <= optimum <= layer.cores


def test_dead_neurons_and_unused_axons() -> None:
    # neurons without inputs and inputs without synapses: the bound still holds
    mask = np.zeros((5, 4), bool)
    mask[0, :2] = mask[1, 1:3] = mask[3, 0] = True
    p = load_profile("loihi1", {"synapse_memory_bits_per_core": 64, "memory_word_bits": 8})
    conn = dense_connectivity(mask)
    stats = layer_stats(conn.indptr, conn.indices, conn.n_pre)
    assert stats.axons == 3 and stats.neurons == 5
    for n in range(1, 6):
        exact = min(cheapest(mask, c, 2, p) for c in itertools.combinations(range(5), n))
        assert memory_lower_bound(stats, n, 2, p) <= exact


# --- the bound's ingredients -----------------------------------------------------------------


def test_miss_count_bounds_the_axons_some_neurons_all_miss() -> None:
    rng = np.random.default_rng(3)
    mask = rng.random((9, 12)) < 0.6
    conn = dense_connectivity(mask)
    stats = layer_stats(conn.indptr, conn.indices, conn.n_pre)
    used = mask.any(axis=0)
    for x in range(1, 9):
        most = max(
            int((~mask[list(c)][:, used]).all(axis=0).sum())
            for c in itertools.combinations(range(9), x)
        )
        assert most <= miss_count(stats, np.array([x]))[0]


def test_dual_value_is_valid_at_any_multipliers() -> None:
    # weak duality: every non-negative multiplier vector gives a lower bound
    rng = np.random.default_rng(5)
    mask = rng.random((5, 5)) < 0.7
    mask[:, 0] = True
    p = load_profile("loihi1", {"synapses_per_block": 2, "memory_word_bits": 4})
    conn = dense_connectivity(mask)
    stats = layer_stats(conn.indptr, conn.indices, conn.n_pre)
    for n in range(1, 6):
        problem = CoreProblem(stats, n, 3, p)
        exact = min(cheapest(mask, c, 3, p) for c in itertools.combinations(range(5), n))
        for _ in range(30):
            y = rng.exponential(rng.choice([0.01, 1.0, 30.0]), problem.size)
            assert problem.value(y) <= exact + 1e-6


# --- random small layers through the mapper --------------------------------------------------




@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_in=st.integers(20, 90),
    n_out=st.integers(20, 90),
    density=st.sampled_from([0.05, 0.2, 0.5, 0.8, 1.0]),
    seed=st.integers(0, 2**16),
    memory=st.sampled_from([2048, 4096, 16384]),
)
def test_bound_at_most_cores_found(n_in, n_out, density, seed, memory) -> None:
    rng = np.random.default_rng(seed)
    w = rng.integers(-60, 61, (n_out, n_in)) * 2
    w[rng.random(w.shape) >= density] = 0
    p = load_profile("loihi1", {"synapse_memory_bits_per_core": memory})
    try:
        m = map_network(net_of([w]), p, refine_bounds=True)
    except Exception as error:  # a single neuron too big for a core
        assert "alone does not fit one core" in str(error)
        return
    for layer in m.layers:
        assert layer.lower_bound <= layer.cores
        assert (layer.bound_note == "") == (layer.lower_bound == layer.cores)


# --- acceptance criterion (issue 4) on trained-like weights ----------------------------------


def trained_like(n_out: int, n_in: int, rng: np.random.Generator) -> np.ndarray:
    """lava-dl-exported 8-bit weights: even integers in [-256, 254], ~N(0, 30), ~22% zeros."""
    w = np.clip(np.round(rng.normal(0.0, 30.0, (n_out, n_in)) / 2) * 2, -256, 254)
    zeros = (w == 0).mean()
    w[rng.random(w.shape) < (0.22 - zeros) / (1 - zeros)] = 0
    return w


def magnitude_pruned(w: np.ndarray, keep: float, rng: np.random.Generator) -> np.ndarray:
    """Zero all but the ``keep`` fraction of largest-magnitude weights (ties at random)."""
    flat = np.abs(w).ravel()
    kept = np.lexsort((rng.random(flat.size), -flat))[: round(keep * flat.size)]
    out = np.zeros(flat.size)
    out[kept] = w.ravel()[kept]
    return out.reshape(w.shape)


@pytest.mark.parametrize("hardware", ["loihi1", "loihi2-brief"])
def test_mnist_2fc_trained_like_within_10_percent_of_bound(hardware: str) -> None:
    rng = np.random.default_rng(2024)
    dense = [trained_like(800, 784, rng), trained_like(10, 800, rng)]
    assert 0.2 <= np.mean(dense[0] == 0) <= 0.25
    pruned = [magnitude_pruned(w, 0.05, rng) for w in dense]
    profile = load_profile(hardware)
    cores = {}
    for name, weights in (("dense", dense), ("pruned", pruned)):
        m = map_network(net_of(weights), profile, refine_bounds=True)
        for layer in m.layers:
            assert layer.cores <= math.floor(1.1 * layer.lower_bound), (name, layer.to_dict())
        cores[name] = m.layers[1].cores
    assert cores["pruned"] < cores["dense"]
