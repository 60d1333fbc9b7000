"""Grad R: the redefined gradient and the prior step against hand computations, regrowth,
quantization composing with the parametrization, Conv blocks, schedule mode, option errors."""

import math

import numpy as np
import pytest
import torch

import gradr_deploy.simulation.lava_compat

gradr_deploy.simulation.lava_compat.install()
import lava.lib.dl.slayer as slayer  # noqa: E402

from gradr_lava.rewiring import RewiringError, laplace_mu, make_pruner  # noqa: E402
from gradr_lava.rewiring.gradr import adam_step_scale  # noqa: E402
from gradr_lava.rewiring.parametrization import hidden_parameter  # noqa: E402

torch.set_num_threads(1)
NEURON = {"threshold": 0.5, "current_decay": 1.0, "voltage_decay": 0.1}

# A 2-input, 3-output Dense layer: weight (3, 2) with fixed signs s, and two absent connections.
W0 = torch.tensor([[0.5, -0.2], [-0.4, 0.1], [0.3, -0.6]])
SIGN = torch.tensor([[1.0, -1.0], [-1.0, 1.0], [1.0, -1.0]])
THETA = torch.tensor([[0.5, -0.1], [0.4, -0.5], [0.3, 0.6]])  # [0,1] and [1,1] absent
DL_DW = torch.tensor([[1.0, 2.0], [-0.5, 0.25], [0.0, -1.5]])  # loss = sum(DL_DW * w)
# target connectivity 0.25 -> p = 0.75; alpha = 2 -> mu = ln(2 * 0.25) / 2 = -0.34657...
TARGET, ALPHA = 0.25, 2.0


def tiny_dense(alpha=ALPHA, **pruner_options):
    torch.manual_seed(0)
    block = slayer.block.cuba.Dense(NEURON, 2, 3)
    with torch.no_grad():
        block.synapse.weight.copy_(W0.reshape(3, 2, 1, 1, 1))
    pruner = make_pruner("gradr", target_connectivity=TARGET, alpha=alpha, **pruner_options)
    pruner.attach(block)
    theta = hidden_parameter(block.synapse)
    with torch.no_grad():
        theta.copy_(THETA.reshape(theta.shape))
    return block, pruner, theta


def weight_of(block):
    return block.synapse.weight.reshape(3, 2)


def backward_hand_loss(block):
    (DL_DW * weight_of(block)).sum().backward()


def test_parametrization_starts_at_initial_weight_with_theta_abs_w():
    torch.manual_seed(0)
    block = slayer.block.cuba.Dense(NEURON, 2, 3)
    with torch.no_grad():
        block.synapse.weight.copy_(W0.reshape(3, 2, 1, 1, 1))
    make_pruner("gradr", target_connectivity=TARGET, alpha=ALPHA).attach(block)
    assert torch.equal(hidden_parameter(block.synapse).reshape(3, 2), W0.abs())
    assert torch.equal(weight_of(block).detach(), W0)
    assert torch.equal(block.synapse.parametrizations.weight[0].sign.reshape(3, 2), SIGN)


def test_redefined_gradient_reaches_absent_connections():
    block, _, theta = tiny_dense()
    assert torch.equal(weight_of(block).detach(), SIGN * THETA.clamp(min=0))
    backward_hand_loss(block)
    # s * dL/dw everywhere, the absent [0,1] and [1,1] included (the true gradient is 0 there).
    expected = torch.tensor([[1.0, -2.0], [0.5, 0.25], [0.0, 1.5]])
    assert torch.equal(theta.grad.reshape(3, 2), expected)


def test_prior_step_sgd_form_by_hand():
    block, pruner, theta = tiny_dense()
    optimizer = torch.optim.SGD(block.parameters(), lr=0.1)
    backward_hand_loss(block)
    optimizer.step()
    pruner.after_step(optimizer)
    # theta' = theta - 0.1 * s * dL/dw = [[.4, .1], [.35, -.525], [.3, .45]]; all > mu except
    # [1,1]; theta'' = theta' - 0.1 * 2 * sign(theta' - mu).
    expected = torch.tensor([[0.2, -0.1], [0.15, -0.325], [0.1, 0.25]])
    torch.testing.assert_close(theta.detach().reshape(3, 2), expected, rtol=0, atol=1e-6)
    expected_w = torch.tensor([[0.2, 0.0], [-0.15, 0.0], [0.1, -0.25]])
    torch.testing.assert_close(weight_of(block).detach(), expected_w, rtol=0, atol=1e-6)


