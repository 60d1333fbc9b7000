"""Checkpoints: a resumed run ends exactly where an uninterrupted one does."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from deploy.errors import InputError
from gradr_lava.checkpoint import load_checkpoint
from gradr_lava.train import TrainOptions, train


def _options(config: Path, out: Path, **kw: object) -> TrainOptions:
    return TrainOptions(dataset="digits", out=out, model=str(config), progress=False, **kw)


def test_resume_continues_bit_identically(tiny_configs: dict[str, Path], tmp_path: Path) -> None:
    config = tiny_configs["mlp"]
    straight = train(_options(config, tmp_path / "straight", epochs=2))
    train(_options(config, tmp_path / "split", epochs=1))
    resumed = train(_options(config, tmp_path / "split", epochs=2, resume=True))
    assert resumed["epochs"] == 2
    keys = ("epoch", "loss", "train_accuracy", "test_accuracy", "firing_rates", "connectivity")
    assert [[row[k] for k in keys] for row in straight["history"]] == [
        [row[k] for k in keys] for row in resumed["history"]
    ]
    a = load_checkpoint(tmp_path / "straight" / "checkpoint.pt")["model"]
    b = load_checkpoint(tmp_path / "split" / "checkpoint.pt")["model"]
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_existing_run_needs_resume(tiny_configs: dict[str, Path], tiny_run: Path) -> None:
    with pytest.raises(InputError, match="--resume"):
        train(_options(tiny_configs["mlp"], tiny_run))


def test_resume_without_checkpoint_is_an_input_error(
    tiny_configs: dict[str, Path], tmp_path: Path
) -> None:
    with pytest.raises(InputError, match="no checkpoint"):
        train(_options(tiny_configs["mlp"], tmp_path, resume=True))


def test_resume_refuses_a_different_run(tiny_configs: dict[str, Path], tiny_run: Path) -> None:
    with pytest.raises(InputError, match="different run"):
        train(_options(tiny_configs["mlp"], tiny_run, resume=True, seed=7, epochs=3))


def test_corrupt_checkpoint_is_an_input_error(
    tiny_configs: dict[str, Path], tmp_path: Path
) -> None:
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="cannot be read"):
        train(_options(tiny_configs["mlp"], tmp_path, resume=True))
