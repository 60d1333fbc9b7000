"""Training from Python: ``gradr_lava.train`` and ``Pruning`` mirror ``gradr-lava train``."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
from pathlib import Path

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