def test_prior_step_adam_form_by_hand():
    block, pruner, theta = tiny_dense()
    optimizer = torch.optim.Adam(block.parameters(), lr=0.01, betas=(0.9, 0.999))
    backward_hand_loss(block)
    optimizer.step()
    pruner.after_step(optimizer)
    # Adam's first step moves theta by lr * g / (|g| + eps) = 0.01 * sign(g) (0 where g = 0);
    # the prior step is lr / (1 - 0.9) * alpha = 0.2, NOT divided by Adam's denominator.
    expected = torch.tensor([[0.29, -0.29], [0.19, -0.31], [0.1, 0.39]])
    torch.testing.assert_close(theta.detach().reshape(3, 2), expected, rtol=0, atol=1e-6)


def test_adam_bias_correction_factor_follows_the_step_count():
    block, _, theta = tiny_dense()
    optimizer = torch.optim.Adam(block.parameters(), lr=0.01, betas=(0.9, 0.999))
    for _ in range(2):
        optimizer.zero_grad()
        backward_hand_loss(block)
        optimizer.step()
    group = optimizer.param_groups[0]
    assert adam_step_scale(optimizer, group, theta) == pytest.approx(1 / (1 - 0.9**2))
    assert adam_step_scale(torch.optim.SGD([theta], lr=0.1), {"lr": 0.1}, theta) == 1.0


def test_prior_without_bias_correction_uses_plain_lr():
    block, pruner, theta = tiny_dense(adam_bias_correction=False)
    optimizer = torch.optim.Adam(block.parameters(), lr=0.01)
    backward_hand_loss(block)
    optimizer.step()
    before = theta.detach().clone()
    pruner.after_step(optimizer)
    mu = math.log(2 * (1 - 0.75)) / ALPHA
    expected = before - 0.01 * ALPHA * torch.sign(before - mu)
    torch.testing.assert_close(theta.detach(), expected, rtol=0, atol=1e-7)


def test_laplace_mu_and_its_domain():
    assert laplace_mu(0.75, 2.0) == pytest.approx(math.log(0.5) / 2.0)
    assert laplace_mu(0.5, 0.1) == 0.0
    with pytest.raises(ValueError, match="p in"):
        laplace_mu(0.4, 1.0)
    with pytest.raises(RewiringError):
        make_pruner("gradr", target_connectivity=0.6, alpha=1.0).attach(tiny_dense()[0])


@pytest.mark.parametrize("row", [0, 1])
def test_pruned_connection_regrows_with_its_original_sign(row):
    # [0,1] (s = -1, theta -0.1) and [1,1] (s = +1, theta -0.5) absent. The prior pulls every
    # theta down by lr * alpha = 0.001 per step, the loss pushes this one up by 0.01 per step.
    block, pruner, theta = tiny_dense(alpha=0.1)
    optimizer = torch.optim.SGD(block.parameters(), lr=0.01)
    for _ in range(80):
        optimizer.zero_grad()
        # The loss wants |w[row, 1]| larger, in the direction of its original sign.
        (-SIGN[row, 1] * weight_of(block)[row, 1]).backward()
        optimizer.step()
        pruner.after_step(optimizer)
    w = weight_of(block).detach()[row, 1]
    assert theta.detach().reshape(3, 2)[row, 1] > 0
    assert torch.sign(w) == SIGN[row, 1]
    quantized = block.synapse.pre_hook_fx(block.synapse.weight).reshape(3, 2)[row, 1]
    assert torch.sign(quantized) == SIGN[row, 1]
    layer = pruner.end_epoch(0, 1)["layers"][0]
    assert layer["regrown"] >= 1


