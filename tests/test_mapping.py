"""Tests for gradr_deploy.mapping and .profiles: hand-computed splits, invariants, real files."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from netx_writer import shared_netx

from gradr_deploy.errors import BudgetError, InputError
from gradr_deploy.hardware.profile import (
    CONSTANT_KEYS,
    HardwareProfile,
    available_profiles,
    load_conventional_devices,
    load_profile,
)
from gradr_deploy.mapping import (
    NetworkMapping,
    block_bits,
    dense_connectivity,
    index_bits,
    map_file,
    map_network,
    partition,
)
from gradr_deploy.netx import (
    ConvGeometry,
    DenseLayer,
    InputLayer,
    NetxNetwork,
    PoolLayer,
    RecurrentDenseLayer,
    read_netx,
)
from gradr_deploy.netx import dense_network as net_of

real_file = shared_netx




def random_weights(n_out: int, n_in: int, density: float, seed: int) -> np.ndarray:
    """8-bit mixed-sign weights (netx derives 8 bits: -127..127 with odd values)."""
    rng = np.random.default_rng(seed)
    w = rng.integers(-127, 128, size=(n_out, n_in))
    w[w == 0] = 1
    w[0, 0] = 127  # fixes the scale: netx then needs all 8 bits
    if density < 1:
        w[rng.random(w.shape) >= density] = 0
    return w


# --- cost model -------------------------------------------------------------------------------


def test_block_bits_follows_nengo_loihi_bits_per_axon() -> None:
    p = load_profile("loihi1")
    # one block of 64 8-bit synapses: 64 * 8 + 4 + 6 = 522 bits -> rounded to 9 words = 576
    assert block_bits(64, 8, p) == 576
    # 65 synapses: a full block plus a block of 1 (8 + 10 = 18 -> one 64-bit word)
    assert block_bits(65, 8, p) == 576 + 64
    assert block_bits(0, 8, p) == 0
    np.testing.assert_array_equal(block_bits(np.array([1, 62, 63]), 8, p), [64, 512, 576])
    assert index_bits(1024, p) == 10 and index_bits(10, p) == 6  # 6-bit minimum


# --- hand-computed splits ---------------------------------------------------------------------


def test_layer_split_by_neurons() -> None:
    # 10 inputs -> 2500 neurons, all weights 1: netx derives 1-bit excitatory weights.
    # Loihi 1 holds 1024 neurons per core; memory per core is tiny (10 axons x 16 blocks of
    # 64 one-bit synapses, 128 bits each = 20480 bits), so neurons decide: 1024 + 1024 + 452.
    net = net_of([np.ones((2500, 10))])
    m = map_network(net, load_profile("loihi1"))
    layer = m.layers[1]
    assert layer.weight_bits == 1
    assert layer.core_neurons.tolist() == [1024, 1024, 452]
    assert layer.core_synapse_bits.tolist()[0] == 10 * 16 * 128
    assert layer.limiting == "neurons" and layer.lower_bound == 3


def test_layer_split_by_synapse_memory() -> None:
    # 4 inputs -> 64 neurons, fully connected, weights 1 and 255: 8-bit excitatory weights.
    # With 1024 bits per core, a core of n neurons needs 4 axons x ceil64(8 n + 10) bits
    # (dense; sparse costs 8 + 6 index bits per synapse, more): ceil64(8 n + 10) <= 256 gives
    # n <= 30, so the 64 neurons take cores of 30, 30 and 4.
    w = np.ones((64, 4))
    w[0, 0] = 255
    p = load_profile("loihi1", {"synapse_memory_bits_per_core": 1024})
    layer = map_network(net_of([w]), p).layers[1]
    assert layer.weight_bits == 8
    assert layer.core_neurons.tolist() == [30, 30, 4]
    assert layer.core_synapse_bits.tolist() == [1024, 1024, 4 * 64]
    assert layer.limiting == "synapse_memory"
    # lower bound: 4 axons x convex envelope (8.26 bits/synapse up to 62) <= 1024 -> n <= 31
    assert layer.lower_bound == 3


def test_layer_split_by_input_axons() -> None:
    # 370 inputs -> 30 neurons; neuron i reads inputs 10 i .. 10 i + 79 (a sliding window).
    # n consecutive neurons read 10 (n - 1) + 80 distinct inputs; with 100 input axons per
    # core that allows n <= 3, so 30 neurons need 10 cores of 3, each using exactly 100 axons.
    w = np.zeros((30, 370))
    for i in range(30):
        w[i, 10 * i : 10 * i + 80] = 1
    p = load_profile("loihi1", {"input_axons_per_core": 100})
    layer = map_network(net_of([w]), p).layers[1]
    assert layer.core_neurons.tolist() == [3] * 10
    assert layer.core_input_axons.tolist() == [100] * 10
    assert layer.limiting == "input_axons"


def test_output_axons_count_destination_cores() -> None:
    # 8 inputs -> 8 neurons, all connected; the 8 neurons of layer 1 are split 2 per core by a
    # 2-neuron limit, so every input neuron reaches 4 cores: 4 output axons each. With an
    # 8-output-axon limit the input layer holds 2 neurons per core -> 4 cores.
    p = load_profile("loihi1", {"neurons_per_core": 2, "output_axons_per_core": 8})
    m = map_network(net_of([np.ones((8, 8))]), p)
    assert m.layers[1].cores == 4
    assert m.layers[0].core_output_axons.tolist() == [8, 8, 8, 8]
    assert m.layers[1].core_output_axons.tolist() == [0, 0, 0, 0]  # last layer
    assert m.layers[0].fan_out_synapses == 64


def test_single_neuron_too_big_raises_budget_error() -> None:
    p = load_profile("loihi1", {"input_axons_per_core": 16})
    with pytest.raises(BudgetError, match=r"layer 1 \(dense\): neuron 0 alone .* fan-in 20"):
        map_network(net_of([np.ones((3, 20))]), p)


# --- partition quality ------------------------------------------------------------------------


@pytest.mark.parametrize("hardware", ["loihi1", "loihi2-brief"])
@pytest.mark.parametrize("density", [1.0, 0.05])
def test_784_800_10_within_10_percent_of_lower_bound(hardware: str, density: float) -> None:
    weights = [random_weights(800, 784, density, 1), random_weights(10, 800, density, 2)]
    m = map_network(net_of(weights), load_profile(hardware))
    for layer in m.layers:
        assert layer.cores <= math.floor(1.1 * layer.lower_bound), layer.to_dict()


def test_full_784_800_on_loihi1_needs_six_cores() -> None:
    # 8-bit weights, 784 axons into every core: a core of n neurons costs 784 x block_bits(n).
    # n = 142 -> 2 x 576 + 128 = 1280 bits per axon, 1003520 <= 1048576; n = 143 -> 1344 per
    # axon, over. 800 / 142 -> 6 cores, and the lower bound proves 5 impossible.
    m = map_network(net_of([random_weights(800, 784, 1.0, 1)]), load_profile("loihi1"))
    assert m.layers[1].core_neurons.tolist()[:5] == [142] * 5
    assert m.layers[1].cores == 6 == m.layers[1].lower_bound


def test_pruned_weights_need_fewer_cores() -> None:
    full = random_weights(800, 784, 1.0, 3)
    pruned = full.copy()
    pruned[np.random.default_rng(4).random(full.shape) < 0.9] = 0
    profile = load_profile("loihi1")
    dense_cores = map_network(net_of([full]), profile).layers[1].cores
    sparse_cores = map_network(net_of([pruned]), profile).layers[1].cores
    assert sparse_cores < dense_cores
    assert map_network(net_of([pruned]), profile).layers[1].synapses < 0.11 * full.size


# --- invariants (property tests) --------------------------------------------------------------


def check_invariants(net: NetxNetwork, m: NetworkMapping, p: HardwareProfile) -> None:
    """Recompute every per-core quantity from the weights and the neuron -> core assignment."""
    layers = [layer for layer in net.layers if layer.kind != "flatten"]
    for k, layer in enumerate(layers):
        lm = m.layers[layer.index]
        assert sorted(np.unique(lm.core_of).tolist()) == list(range(lm.cores))
        assert np.bincount(lm.core_of, minlength=lm.cores).tolist() == lm.core_neurons.tolist()
        assert (lm.core_neurons <= p.neurons_per_core).all()
        assert (lm.core_synapse_bits <= p.synapse_memory_bits_per_core).all()
        assert (lm.core_input_axons <= p.input_axons_per_core).all()
        assert (lm.core_output_axons <= p.output_axons_per_core).all()
        if layer.kind == "dense":
            mask = np.trunc(layer.weight_matrix()) != 0
            for c in range(lm.cores):
                rows = np.flatnonzero(lm.core_of == c)
                assert lm.core_input_axons[c] == np.count_nonzero(mask[rows].any(axis=0))
        if k + 1 < len(layers):  # output axons: destination cores of each neuron
            nxt = layers[k + 1]
            nm = m.layers[nxt.index]
            mask = np.trunc(nxt.weight_matrix()) != 0
            dests = np.zeros(layer.neurons, np.int64)
            for c in range(nm.cores):
                dests += mask[nm.core_of == c].any(axis=0)
            per_core = np.bincount(lm.core_of, weights=dests, minlength=lm.cores)
            assert per_core.astype(int).tolist() == lm.core_output_axons.tolist()


@st.composite
def small_networks(draw: st.DrawFn) -> tuple[NetxNetwork, HardwareProfile]:
    sizes = draw(st.lists(st.integers(1, 40), min_size=2, max_size=4))
    seed = draw(st.integers(0, 2**16))
    density = draw(st.sampled_from([0.05, 0.3, 1.0]))
    rng = np.random.default_rng(seed)
    weights = []
    for n_in, n_out in itertools.pairwise(sizes):
        w = rng.integers(-8, 9, size=(n_out, n_in)) * draw(st.sampled_from([1, 4, 16]))
        w[rng.random(w.shape) >= density] = 0
        weights.append(w)
    overrides = {
        "neurons_per_core": draw(st.integers(1, 16)),
        "input_axons_per_core": draw(st.integers(4, 48)),
        "output_axons_per_core": draw(st.integers(4, 64)),
        "synapse_memory_bits_per_core": draw(st.sampled_from([512, 1024, 4096, 1 << 16])),
    }
    return net_of(weights), load_profile("loihi1", overrides)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_networks())
def test_every_neuron_on_one_core_and_no_limit_exceeded(case) -> None:
    net, profile = case
    try:
        m = map_network(net, profile)
    except BudgetError as error:
        assert "alone does not fit one core" in str(error)
        assume(False)
        return
    check_invariants(net, m, profile)
    for layer in m.layers:
        assert layer.cores >= layer.lower_bound


# --- real files -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["oxford.net", "pilotnet_snn.net", "pilotnet_sdnn.net"])
@pytest.mark.parametrize("hardware", ["loihi1", "loihi2", "loihi2-brief"])
def test_real_files_map(name: str, hardware: str) -> None:
    path = real_file(name)
    m = map_file(path, hardware)
    net = read_netx(path)
    profile = load_profile(hardware)
    assert m.total_cores == sum(layer.cores for layer in m.layers) > 0
    assert m.chips == math.ceil(m.total_cores / profile.cores_per_chip)
    for layer, lm in zip(net.layers, m.layers, strict=True):
        assert lm.index == layer.index and lm.kind == layer.kind
        if layer.kind == "flatten":
            assert lm.cores == 0
            continue
        assert lm.core_neurons.sum() == layer.neurons
        assert lm.lower_bound <= lm.cores
        for resource in ("neurons", "input_axons", "output_axons", "synapse_memory"):
            assert (lm.used(resource) <= lm.limits[resource]).all()
    json_ready = m.to_dict()
    assert json_ready["total_cores"] == m.total_cores and json_ready["hardware"]["name"] == hardware


def test_conv_fan_in_counts_padding_and_stride() -> None:
    # PilotNet layer 4: 48 -> 64 channels, 3x3, stride (2, 1), padding (1, 0) on a 7 x 24
    # input. Output rows 0 and 3 have one kernel row in the padding: 2 of 3 rows valid.
    net = read_netx(real_file("pilotnet_snn.net"))
    m = map_network(net, load_profile("loihi2-brief"))
    kernel = np.trunc(net.layers[4].kernel()) != 0
    per_row = kernel.sum(axis=(1, 3))  # [out, ky]: nonzero weights per kernel row
    # expected synapses: rows y = 0..3 read input rows 2y - 1 + ky; row -1 and row 7 are padding
    expected = 0
    for y in range(4):
        valid = [ky for ky in range(3) if 0 <= 2 * y - 1 + ky < 7]
        expected += 22 * int(per_row[:, valid].sum())
    assert m.layers[4].synapses == expected


def test_unsupported_layer_type_is_an_input_error() -> None:
    geometry = ConvGeometry(2, 2, (2, 2), (2, 2), (0, 0), (1, 1), 2)
    pool = PoolLayer(index=1, shape=(2, 4, 4), conv=geometry)
    net = NetxNetwork(Path("p.net"), (InputLayer(index=0, shape=(2, 8, 8)), pool))
    with pytest.raises(InputError, match="layer 1 has type 'pool'"):
        map_network(net, load_profile("loihi1"))


# --- profiles ---------------------------------------------------------------------------------


def test_profiles_load_by_name_and_path_with_sources() -> None:
    assert {"loihi1", "loihi2"} <= set(available_profiles())
    for name in ("loihi1", "loihi2"):
        p = load_profile(name)
        assert p.name == name
        assert load_profile(p.path).to_dict() == p.to_dict()  # by path
        missing = [k for k in CONSTANT_KEYS if p.sources[k] == "no source given"]
        assert not missing, f"{name}: constants without a source: {missing}"
    assert load_profile("loihi1").energy_pre_silicon is True
    assert "192 KB" in load_profile("loihi2-brief").sources["synapse_memory_bits_per_core"]


def test_profile_overrides_and_errors() -> None:
    p = load_profile("loihi2", {"chips": "8", "core.neurons_per_core": 4096, "synop_pj": "10.5"})
    assert (p.chips, p.neurons_per_core, p.synop_pj, p.max_cores) == (8, 4096, 10.5, 960)
    assert p.sources["chips"].startswith("override")
    with pytest.raises(InputError, match=r"unknown hardware constant 'nuerons'.*neurons_per_core"):
        load_profile("loihi1", {"nuerons": 3})
    with pytest.raises(InputError, match="'chips' must be int"):
        load_profile("loihi1", {"chips": "two"})
    with pytest.raises(InputError, match="unknown hardware 'loihi9'"):
        load_profile("loihi9")


def test_conventional_devices_cite_keras_spiking() -> None:
    devices = load_conventional_devices()
    assert devices["cpu"].synop_pj == 8600.0 and devices["gpu"].synop_pj == 300.0
    assert all("keras-spiking" in d.source for d in devices.values())


# --- report -------------------------------------------------------------------------------------


def test_format_table_and_write_mapping(tmp_path: Path) -> None:
    import json

    from gradr_deploy.reports.mapping import COLUMNS, format_table, write_mapping

    m = map_network(net_of([random_weights(800, 784, 1.0, 1)]), load_profile("loihi1"))
    table = format_table(m)
    header = table.splitlines()[0]
    assert all(column in header for column in COLUMNS)
    assert "    1  dense      800    627200" in table
    assert "8 cores on loihi1" in table  # input 2 + dense 6
    json_path, png_path = write_mapping(m, tmp_path / "out")
    data = json.loads(json_path.read_text())
    assert {"total_cores", "chips", "lower_bound_cores", "layers", "hardware"} <= set(data)
    assert data["total_cores"] == 8 and data["layers"][1]["cores"] == 6
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["mapping.json", "mapping.png"]


def test_profiles_docstring_example_runs() -> None:
    import doctest

    import gradr_deploy.hardware.profile

    result = doctest.testmod(gradr_deploy.hardware.profile)
    assert result.attempted > 0 and result.failed == 0


def test_recurrent_layer_counts_its_own_axons() -> None:
    # dense_rec: 20 external + 30 recurrent inputs per core (all columns used), and every
    # neuron's output axons include the layer's own cores that read it.
    rng = np.random.default_rng(0)
    w = rng.integers(-5, 6, (30, 20)).astype(np.float32)
    w[:, 0] = 1  # every core reads every input and every recurrent neuron at least once
    wr = rng.integers(-5, 6, (30, 30)).astype(np.float32)
    wr[:, :] = np.where(wr == 0, 1, wr)
    w2 = np.ones((4, 30), np.float32)
    layers = (
        InputLayer(index=0, shape=(20,)),
        RecurrentDenseLayer(index=1, shape=(30,), weight=w, weight_rec=wr, features=(20, 30)),
        DenseLayer(index=2, shape=(4,), weight=w2, features=(30, 4)),
    )
    p = load_profile("loihi1", {"neurons_per_core": 8, "output_axons_per_core": 64})
    m = map_network(NetxNetwork(Path("r.net"), layers), p)
    rec = m.layers[1]
    assert rec.core_neurons.tolist() == [8, 8, 8, 6]
    assert rec.core_input_axons.tolist()[0] == 20 + 30
    # each neuron reaches the 1 core of layer 2 and all 4 of its own cores: 5 output axons
    assert rec.core_output_axons.tolist() == [40, 40, 40, 30]
    assert rec.fan_out_synapses == 30 * 30 + 4 * 30


# --- neuron orders, refined bounds in the report ---------------------------------------------


def test_order_search_recovers_shuffled_blocks() -> None:
    # four blocks of 64 neurons, each reading its own 100 inputs, stored in shuffled order; with
    # 100 input axons per core the stored order packs a few neurons per core, the spectral or
    # input-centroid order one block per core (= the bound)
    rng = np.random.default_rng(0)
    w = np.zeros((256, 400))
    for b in range(4):
        w[64 * b : 64 * (b + 1), 100 * b : 100 * (b + 1)] = rng.integers(1, 60, (64, 100)) * 2
    w = w[rng.permutation(256)]
    p = load_profile("loihi1", {"input_axons_per_core": 100})
    conn = dense_connectivity(w != 0)
    stored = partition(conn, np.zeros(256, np.int64), 8, p, "stored order")
    searched = map_network(net_of([w]), p)
    layer = searched.layers[1]
    assert len(stored.neurons) > 100
    assert layer.cores == 4 == layer.lower_bound
    assert layer.core_neurons.tolist() == [64] * 4
    check_invariants(net_of([w]), searched, p)  # core_of still refers to stored indices


def test_report_shows_ratio_and_why_the_bound_is_lower() -> None:
    from gradr_deploy.reports.mapping import format_table

    p = load_profile("loihi1", {"synapse_memory_bits_per_core": 65536})
    weights = random_weights(200, 150, 0.3, 7)
    counted = map_network(net_of([weights]), p).layers[1]
    assert not counted.lower_bounds.refined  # refined only on request: mapping does not pay
    assert counted.bound_note == "" and counted.to_dict()["lower_bounds_refined"] is False
    m = map_network(net_of([weights]), p, refine_bounds=True)
    layer = m.layers[1]
    assert layer.lower_bounds.refined and layer.to_dict()["lower_bounds_refined"] is True
    assert counted.cores == layer.cores == 3
    assert counted.lower_bound <= layer.lower_bound == 2
    note = layer.bound_note
    assert note.startswith("3 cores vs lower bound 2: 2 core(s) need a core of >= 100 neurons")
    assert "proven" in note and "cannot decide" in note
    table = format_table(m)
    assert "Cores/LB" in table.splitlines()[0]
    assert "  1.50" in table.splitlines()[3]
    assert f"note: layer 1: {note}" in table
    assert layer.to_dict()["lower_bound_note"] == note
    assert m.layers[0].bound_note == "" and m.layers[0].to_dict()["lower_bound_note"] == ""
