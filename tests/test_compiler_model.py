"""The model of Intel's Loihi 2 compiler: hand-computed cases and every printed row we have."""

from __future__ import annotations

import math

import numpy as np
import pytest
from netx_writer import shared_netx

from gradr_deploy.errors import BudgetError, InputError
from gradr_deploy.hardware.profile import load_profile
from gradr_deploy.mapping import map_file, map_network
from gradr_deploy.mapping.compiler_mapping import capacity
from gradr_deploy.mapping.compiler_model import record_units, total_fraction
from gradr_deploy.netx import dense_network

_file = shared_netx


def _dense(out: int, inputs: int, value: float = 2.0) -> np.ndarray:
    return np.full((out, inputs), value, np.float32)


# --- hand-computed cases -----------------------------------------------------------------------


def test_one_axon_record_is_slots_plus_header_in_words() -> None:
    model = load_profile("loihi2").compiler
    # 20-bit slots, 8-bit header, 64-bit units: ceil((20 n + 8) / 64)
    assert record_units(np.array([1, 2, 3, 50, 51, 102, 103]), 20, model).tolist() == [
        1, 1, 2, 16, 17, 32, 33]
    assert record_units(0, 20, model) == 0


def test_one_neuron_group_holds_a_small_layer() -> None:
    m = map_network(dense_network([_dense(10, 64)], input_layer=False), load_profile("loihi2"))
    layer = m.layers[0]
    assert layer.cores == 1
    row = layer.compiled.row("max")
    # 64 axons x ceil((20 * 10 + 8) / 64) = 64 x 4 units
    assert row == {"axon_in": 64, "neuron_groups": 1, "neurons": 10, "synapses": 256,
                   "axon_map": 10, "axon_mem": 0}


def test_a_layer_splits_into_groups_of_the_largest_size_that_fits() -> None:
    # 784 axons: a core may use 0.8 x 16000 = 12800 units = 784 x 16 -> 20 n + 8 <= 1024
    # -> n <= 50; 128 neurons -> 50 + 50 + 28
    m = map_network(dense_network([_dense(128, 784)], input_layer=False), load_profile("loihi2"))
    layer = m.layers[0]
    assert layer.core_neurons.tolist() == [50, 50, 28]
    assert layer.compiled.use["synapses"].tolist() == [784 * 16, 784 * 16, 784 * 9]
    # at the full 16000 units a core could take 63 neurons (784 x 20 = 15680): 3 cores, optimal
    assert layer.best_cores == layer.lower_bound == 3


def test_zero_weights_cost_like_any_other_unless_sparse_storage_is_modelled() -> None:
    sparse = _dense(128, 784)
    sparse[:, 100:] = 0
    net = dense_network([sparse], input_layer=False)
    assert map_network(net, load_profile("loihi2")).total_cores == 3
    modelled = map_network(net, load_profile("loihi2", {"count_zero_weights": "false"}))
    assert modelled.total_cores == 1  # 100 axons x ceil((20 * 128 + 8) / 64) = 4100 units


def test_iterative_release_multiplies_groups_by_the_overflow() -> None:
    # release 2023-01: 2560 axons x 100 neurons of 3-bit weights (slot 15 bits): one core
    # needs 2560 x 24 = 61440 units (5.12 x 12000) -> 6 groups of 17 (12800 units, 1.07x)
    # -> 12 groups of 9 (7680): the PilotNet printout's 12 cores and its mean of 7253 units
    weights = np.where(np.arange(100 * 2560).reshape(100, 2560) % 2, 192.0, -64.0)
    profile = load_profile("loihi2", {"release": "2023-01"})
    layer = map_network(dense_network([weights], input_layer=False), profile).layers[0]
    assert layer.compiled.slot_bits == 3 + 12
    assert layer.core_neurons.tolist() == [9] * 11 + [1]
    row = layer.compiled.row("mean")
    assert round(row["synapses"]) == 7253 and round(row["neurons"]) == 8


def test_a_neuron_too_large_for_any_core_is_a_budget_error() -> None:
    net = dense_network([_dense(2, 17000)], input_layer=False)
    with pytest.raises(BudgetError, match=r"one neuron alone .* 17000 input axons"):
        map_network(net, load_profile("loihi2"))