def test_absent_connections_are_exact_zeros_through_slayer_quantization_and_forward():
    block, _, _ = tiny_dense()
    quantized = block.synapse.pre_hook_fx(block.synapse.weight).reshape(3, 2)
    assert quantized[0, 1].item() == 0.0 and quantized[1, 1].item() == 0.0
    # The parametrized block computes exactly what a plain block with those zeros computes.
    torch.manual_seed(0)
    plain = slayer.block.cuba.Dense(NEURON, 2, 3)
    with torch.no_grad():
        plain.synapse.weight.copy_(block.synapse.weight.detach())
    spikes = (torch.rand(4, 2, 12, generator=torch.Generator().manual_seed(1)) < 0.5).float()
    assert torch.equal(block(spikes), plain(spikes))
    assert torch.equal(plain.synapse.weight.reshape(3, 2)[:, 1] != 0,
                       torch.tensor([False, False, True]))


def test_conv_block_is_parametrized_and_pruned():
    torch.manual_seed(0)
    block = slayer.block.cuba.Conv(NEURON, 2, 3, 3, weight_scale=2)
    pruner = make_pruner("gradr", target_connectivity=0.5, alpha=50.0)
    pruner.attach(block)
    theta = hidden_parameter(block.synapse)
    assert theta.shape == (3, 2, 3, 3, 1)
    optimizer = torch.optim.SGD(block.parameters(), lr=1e-3)
    spikes = (torch.rand(2, 2, 6, 6, 8, generator=torch.Generator().manual_seed(2)) < 0.5)
    for _ in range(5):
        optimizer.zero_grad()
        block(spikes.float()).sum().backward()
        assert theta.grad.shape == theta.shape
        optimizer.step()
        pruner.after_step(optimizer)
    absent = theta.detach() <= 0
    assert 0 < int(absent.sum()) < theta.numel()
    assert torch.all(block.synapse.pre_hook_fx(block.synapse.weight)[absent] == 0)


def test_schedule_mode_hits_each_layers_target_exactly():
    torch.manual_seed(0)
    net = torch.nn.Sequential(slayer.block.cuba.Dense(NEURON, 10, 20, weight_scale=2),
                              slayer.block.cuba.Dense(NEURON, 20, 4, weight_scale=2))
    steps = 20
    pruner = make_pruner("gradr", mode="schedule", target_connectivity={0: 0.1, "1": 0.25},
                         total_steps=steps, schedule=(0.0, 0.5))
    pruner.attach(net)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    spikes = (torch.rand(4, 10, 8, generator=torch.Generator().manual_seed(3)) < 0.5).float()
    counts = []
    for _ in range(steps):
        optimizer.zero_grad()
        net(spikes).square().mean().backward()
        optimizer.step()
        pruner.after_step(optimizer)
        counts.append([int(torch.count_nonzero(b.synapse.weight)) for b in net])
    # Halfway through the ramp (step 5 of 10): c = c_f + (1 - c_f) * 0.5^3.
    assert counts[4] == [round((0.1 + 0.9 / 8) * 200), round((0.25 + 0.75 / 8) * 80)]
    assert all(c == [20, 20] for c in counts[9:])
    stats = pruner.end_epoch(0, 1)
    assert [layer["connectivity"] for layer in stats["layers"]] == [0.1, 0.25]


def test_gradr_refuses_weight_norm_slayer_mask_and_unused_options():
    torch.manual_seed(0)
    normed = slayer.block.cuba.Dense(NEURON, 2, 3, weight_norm=True)
    with pytest.raises(RewiringError, match="weight_norm=False"):
        make_pruner("gradr", target_connectivity=0.1, alpha=1.0).attach(normed)
    masked = slayer.block.cuba.Dense(NEURON, 2, 3, mask=torch.ones(3, 2))
    with pytest.raises(RewiringError, match="mask"):
        make_pruner("gradr", target_connectivity=0.1, alpha=1.0).attach(masked)
    with pytest.raises(RewiringError, match="does not use l1"):
        make_pruner("gradr", target_connectivity=0.1, alpha=1.0, l1=1e-3)
    with pytest.raises(RewiringError, match="needs alpha"):
        make_pruner("gradr", target_connectivity=0.1)
    with pytest.raises(RewiringError, match="alpha= is not used"):
        make_pruner("gradr", mode="schedule", target_connectivity=0.1, alpha=1.0, total_steps=9)


def test_optimizer_must_hold_theta_without_weight_decay():
    block, pruner, _ = tiny_dense()
    other = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(RewiringError, match="does not update theta"):
        pruner.after_step(other)
    decayed = torch.optim.AdamW(block.parameters(), lr=0.1, weight_decay=0.01)
    with pytest.raises(RewiringError, match="weight_decay"):
        pruner.after_step(decayed)


