"""Gradual magnitude pruning: the cubic schedule is met, pruning is by magnitude and permanent,
the mask is fixed while fine-tuning, masked weights are exact zeros."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import gradr_deploy.simulation.lava_compat

gradr_deploy.simulation.lava_compat.install()
import lava.lib.dl.slayer as slayer  # noqa: E402

from gradr_lava.rewiring import RewiringError, make_pruner  # noqa: E402
from gradr_lava.rewiring.magnitude import keep_largest  # noqa: E402
from gradr_lava.rewiring.parametrization import hidden_parameter  # noqa: E402
from gradr_lava.rewiring.schedule import CubicSchedule, count_shift  # noqa: E402

torch.set_num_threads(1)
NEURON = {"threshold": 0.5, "current_decay": 1.0, "voltage_decay": 0.1}
SPIKES = (torch.rand(4, 12, 8, generator=torch.Generator().manual_seed(0)) < 0.5).float()


def test_cubic_schedule_values():
    schedule = CubicSchedule.from_fractions(100, 0.1, 0.5)
    assert (schedule.start, schedule.end) == (10, 50)
    assert schedule.connectivity(5, 1.0, 0.1) == 1.0
    assert schedule.connectivity(30, 1.0, 0.1) == pytest.approx(0.1 + 0.9 * 0.5**3)
    assert schedule.connectivity(50, 1.0, 0.1) == 0.1
    assert schedule.connectivity(99, 1.0, 0.1) == 0.1
    with pytest.raises(RewiringError):
        CubicSchedule.from_fractions(100, 0.6, 0.5)


def test_magnitude_pruning_follows_its_schedule_then_fine_tunes_with_a_fixed_mask():
    torch.manual_seed(0)
    net = torch.nn.Sequential(slayer.block.cuba.Dense(NEURON, 12, 10, weight_scale=2),
                              slayer.block.cuba.Dense(NEURON, 10, 3, weight_scale=2))
    total = 30
    pruner = make_pruner("magnitude", target_connectivity={0: 0.1, 1: 0.4}, total_steps=total,
                         schedule=(0.1, 0.7), prune_every=4)
    pruner.attach(net)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    schedule = CubicSchedule.from_fractions(total, 0.1, 0.7)  # steps 3 .. 21
    masks = [block.synapse.parametrizations.weight[0].mask for block in net]
    previous = [mask.clone() for mask in masks]
    for step in range(1, total + 1):
        optimizer.zero_grad()
        net(SPIKES).sum(-1).square().mean().backward()
        optimizer.step()
        values = [hidden_parameter(block.synapse).detach().clone() for block in net]
        pruner.after_step(optimizer)
        update = 3 < step <= 21 and ((step - 3) % 4 == 0 or step == 21)
        for mask, before, value, numel, target in zip(
            masks, previous, values, (120, 30), (0.1, 0.4), strict=True
        ):
            kept = int(mask.sum())
            assert torch.all(mask <= before)  # permanent: nothing comes back
            if update:
                expected = round(schedule.connectivity(step, 1.0, target) * numel)
                assert kept == expected
                # The survivors are the largest |v| among the unpruned after this step's update.
                floor = value.abs()[mask.bool()].min()
                assert torch.all(value.abs()[(before.bool()) & ~mask.bool()] <= floor)
            else:
                assert torch.equal(mask, before)
        previous = [mask.clone() for mask in masks]
    for block, expected in zip(net, (12, 12), strict=True):
        assert int(torch.count_nonzero(block.synapse.weight)) == expected
        mask = block.synapse.parametrizations.weight[0].mask.bool()
        assert torch.all(hidden_parameter(block.synapse)[~mask] == 0)
        assert torch.all(block.synapse.pre_hook_fx(block.synapse.weight)[~mask] == 0)
    stats = pruner.end_epoch(0, 1)
    assert [layer["connectivity"] for layer in stats["layers"]] == [0.1, 0.4]
    assert stats["total"]["pruned"] == (120 - 12) + (30 - 12)


def test_keep_largest_ignores_already_pruned_entries():
    value = torch.tensor([5.0, -4.0, 3.0, 0.5, -0.1])
    mask = torch.tensor([0.0, 1.0, 1.0, 1.0, 1.0])  # 5.0 was pruned earlier: stays pruned
    assert torch.equal(keep_largest(value, mask, 2), torch.tensor([0.0, 1.0, 1.0, 0.0, 0.0]))
    assert torch.equal(keep_largest(value, mask, 4), mask)


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.floats(-20.0, 20.0, width=32), min_size=1, max_size=40, unique=True),
    fraction=st.floats(0.0, 1.0),
    margin=st.sampled_from([1e-8, 1e-6, 1e-3]),
)
def test_count_shift_leaves_exactly_the_requested_count_present(values, fraction, margin):
    theta = torch.tensor(values, dtype=torch.float32)
    count = round(fraction * theta.numel())
    shift = count_shift(theta, count, margin)
    assert int(((theta - shift) > 0).sum()) == count
    if int((theta > 0).sum()) == count:
        assert shift == 0.0


def test_keep_largest_drops_entries_that_are_not_useful_first():
    value = torch.tensor([5.0, 4.0, 3.0, 2.0])
    mask = torch.ones(4)
    useful = torch.tensor([True, False, True, True])
    assert torch.equal(keep_largest(value, mask, 3, useful), torch.tensor([1.0, 0.0, 1.0, 1.0]))
    assert torch.equal(keep_largest(value, mask, 2, useful), torch.tensor([1.0, 0.0, 1.0, 0.0]))


_TRAP_INPUTS = 1.0 + torch.arange(12.0) / 12 + torch.arange(10.0)[:, None] / 1000


def _pruned_trap(idle_first: bool) -> list[torch.Tensor]:
    """A 12-10-3 chain whose hidden neurons 0 and 1 have the largest inputs but the smallest
    outputs: magnitude pruning drops their outputs first and, unless told, keeps their inputs.
    Returns the final (out, in) masks; the weights do not train (lr 0)."""
    net = torch.nn.Sequential(slayer.block.cuba.Dense(NEURON, 12, 10),
                              slayer.block.cuba.Dense(NEURON, 10, 3))
    pruner = make_pruner("magnitude", target_connectivity={0: 0.2, 1: 0.6}, total_steps=40,
                         prune_every=2, idle_first=idle_first)
    pruner.attach(net)
    v0, v1 = (hidden_parameter(block.synapse) for block in net)
    with torch.no_grad():
        # sized by column, so that no hidden neuron loses all its inputs before the end
        v0.copy_(_TRAP_INPUTS.reshape(v0.shape))
        v0[:2] += 5.0
        v1.copy_(torch.linspace(1.0, 2.0, 30).reshape(v1.shape))
        v1[:, :2] = torch.linspace(0.01, 0.06, 6).reshape(3, 2, 1, 1, 1)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.0)
    for _ in range(40):
        pruner.after_step(optimizer)
    return [block.synapse.weight.detach().reshape(block.synapse.weight.shape[:2]) != 0
            for block in net]


def test_idle_first_spends_the_budget_on_neurons_that_reach_the_output():
    from gradr_deploy.netx import useful_in_chain

    for idle_first in (False, True):
        masks = _pruned_trap(idle_first)
        assert [int(m.sum()) for m in masks] == [24, 18]  # both meet the targets
        assert not masks[1][:, :2].any()  # hidden neurons 0, 1 lost every output
        useful = useful_in_chain([m.numpy() for m in masks])
        idle = int(masks[0].sum()) - int(useful[0].sum())
        if idle_first:
            assert idle == 0
            # the 24 kept are the largest inputs of the live hidden neurons 2..9
            assert masks[0][2:, 9:].all()
        else:
            assert idle == 24  # every kept input feeds a dead end


def test_idle_first_needs_a_chain_of_dense_layers():
    conv = torch.nn.Sequential(slayer.block.cuba.Conv(NEURON, 2, 3, 3))
    pruner = make_pruner("magnitude", target_connectivity=0.5, total_steps=10, idle_first=True)
    with pytest.raises(RewiringError, match="needs dense layers; layer 0"):
        pruner.attach(conv)
    apart = torch.nn.Sequential(slayer.block.cuba.Dense(NEURON, 12, 10),
                                slayer.block.cuba.Dense(NEURON, 8, 3))
    pruner = make_pruner("magnitude", target_connectivity=0.5, total_steps=10, idle_first=True)
    with pytest.raises(RewiringError, match=r"layer 1 .* takes 8 inputs, layer 0 has 10"):
        pruner.attach(apart)
    with pytest.raises(RewiringError, match="does not use"):
        make_pruner("stds", target_connectivity=0.5, total_steps=10, idle_first=True)
