"""Checkpoints: a resumed run ends exactly where an uninterrupted one does."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gradr_deploy.errors import InputError
from gradr_lava.checkpoint import load_checkpoint
from gradr_lava.trainer import Trainer, TrainOptions, train


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
    with pytest.raises(InputError, match=r"pass resume=True to continue it"):
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


def test_interrupted_cosine_run_resumes_bit_identically(
    tiny_configs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "cosine.toml"
    config.write_text(tiny_configs["mlp"].read_text().replace(
        "[training]", '[training]\nlr_schedule = "cosine"'))
    straight = train(_options(config, tmp_path / "straight", epochs=2, prune="magnitude",
                              target_connectivity=0.3))
    lrs = [row["learning_rate"] for row in straight["history"]]
    assert lrs[0] < 0.003 and lrs[1] < 1e-6  # cosine from the config's 0.003 down to 0

    original = Trainer.train_epoch

    def interrupted(self: Trainer, epoch: int) -> dict[str, float]:
        if epoch == 1:
            raise KeyboardInterrupt
        return original(self, epoch)

    monkeypatch.setattr(Trainer, "train_epoch", interrupted)
    split = _options(config, tmp_path / "split", epochs=2, prune="magnitude",
                     target_connectivity=0.3)
    with pytest.raises(KeyboardInterrupt):
        train(split)
    monkeypatch.setattr(Trainer, "train_epoch", original)
    with pytest.raises(InputError, match="resume with epochs=2"):
        train(_options(config, tmp_path / "split", epochs=3, resume=True, prune="magnitude",
                       target_connectivity=0.3))
    resumed = train(_options(config, tmp_path / "split", epochs=2, resume=True,
                             prune="magnitude", target_connectivity=0.3))
    assert resumed["history"] == [
        {**row, "seconds": resumed_row["seconds"]}
        for row, resumed_row in zip(straight["history"], resumed["history"], strict=True)
    ]


def test_resuming_a_finished_run_exports_it_again(tiny_configs: dict[str, Path],
                                                  tmp_path: Path) -> None:
    from gradr_deploy.netx import read_netx

    first = train(_options(tiny_configs["mlp"], tmp_path, epochs=1))
    (tmp_path / "model.net").unlink()
    again = train(_options(tiny_configs["mlp"], tmp_path, epochs=1, resume=True))
    assert again["history"] == first["history"]
    assert [layer.neurons for layer in read_netx(tmp_path / "model.net").layers] == [24, 10]
