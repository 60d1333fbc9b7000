"""Training from Python: ``gradr_lava.train`` and ``Pruning`` mirror ``gradr-lava train``."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
from pathlib import Path

import numpy as np
import pytest

import gradr_lava
from gradr_deploy.errors import InputError

FLAG_TO_FIELD = {"prune": "method"}  # --prune METHOD is Pruning(method)


def _train_flags() -> set[str]:
    from gradr_lava.cli import build_parser

    commands = next(a for a in build_parser()._actions
                    if isinstance(a, argparse._SubParsersAction))
    parser = commands.choices["train"]
    return {a.dest for a in parser._actions if a.dest != "help"}


def test_every_train_flag_has_a_python_keyword_of_the_same_name() -> None:
    keywords = set(inspect.signature(gradr_lava.train).parameters)
    fields = {f.name for f in dataclasses.fields(gradr_lava.Pruning)}
    missing = sorted(flag for flag in _train_flags()
                     if flag not in keywords and FLAG_TO_FIELD.get(flag, flag) not in fields)
    assert missing == []


def test_train_from_python_with_a_pruner_option(tiny_configs: dict[str, Path],
                                                tmp_path: Path) -> None:
    pruning = gradr_lava.Pruning("deepr", target_connectivity=0.4,
                                 options={"temperature": 1e-7, "l1": 1e-5})
    result = gradr_lava.train(tiny_configs["mlp"], "digits", out=tmp_path / "run",
                              epochs=1, pruning=pruning)
    assert result.netx_path == tmp_path / "run" / "model.net" and result.netx_path.exists()
    assert result.connectivity is not None and result.connectivity <= 0.42
    assert len(result.history) == 1 and 0 < result.test_accuracy <= 1
    assert [layer.kind for layer in result.network.layers] == ["dense", "dense"]
    recorded = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert recorded["test_accuracy"] == result.test_accuracy
    with pytest.raises(InputError, match=r"pruner options \['temprature'\] unknown"):
        gradr_lava.train(tiny_configs["mlp"], "digits", out=tmp_path / "bad", epochs=1,
                         pruning=gradr_lava.Pruning("deepr", target_connectivity=0.4,
                                                    options={"temprature": 1.0}))


def test_train_on_the_user_s_own_samples(tiny_configs: dict[str, Path], tmp_path: Path) -> None:
    """Any map-style data set of (image, label) pairs: here lists, uint8 pixels, (1, H, W)."""
    from gradr_deploy.datasets import load_digits
    from gradr_deploy.netx import read_netx
    from gradr_deploy.netx.metadata import METADATA_ATTR, NetworkMetadata

    digits = load_digits()

    def pairs(split):
        return [((255 * image[None]).round().astype(np.uint8), int(label))
                for image, label in zip(split.images, split.labels, strict=True)]

    result = gradr_lava.train(tiny_configs["mlp"], (pairs(digits.train), pairs(digits.test)),
                              out=tmp_path / "own", epochs=1)
    assert 0.2 < result.test_accuracy <= 1  # chance is 0.1
    network = read_netx(result.netx_path)
    recorded = NetworkMetadata.from_json(str(network.attrs[METADATA_ATTR]), "model.net")
    assert recorded.dataset == "custom" and result.metrics["dataset"] == "custom"
    with pytest.raises(InputError, match=r"'custom': train sample 1 has shape \(4, 4\)"):
        gradr_lava.train(tiny_configs["mlp"], ([(np.zeros((8, 8)), 0), (np.zeros((4, 4)), 1)],
                                               pairs(digits.test)), out=tmp_path / "bad")


def test_train_a_model_config_object(tiny_configs: dict[str, Path], tmp_path: Path) -> None:
    from gradr_lava.config import load_model_config

    config = load_model_config(tiny_configs["mlp"])
    edited = dataclasses.replace(config, name="tiny-edited",
                                 neuron=dataclasses.replace(config.neuron, threshold=0.75))
    result = gradr_lava.train(edited, "digits", out=tmp_path / "obj", epochs=1)
    assert result.metrics["model"]["model"]["name"] == "tiny-edited"
    assert result.metrics["model"]["neuron"]["threshold"] == 0.75
    broken = dataclasses.replace(config, layers=())
    with pytest.raises(InputError, match="ModelConfig 'tiny"):
        gradr_lava.train(broken, "digits", out=tmp_path / "broken", epochs=1)


def test_pruner_errors_name_the_keywords_of_train(tiny_configs: dict[str, Path],
                                                  tmp_path: Path) -> None:
    """make_pruner calls it ``finetune``; train's caller wrote ``gradr_finetune``."""
    with pytest.raises(InputError) as info:
        gradr_lava.train(tiny_configs["mlp"], "digits", out=tmp_path / "ft", epochs=1,
                         pruning=gradr_lava.Pruning("gradr", target_connectivity=0.3,
                                                    gradr_finetune=1.5))
    assert str(info.value).startswith("method='gradr': gradr_finetune= must be a fraction")
    with pytest.raises(InputError, match=r"gradr_mode='paper' needs alpha= \(the prior"):
        gradr_lava.train(tiny_configs["mlp"], "digits", out=tmp_path / "paper", epochs=1,
                         pruning=gradr_lava.Pruning("gradr", target_connectivity=0.3,
                                                    gradr_mode="paper"))


def test_no_module_is_shadowed() -> None:
    import gradr_lava.trainer

    assert callable(gradr_lava.train) and gradr_lava.train is not gradr_lava.trainer
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        gradr_lava.nothing  # noqa: B018
