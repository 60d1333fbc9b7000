"""Synapses that cannot change an output spike: counted exactly, and really removable."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from netx_writer import shared_netx, write_net

from gradr_deploy.mapping import map_network
from gradr_deploy.netx import (
    dense_network,
    idle_synapses,
    read_netx,
    strip_idle,
    useful_in_chain,
)


def test_hand_built_chain_counts_dead_ends_silent_sources_and_their_chains() -> None:
    w0 = np.zeros((3, 4))
    w0[0, :2] = 1  # hidden 0: two inputs, reaches the output through hidden2 neuron 0
    w0[1, 2:] = 1  # hidden 1: two inputs, feeds only hidden2 neuron 1, which is a dead end
    # hidden 2 gets no input: it never spikes
    w1 = np.zeros((2, 3))
    w1[0, 0] = 1
    w1[1, 1] = 1
    w1[0, 2] = 1  # out of the silent neuron
    w2 = np.zeros((2, 2))
    w2[:, 0] = 1  # hidden2 neuron 1 feeds nothing
    idle = idle_synapses(dense_network([w0, w1, w2]))
    assert set(idle) == {1, 2, 3}
    assert (idle[1].to_dead_ends, idle[1].from_silent, idle[1].dead_end_neurons) == (2, 0, 1)
    assert (idle[2].to_dead_ends, idle[2].from_silent, idle[2].dead_end_neurons) == (1, 1, 1)
    assert idle[1].silent_neurons == 1  # hidden 2
    assert idle[3].idle == 0 and idle[3].synapses == 2


def test_a_bias_makes_a_neuron_without_inputs_a_source(tmp_path: Path) -> None:
    layers = [
        {"kind": "dense", "weight": np.array([[2.0, 0.0], [0.0, 0.0]]), "i_decay": 4096,
         "v_decay": 4096, "threshold": 1, "bias": np.array([0, 5])},
        {"kind": "dense", "weight": np.array([[0.0, 2.0]]), "i_decay": 4096, "v_decay": 4096,
         "threshold": 1},
    ]
    idle = idle_synapses(read_netx(write_net(tmp_path / "bias.net", layers)))
    # neuron 1 of layer 0 has a bias, so its synapse counts; neuron 0 reaches nothing
    assert (idle[0].to_dead_ends, idle[0].silent_neurons) == (1, 0)
    assert idle[1].idle == 0


def _useful_by_paths(weights: list[np.ndarray]) -> list[np.ndarray]:
    """Independent formulation: a synapse is useful iff a path of nonzero synapses runs from
    an input to its source and from its target to an output neuron."""
    forward = [np.ones(weights[0].shape[1], dtype=bool)]
    for w in weights:
        forward.append((w[:, forward[-1]] != 0).any(axis=1))
    backward = [np.ones(weights[-1].shape[0], dtype=bool)]
    for w in reversed(weights):
        backward.insert(0, (w[backward[0]] != 0).any(axis=0))
    return [(w != 0) & np.outer(backward[k + 1] & forward[k + 1], forward[k])
            for k, w in enumerate(weights)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 7), min_size=2, max_size=5), st.integers(0, 2**31 - 1),
       st.floats(0.05, 0.6))
def test_idle_count_matches_path_reachability(sizes: list[int], seed: int, density: float) -> None:
    rng = np.random.default_rng(seed)
    weights = [np.where(rng.random((b, a)) < density, rng.integers(1, 9, (b, a)), 0)
               for a, b in itertools.pairwise(sizes)]
    idle = idle_synapses(dense_network(weights, input_layer=False))
    useful = _useful_by_paths(weights)
    for k, w in enumerate(weights):
        assert idle[k].synapses == int((w != 0).sum())
        assert idle[k].idle == int((w != 0).sum() - useful[k].sum()), k


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 7), min_size=2, max_size=5), st.integers(0, 2**31 - 1),
       st.floats(0.05, 0.6))
def test_useful_in_chain_gives_the_same_masks_on_torch_tensors(sizes: list[int], seed: int,
                                                                density: float) -> None:
    # the training-time idle_first check runs it on the weights' own device, as torch tensors
    import torch

    rng = np.random.default_rng(seed)
    weights = [np.where(rng.random((b, a)) < density, rng.integers(1, 9, (b, a)), 0)
               for a, b in itertools.pairwise(sizes)]
    driven = [rng.random(w.shape[0]) < 0.2 for w in weights]
    for bias in (None, driven):
        expected = useful_in_chain([w != 0 for w in weights], bias)
        got = useful_in_chain([torch.from_numpy(w != 0) for w in weights],
                              None if bias is None else [torch.from_numpy(d) for d in bias])
        assert all(isinstance(g, torch.Tensor) and g.dtype == torch.bool for g in got)
        for k, (e, g) in enumerate(zip(expected, got, strict=True)):
            np.testing.assert_array_equal(g.numpy(), e, err_msg=f"layer {k}")
    no_bias = useful_in_chain([w != 0 for w in weights])
    for k, (e, u) in enumerate(zip(no_bias, _useful_by_paths(weights), strict=True)):
        np.testing.assert_array_equal(e, u, err_msg=f"layer {k}")


def _write_dense(path: Path, weights: list[np.ndarray]) -> Path:
    return write_net(path, [
        {"kind": "dense", "weight": w, "i_decay": 1024, "v_decay": 1024, "threshold": 60}
        for w in weights])


def test_strip_idle_removes_exactly_them_and_changes_no_output_spike(tmp_path: Path) -> None:
    from gradr_deploy.simulation.lava_exact import exact_run

    rng = np.random.default_rng(3)
    shapes = [(40, 30), (30, 40), (8, 30)]
    weights = [np.where(rng.random(s) < 0.12, rng.integers(20, 120, s), 0).astype(float)
               for s in shapes]
    source = _write_dense(tmp_path / "original.net", weights)
    original = read_netx(source)
    removed = strip_idle(source, tmp_path / "out" / "stripped.net")
    assert sum(i.idle for i in removed.values()) > 0, "the test would prove nothing"
    stripped = read_netx(tmp_path / "out" / "stripped.net")
    for k, (layer, useful) in enumerate(zip(stripped.synaptic_layers, _useful_by_paths(weights),
                                            strict=True)):
        np.testing.assert_array_equal(layer.weight_matrix(), np.where(useful, weights[k], 0))
        assert layer.neuron == original.synaptic_layers[k].neuron
    assert sum(i.idle for i in idle_synapses(stripped).values()) == 0
    spikes = (rng.random((20, 30, 16)) < 0.4).astype(np.uint8)
    before = exact_run(original, spikes, 16).output
    after = exact_run(stripped, spikes, 16).output
    assert before.any()
    np.testing.assert_array_equal(before, after)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["stripped.net"]  # no temporary


def test_strip_idle_from_the_command_line(tmp_path: Path, capsys) -> None:
    from gradr_lava.cli import main

    w0 = np.zeros((4, 6))
    w0[:, :3] = 2
    w1 = np.zeros((2, 4))
    w1[:, :2] = 2
    source = _write_dense(tmp_path / "in.net", [w0, w1])
    assert main(["strip-idle", str(source), str(tmp_path / "out.net")]) == 0
    assert "removed 6 of 16 synapses (37.5%; layer 0: 6 of 12)" in capsys.readouterr().out
    assert main(["strip-idle", str(tmp_path / "out.net"), str(tmp_path / "again.net")]) == 0
    assert "is idle, the copy is unchanged" in capsys.readouterr().out
    assert main(["strip-idle", str(tmp_path / "missing.net"), str(tmp_path / "x.net")]) == 2
    assert "missing.net: no such file" in capsys.readouterr().err
    assert not (tmp_path / "x.net").exists()


def test_the_mapping_warns_and_records_idle_synapses() -> None:
    w0 = np.zeros((4, 6))
    w0[:, :3] = 1
    w1 = np.zeros((2, 4))
    w1[:, :2] = 1  # hidden neurons 2, 3 feed nothing: their 6 input synapses are idle
    mapping = map_network(dense_network([w0, w1], path="idle.net"), "loihi1")
    assert [m.to_dict()["idle_synapses"] for m in mapping.layers] == [0, 6, 0]
    (warning,) = [w for w in mapping.warnings if "cannot change any output spike" in w]
    assert "idle.net: layer 1: 6 of its 12 synapses (50.0%)" in warning
    assert "2 of its neurons" in warning


def test_the_users_networks_have_dense_chains_and_no_idle_synapses() -> None:
    # trained dense (Oxford, MNIST) and conv-then-dense (PilotNet) networks: every dense layer
    # is analysed, none wastes a synapse, and the conv layers are left out
    for name, dense_layers in (("oxford.net", 2), ("mnist_lavadl.net", 3),
                               ("pilotnet_snn.net", 4)):
        network = read_netx(shared_netx(name))
        idle = idle_synapses(network)
        assert len(idle) == dense_layers, name
        assert all(network.layers[i].kind == "dense" for i in idle), name
        assert sum(i.idle for i in idle.values()) == 0, name
