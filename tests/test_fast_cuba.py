"""The fast training path against slayer's own blocks: identical spikes, equal gradients."""

from __future__ import annotations

import pytest
import torch

from gradr_deploy.errors import InputError
from gradr_deploy.simulation import lava_compat
from gradr_lava import fast_cuba
from gradr_lava.config import load_model_config
from gradr_lava.network import SpikingNetwork, select_engine

lava_compat.install()
import lava.lib.dl.slayer as slayer  # noqa: E402

# (current_decay, voltage_decay, threshold, tau_grad): the defaults, slow decays, no voltage
# leak, a threshold off the 1/64 grid of thresholds slayer quantizes to
NEURONS = [(1.0, 0.5, 1.0, 0.01), (0.25, 0.03, 1.25, 0.1), (0.0, 0.9, 0.5, 1.0),
           (0.1, 0.0, 0.77, 0.05)]


def _params(current_decay: float, voltage_decay: float, threshold: float,
            tau_grad: float) -> dict:
    return {"threshold": threshold, "current_decay": current_decay,
            "voltage_decay": voltage_decay, "tau_grad": tau_grad, "scale_grad": 1.0,
            "requires_grad": False}


def _both(block: torch.nn.Module, x: torch.Tensor, wrt: torch.Tensor,
          integer_input: bool = True) -> tuple[torch.Tensor, ...]:
    """slayer's and the fast path's spikes, and the gradients of one random loss of them with
    respect to ``wrt``: (expected, got, expected_grad, got_grad)."""
    expected = block(x)
    grad_out = torch.randn_like(expected)
    (expected_grad,) = torch.autograd.grad((expected * grad_out).sum(), wrt)
    got = fast_cuba.to_slayer_layout(
        fast_cuba.block_forward(block, fast_cuba.to_time_major(x), integer_input=integer_input))
    (got_grad,) = torch.autograd.grad((got * grad_out).sum(), wrt)
    return expected, got, expected_grad, got_grad


def _compare(block: torch.nn.Module, x: torch.Tensor, integer_input: bool = True) -> None:
    """slayer's forward and backward vs the fast path's, on the same block and input."""
    expected, got, expected_grad, got_grad = _both(block, x, block.synapse.weight,
                                                   integer_input)
    assert got.shape == expected.shape
    assert torch.equal(got, expected), f"{(got != expected).sum()} spikes differ"
    assert expected.sum() > 0, "a silent layer would test nothing"
    scale = expected_grad.abs().max()
    assert scale > 0
    assert (got_grad - expected_grad).abs().max() <= 1e-5 * scale


