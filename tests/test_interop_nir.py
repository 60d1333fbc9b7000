"""NIR out and in: exact round trips, snnTorch as a consumer and as a producer, clear errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import nir
import numpy as np
import pytest
from netx_writer import even_weights, shared_netx, write_net

from gradr_deploy.errors import InputError
from gradr_deploy.interop import read_network
from gradr_deploy.interop.nir_export import NETX_UNIT, export_nir
from gradr_deploy.interop.nir_import import read_nir
from gradr_deploy.netx import NetxNetwork, read_netx
from gradr_deploy.netx.write import write_netx

REPO = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).parent / "gradr-lava"


def _same_layers(a: NetxNetwork, b: NetxNetwork) -> None:
    """Weights (as netx truncates them), biases, geometry and neuron parameters are equal."""
    assert [layer.kind for layer in a.layers] == [layer.kind for layer in b.layers]
    for la, lb in zip(a.layers, b.layers, strict=True):
        assert type(la) is type(lb) and la.neurons == lb.neurons, la.index
        if not la.synaptic:
            continue
        wa = la.weight_matrix() if la.kind == "dense" else la.kernel()
        wb = lb.weight_matrix() if lb.kind == "dense" else lb.kernel()
        np.testing.assert_array_equal(np.trunc(wa), wb)
        assert getattr(la, "conv", None) == getattr(lb, "conv", None)
        for key in ("iDecay", "vDecay", "vThMant"):
            assert int(la.neuron.params[key]) == int(lb.neuron.params[key]), (la.index, key)
        bias_a = np.zeros(la.neurons) if la.bias is None else \
            np.broadcast_to(np.trunc(np.asarray(la.bias, float)).reshape(-1, 1),
                            (np.asarray(la.bias).size, la.neurons // np.asarray(la.bias).size)
                            ).reshape(-1)
        bias_b = np.zeros(lb.neurons) if lb.bias is None else np.asarray(lb.bias).reshape(-1)
        np.testing.assert_array_equal(bias_a, bias_b)


def _round_trip(model: Path, tmp_path: Path) -> NetxNetwork:
    graph_path = export_nir(model, tmp_path / "graph.nir")
    imported = read_nir(graph_path)
    assert imported.notes == ()  # a gradr-lava graph comes back without rounding
    return read_netx(write_netx(imported.network, tmp_path / "back.net"))


@pytest.mark.parametrize("name", ["oxford.net", "mnist_lavadl.net"])
def test_lava_dl_files_round_trip_exactly(name: str, tmp_path: Path) -> None:
    model = shared_netx(name)
    _same_layers(read_netx(model), _round_trip(model, tmp_path))


def test_trained_mlp_and_conv_round_trip_exactly(tiny_run: Path, tiny_conv_run: Path,
                                                 tmp_path: Path) -> None:
    for run in (tiny_run, tiny_conv_run):
        original = read_netx(run / "model.net")
        back = _round_trip(run / "model.net", tmp_path)
        _same_layers(original, back)
    graph = nir.read(tmp_path / "graph.nir")  # the conv run's graph
    assert [type(graph.nodes[n]).__name__ for n in ("synapse0", "neuron0")] == \
        ["Conv2d", "CubaLIF"]
    assert graph.metadata["netx_unit"] == NETX_UNIT
    assert graph.metadata["time_steps"] == 6
    x, y, f = read_network(tiny_conv_run / "model.net")[1]
    np.testing.assert_array_equal(graph.nodes["input"].input_type["input"], [f, y, x])


def test_biases_and_integrators_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    model = write_net(tmp_path / "biased.net", [
        {"kind": "dense", "weight": even_weights(rng, (12, 9)), "bias": rng.integers(-9, 9, 12),
         "i_decay": 1024, "v_decay": 300, "threshold": 50},
        {"kind": "dense", "weight": even_weights(rng, (4, 12)), "bias": rng.integers(-9, 9, 4),
         "i_decay": 4096, "v_decay": 0, "threshold": 70},
    ])
    graph_path = export_nir(model, tmp_path / "biased.nir")
    graph = nir.read(graph_path)
    assert type(graph.nodes["neuron0"]).__name__ == "CubaLIF"
    assert type(graph.nodes["neuron1"]).__name__ == "IF"  # vDecay 0: an integrator
    assert type(graph.nodes["synapse1"]).__name__ == "Affine"  # its bias feeds the input
    _same_layers(read_netx(model), _round_trip(model, tmp_path))


def test_deployed_values_and_decays_in_the_graph(tmp_path: Path) -> None:
    model = shared_netx("oxford.net")
    graph = nir.read(export_nir(model, tmp_path / "ox.nir", dt=1e-3))
    network = read_netx(model)
    np.testing.assert_array_equal(graph.nodes["synapse0"].weight * NETX_UNIT,
                                  np.trunc(network.layers[0].weight_matrix()))
    neuron = graph.nodes["neuron0"]
    v_decay = network.layers[0].neuron.params["vDecay"]
    np.testing.assert_allclose(neuron.tau_mem, 1e-3 * 4096 / v_decay)
    np.testing.assert_allclose(neuron.tau_syn, 1e-3)  # iDecay 4096: the current lasts one step
    np.testing.assert_allclose(neuron.r * 1e-3 / neuron.tau_mem, 1.0)
    assert graph.metadata["dt"] == 1e-3


def _snntorch_counts(graph_path: Path, spikes: np.ndarray) -> np.ndarray:
    """Output spike counts of snnTorch's NIR import of the graph on ``(N, F, steps)`` input."""
    import torch
    from snntorch.import_nir import import_from_nir

    module = import_from_nir(nir.read(graph_path))
    inputs = torch.tensor(spikes, dtype=torch.float32)
    with torch.no_grad():
        outputs = [module(inputs[:, :, t])[0] for t in range(spikes.shape[2])]
    return torch.stack(outputs, -1).sum(-1).numpy()


