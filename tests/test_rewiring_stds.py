"""STDS: the soft threshold with the identity gradient, the scheduled threshold reaching each
layer's target in deployed (8-bit) weights, free signs, option errors."""

import pytest
import torch

import gradr_deploy.simulation.lava_compat

gradr_deploy.simulation.lava_compat.install()
import lava.lib.dl.slayer as slayer  # noqa: E402

from gradr_lava.rewiring import RewiringError, make_pruner  # noqa: E402
from gradr_lava.rewiring.parametrization import SoftThresholdWeight, hidden_parameter  # noqa: E402
from gradr_lava.rewiring.stds import soft_threshold  # noqa: E402

torch.set_num_threads(1)
NEURON = {"threshold": 0.5, "current_decay": 1.0, "voltage_decay": 0.1}


def test_soft_threshold_forward_and_identity_gradient_by_hand():
    theta = torch.tensor([0.5, -0.3, 0.1, -0.05, 0.0], requires_grad=True)
    param = SoftThresholdWeight(torch.tensor(0.2))
    w = param(theta)
    assert torch.allclose(w, torch.tensor([0.3, -0.1, 0.0, 0.0, 0.0]))
    grad_w = torch.tensor([1.0, 2.0, -3.0, 4.0, 5.0])
    (grad_w * w).sum().backward()
    # under the threshold too: a pruned connection keeps learning (STDS's pseudo ReLU)
    assert torch.equal(theta.grad, grad_w)


@pytest.mark.parametrize("margin", [0.0, 1 / 64])
def test_threshold_leaves_exactly_count_weights_above_the_margin(margin):
    magnitudes = torch.rand(40, 30, generator=torch.Generator().manual_seed(0))
    available = int(torch.count_nonzero(magnitudes > margin))
    for count in (0, 1, 17, 600, available):
        d = soft_threshold(magnitudes, count, margin)
        assert d >= 0 and int(torch.count_nonzero(magnitudes - d > margin)) == count
    assert soft_threshold(magnitudes, 1200, margin) == 0.0
    if available < 1200:  # more than can stay nonzero: the threshold goes to 0, no further
        assert soft_threshold(magnitudes, available + 1, margin) == 0.0
    assert soft_threshold(torch.full((10,), 0.01), 8, 1 / 64) == 0.0  # cannot add weights


def test_schedule_reaches_each_layers_target_in_deployed_weights_and_signs_may_flip():
    torch.manual_seed(0)
    net = torch.nn.Sequential(slayer.block.cuba.Dense(NEURON, 30, 20, weight_scale=2),
                              slayer.block.cuba.Dense(NEURON, 20, 4, weight_scale=2))
    steps = 30
    pruner = make_pruner("stds", target_connectivity={0: 0.1, 1: 0.25}, total_steps=steps,
                         schedule=(0.0, 0.5))
    pruner.attach(net)
    start_sign = [torch.sign(hidden_parameter(b.synapse).detach().clone()) for b in net]
    optimizer = torch.optim.Adam(net.parameters(), lr=5e-2)
    spikes = (torch.rand(4, 30, 8, generator=torch.Generator().manual_seed(3)) < 0.5).float()
    for _ in range(steps):
        optimizer.zero_grad()
        net(spikes).sum(-1).square().mean().backward()
        optimizer.step()
        pruner.after_step(optimizer)
    deployed = [int(torch.count_nonzero(b.neuron.quantize_8bit(b.synapse.weight))) for b in net]
    assert deployed == [round(0.1 * 600), round(0.25 * 80)]
    stats = pruner.end_epoch(0, 1)
    assert [layer["connectivity_quantized"] for layer in stats["layers"]] == [0.1, 0.25]
    assert all(layer["threshold"] > 0 for layer in stats["layers"])
    flipped = sum(int(torch.count_nonzero(torch.sign(hidden_parameter(b.synapse)) != s))
                  for b, s in zip(net, start_sign, strict=True))
    assert flipped > 0, "theta crosses zero: STDS does not fix the signs"


def test_stds_options_are_checked():
    with pytest.raises(RewiringError, match="needs total_steps="):
        make_pruner("stds", target_connectivity=0.3)
    with pytest.raises(RewiringError, match="does not use alpha="):
        make_pruner("stds", target_connectivity=0.3, total_steps=4, alpha=1.0)
    with pytest.raises(RewiringError, match="count= must be one of"):
        make_pruner("stds", target_connectivity=0.3, total_steps=4, count="chip")