@pytest.fixture(params=["on", "off"])
def int8_gemm(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """Both CPU products of dense blocks (int8 GEMM, float32), whichever this CPU prefers;
    counts the int8 GEMMs taken, so a test can see that the setting reached them."""
    calls = []
    int_mm = torch._int_mm

    def counted(*args):
        calls.append(1)
        return int_mm(*args)

    monkeypatch.setattr(torch, "_int_mm", counted)
    monkeypatch.setenv(fast_cuba.INT8_GEMM_VARIABLE, request.param)
    fast_cuba.int8_gemm_is_used.cache_clear()
    yield request.param, calls
    fast_cuba.int8_gemm_is_used.cache_clear()


def _check_products(int8_gemm: tuple[str, list]) -> None:
    setting, calls = int8_gemm
    assert (len(calls) > 0) == (setting == "on")


@pytest.mark.parametrize("neuron", NEURONS)
def test_dense_block_spikes_and_weight_gradients_equal_slayers(neuron: tuple,
                                                               int8_gemm: tuple) -> None:
    torch.manual_seed(1)
    block = slayer.block.cuba.Dense(_params(*neuron), 120, 60, weight_scale=2,
                                    weight_norm=False)
    x = (torch.rand(8, 120, 24) < 0.3).float()
    x[..., -3:] = 0  # drain steps: the fast path skips silent steps in its GEMMs
    _compare(block, x)
    _check_products(int8_gemm)


@pytest.mark.parametrize("neuron", NEURONS[:2])
def test_conv_block_spikes_and_weight_gradients_equal_slayers(neuron: tuple) -> None:
    torch.manual_seed(2)
    block = slayer.block.cuba.Conv(_params(*neuron), 2, 6, 3, stride=2, padding=1,
                                   weight_scale=2, weight_norm=False)
    x = (torch.rand(4, 2, 11, 9, 16) < 0.3).float()
    _compare(block, x)


def test_graded_input_off_the_grid_still_matches_slayer() -> None:
    """Non-binary input takes the float GEMM and slayer's truncation of the drive."""
    torch.manual_seed(3)
    block = slayer.block.cuba.Dense(_params(*NEURONS[1]), 50, 30, weight_scale=2,
                                    weight_norm=False)
    x = torch.rand(6, 50, 12) * (torch.rand(6, 50, 12) < 0.5)
    _compare(block, x, integer_input=False)


def test_graded_integer_payloads_take_the_exact_int8_path(int8_gemm: tuple) -> None:
    """Direct input: payloads 0..15 (and a first-layer threshold 15x the model's)."""
    torch.manual_seed(6)
    params = {**_params(*NEURONS[0]), "threshold": 15.0}
    block = slayer.block.cuba.Dense(params, 64, 32, weight_scale=2, weight_norm=False)
    x = torch.randint(0, 16, (6, 64, 10)).float()
    x[..., -2:] = 0
    _compare(block, x, integer_input=True)
    _check_products(int8_gemm)


def test_the_int8_gemm_setting_is_checked_and_auto_picks_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(fast_cuba.INT8_GEMM_VARIABLE, "fast")
    fast_cuba.int8_gemm_is_used.cache_clear()
    with pytest.raises(InputError, match=r"GRADR_LAVA_INT8_GEMM='fast'.*auto, on, off"):
        fast_cuba.int8_gemm_is_used()
    monkeypatch.setenv(fast_cuba.INT8_GEMM_VARIABLE, "auto")
    fast_cuba.int8_gemm_is_used.cache_clear()
    assert isinstance(fast_cuba.int8_gemm_is_used(), bool)  # timed; either answer is exact
    fast_cuba.int8_gemm_is_used.cache_clear()


def test_input_gradient_matches_slayer_for_hidden_layers() -> None:
    torch.manual_seed(4)
    block = slayer.block.cuba.Dense(_params(*NEURONS[0]), 40, 20, weight_scale=2,
                                    weight_norm=False)
    x = (torch.rand(5, 40, 10) < 0.4).float().requires_grad_()
    _, _, expected_grad, got_grad = _both(block, x, x)
    assert torch.allclose(got_grad, expected_grad, rtol=1e-5,
                          atol=1e-5 * expected_grad.abs().max())


def test_whole_network_engines_agree_and_the_fast_one_is_the_default() -> None:
    config = load_model_config("digits-conv")
    torch.manual_seed(0)
    fast = SpikingNetwork(config, (8, 8), 10)
    torch.manual_seed(0)
    reference = SpikingNetwork(config, (8, 8), 10, engine="slayer")
    assert (fast.engine, reference.engine) == ("fast", "slayer")
    with torch.no_grad():  # untrained weights leave the output silent: scale them up
        for network in (fast, reference):
            for block in network.synaptic_blocks:
                block.synapse.weight *= 4
    x = (torch.rand(16, 64, 20) < 0.5).float()
    got, expected = fast.forward_layers(x), reference.forward_layers(x)
    for a, b in zip(got, expected, strict=True):
        assert torch.equal(a, b)
    assert all(out.sum() > 0 for out in expected)


def test_an_uncovered_block_falls_back_to_slayer_with_a_note() -> None:
    params = _params(*NEURONS[0])
    blocks = [slayer.block.cuba.Dense(params, 10, 10, delay=True)]
    engine, note = select_engine("auto", blocks)
    assert engine == "slayer"
    assert "block 0" in note and "axonal delay" in note
    from gradr_deploy.errors import InputError

    with pytest.raises(InputError, match="engine='fast' does not cover"):
        select_engine("fast", blocks)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_cuda_spikes_equal_cpu_spikes() -> None:
    torch.manual_seed(5)
    block = slayer.block.cuba.Dense(_params(*NEURONS[1]), 100, 50, weight_scale=2,
                                    weight_norm=False)
    x = (torch.rand(8, 100, 16) < 0.3).float()
    cpu = fast_cuba.block_forward(block, fast_cuba.to_time_major(x), integer_input=True)
    gpu = fast_cuba.block_forward(block.cuda(), fast_cuba.to_time_major(x).cuda(),
                                  integer_input=True)
    assert torch.equal(cpu, gpu.cpu())