def test_snntorch_runs_the_exported_graph_like_lava(tmp_path: Path) -> None:
    from gradr_deploy.datasets import load_digits
    from gradr_deploy.netx.metadata import METADATA_ATTR, NetworkMetadata
    from gradr_deploy.simulation import lava_exact
    from gradr_deploy.simulation.encoding import encoding_from_dict
    from gradr_deploy.simulation.stimulus import present

    model = REPO / "models" / "digits-mlp.net"
    network = read_netx(model)
    recorded = NetworkMetadata.from_json(str(network.attrs[METADATA_ATTR]), str(model))
    samples = 40
    spikes = present(encoding_from_dict(recorded.encoding), load_digits().test.images[:samples],
                     np.arange(samples), recorded.seed, recorded.drain_steps)
    lava_counts = lava_exact.exact_run(network, spikes, recorded.window).output.sum(-1)
    counts = _snntorch_counts(export_nir(model, tmp_path / "digits.nir"), spikes)
    np.testing.assert_array_equal(counts, lava_counts)

    oxford = shared_netx("oxford.net")
    rng = np.random.default_rng(0)
    ox_spikes = np.concatenate([(rng.random((4, 200, 150)) < 0.05).astype(np.uint8),
                                np.zeros((4, 200, 2), np.uint8)], axis=2)
    ox_lava = lava_exact.exact_run(read_netx(oxford), ox_spikes, 152).output.sum(-1)
    np.testing.assert_array_equal(_snntorch_counts(export_nir(oxford, tmp_path / "ox.nir"),
                                                   ox_spikes), ox_lava)


def _snntorch_graph(path: Path) -> tuple[Path, int]:
    """A 64-40-10 CUBA network written by snnTorch's own NIR export; its nonzero weights."""
    import snntorch as snn
    import torch
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(0)

    def cuba(n: int, **kw) -> snn.Synaptic:
        return snn.Synaptic(alpha=torch.full((n,), 0.5), beta=torch.full((n,), 0.8),
                            threshold=torch.ones(n), init_hidden=True, **kw)

    net = torch.nn.Sequential(torch.nn.Linear(64, 40), cuba(40), torch.nn.Linear(40, 10),
                              cuba(10, output=True))
    with torch.no_grad():
        net[0].weight[torch.rand_like(net[0].weight) < 0.7] = 0.0
    nir.write(path, export_to_nir(net, torch.zeros(1, 64), ignore_dims=[0]))
    nonzero = int((net[0].weight != 0).sum() + (net[2].weight != 0).sum())
    return path, nonzero


