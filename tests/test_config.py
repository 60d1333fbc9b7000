"""Model config files: shipped ones load; mistakes name the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

import gradr_lava.config as config_module
from gradr_deploy.errors import InputError
from gradr_lava.config import MODELS_DIR, load_model_config, parse_model_config


@pytest.mark.parametrize("path", sorted(MODELS_DIR.glob("*.toml")), ids=lambda p: p.stem)
def test_shipped_configs_load_and_round_trip(path: Path) -> None:
    config = load_model_config(path.stem)
    assert config.layers[-1].type == "dense"
    assert parse_model_config(config.to_dict(), config.source) == config


BENCHMARK_CONFIGS = Path(__file__).resolve().parents[1] / "benchmarks" / "configs"


@pytest.mark.parametrize("path", sorted(BENCHMARK_CONFIGS.glob("*.toml")), ids=lambda p: p.stem)
def test_benchmark_configs_load_by_path(path: Path) -> None:
    config = load_model_config(path)
    assert config.name == path.stem
    assert parse_model_config(config.to_dict(), config.source) == config


def test_unknown_model_lists_the_shipped_names() -> None:
    with pytest.raises(InputError, match="digits-mlp"):
        load_model_config("no-such-model")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[layers]]\ntype='dense'\nfeatures=10\n[neuron]\nthreshhold=1.0\n", "threshhold"),
        ("[[layers]]\ntype='dense'\nfeatures='ten'\n", r"features = 'ten': expected a int"),
        ("[[layers]]\ntype='pool'\n", "not dense/conv"),
        ("[[layers]]\ntype='dense'\nfeatures=0\n", "features > 0"),
        ("[input]\ntime_steps=4\n", r"at least one \[\[layers\]\]"),
        ("[[layers]]\ntype='dense'\nfeatures=10\n[training]\nlr_schedule='step'\n",
         "lr_schedule = 'step': use one of constant, cosine"),
        ("[[layers]]\ntype='dense'\nfeatures=10\n[training]\nlr_hold=0.5\n",
         r"lr_hold = 0.5 delays the cosine decay: set lr_schedule = \"cosine\""),
        ("[[layers]]\ntype='dense'\nfeatures=10\n[training]\nlr_schedule='cosine'\nlr_hold=1\n",
         "lr_hold = 1.0: the fraction of the run before the decay must be below 1"),
        ("[[layers]]\ntype='dense'\nfeatures=10\n[input]\ntime_steps=0\n", "time_steps"),
        ("[[layers]]\ntype='dense'\nfeatures=10\n[neuron]\nvoltage_decay=1.5\n", "voltage_decay"),
        ("[[layers]]\ntype='dense'\nfeatures=8\n[[layers]]\ntype='conv'\nchannels=2\n",
         "conv layers must come before"),
        ("[layers\n", "not a UTF-8 TOML file"),
    ],
)
def test_mistakes_name_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(InputError, match=message) as info:
        load_model_config(path)
    assert str(path) in str(info.value)


def test_installed_configs_are_found_when_the_source_tree_has_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a wheel install looks like: no models/ beside the package, configs under
    # <prefix>/share/gradr-lava/models.
    installed = tmp_path / "share" / "gradr-lava" / "models"
    installed.mkdir(parents=True)
    (installed / "digits-mlp.toml").write_text((MODELS_DIR / "digits-mlp.toml").read_text())
    monkeypatch.setattr(config_module, "MODELS_DIR", tmp_path / "no-source-tree")
    monkeypatch.setattr(config_module, "INSTALLED_MODELS_DIR", installed)
    assert load_model_config("digits-mlp").source == str(installed / "digits-mlp.toml")
    with pytest.raises(InputError, match=r"one of: digits-mlp$"):
        load_model_config("mnist-2fc")


def test_missing_configs_everywhere_say_where_they_were_looked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config_module, "MODELS_DIR", tmp_path / "a")
    monkeypatch.setattr(config_module, "INSTALLED_MODELS_DIR", tmp_path / "b")
    with pytest.raises(InputError, match="no shipped model configs were found") as error:
        load_model_config("digits-mlp")
    assert str(tmp_path / "a") in str(error.value) and str(tmp_path / "b") in str(error.value)


def test_lr_hold_keeps_the_rate_then_decays_it_along_a_cosine_to_zero() -> None:
    import itertools
    import math

    import torch

    from gradr_lava.epochs import lr_scheduler

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = lr_scheduler(optimizer, "cosine", 100, hold=0.75)
    rates = []
    for _ in range(100):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates[:75] == [0.1] * 75
    assert rates[75 + 12] == pytest.approx(0.1 * (1 + math.cos(math.pi * 12 / 25)) / 2)
    assert all(a > b for a, b in itertools.pairwise(rates[75:]))
    assert rates[-1] == pytest.approx(0.1 * (1 + math.cos(math.pi * 24 / 25)) / 2)
