"""The spine: train -> export -> lava-dl's own netx loader -> Lava run, spike for spike."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from gradr_deploy.netx import read_netx
from gradr_deploy.netx.metadata import METADATA_ATTR, NetworkMetadata
from gradr_deploy.pipeline import DeployOptions, deploy_network


def test_run_directory_holds_model_metrics_and_curves(tiny_run: Path) -> None:
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    for key in ("test_accuracy", "epochs", "seconds", "layers", "history"):
        assert key in metrics
    assert metrics["epochs"] == 2
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    assert [layer["weight_shape"][:2] for layer in metrics["layers"]] == [[24, 64], [10, 24]]
    assert (tiny_run / "training_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tiny_run.glob(".*.tmp")), "temporary files left behind"


def test_exported_file_is_read_by_lava_dls_own_netx(tiny_run: Path) -> None:
    from gradr_deploy.simulation import lava_compat

    lava_compat.install()
    from lava.lib.dl import netx

    network = netx.hdf5.Network(net_config=str(tiny_run / "model.net"))
    assert len(network.layers) == 2
    assert network.out.shape == (10,)


def test_metadata_records_what_deploy_needs(tiny_run: Path) -> None:
    with h5py.File(tiny_run / "model.net", "r") as handle:
        meta = NetworkMetadata.from_json(handle.attrs[METADATA_ATTR], "model.net")
    assert meta.dataset == "digits"
    assert meta.time_steps == 6
    assert meta.drain_steps == 2
    assert meta.encoding["name"] == "rate"


@pytest.mark.parametrize("run_name", ["tiny_run", "tiny_conv_run"])
def test_lava_agrees_with_pytorch_spike_for_spike(
    run_name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    run: Path = request.getfixturevalue(run_name)
    report = deploy_network(DeployOptions(
        model=run / "model.net", samples=40, out=tmp_path, progress=False
    ))
    assert report["samples"] == 40
    assert report["spike_agreement"] == 1.0
    assert report["lava_accuracy"] == report["torch_accuracy"]
    assert report["prediction_agreement"] == 1.0
    assert report["time_steps_per_second"] > 0
    written = json.loads((tmp_path / "deploy.json").read_text())
    assert written["spike_agreement"] == 1.0


def test_reference_network_matches_the_trained_network(tiny_run: Path) -> None:
    """The PyTorch reference rebuilt from the file computes what the trained model computes."""
    from gradr_deploy.datasets import load_digits
    from gradr_deploy.simulation.encoding import RateEncoding
    from gradr_deploy.simulation.reference import reference_output
    from gradr_deploy.simulation.stimulus import present
    from gradr_lava.checkpoint import load_checkpoint
    from gradr_lava.config import parse_model_config
    from gradr_lava.network import SpikingNetwork

    state = load_checkpoint(tiny_run / "checkpoint.pt")
    config = parse_model_config(state["identity"]["config"], "checkpoint")
    spikes = present(RateEncoding(time_steps=6), load_digits().test.images[:30],
                     np.arange(30), seed=0, drain_steps=2)
    expected = reference_output(read_netx(tiny_run / "model.net"), spikes)
    trained = SpikingNetwork(config, (8, 8), 10)
    trained.load_state_dict(state["model"])
    trained.eval()
    with torch.no_grad():
        actual = trained(torch.from_numpy(spikes.astype(np.float32))).numpy().astype(np.uint8)
    assert actual.sum() > 0
    np.testing.assert_array_equal(actual, expected)