def test_conv_layers_are_cut_into_power_of_two_column_tiles() -> None:
    from gradr_deploy.netx import read_netx

    net = read_netx(_file("pilotnet_snn.net"))
    m = map_network(net, load_profile("loihi2", {"release": "2023-01"}))
    tiles = {layer.index: layer.compiled.tile for layer in m.layers if layer.compiled}
    # the tiles Intel's compiler printed for PilotNet (Conv(x, y, f))
    assert tiles[0] == (16, 66, 3) and tiles[1] == (4, 32, 24) and tiles[2] == (4, 15, 36)
    assert tiles[3] == (8, 7, 48) and tiles[4] == (8, 4, 64) and tiles[5] == (16, 2, 64)
    assert [m.layers[i].cores for i in range(6)] == [13, 25, 13, 3, 3, 2]
    assert m.total_cores == 74  # as Intel's compiler printed for PilotNet SNN


def test_compiler_overrides_are_checked() -> None:
    for bad in ({"synmem_fill": "0"}, {"synmem_fill": "1.5"}, {"release": "1999"},
                {"split": "random"}, {"unit_bits": "0"}, {"axon_header_bits": "-1"}):
        with pytest.raises(InputError):
            load_profile("loihi2", bad)
    with pytest.raises(InputError, match="unknown hardware constant 'release'"):
        load_profile("loihi1", {"release": "2024-04"})


# --- every printed row ---------------------------------------------------------------------


# (file, release, per layer in file order: (cores, neurons, synapses units), total cores)
PRINTED = [
    ("oxford.net", "2023-11", [(3, 85, 5400), (2, 100, 8064)], 5),
    ("mnist_lavadl.net", "2024-04", [(3, 50, 12544), (1, 64, 2688), (1, 10, 256)], 5),
    ("pilotnet_snn.net", "2023-01",
     [(13, 3168, None), (25, 3072, None), (13, 2160, None), (3, 2688, None), (3, 2048, 2160),
      (2, 2048, 2880), (12, 8, 7253), (1, 50, 1300), (1, 10, 150), (1, 1, 10)], 74),
]


@pytest.mark.parametrize(("name", "release", "rows", "total"), PRINTED)
def test_printed_partitions_are_reproduced(name, release, rows, total) -> None:
    profile = load_profile("loihi2", {"release": release})
    m = map_file(_file(name), "loihi2", {"release": release})
    placed = [layer for layer in m.layers if layer.compiled is not None]
    assert m.total_cores == total
    for layer, (cores, neurons, synapses) in zip(placed, rows, strict=True):
        row = layer.compiled.row(profile.compiler.release.row_statistic)
        assert layer.cores == cores, layer.index
        # the printouts show whole numbers (truncated)
        assert abs(math.floor(row["neurons"]) - neurons) <= 0.02 * neurons, (layer.index, row)
        if synapses is not None:
            assert abs(math.floor(row["synapses"]) - synapses) <= 0.02 * synapses, layer.index


def test_mnist_percentage_rows_within_two_points() -> None:
    printed = [  # AxonIn, NeuronGr, Neurons, Synapses, AxonMap, AxonMem, Total (%), layer order
        (4.90, 12.50, 1.22, 78.40, 0.31, 0.00, 67.14),
        (0.80, 12.50, 1.56, 16.80, 0.40, 0.00, 14.72),
        (0.40, 12.50, 0.24, 1.60, 0.06, 0.00, 1.71),
    ]
    profile = load_profile("loihi2")
    cap = capacity(profile)
    m = map_file(_file("mnist_lavadl.net"), "loihi2")
    for layer, expected in zip(m.layers, printed, strict=True):
        row = layer.compiled.row("max")
        got = [100 * row[c] / cap.of(c) for c in
               ("axon_in", "neuron_groups", "neurons", "synapses", "axon_map", "axon_mem")]
        got.append(100 * total_fraction(row, cap, profile.compiler))
        assert np.allclose(got, expected, atol=2.0), (layer.index, got)
        assert abs(got[-1] - expected[-1]) < 0.05  # the Total fit is far tighter than 2 points


def test_report_names_both_answers_and_other_releases() -> None:
    from gradr_deploy.reports.mapping import format_table

    m = map_file(_file("oxford.net"), "loihi2")
    text = format_table(m)
    assert ("Intel's compiler (model, release 2024-04): 4 cores; best partition under the same "
            "cost model: 4; lower bound 4") in text
    assert "2023-11: 5" in text
    assert "AxonIn  NeuronGr  Neurons  Synapses  AxonMap  AxonMem   Total" in text
    data = m.to_dict()
    assert data["total_cores"] == 4 and data["best_partition_cores"] == 4
    assert data["compiler_release_cores"]["2023-11"] == 5
    assert data["layers"][0]["compiler"]["per_core"]["neurons"] == [204.0, 52.0]
    assert math.isclose(sum(data["layers"][1]["compiler"]["per_core"]["neurons"]), 200)
