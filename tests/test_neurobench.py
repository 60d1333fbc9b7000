"""NeuroBench's metrics, checked by hand on a tiny network and against NeuroBench's own method
(layers run on binarized inputs and weights, as neurobench/metrics/utils/layers does)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from netx_writer import write_net

from gradr_deploy.energy.neurobench import (
    activation_sparsity,
    connection_sparsity,
    synaptic_operations,
)
from gradr_deploy.hardware.profile import load_profile
from gradr_deploy.mapping import map_network
from gradr_deploy.netx import read_netx


def _tiny(tmp_path: Path) -> Path:
    # layer 0: 3 inputs -> 2 neurons; layer 1: 2 -> 2
    w0 = np.array([[2, 0, 4], [0, 0, 6]])  # input 0 reaches 1 neuron, 1 none, 2 both
    w1 = np.array([[2, 2], [0, 8]])
    return write_net(tmp_path / "tiny.net", [
        {"kind": "dense", "weight": w0, "v_decay": 100},
        {"kind": "dense", "weight": w1, "v_decay": 100}])


def test_metrics_by_hand(tmp_path: Path) -> None:
    network = read_netx(_tiny(tmp_path))
    mapping = map_network(network, load_profile("loihi2"))
    # 2 samples, 4 steps; graded input in sample 1 (payload 3) makes layer 0 count MACs
    inputs = np.zeros((2, 3, 4), np.uint8)
    inputs[0, 0, [0, 1]] = 1  # 2 events x fan-out 1
    inputs[0, 2, 2] = 1  # 1 event x fan-out 2
    inputs[1, 1, :] = 3  # 4 events x fan-out 0
    inputs[1, 2, 3] = 3  # 1 event x fan-out 2
    hidden = np.zeros((2, 2, 4), np.uint8)
    hidden[0, 0, 1] = hidden[0, 1, 2] = hidden[1, 1, 3] = 1  # fan-outs 1, 2, 2
    output = np.zeros((2, 2, 4), np.uint8)
    output[0, 1, 3] = 1

    assert connection_sparsity(network) == 4 / 10  # zeros: 3 of 6 in layer 0, 1 of 4 in 1
    assert activation_sparsity([hidden, output]) == (32 - 4) / 32
    ops = synaptic_operations(network, mapping, inputs, [hidden, output])
    assert ops.effective_macs == (2 * 1 + 1 * 2 + 4 * 0 + 1 * 2) / 2  # graded input: MACs
    assert ops.effective_acs == (1 + 2 + 2) / 2  # binary hidden spikes: ACs
    assert ops.dense == (3 * 2 + 2 * 2) * 4  # every weight, every step


def test_binary_input_counts_accumulates(tmp_path: Path) -> None:
    network = read_netx(_tiny(tmp_path))
    mapping = map_network(network, load_profile("loihi2"))
    inputs = np.zeros((1, 3, 4), np.uint8)
    inputs[0, 2] = 1
    ops = synaptic_operations(network, mapping, inputs, [np.zeros((1, 2, 4), np.uint8)] * 2)
    assert (ops.effective_acs, ops.effective_macs) == (4 * 2, 0)


def test_conv_matches_neurobench_binarized_layer_method(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    kernel = rng.integers(-20, 20, (4, 2, 3, 3)) * 2
    kernel[rng.random(kernel.shape) < 0.5] = 0
    net_path = write_net(tmp_path / "conv.net", [
        {"kind": "conv", "weight": kernel, "shape": (4, 4, 5), "stride": (2, 2),
         "padding": (1, 1), "v_decay": 100},
        {"kind": "flatten", "shape": (80, 1, 1)},
        {"kind": "dense", "weight": rng.integers(-8, 8, (3, 80)) * 2, "v_decay": 100}])
    network = read_netx(net_path)
    input_shape = (9, 7, 2)  # (x, y, f): 2 channels of 7 x 9
    mapping = map_network(network, load_profile("loihi2"), input_shape=input_shape)
    steps = 5
    inputs = (rng.random((3, 2 * 7 * 9, steps)) < 0.3).astype(np.uint8)
    hidden = (rng.random((3, 80, steps)) < 0.2).astype(np.uint8)
    output = np.zeros((3, 3, steps), np.uint8)
    ops = synaptic_operations(network, mapping, inputs, [hidden, output], input_shape)

    def binarized(x: np.ndarray, layer: torch.nn.Module, weight: np.ndarray) -> float:
        layer.weight.data = torch.tensor((weight != 0).astype(np.float32))
        with torch.no_grad():
            return float(layer(torch.tensor((x != 0).astype(np.float32))).sum())

    conv = torch.nn.Conv2d(2, 4, 3, stride=2, padding=1, bias=False)
    dense = torch.nn.Linear(80, 3, bias=False)
    frames = inputs.transpose(0, 2, 1).reshape(3 * steps, 2, 7, 9)
    expected = binarized(frames, conv, kernel) + binarized(
        hidden.transpose(0, 2, 1).reshape(3 * steps, 80), dense,
        network.layers[2].weight_matrix())
    assert np.isclose(ops.effective_acs, expected / 3)
    all_ones = binarized(np.ones((steps, 2, 7, 9)), conv, np.ones_like(kernel)) + \
        binarized(np.ones((steps, 80)), dense, np.ones((3, 80)))
    assert ops.dense == all_ones
