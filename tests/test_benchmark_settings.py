"""benchmarks/mnist_connectivity.py ``--set``: one config key changed for every run, recorded
in each result, without a copy of the config file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BASE = str(REPO / "benchmarks" / "configs" / "mnist-2fc-direct-affine5.toml")


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import mnist_connectivity

    return mnist_connectivity


def _args(bench, tmp_path: Path, *extra: str):
    return bench.parse_arguments([
        "--model", BASE, "--results", str(tmp_path / "results"), "--out", str(tmp_path / "runs"),
        "--variants", "magnitude-idle-early-hold", "--points", "2pct-out30", "--seeds", "0",
        "--epochs", "80", *extra])


def test_set_changes_the_key_on_top_of_the_variant_and_keeps_the_rest(bench) -> None:
    edited = bench.model_config(BASE, "magnitude-idle-early-hold",
                                {"training.batch_size": 256, "neuron.tau_grad": 0.03})
    plain = bench.model_config(BASE, "magnitude-idle-early-hold")
    assert (edited.training.batch_size, edited.neuron.tau_grad) == (256, 0.03)
    assert edited.training.lr_hold == plain.training.lr_hold == 0.5  # the variant's edit stays
    assert edited.source == plain.source  # relative teacher paths still read from the file
    assert edited.to_dict()["input"] == plain.to_dict()["input"]


def test_set_values_are_toml_or_bare_words(bench) -> None:
    assert bench.parse_setting("training.batch_size=256") == ("training.batch_size", 256)
    assert bench.parse_setting("training.learning_rate = 1.4e-3") == (
        "training.learning_rate", 0.0014)
    assert bench.parse_setting("training.lr_schedule=cosine") == ("training.lr_schedule",
                                                                  "cosine")


@pytest.mark.parametrize(("setting", "message"), [
    ("training.batchsize=256", "unknown key(s) ['batchsize']"),
    ("training.batch_size=0", "batch_size = 0 must be"),
    ("layers.features=10", "SECTION one of input, neuron, training"),
    ("batch_size=256", "SECTION.KEY=VALUE"),
    ("training.epochs=40", "is --epochs")])
def test_bad_set_stops_before_any_run_naming_the_flag_and_key(
        bench, tmp_path: Path, capsys: pytest.CaptureFixture[str], setting: str,
        message: str) -> None:
    with pytest.raises(SystemExit) as stopped:
        bench.main(["--model", BASE, "--results", str(tmp_path / "results"), "--set", setting,
                    "--variants", "magnitude", "--report"])
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "results").exists()


def test_edited_runs_are_recorded_and_kept_apart_from_the_plain_ones(
        bench, tmp_path: Path) -> None:
    plain = _args(bench, tmp_path)
    edited = _args(bench, tmp_path, "--set", "training.batch_size=256")
    job = ("magnitude-idle-early-hold-2pct-out30-s0", "magnitude-idle-early-hold",
           bench.POINTS["2pct-out30"], 0)
    assert "config_overrides" not in bench.settings(plain, *job[1:])  # old results still match
    assert bench.settings(edited, *job[1:])["config_overrides"] == {"training.batch_size": 256}
    assert (bench.run_folder(plain.out, plain.model, plain.config_overrides, job[0])
            != bench.run_folder(edited.out, edited.model, edited.config_overrides, job[0]))

    # a plain result in the folder: the plain plan is done, the edited one refuses to reuse it
    plain.results.mkdir(parents=True)
    (plain.results / f"{job[0]}.json").write_text(json.dumps(
        {"run": job[0], **bench.settings(plain, *job[1:])}))
    assert bench.pending(plain) == []
    with pytest.raises(SystemExit, match="holds a run with other settings"):
        bench.pending(edited)


def test_a_path_value_names_one_folder_of_its_own(bench, tmp_path: Path) -> None:
    def folder(value: str) -> Path:
        return bench.run_folder(tmp_path, BASE, {"training.teacher": value}, "run")

    nested, flat = folder("../models/dense.net"), folder(".._models_dense.net")
    assert nested.parent.parent == flat.parent.parent == tmp_path  # no subfolders
    assert nested != flat  # two teachers never share a run folder
    assert folder("a.net") == tmp_path / "mnist-2fc-direct-affine5+training.teacher=a.net" / "run"
