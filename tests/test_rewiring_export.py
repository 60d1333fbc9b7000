"""Folding and slayer's HDF5 export: absent connections are written as exact zeros."""

import copy

import h5py
import numpy as np
import pytest
import torch

import gradr_deploy.simulation.lava_compat

gradr_deploy.simulation.lava_compat.install()
import lava.lib.dl.slayer as slayer  # noqa: E402

from gradr_lava.rewiring import RewiringError, connectivity, make_pruner  # noqa: E402
from gradr_lava.rewiring.parametrization import hidden_parameter  # noqa: E402

torch.set_num_threads(1)
NEURON = {"threshold": 0.5, "current_decay": 1.0, "voltage_decay": 0.1}


def pruned_net(method="gradr", **options):
    """Conv(2->3, 3x3) on 5x5 input, Flatten, Dense(27->4), pruned for a few steps."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        slayer.block.cuba.Conv(NEURON, 2, 3, 3, weight_scale=3),
        slayer.block.cuba.Flatten(),
        slayer.block.cuba.Dense(NEURON, 27, 4, weight_scale=3),
    )
    pruner = make_pruner(method, **options)
    pruner.attach(net)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    spikes = (torch.rand(2, 2, 5, 5, 6, generator=torch.Generator().manual_seed(1)) < 0.5)
    for _ in range(6):
        optimizer.zero_grad()
        net(spikes.float()).square().mean().backward()
        optimizer.step()
        pruner.after_step(optimizer)
    return net, pruner


def export(net, path):
    with h5py.File(path, "w") as handle:
        layers = handle.create_group("layer")
        for index, block in enumerate(net):
            block.export_hdf5(layers.create_group(str(index)))
    with h5py.File(path, "r") as handle:
        return {i: handle[f"layer/{i}/weight"][()] for i in (0, 2)}


@pytest.mark.parametrize("method, options", [
    ("gradr", {"target_connectivity": 0.3, "alpha": 20.0}),
    ("deepr", {"target_connectivity": 0.3}),
    ("magnitude", {"target_connectivity": 0.3, "total_steps": 6}),
    ("stds", {"target_connectivity": 0.3, "total_steps": 6, "count": "float"}),
])
def test_export_writes_exact_zeros_for_absent_connections(tmp_path, method, options):
    net, _ = pruned_net(method, **options)
    absent = {i: (net[i].synapse.weight.detach() == 0) for i in (0, 2)}
    assert all(0 < int(mask.sum()) < mask.numel() for mask in absent.values())
    folded = copy.deepcopy(net)
    make_pruner("none").fold(folded)
    assert not any("parametrizations" in key for key in folded.state_dict())
    weights = export(folded, tmp_path / "net.h5")
    for i in (0, 2):
        exported = weights[i].reshape(absent[i].shape)
        assert np.all(exported[absent[i].numpy()] == 0)
        assert not np.any(np.signbit(exported[absent[i].numpy()]))  # +0.0, not -0.0
        # Present connections: slayer's 8-bit value times w_scale (even integers).
        expected = net[i].synapse.pre_hook_fx(net[i].synapse.weight, descale=True).detach()
        np.testing.assert_array_equal(exported, expected.numpy())
    assert connectivity(folded) == connectivity(net)


def test_folding_the_attached_model_ends_the_pruner():
    net, pruner = pruned_net("gradr", target_connectivity=0.3, alpha=20.0)
    before = net[2].synapse.weight.detach().clone()
    theta = hidden_parameter(net[2].synapse)
    theta_before = theta.detach().clone()
    pruner.fold(net)
    assert type(net[2].synapse) is slayer.synapse.Dense
    assert torch.equal(net[2].synapse.weight.detach(), before)
    # theta is not overwritten by the weight (torch's remove_parametrizations would do that).
    assert net[2].synapse.weight is not theta and torch.equal(theta.detach(), theta_before)
    with pytest.raises(RewiringError, match="folded"):
        pruner.after_step(torch.optim.SGD(net.parameters(), lr=0.1))
    with pytest.raises(RewiringError, match="folded"):
        pruner.end_epoch(0, 1)


def test_folding_a_copy_leaves_training_untouched():
    net, pruner = pruned_net("gradr", target_connectivity=0.3, alpha=20.0)
    theta_before = hidden_parameter(net[0].synapse).detach().clone()
    weight_before = net[0].synapse.weight.detach().clone()
    pruner.fold(copy.deepcopy(net))
    # deepcopy shares the parametrized class with the original: folding the copy must not
    # remove the original's weight property.
    assert torch.equal(net[0].synapse.weight.detach(), weight_before)
    assert torch.equal(hidden_parameter(net[0].synapse).detach(), theta_before)
    assert pruner.end_epoch(0, 1)["step"] == 6
