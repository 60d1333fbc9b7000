"""Tests for gradr_deploy.mapping.budget: the pure report, the raising check and its suggested
fixes."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from gradr_deploy.errors import BudgetError
from gradr_deploy.hardware.profile import load_profile
from gradr_deploy.mapping import map_file, map_network
from gradr_deploy.mapping.budget import available_cores, check_budget, utilization
from gradr_deploy.netx import dense_network as net_of

NETX_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "netx"




def weights_with_bits(n_out: int, n_in: int, bits: int, seed: int) -> np.ndarray:
    """Excitatory weights that netx stores in exactly ``bits`` bits: k * 2**(8 - bits), k odd."""
    rng = np.random.default_rng(seed)
    k = rng.integers(0, 2 ** (bits - 1), size=(n_out, n_in)) * 2 + 1  # odd, < 2**bits
    k[0, 0] = 2**bits - 1  # largest value -> scale 1, no shift
    return k * 2 ** (8 - bits)


def test_fitting_network_passes_and_report_never_raises() -> None:
    m = map_network(net_of([weights_with_bits(800, 784, 8, 0)]), load_profile("loihi1"))
    check_budget(m)  # 8 cores of 128
    report = utilization(m, max_cores=3)
    assert report["fits"] is False and report["total_cores"] == 8
    layer = next(r for r in report["layers"] if r["index"] == 1)
    assert layer["limiting_resource"] == "synapse_memory"
    assert 0.9 < layer["utilization"]["synapse_memory"]["max"] <= 1.0


def test_available_cores_from_chips_and_max_cores() -> None:
    m = map_network(net_of([np.ones((4, 3))]), load_profile("loihi1", {"chips": 2}))
    assert available_cores(m) == 256
    assert available_cores(m, chips=1) == 128
    assert available_cores(m, max_cores=10) == 10
    assert available_cores(m, max_cores=500, chips=1) == 128


def test_over_budget_names_layer_resource_need_limit_and_verified_fixes() -> None:
    # 784 -> 800 with 8-bit weights on Loihi 1: input 2 cores + dense 6 cores = 8 cores.
    # A budget of 6 cores leaves 4 for layer 1: fewer weight bits or pruning must do it.
    profile = load_profile("loihi1")
    m = map_network(net_of([weights_with_bits(800, 784, 8, 0)]), profile)
    with pytest.raises(BudgetError) as info:
        check_budget(m, max_cores=6)
    message = str(info.value)
    assert info.value.exit_code == 3
    assert "needs 8 cores but the budget allows 6" in message
    assert "layer 1 (dense): 6 cores (lower bound 6), limited by synapse_memory" in message
    assert "Mibit needed, 1.00 Mibit per core" in message
    assert "prune layer 1 to <=" in message

    bits = int(re.search(r"use <= (\d)-bit weights in layer 1", message).group(1))  # type: ignore[union-attr]
    assert bits < 8
    fixed = map_network(net_of([weights_with_bits(800, 784, bits, 0)]), profile)
    assert fixed.total_cores <= 6  # the suggestion holds when the network is re-exported

    keep = float(re.search(r"keep <= (\d+)% of its", message).group(1)) / 100  # type: ignore[union-attr]
    pruned = weights_with_bits(800, 784, 8, 0)
    pruned[np.random.default_rng(5).random(pruned.shape) >= keep * 0.95] = 0
    assert map_network(net_of([pruned]), profile).total_cores <= 6


def test_neuron_bound_layers_suggest_more_chips() -> None:
    # 3000 neurons need 3 Loihi 1 cores whatever the weights: no pruning can help.
    m = map_network(net_of([np.ones((3000, 2))]), load_profile("loihi1"))
    with pytest.raises(
        BudgetError, match=r"limited by neurons: 3000 neurons needed, 1024 per"
    ) as info:
        check_budget(m, chips=0)
    assert "prune" not in str(info.value)
    assert "use 1 chips (override={'chips': 1})" in str(info.value)


def test_real_file_over_budget() -> None:
    path = NETX_DIR / "pilotnet_snn.net"
    if not path.exists():
        pytest.skip(f"{path} missing: the real netx files live in ../shared/data/netx")
    m = map_file(path, "loihi1")  # 180 cores on 128-core chips
    with pytest.raises(BudgetError, match=r"layer 1 \(conv\): 75 cores .* limited by neurons"):
        check_budget(m)
