"""Connectivity counting (float and after slayer's 8-bit rounding), per-layer targets,
event counters and the end-of-epoch report."""

import json

import pytest
import torch

import gradr_deploy.simulation.lava_compat

gradr_deploy.simulation.lava_compat.install()
import lava.lib.dl.slayer as slayer  # noqa: E402
from torch.nn.utils import parametrize  # noqa: E402

from gradr_lava.rewiring import (  # noqa: E402
    Pruner,
    RewiringError,
    connectivity,
    find_prunable_layers,
    make_pruner,
)

torch.set_num_threads(1)
NEURON = {"threshold": 0.5, "current_decay": 1.0, "voltage_decay": 0.1}


def two_layer_net():
    torch.manual_seed(0)
    return torch.nn.Sequential(slayer.block.cuba.Dense(NEURON, 12, 10, weight_scale=2),
                               slayer.block.cuba.Dense(NEURON, 10, 3, weight_scale=2))


def test_connectivity_counts_float_and_quantized_nonzeros_by_hand():
    block = slayer.block.cuba.Dense(NEURON, 2, 3)  # w_scale 64: step 2/64, |w| < 1/64 -> 0
    weight = torch.tensor([[0.5, 0.0], [0.01, -0.02], [-0.015, 0.0]])
    with torch.no_grad():
        block.synapse.weight.copy_(weight.reshape(3, 2, 1, 1, 1))
    net = torch.nn.Sequential(block, torch.nn.Identity())
    floats = connectivity(net, quantized=False)
    quantized = connectivity(net)
    assert (floats["nonzero"], floats["numel"], floats["connectivity"]) == (4, 6, 4 / 6)
    # 0.01 and -0.015 round to 0 at step 1/32; 0.5 and -0.02 do not.
    assert (quantized["nonzero"], quantized["connectivity"]) == (2, 2 / 6)
    assert quantized["layers"] == [
        {"index": 0, "name": "0", "numel": 6, "nonzero": 2, "connectivity": 2 / 6}
    ]
    json.dumps(quantized)


def test_layers_are_found_in_order_and_targets_resolve_by_index_or_name():
    net = two_layer_net()
    assert [(layer.index, layer.name) for layer in find_prunable_layers(net)] == [(0, "0"),
                                                                                  (1, "1")]
    pruner = make_pruner("gradr", target_connectivity={"1": 0.3}, alpha=1.0)
    pruner.attach(net)
    assert not parametrize.is_parametrized(net[0].synapse)  # no target: left dense
    assert parametrize.is_parametrized(net[1].synapse, "weight")
    report = pruner.end_epoch(0, 1)
    assert [layer["rewired"] for layer in report["layers"]] == [False, True]
    assert [layer["target"] for layer in report["layers"]] == [1.0, 0.3]
    for bad in ({"2": 0.3}, {0: 0.3, "0": 0.2}, {0: 1.5}):
        with pytest.raises(RewiringError):
            make_pruner("gradr", target_connectivity=bad, alpha=1.0).attach(two_layer_net())


def test_event_counters_add_up_and_report_is_json_ready():
    net = two_layer_net()
    pruner = make_pruner("gradr", target_connectivity=0.2, alpha=20.0)
    assert isinstance(pruner, Pruner)
    pruner.attach(net)
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-2)
    spikes = (torch.rand(4, 12, 8, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    nonzero = [int(torch.count_nonzero(block.synapse.weight)) for block in net]
    for epoch in range(3):
        for _ in range(5):
            optimizer.zero_grad()
            (net(spikes).sum(-1) - 2.0).square().mean().backward()
            optimizer.step()
            pruner.after_step(optimizer)
        report = pruner.end_epoch(epoch, 3)
        json.dumps(report)
        assert report["step"] == 5 * (epoch + 1)
        for layer, before in zip(report["layers"], nonzero, strict=True):
            assert layer["nonzero"] == before - layer["pruned"] + layer["regrown"]
            assert layer["nonzero_quantized"] <= layer["nonzero"]
            assert layer["mu"] == pytest.approx(-0.0458145, rel=1e-5)  # ln(2 * 0.2) / 20
        nonzero = [layer["nonzero"] for layer in report["layers"]]
    assert report["total"]["nonzero"] == sum(nonzero) < 150
    assert report["total"]["connectivity"] == sum(nonzero) / 150


def test_none_method_reports_without_touching_the_model():
    net = two_layer_net()
    before = {key: value.clone() for key, value in net.state_dict().items()}
    pruner = make_pruner("none")
    pruner.attach(net)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.0)
    pruner.after_step(optimizer)
    report = pruner.end_epoch(0, 1)
    assert report["method"] == "none" and report["total"]["connectivity"] == 1.0
    assert net.state_dict().keys() == before.keys()
    with pytest.raises(RewiringError, match="does not use"):
        make_pruner("none", target_connectivity=0.5)
    with pytest.raises(RewiringError, match="unknown pruning method"):
        make_pruner("lottery")
