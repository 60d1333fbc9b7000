"""The exact reference against Lava itself: decays, thresholds, biases, delays, conv, copies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from netx_writer import even_weights, write_net

from gradr_deploy.netx import read_netx
from gradr_deploy.simulation.lava_exact import exact_run
from gradr_deploy.simulation.lava_sim import run_lava

WINDOW = 12


def _spikes(rng: np.random.Generator, samples: int, features: int, rate: float = 0.3):
    spikes = (rng.random((samples, features, WINDOW)) < rate).astype(np.uint8)
    spikes[:, :, -4:] = 0  # drain steps
    return spikes


def _agree(path: Path, spikes: np.ndarray, input_shape=None, copies: int = 4):
    run = run_lava(path, spikes, WINDOW, input_shape, copies=copies)
    exact = exact_run(read_netx(path), spikes, WINDOW, input_shape, streams=run.copies)
    assert len(run.layer_spikes) == len(exact.layers)
    for k, (lava, ref) in enumerate(zip(run.layer_spikes, exact.layers, strict=True)):
        assert lava.shape == ref.shape, k
        mismatch = np.argwhere(lava != ref)
        assert not len(mismatch), f"layer {k}: {len(mismatch)} bins differ, first {mismatch[:3]}"
        assert ref.any(), f"layer {k} never spiked: the test would prove nothing"
    return run


def test_dense_decays_thresholds_and_biases_match_lava(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    layers = [
        {"kind": "dense", "weight": even_weights(rng, (30, 20)), "i_decay": 410,
         "v_decay": 410, "threshold": 40},
        {"kind": "dense", "weight": even_weights(rng, (24, 30)), "i_decay": 1024,
         "v_decay": 0, "threshold": 90, "bias": rng.integers(-8, 12, 24)},
        {"kind": "dense", "weight": even_weights(rng, (16, 24), scale=120), "i_decay": 0,
         "v_decay": 4096, "threshold": 25},
        {"kind": "dense", "weight": even_weights(rng, (10, 16)), "i_decay": 4095,
         "v_decay": 2048, "threshold": 1},
    ]
    path = write_net(tmp_path / "dense.net", layers)
    _agree(path, _spikes(rng, 40, 20))


def test_synaptic_delays_match_lava(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    w0 = even_weights(rng, (20, 16))
    layers = [
        {"kind": "dense", "weight": w0, "delay": rng.integers(0, 4, w0.shape),
         "i_decay": 2048, "v_decay": 1024, "threshold": 40},
        {"kind": "dense", "weight": even_weights(rng, (8, 20)), "delay": rng.integers(0, 3, 8),
         "threshold": 30},
    ]
    path = write_net(tmp_path / "delay.net", layers)
    _agree(path, _spikes(rng, 30, 16))


def test_conv_with_rectangular_stride_and_bias_matches_lava(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    layers = [
        {"kind": "conv", "weight": even_weights(rng, (4, 2, 3, 3), density=0.8),
         "shape": (4, 4, 3), "stride": (2, 3), "padding": (1, 1), "i_decay": 600,
         "v_decay": 300, "threshold": 30, "bias": rng.integers(0, 6, 4)},
        {"kind": "flatten", "shape": (48, 1, 1)},
        {"kind": "dense", "weight": even_weights(rng, (6, 48)), "threshold": 60},
    ]
    path = write_net(tmp_path / "conv.net", layers)
    # input (f, y, x) = (2, 7, 8); netx wants (x, y, f)
    _agree(path, _spikes(rng, 24, 2 * 7 * 8), input_shape=(8, 7, 2))


def test_copies_side_by_side_give_the_plain_networks_spikes(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    layers = [
        {"kind": "dense", "weight": even_weights(rng, (18, 12)), "i_decay": 1000,
         "v_decay": 200, "threshold": 30},
        {"kind": "dense", "weight": even_weights(rng, (6, 18)), "threshold": 20},
    ]
    path = write_net(tmp_path / "copies.net", layers)
    spikes = _spikes(rng, 21, 12)  # not a multiple of the copies: the last copy pads
    plain = _agree(path, spikes, copies=1)
    copied = _agree(path, spikes, copies=8)
    assert copied.copies == 8 and plain.copies == 1
    # each sample's own window (after every layer's reset) is the same in any arrangement
    for k, (a, b) in enumerate(zip(plain.layer_spikes, copied.layer_spikes, strict=True)):
        assert np.array_equal(a[:, :, k:], b[:, :, k:])


@pytest.mark.parametrize("i_decay", [0, 1, 205, 2048, 4095, 4096])
def test_exact_reference_is_deterministic_and_batch_independent(tmp_path: Path,
                                                                i_decay: int) -> None:
    rng = np.random.default_rng(i_decay)
    layers = [{"kind": "dense", "weight": even_weights(rng, (9, 7)), "i_decay": i_decay,
               "v_decay": 100, "threshold": 20, "bias": rng.integers(-3, 3, 9)}]
    net = read_netx(write_net(tmp_path / "one.net", layers))
    spikes = _spikes(rng, 17, 7)
    whole = exact_run(net, spikes, WINDOW).output
    pieces = exact_run(net, spikes, WINDOW, batch_size=4).output
    assert np.array_equal(whole, pieces)
