"""The label loss (``[training] loss``): cross-entropy on spike counts, or the Grad R authors'
rate MSE."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import TINY_MLP

from gradr_deploy.errors import InputError
from gradr_lava.cli import main
from gradr_lava.config import parse_model_config
from gradr_lava.history import health_warnings
from gradr_lava.losses import label_loss, silent_loss


def test_cross_entropy_takes_the_counts_as_logits() -> None:
    counts = torch.tensor([[3.0, 0.0, 1.0], [0.0, 8.0, 2.0]])
    labels = torch.tensor([0, 2])
    assert torch.equal(label_loss(counts, labels, "cross_entropy", 8),
                       F.cross_entropy(counts, labels, reduction="sum"))


def test_rate_mse_is_the_class_mean_of_the_squared_rate_error() -> None:
    counts = torch.tensor([[10.0, 0.0], [5.0, 5.0]], requires_grad=True)
    loss = label_loss(counts, torch.tensor([0, 1]), "rate_mse", 10)
    # sample 0 fires its class at every step and the other never: 0;
    # sample 1 fires both at half the steps: ((0.5 - 0)^2 + (0.5 - 1)^2) / 2
    assert loss.item() == pytest.approx(0.25)
    loss.backward()
    # d/ds of (s/10 - y)^2 / 2 = (s/10 - y) / 10
    torch.testing.assert_close(counts.grad, torch.tensor([[0.0, 0.0], [0.05, -0.05]]))


@pytest.mark.parametrize("kind", ["cross_entropy", "rate_mse"])
def test_the_silent_loss_is_the_loss_of_an_output_layer_that_never_fires(kind: str) -> None:
    silent = torch.zeros(4, 10)
    per_sample = label_loss(silent, torch.tensor([0, 3, 7, 9]), kind, 8).item() / 4
    assert per_sample == pytest.approx(silent_loss(kind, 10))
    row = {"epoch": 2, "loss": silent_loss(kind, 10), "firing_rates": [0.1, 0.2]}
    assert any("at chance" in text for text in health_warnings(row, [row], 10, kind))
    other = "rate_mse" if kind == "cross_entropy" else "cross_entropy"
    assert not health_warnings(row, [row], 10, other)


def test_an_unknown_loss_names_the_file_the_key_and_the_choices() -> None:
    import tomllib

    data = tomllib.loads(TINY_MLP.replace("[training]", '[training]\nloss = "mse"'))
    with pytest.raises(InputError, match=r"tiny\.toml \[training\]\.loss = 'mse'.*rate_mse"):
        parse_model_config(data, "tiny.toml")
    assert parse_model_config(tomllib.loads(TINY_MLP), "tiny.toml").training.loss == \
        "cross_entropy"


def test_a_run_with_the_rate_mse_loss_learns(tmp_path: Path) -> None:
    config = tmp_path / "mse.toml"
    config.write_text(TINY_MLP.replace("[training]", '[training]\nloss = "rate_mse"'))
    out = tmp_path / "run"
    code = main(["train", "--dataset", "digits", "--out", str(out), "--quiet",
                 "--model", str(config), "--epochs", "3"])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"]["training"]["loss"] == "rate_mse"
    losses = [row["loss"] for row in metrics["history"]]
    assert losses[-1] < losses[0] < 1.0  # a rate MSE, far below cross-entropy's ln 10
    assert not math.isclose(losses[0], silent_loss("rate_mse", 10), abs_tol=1e-3)
    assert metrics["test_accuracy"] > 0.5  # 10 classes: chance is 0.1
