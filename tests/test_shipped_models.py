"""The trained networks shipped in models/ (``make shipped-models``) work without training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gradr_deploy.mapping import map_file
from gradr_deploy.netx import read_netx
from gradr_deploy.pipeline import DeployOptions, deploy_network

MODELS = Path(__file__).resolve().parents[1] / "models"


@pytest.mark.parametrize("name", ["digits-mlp", "digits-mlp-gradr"])
def test_shipped_network_is_a_digits_mlp_that_maps_onto_two_loihi2_cores(name: str) -> None:
    network = read_netx(MODELS / f"{name}.net")
    assert [tuple(layer.weight.shape) for layer in network.layers] == [(128, 64), (10, 128)]
    assert map_file(MODELS / f"{name}.net", "loihi2").total_cores == 2


def test_pruned_shipped_network_is_sparse_and_runs_spike_exactly_in_lava(tmp_path: Path) -> None:
    def nonzero(name: str) -> int:
        return sum(int(np.count_nonzero(layer.weight))
                   for layer in read_netx(MODELS / f"{name}.net").layers)

    assert nonzero("digits-mlp-gradr") < 0.3 * nonzero("digits-mlp")
    report = deploy_network(DeployOptions(model=MODELS / "digits-mlp-gradr.net", samples=24,
                                          out=tmp_path, progress=False))
    assert report["spike_agreement"] == 1.0
    assert report["lava_accuracy"] == report["torch_accuracy"]


@pytest.mark.parametrize(("name", "most_nonzero"), [("mnist-2fc-sparse", 0.02),
                                                     ("mnist-2fc-dense", 1.0)])
def test_mnist_network_has_its_connectivity_and_runs_spike_exactly(
        tmp_path: Path, name: str, most_nonzero: float) -> None:
    """models/mnist-2fc-{sparse,dense}.net (docs/results.md section 6): the sparse one has <= 2%
    nonzero weights, the dense one is not pruned (8-bit rounding alone zeroes ~11%)."""
    from netx_writer import NETX_DIR

    network = read_netx(MODELS / f"{name}.net")
    assert [tuple(layer.weight.shape) for layer in network.layers] == [(800, 784), (10, 800)]
    nonzero = sum(int(np.count_nonzero(np.trunc(layer.weight))) for layer in network.layers)
    connectivity = nonzero / sum(layer.weight.size for layer in network.layers)
    assert connectivity <= most_nonzero and connectivity > most_nonzero / 2
    mnist = NETX_DIR.parent / "mnist"
    if not mnist.exists():
        pytest.skip(f"{mnist} missing: the MNIST files live in ../shared/data/mnist")
    report = deploy_network(DeployOptions(model=MODELS / f"{name}.net", data_dir=mnist,
                                          samples=64, out=tmp_path, progress=False))
    assert report["spike_agreement"] == 1.0
    assert report["lava_accuracy"] == report["torch_accuracy"] > 0.85


@pytest.mark.parametrize(("name", "benchmark_config", "variant", "epochs", "overrides"), [
    ("mnist-2fc-sparse", "mnist-2fc-direct-affine5-b256", "magnitude-idle-early-hold", 80,
     {"training.loss": "rate_mse"}),
    ("mnist-2fc-dense", "mnist-2fc-direct-affine5", "dense", 120, None)])
def test_shipped_training_config_is_the_benchmark_run_that_trained_the_network(
        monkeypatch: pytest.MonkeyPatch, name: str, benchmark_config: str, variant: str,
        epochs: int, overrides: dict | None) -> None:
    """models/mnist-2fc-{sparse,dense}.toml train what the benchmark trained for the shipped
    .net files (docs/results.md section 6 gives both commands): the benchmark's config as its
    variant and the run's ``--set`` edits change it, at the run's epochs; only the [model]
    name and description differ."""
    import dataclasses

    from gradr_lava.config import load_model_config

    monkeypatch.syspath_prepend(str(MODELS.parent / "benchmarks"))
    import mnist_connectivity

    trained = mnist_connectivity.model_config(
        str(MODELS.parent / "benchmarks" / "configs" / f"{benchmark_config}.toml"), variant,
        overrides)
    trained = dataclasses.replace(trained, training=dataclasses.replace(trained.training,
                                                                        epochs=epochs))
    shipped = load_model_config(name).to_dict()
    assert shipped.pop("model")["name"] == name
    expected = trained.to_dict()
    expected.pop("model")
    assert shipped == expected