def test_finetune_freezes_the_8bit_topology_and_stops_the_prior():
    # 4 steps in all, the last 2 fine-tuning: the freeze comes after step 2.
    block, pruner, theta = tiny_dense(alpha=0.1, total_steps=4, finetune=0.5)
    optimizer = torch.optim.SGD(block.parameters(), lr=0.01)
    with torch.no_grad():  # [2,0] will be present in float (theta 0.008) when the freeze
        theta.reshape(3, 2)[2, 0] = -0.02  # comes, but 0 after 8-bit rounding (step 1/32)

    def step(wanted_up):
        optimizer.zero_grad()
        # The loss wants every listed connection stronger in its own sign's direction.
        (-(SIGN * weight_of(block))[wanted_up].sum()).backward()
        optimizer.step()
        pruner.after_step(optimizer)

    all_entries = torch.ones(3, 2, dtype=torch.bool)
    for _ in range(2):  # ordinary Grad R steps: loss +0.01, prior -0.001 on every theta
        step(all_entries)
    before = theta.detach().reshape(3, 2).clone()
    assert not pruner.finetuning
    step(all_entries)  # first fine-tuning step: topology frozen from the 8-bit weights
    assert pruner.finetuning
    after = theta.detach().reshape(3, 2)
    frozen = torch.tensor([[False, True], [False, True], [True, False]])
    # Present ones follow the loss alone (+0.01, no prior); absent ones may not come back,
    # the one that 8-bit rounding zeroed included, although the loss pushes all of them up.
    torch.testing.assert_close(after[~frozen], before[~frozen] + 0.01, rtol=0, atol=1e-6)
    assert torch.all(after[frozen] <= 0)
    assert after[2, 0] == 0  # clamped: was 0.008 after this step's update
    for _ in range(3):
        step(all_entries)
    assert torch.all(theta.detach().reshape(3, 2)[frozen] <= 0)
    assert torch.count_nonzero(block.synapse.weight) == 3
    assert pruner.end_epoch(0, 1)["layers"][0]["finetuning"] is True


def test_finetune_options_are_checked():
    with pytest.raises(RewiringError, match="needs total_steps"):
        make_pruner("gradr", target_connectivity=0.1, alpha=1.0, finetune=0.25)
    with pytest.raises(RewiringError, match=r"fraction in \(0, 1\)"):
        make_pruner("gradr", target_connectivity=0.1, alpha=1.0, total_steps=10, finetune=1.0)
    with pytest.raises(RewiringError, match=r"before the schedule reaches .*finetune=0.25 or less"):
        make_pruner("gradr", mode="schedule", target_connectivity=0.1, total_steps=100,
                    finetune=0.5)
    with pytest.raises(RewiringError, match="does not use finetune"):
        make_pruner("magnitude", target_connectivity=0.1, total_steps=10, finetune=0.2)


def test_schedule_mode_can_count_the_weights_that_survive_8bit_rounding():
    """count='deployed': the target is met by weights with |w| > 1/64 (nonzero on the chip),
    while weights at or below half an 8-bit step still exist in float and can grow back."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(slayer.block.cuba.Dense(NEURON, 30, 20, weight_scale=0.2))
    steps = 10
    pruner = make_pruner("gradr", mode="schedule", target_connectivity=0.3, count="deployed",
                         total_steps=steps, schedule=(0.0, 0.5))
    pruner.attach(net)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    spikes = (torch.rand(4, 30, 8, generator=torch.Generator().manual_seed(3)) < 0.5).float()
    block = net[0]
    for _ in range(steps):
        optimizer.zero_grad()
        net(spikes).square().mean().backward()
        optimizer.step()
        pruner.after_step(optimizer)
    deployed = block.neuron.quantize_8bit(block.synapse.weight)
    assert int(torch.count_nonzero(deployed)) == round(0.3 * 600)
    small = (block.synapse.weight.abs() > 0) & (block.synapse.weight.abs() <= 1 / 64)
    assert int(small.sum()) > 0, "weight_scale 0.2 leaves weights below half a step"
    stats = pruner.end_epoch(0, 1)
    assert stats["layers"][0]["connectivity_quantized"] == 0.3
    with pytest.raises(RewiringError, match="schedule-mode option"):
        make_pruner("gradr", target_connectivity=0.3, alpha=1.0, count="deployed")


def test_schedule_shift_on_crossing_connections_only_keeps_the_other_thetas():
    """shrink=False: pruning to the scheduled count moves only the connections that leave."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(slayer.block.cuba.Dense(NEURON, 20, 10, weight_scale=2))
    pruner = make_pruner("gradr", mode="schedule", target_connectivity=0.2, total_steps=4,
                         schedule=(0.0, 0.5), shrink=False)
    pruner.attach(net)
    theta = hidden_parameter(net[0].synapse)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.0)  # only the pruner moves theta
    before = theta.detach().clone()
    pruner.after_step(optimizer)
    after = theta.detach()
    kept = after > 0
    assert int(kept.sum()) == round((0.2 + 0.8 * 0.5**3) * 200)  # halfway down the ramp
    assert torch.equal(after[kept], before[kept])  # survivors untouched
    left = (before > 0) & ~kept
    assert bool(left.any()) and bool((after[left] <= 0).all())
    with pytest.raises(RewiringError, match="schedule-mode option"):
        make_pruner("gradr", target_connectivity=0.2, alpha=1.0, shrink=False)


