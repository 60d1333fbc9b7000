"""Deep R: a fixed count of active connections, true gradient, random reactivation; soft Deep R."""

import pytest
import torch

import gradr_deploy.simulation.lava_compat

gradr_deploy.simulation.lava_compat.install()
import lava.lib.dl.slayer as slayer  # noqa: E402

from gradr_lava.rewiring import RewiringError, make_pruner  # noqa: E402
from gradr_lava.rewiring.deepr import sample_without_replacement, soft_theta_min  # noqa: E402
from gradr_lava.rewiring.parametrization import hidden_parameter  # noqa: E402

torch.set_num_threads(1)
NEURON = {"threshold": 0.5, "current_decay": 1.0, "voltage_decay": 0.1}
SPIKES = (torch.rand(4, 12, 8, generator=torch.Generator().manual_seed(0)) < 0.5).float()


def net_and_pruner(**options):
    torch.manual_seed(0)
    net = torch.nn.Sequential(slayer.block.cuba.Dense(NEURON, 12, 10, weight_scale=2),
                              slayer.block.cuba.Dense(NEURON, 10, 3, weight_scale=2))
    pruner = make_pruner("deepr", **options)
    pruner.attach(net)
    return net, pruner


def train_step(net, pruner, optimizer):
    optimizer.zero_grad()
    net(SPIKES).sum(-1).square().mean().backward()
    optimizer.step()
    pruner.after_step(optimizer)


def active_counts(net):
    return [int(block.synapse.parametrizations.weight[0].active.sum()) for block in net]


def test_hard_deepr_keeps_the_active_count_fixed_while_rewiring():
    # Strong L1 and noise make connections die often; each death must be replaced.
    net, pruner = net_and_pruner(target_connectivity={0: 0.25, 1: 0.5}, l1=1.0, temperature=1e-4)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    assert active_counts(net) == [30, 15]
    pruned = regrown = 0
    for _ in range(60):
        train_step(net, pruner, optimizer)
        assert active_counts(net) == [30, 15]
        for block, expected in zip(net, (30, 15), strict=True):
            theta = hidden_parameter(block.synapse).detach()
            active = block.synapse.parametrizations.weight[0].active.bool()
            assert int((theta > 0).sum()) == expected
            assert torch.all(theta[~active] == 0)  # dormant thetas sit at exactly 0
            assert torch.all(block.synapse.weight.detach()[~active] == 0)
        stats = pruner.end_epoch(0, 1)
        pruned += stats["total"]["pruned"]
        regrown += stats["total"]["regrown"]
    assert pruned > 20 and pruned == regrown


def test_dormant_connections_get_no_gradient():
    net, _ = net_and_pruner(target_connectivity=0.25)
    net(SPIKES).sum().backward()
    for block in net:
        theta = hidden_parameter(block.synapse)
        active = block.synapse.parametrizations.weight[0].active.bool()
        assert torch.all(theta.grad[~active] == 0)
        assert torch.any(theta.grad[active] != 0)


def test_reactivated_connections_start_at_regrow_theta_with_their_sign():
    net, pruner = net_and_pruner(target_connectivity=0.25, l1=50.0, regrow_theta=1e-3)
    block = net[0]
    param = block.synapse.parametrizations.weight[0]
    active_before = param.active.bool().clone()
    optimizer = torch.optim.SGD(net.parameters(), lr=1e-2)
    train_step(net, pruner, optimizer)  # L1 step of 0.5 kills most active connections
    revived = param.active.bool() & ~active_before
    assert int(revived.sum()) > 0
    theta = hidden_parameter(block.synapse).detach()
    assert torch.all(theta[revived] == 1e-3)
    assert torch.equal(torch.sign(block.synapse.weight.detach()[revived]), param.sign[revived])


def test_soft_deepr_keeps_dormant_thetas_and_bounds_them():
    options = {"target_connectivity": 0.2, "l1": 1e-2, "temperature": 1e-4, "soft": True}
    net, pruner = net_and_pruner(**options)
    theta_min = soft_theta_min(1e-4, 1e-2, 0.2)
    assert theta_min == pytest.approx(-1e-4 * 0.8 / (1e-2 * 0.2))
    optimizer = torch.optim.Adam(net.parameters(), lr=5e-2)
    for _ in range(40):
        train_step(net, pruner, optimizer)
    theta = hidden_parameter(net[0].synapse).detach()
    assert torch.all(theta >= theta_min)
    dormant = theta <= 0
    assert int(dormant.sum()) > 0
    assert len(torch.unique(theta[dormant])) > 1  # a random walk, not reset to one value
    stats = pruner.end_epoch(0, 1)
    assert stats["layers"][0]["regrown"] > 0  # dormant ones came back by the walk


def test_soft_deepr_without_noise_leaves_dormant_thetas_alone_despite_adam_momentum():
    net, pruner = net_and_pruner(target_connectivity=0.2, l1=1e-2, soft=True)
    optimizer = torch.optim.Adam(net.parameters(), lr=5e-2)
    for _ in range(10):
        train_step(net, pruner, optimizer)
    theta = hidden_parameter(net[0].synapse)
    dormant = theta.detach() <= 0
    assert int(dormant.sum()) > 0
    frozen = theta.detach()[dormant].clone()
    for _ in range(5):
        train_step(net, pruner, optimizer)
    still = theta.detach()[dormant]
    assert torch.equal(still, frozen)


@pytest.mark.parametrize("population, count", [(1000, 3), (10, 9), (5, 5), (7, 0)])
def test_sample_without_replacement_draws_distinct_indices(population, count):
    generator = torch.Generator().manual_seed(0)
    drawn = sample_without_replacement(population, count, generator)
    assert drawn.numel() == count == len(set(drawn.tolist()))
    assert all(0 <= i < population for i in drawn.tolist())
    # Every index can be drawn: over many draws of 3 from 10, all 10 appear.
    seen = set()
    for _ in range(50):
        seen.update(sample_without_replacement(10, 3, generator).tolist())
    assert seen == set(range(10))
    with pytest.raises(ValueError):
        sample_without_replacement(3, 4, generator)


def test_deepr_rejects_bad_options():
    with pytest.raises(RewiringError, match="temperature"):
        make_pruner("deepr", target_connectivity=0.1, temperature=-1.0)
    with pytest.raises(RewiringError, match="does not use alpha"):
        make_pruner("deepr", target_connectivity=0.1, alpha=1.0)
    with pytest.raises(RewiringError, match="needs target_connectivity"):
        make_pruner("deepr")
