"""The deployment Python API: read -> map -> simulate -> energy agrees with ``run`` (deploy)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import gradr_deploy as gd
from gradr_deploy.datasets import load_digits
from gradr_deploy.errors import InputError
from gradr_deploy.netx.metadata import METADATA_ATTR, NetworkMetadata
from gradr_deploy.simulation.encoding import encoding_from_dict
from gradr_deploy.simulation.stimulus import present

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "models" / "digits-mlp.net"


def test_step_by_step_equals_run(tmp_path: Path) -> None:
    network = gd.read_netx(MODEL)
    mapping = gd.map_network(network, hardware="loihi2")
    assert mapping.total_cores == sum(layer.cores for layer in mapping.layers) >= 2
    recorded = NetworkMetadata.from_json(str(network.attrs[METADATA_ATTR]), str(MODEL))
    samples = 40
    test = load_digits().test
    spikes = present(encoding_from_dict(recorded.encoding), test.images[:samples],
                     np.arange(samples), recorded.seed, 0)  # simulate adds the drain steps
    simulation = gd.simulate(network, spikes, copies=4)
    assert simulation.window == recorded.window
    assert simulation.spike_agreement == 1.0
    energy = gd.estimate_energy(mapping, simulation)

    result = gd.run(MODEL, samples=samples, out=tmp_path, copies=4)
    assert result.path == tmp_path / "deploy.json" and result.path.exists()
    assert result.cores == mapping.total_cores
    assert result.spike_agreement == 1.0
    assert result.lava_accuracy == float(np.mean(simulation.predictions() == test.labels[:samples]))
    np.testing.assert_allclose(energy.total_j, result.energy_j, rtol=1e-9)


def test_errors_are_the_toolchain_s(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        gd.read_netx(tmp_path / "missing.net")
    with pytest.raises(InputError):
        gd.map_network(gd.read_netx(MODEL), hardware="loihi9")
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        gd.nothing  # noqa: B018


def _flags(command: str) -> set[str]:
    import argparse

    from gradr_lava.cli import build_parser

    commands = next(a for a in build_parser()._actions
                    if isinstance(a, argparse._SubParsersAction))
    return {a.dest for a in commands.choices[command]._actions if a.dest != "help"}


def test_every_deploy_and_map_flag_has_a_keyword_of_the_same_name() -> None:
    import inspect

    for command, function in (("deploy", gd.run), ("map", gd.map_model)):
        keywords = set(inspect.signature(function).parameters)
        assert sorted(_flags(command) - keywords) == [], command


def test_map_model_writes_and_reports_the_budget(tmp_path: Path) -> None:
    result = gd.map_model(MODEL, hardware="loihi1", out=tmp_path, max_cores=1)
    assert result.mapping.total_cores == 2 and not result.fits
    assert "needs 2 cores but the budget allows 1" in result.budget_error
    assert result.json_path.exists() and result.png_path.exists()
    assert result.budget["fits"] is False
    assert gd.map_model(MODEL, hardware="loihi1").fits  # nothing written without out
