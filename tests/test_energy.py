"""Tests for gradr_deploy.energy: hand-computed synops, neuron updates, routing, latency."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gradr_deploy.energy import estimate_energy
from gradr_deploy.errors import InputError
from gradr_deploy.hardware.profile import load_profile
from gradr_deploy.mapping import map_file, map_network
from gradr_deploy.netx import dense_network as net_of

NETX_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "netx"




def test_synops_neuron_updates_and_joules_by_hand() -> None:
    # input (3 neurons) -> dense 4 -> dense 2. Input neuron j has fan-out 4 - j into layer 1
    # (column j is nonzero in rows j..3): 4 + 3 + 2 = 9 synapses.
    w1 = np.array([[1, 0, 0], [1, 1, 0], [1, 1, 1], [1, 1, 1]])
    w2 = np.ones((2, 4))  # every layer-1 neuron fans out to 2
    m = map_network(net_of([w1, w2]), load_profile("loihi1"))
    steps = 10
    spikes = {0: np.full(steps, 3.0), 1: 5}  # 30 input spikes, 5 layer-1 spikes
    e = estimate_energy(m, spikes, steps)
    # mean fan-out of the input layer = 9 / 3 = 3 -> 30 x 3 = 90; layer 1: 5 x 2 = 10
    assert e.synops == pytest.approx(100)
    assert e.neuron_updates == (3 + 4 + 2) * steps
    assert e.synop_j == pytest.approx(100 * 23.6e-12)
    assert e.neuron_j == pytest.approx(90 * 81e-12)
    half = estimate_energy(m, spikes, steps, active_fraction=0.5)
    assert half.neuron_j == pytest.approx(90 * (0.5 * 81 + 0.5 * 52) * 1e-12)
    # per-neuron spikes use each neuron's own fan-out: only input neuron 0 (fan-out 4) spikes
    per_neuron = np.zeros((steps, 3))
    per_neuron[:, 0] = 1
    assert estimate_energy(m, {0: per_neuron}, steps).synops == pytest.approx(40)


def test_spike_routing_counts_tile_hops() -> None:
    # one input neuron -> 5 neurons, one neuron per core: global cores 0 (input), 1..5.
    # Tiles hold 4 cores: cores 1-3 share tile 0 with the input (1.7 pJ within the tile),
    # cores 4-5 sit in tile 1, one east-west hop away (1.7 + 3.0 pJ). One spike reaches all 5.
    p = load_profile("loihi1", {"neurons_per_core": 1})
    m = map_network(net_of([np.ones((5, 1))]), p)
    e = estimate_energy(m, {0: 1}, time_steps=1)
    assert e.spike_messages == 5
    assert e.routing_j == pytest.approx((3 * 1.7 + 2 * (1.7 + 3.0)) * 1e-12)


def test_latency_and_static_energy_need_timing() -> None:
    m = map_network(net_of([np.ones((4, 3))]), load_profile("loihi2"))
    unknown = estimate_energy(m, {0: 2}, time_steps=8)
    assert unknown.latency_s is None and unknown.static_j is None
    assert any("latency and static energy unknown" in n for n in unknown.notes)
    assert any("proxy" in n for n in unknown.notes)  # Loihi 2 borrows Loihi 1 figures
    timed = map_network(
        net_of([np.ones((4, 3))]), load_profile("loihi2", {"time_per_step_s": 1e-5})
    )
    known = estimate_energy(timed, {0: 2}, time_steps=8)
    assert known.latency_s == pytest.approx(8e-5)
    assert known.static_j == pytest.approx(0.23 * 8e-5)
    assert known.total_j == pytest.approx(known.dynamic_j + known.static_j)


def test_per_operation_latency_model() -> None:
    overrides = {"synop_ns": 2.0, "neuron_update_ns": 5.0, "barrier_sync_ns": 100.0}
    m = map_network(net_of([np.ones((4, 3))]), load_profile("loihi1", overrides))
    # busiest core per step: input core 3 neurons x 5 ns = 15 ns; layer-1 core 4 x 5 = 20 ns,
    # and its incoming synops 12 spikes x 4 / 2 steps = 24 per step x 2 ns = 48 ns -> 48 + 100
    e = estimate_energy(m, {0: np.array([6.0, 6.0])}, time_steps=2)
    assert e.latency_s == pytest.approx(2 * (48 + 100) * 1e-9)


def test_cpu_gpu_comparison_uses_dense_connections() -> None:
    w = np.ones((4, 3))
    w[0, 0] = 0  # pruned synapses still cost a MAC on a CPU
    m = map_network(net_of([w]), load_profile("loihi1"))
    cmp = estimate_energy(m, {}, 5).conventional
    assert cmp["cpu"]["synops"] == 12 and cmp["cpu"]["neuron_updates"] == 4
    assert cmp["cpu"]["total_j"] == pytest.approx(16 * 8.6e-9)
    assert cmp["gpu"]["total_j"] == pytest.approx(16 * 0.3e-9)


def test_constants_carry_sources_and_result_is_json_ready() -> None:
    m = map_network(net_of([np.ones((4, 3))]), load_profile("loihi1"))
    d = estimate_energy(m, {0: 3}, 4).to_dict()
    json.dumps(d, allow_nan=False)
    assert "Davies 2018 Table 2" in d["constants"]["synop_pj"]["source"]
    assert d["constants"]["synop_pj"]["value"] == 23.6
    assert "pre-silicon" in d["notes"][0]


def test_bad_activity_is_an_input_error() -> None:
    m = map_network(net_of([np.ones((4, 3))]), load_profile("loihi1"))
    with pytest.raises(InputError, match="layer 7"):
        estimate_energy(m, {7: 1}, 4)
    with pytest.raises(InputError, match=r"shape \(3,\)"):
        estimate_energy(m, {0: np.ones(3)}, 4)
    with pytest.raises(InputError, match=">= 0"):
        estimate_energy(m, {0: -1}, 4)


def test_network_without_input_layer_takes_external_spikes() -> None:
    path = NETX_DIR / "oxford.net"
    if not path.exists():
        pytest.skip(f"{path} missing: the real netx files live in ../shared/data/netx")
    m = map_file(path, "loihi1")
    e = estimate_energy(m, {"input": np.full(50, 10.0), 0: 100}, time_steps=50)
    fan_in_total = m.layers[0].synapses  # all synapses of layer 0 start at the 200 inputs
    expected = 500 * fan_in_total / 200 + 100 * m.layers[0].fan_out_synapses / 256
    assert e.synops == pytest.approx(expected)
