"""Shared fixtures: paths to ../shared data and a tiny trained digits run."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

TINY_MLP = """
[model]
name = "tiny-mlp"
[input]
time_steps = 6
[neuron]
threshold = 1.0
current_decay = 1.0
voltage_decay = 0.5
tau_grad = 0.01
[[layers]]
type = "dense"
features = 24
[[layers]]
type = "dense"
features = 10
[training]
epochs = 2
batch_size = 64
learning_rate = 0.003
"""

TINY_CONV = """
[model]
name = "tiny-conv"
[input]
time_steps = 6
[neuron]
tau_grad = 0.01
[[layers]]
type = "conv"
channels = 4
kernel_size = 3
stride = 2
padding = 1
[[layers]]
type = "dense"
features = 10
[training]
epochs = 1
batch_size = 64
learning_rate = 0.003
"""


@pytest.fixture(scope="session")
def tiny_configs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("configs")
    paths = {"mlp": folder / "tiny-mlp.toml", "conv": folder / "tiny-conv.toml"}
    paths["mlp"].write_text(TINY_MLP)
    paths["conv"].write_text(TINY_CONV)
    return paths


def _train(tmp_path_factory: pytest.TempPathFactory, config: Path, name: str) -> Path:
    from gradr_lava.trainer import TrainOptions, train

    out = tmp_path_factory.mktemp(name)
    train(TrainOptions(dataset="digits", out=out, model=str(config), progress=False))
    return out


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, tiny_configs: dict[str, Path]) -> Path:
    """A run directory with a 64-24-10 digits network trained for 2 epochs."""
    return _train(tmp_path_factory, tiny_configs["mlp"], "tiny-mlp-run")


@pytest.fixture(scope="session")
def tiny_conv_run(tmp_path_factory: pytest.TempPathFactory, tiny_configs: dict[str, Path]) -> Path:
    """A run directory with a conv(4@3x3/2) -> 10 digits network trained for 1 epoch."""
    return _train(tmp_path_factory, tiny_configs["conv"], "tiny-conv-run")