def test_map_accepts_a_nir_graph_from_snntorch(tmp_path: Path) -> None:
    import json

    graph, nonzero = _snntorch_graph(tmp_path / "snn.nir")
    result = subprocess.run([str(SCRIPT), "map", str(graph), "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "cores on loihi2" in result.stdout
    report = json.loads((tmp_path / "mapping.json").read_text())
    assert report["total_cores"] >= 1
    assert sum(layer["synapses"] for layer in report["layers"]) == nonzero
    imported = read_nir(graph)
    params = dict(imported.network.layers[0].neuron.params)
    assert params["iDecay"] == 2048 and params["vDecay"] == 819  # alpha 0.5, beta 0.8
    assert any("steady state" in note for note in imported.notes)  # snnTorch's Linear bias


def test_import_nir_writes_a_netx_file_lava_runs(tmp_path: Path) -> None:
    import json

    graph, _ = _snntorch_graph(tmp_path / "snn.nir")
    net = tmp_path / "snn.net"
    done = subprocess.run([str(SCRIPT), "import-nir", str(graph), str(net)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    inputs = tmp_path / "in.npy"
    np.save(inputs, (np.random.default_rng(1).random((3, 64, 12)) < 0.3).astype(np.uint8))
    run = subprocess.run([str(SCRIPT), "deploy", str(net), "--target", "lava-sim", "--inputs",
                          str(inputs), "--out", str(tmp_path), "--quiet"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    report = json.loads((tmp_path / "deploy.json").read_text())
    assert report["spike_agreement"] == 1.0
    assert report["lava_accuracy"] is None


def test_errors_name_the_layer_or_node(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="layer 0 is a netx 'input' layer"):
        export_nir(shared_netx("pilotnet_snn.net"), tmp_path / "p.nir")
    rng = np.random.default_rng(0)
    delayed = write_net(tmp_path / "delayed.net", [
        {"kind": "dense", "weight": even_weights(rng, (5, 4)), "delay": np.ones((5, 4)),
         "v_decay": 100}])
    with pytest.raises(InputError, match="synaptic delays"):
        export_nir(delayed, tmp_path / "d.nir")
    with pytest.raises(InputError, match="not a NIR file"):
        read_nir(shared_netx("oxford.net"))
    # a branch: the input feeds two synapses
    weight = np.ones((3, 4), np.float32)
    cuba = nir.CubaLIF(tau_syn=np.full(3, 1e-4), tau_mem=np.full(3, 2e-4), r=np.full(3, 2.0),
                       v_leak=np.zeros(3), v_threshold=np.ones(3), w_in=np.ones(3))
    graph = nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array([4])}),
               "a": nir.Linear(weight=weight), "b": nir.Linear(weight=weight), "n": cuba,
               "output": nir.Output(output_type={"output": np.array([3])})},
        edges=[("input", "a"), ("input", "b"), ("a", "n"), ("b", "n"), ("n", "output")],
        type_check=False)
    nir.write(tmp_path / "branch.nir", graph)
    with pytest.raises(InputError, match="'input' has 2 successors"):
        read_nir(tmp_path / "branch.nir")
    with h5py.File(tmp_path / "fake.nir", "w") as handle:
        handle.create_group("node")
    with pytest.raises(InputError, match="unreadable NIR graph"):
        read_nir(tmp_path / "fake.nir")
    result = subprocess.run([str(SCRIPT), "export-nir", str(shared_netx("pilotnet_snn.net")),
                             str(tmp_path / "x.nir")], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert not (tmp_path / "x.nir").exists()