def _gradr_trap(idle_first: bool, steps: int = 1) -> list[torch.Tensor]:
    """A 4-3-2 chain where hidden neuron 0 has the largest inputs and no output present: Grad R
    keeps those inputs unless ``idle_first`` pushes them out. Returns the (out, in) presence
    masks after ``steps`` schedule steps (float count, targets held: ramp over)."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(slayer.block.cuba.Dense(NEURON, 4, 3),
                              slayer.block.cuba.Dense(NEURON, 3, 2))
    pruner = make_pruner("gradr", mode="schedule", target_connectivity={0: 0.5, 1: 0.5},
                         total_steps=10, schedule=(0.0, 0.0), shrink=False,
                         idle_first=idle_first)
    pruner.attach(net)
    theta0, theta1 = (hidden_parameter(block.synapse) for block in net)
    with torch.no_grad():
        # layer 0: neuron 0's four inputs are the largest; neurons 1 and 2 have two present each
        theta0.copy_(torch.tensor([[3.0, 3.0, 3.0, 3.0], [2.0, 1.9, -0.1, -0.2],
                                   [1.8, 1.7, -0.3, -0.4]]).reshape(theta0.shape))
        # layer 1: nothing leaves hidden neuron 0
        theta1.copy_(torch.tensor([[-1.0, 1.0, 0.9], [-1.0, 0.8, -0.5]]).reshape(theta1.shape))
    optimizer = torch.optim.SGD(net.parameters(), lr=0.0)
    for _ in range(steps):
        pruner.after_step(optimizer)
    return [hidden_parameter(block.synapse).detach().reshape(block.synapse.weight.shape[0], -1) > 0
            for block in net]


def test_idle_first_pushes_out_the_connections_into_a_cut_off_neuron():
    from gradr_deploy.netx import useful_in_chain

    plain = _gradr_trap(idle_first=False)
    assert plain[0][0].all() and not plain[1][:, 0].any()  # 4 of its 6 inputs feed a dead end
    pushed = _gradr_trap(idle_first=True)
    assert [int(mask.sum()) for mask in pushed] == [6, 3]  # the targets still hold exactly
    assert not pushed[0][0].any()
    useful = useful_in_chain([mask.numpy() for mask in pushed])
    assert all(np.array_equal(u, m.numpy()) for u, m in zip(useful, pushed, strict=True))
    # the reflected inputs sit as far below the boundary as they were above: they stay out
    assert torch.equal(_gradr_trap(idle_first=True, steps=5)[0], pushed[0])


def test_idle_first_is_a_schedule_mode_option_for_dense_chains():
    with pytest.raises(RewiringError, match="schedule-mode option"):
        make_pruner("gradr", target_connectivity=0.25, alpha=ALPHA, idle_first=True)
    pruner = make_pruner("gradr", mode="schedule", target_connectivity=0.5, total_steps=10,
                         idle_first=True)
    with pytest.raises(RewiringError, match="needs dense layers; layer 0"):
        pruner.attach(torch.nn.Sequential(slayer.block.cuba.Conv(NEURON, 2, 3, 3)))
