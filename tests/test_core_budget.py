"""Hardware-aware rewiring: per-layer targets from the mapper's cost model, and a run that fits."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from gradr_deploy.errors import InputError
from gradr_deploy.hardware.profile import load_profile
from gradr_deploy.mapping import map_network
from gradr_deploy.netx import dense_network
from gradr_lava.core_budget import plan_budget, synthetic_weights, uniform_targets

SHAPES = [(800, 784), (10, 800)]


SPARSE = {"count_zero_weights": "false"}  # loihi2 with sparse storage: pruning saves cores


def _cores_at(plan_layers: list, hardware: str, overrides: dict | None = None) -> int:
    rng = np.random.default_rng(1)
    weights = [synthetic_weights(p.shape, p.target_connectivity, rng) for p in plan_layers]
    network = dense_network(weights, input_layer=False)
    return map_network(network, load_profile(hardware, overrides)).total_cores


@pytest.mark.parametrize(("hardware", "overrides"), [("loihi1", None), ("loihi2", SPARSE),
                                                     ("loihi2-brief", None)])
def test_budget_aware_targets_fit_and_favour_the_small_layer(hardware: str, overrides) -> None:
    plan = plan_budget(SHAPES, 2, hardware, overrides)
    uniform = uniform_targets(SHAPES, plan.budget_cores, hardware, overrides)
    assert plan.planned_cores <= plan.budget_cores
    assert _cores_at(list(plan.layers), hardware, overrides) <= plan.budget_cores
    assert _cores_at(list(uniform.layers), hardware, overrides) <= plan.budget_cores
    wide, readout = plan.layers
    assert readout.target_connectivity == 1.0  # 8,000 synapses fit one core at any rate
    assert wide.target_connectivity < 0.2
    assert uniform.layers[1].target_connectivity == uniform.layers[0].target_connectivity
    assert wide.target_connectivity >= uniform.layers[0].target_connectivity


def test_more_cores_allow_more_connectivity() -> None:
    small = plan_budget(SHAPES, 2, "loihi1")
    large = plan_budget(SHAPES, 4, "loihi1")
    assert large.layers[0].target_connectivity > small.layers[0].target_connectivity
    assert large.layers[0].cores > small.layers[0].cores


def test_a_budget_the_dense_network_fits_needs_no_pruning() -> None:
    plan = plan_budget(SHAPES, 40, "loihi2")
    assert all(layer.target_connectivity == 1.0 for layer in plan.layers)
    assert plan.notes and "needs only 17" in plan.notes[0]  # 800 neurons: 16 groups of 50


def test_an_impossible_budget_says_how_many_cores_are_needed() -> None:
    with pytest.raises(InputError, match="allow at least 2 cores"):
        plan_budget(SHAPES, 1, "loihi2", SPARSE)


def test_pruning_cannot_shrink_dense_layers_on_intels_compiler() -> None:
    with pytest.raises(InputError, match=r"allow at least 17 cores.*zeros included"):
        plan_budget(SHAPES, 8, "loihi2")


def _small_core_profile(tmp_path: Path) -> Path:
    """loihi1 with 8192 bits of synapse memory per core, so digits-mlp must be pruned to fit."""
    source = Path(load_profile("loihi1").path).read_text()
    text = re.sub(r"synapse_memory_bits_per_core = \d+", "synapse_memory_bits_per_core = 8192",
                  source)
    path = tmp_path / "tiny-loihi.toml"
    path.write_text(text.replace('name = "loihi1"', 'name = "tiny-loihi"'))
    return path


def test_training_to_a_core_budget_produces_a_network_that_fits(
    tiny_configs: dict[str, Path], tmp_path: Path
) -> None:
    from gradr_lava.trainer import TrainOptions, train

    hardware = _small_core_profile(tmp_path)
    metrics = train(TrainOptions(
        dataset="digits", out=tmp_path / "run", model=str(tiny_configs["mlp"]), epochs=2,
        progress=False, fit_cores=2, hardware=str(hardware),
    ))
    budget = metrics["core_budget"]
    assert budget["budget_cores"] == 2
    assert any(layer["target_connectivity"] < 1.0 for layer in budget["layers"])
    assert budget["fits"] and budget["mapped_cores"] <= 2
    written = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert written["core_budget"]["mapped_cores"] == budget["mapped_cores"]
    assert (tmp_path / "run" / "mapping.json").exists()
    last = metrics["history"][-1]["rewiring"]["layers"]
    for layer, planned in zip(last, budget["layers"], strict=True):
        # schedule mode keeps round(target * numel) connections nonzero in 8 bits (its default
        # count); float-nonzero weights below half an 8-bit step may remain beside them
        assert layer["connectivity_quantized"] <= (
            planned["target_connectivity"] + 1 / layer["numel"])
