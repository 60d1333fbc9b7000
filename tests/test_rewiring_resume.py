"""Checkpointing: model + optimizer + pruner state dicts resume a run bit-identically."""

import io

import pytest
import torch

import gradr_deploy.simulation.lava_compat

gradr_deploy.simulation.lava_compat.install()
import lava.lib.dl.slayer as slayer  # noqa: E402

from gradr_lava.rewiring import RewiringError, make_pruner  # noqa: E402

torch.set_num_threads(1)
NEURON = {"threshold": 0.5, "current_decay": 1.0, "voltage_decay": 0.1}
BATCHES = [(torch.rand(4, 12, 8, generator=torch.Generator().manual_seed(i)) < 0.4).float()
           for i in range(8)]
CASES = {
    "gradr-paper": ("gradr", {"target_connectivity": {0: 0.2}, "alpha": 5.0}),
    # Fine-tuning starts at step 2, so the checkpoint after step 4 holds the frozen topology.
    "gradr-finetune": ("gradr", {"target_connectivity": {0: 0.2}, "alpha": 5.0,
                                 "total_steps": 8, "finetune": 0.75}),
    "gradr-schedule": ("gradr", {"mode": "schedule", "target_connectivity": 0.2,
                                 "total_steps": 8}),
    "deepr": ("deepr", {"target_connectivity": 0.3, "l1": 0.5, "temperature": 1e-3}),
    "deepr-soft": ("deepr", {"target_connectivity": 0.3, "l1": 1e-2, "temperature": 1e-3,
                             "soft": True}),
    "magnitude": ("magnitude", {"target_connectivity": 0.3, "total_steps": 8,
                                "prune_every": 1}),
    "stds": ("stds", {"target_connectivity": 0.3, "total_steps": 8}),
}


def build(method, options, init_seed):
    torch.manual_seed(init_seed)
    net = torch.nn.Sequential(slayer.block.cuba.Dense(NEURON, 12, 10, weight_scale=2),
                              slayer.block.cuba.Dense(NEURON, 10, 3, weight_scale=2))
    pruner = make_pruner(method, seed=init_seed, **options)
    pruner.attach(net)
    return net, pruner, torch.optim.Adam(net.parameters(), lr=2e-2)


def run(net, pruner, optimizer, batches):
    for spikes in batches:
        optimizer.zero_grad()
        net(spikes).sum(-1).square().mean().backward()
        optimizer.step()
        pruner.after_step(optimizer)


def roundtrip(obj):
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


@pytest.mark.parametrize("case", sorted(CASES))
def test_resumed_run_is_bit_identical(case):
    method, options = CASES[case]
    net, pruner, optimizer = build(method, options, init_seed=0)
    run(net, pruner, optimizer, BATCHES)
    straight = net.state_dict()
    straight_stats = pruner.end_epoch(0, 1)

    net, pruner, optimizer = build(method, options, init_seed=0)
    run(net, pruner, optimizer, BATCHES[:4])
    checkpoint = roundtrip({"model": net.state_dict(), "optimizer": optimizer.state_dict(),
                            "pruner": pruner.state_dict()})
    # A fresh process: other initial weights and another seed, then everything loaded.
    net, pruner, optimizer = build(method, options, init_seed=1)
    net.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    pruner.load_state_dict(checkpoint["pruner"])
    run(net, pruner, optimizer, BATCHES[4:])

    resumed = net.state_dict()
    assert resumed.keys() == straight.keys()
    for key in straight:
        assert torch.equal(resumed[key], straight[key]), key
    assert pruner.end_epoch(0, 1) == straight_stats


def test_state_of_another_method_is_refused():
    _, pruner, _ = build("deepr", CASES["deepr"][1], init_seed=0)
    _, other, _ = build("magnitude", CASES["magnitude"][1], init_seed=0)
    with pytest.raises(RewiringError, match="is for 'magnitude'"):
        pruner.load_state_dict(other.state_dict())
