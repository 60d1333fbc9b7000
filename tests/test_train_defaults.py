"""Pruning flags that do what their help says, and warnings for runs that train nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import TINY_MLP

from gradr_lava.cli import main


def _train(tmp_path: Path, *flags: str, config: str | None = None) -> tuple[int, dict | None]:
    out = tmp_path / "run"
    model = ["--model", config] if config else []
    code = main(["train", "--dataset", "digits", "--out", str(out), "--quiet", *model, *flags])
    metrics = out / "metrics.json"
    return code, json.loads(metrics.read_text()) if metrics.exists() else None


def test_gradr_with_only_a_target_reaches_it_in_deployed_8bit_weights(tmp_path: Path) -> None:
    code, metrics = _train(tmp_path, "--epochs", "2", "--prune", "gradr",
                           "--target-connectivity", "0.25")
    assert code == 0
    last = metrics["history"][-1]
    assert last["rewiring"]["layers"][0]["mode"] == "schedule"
    assert last["rewiring"]["layers"][0]["count"] == "deployed"
    for layer in last["rewiring"]["layers"]:  # round(0.25 * n) nonzero 8-bit weights each
        assert layer["connectivity_quantized"] == pytest.approx(0.25, abs=1e-3)


def test_stds_with_only_a_target_reaches_it_in_deployed_8bit_weights(tmp_path: Path) -> None:
    code, metrics = _train(tmp_path, "--epochs", "2", "--prune", "stds",
                           "--target-connectivity", "0.25")
    assert code == 0
    layers = metrics["history"][-1]["rewiring"]["layers"]
    assert [layer["count"] for layer in layers] == ["deployed"] * len(layers)
    for layer in layers:
        assert layer["connectivity_quantized"] == pytest.approx(0.25, abs=1e-3)
        assert layer["threshold"] > 0


def test_paper_mode_without_alpha_names_a_value_and_the_alternative(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = _train(tmp_path, "--prune", "gradr", "--gradr-mode", "paper",
                     "--target-connectivity", "0.25")
    err = capsys.readouterr().err
    assert code == 2
    assert "--alpha" in err and "0.06" in err and "--gradr-mode paper" in err


@pytest.mark.parametrize("flag", [("--gradr-count", "float"), ("--gradr-shift", "crossing")])
def test_schedule_mode_options_outside_schedule_mode_are_refused(
        flag: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = _train(tmp_path, "--prune", "magnitude", "--target-connectivity", "0.5", *flag)
    assert code == 2
    assert flag[0] in capsys.readouterr().err


def test_a_silent_output_layer_warns_during_training_and_in_metrics(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "silent.toml"
    # weights this small never reach the threshold: nothing fires, the loss stays at ln 10
    config.write_text(TINY_MLP.replace("learning_rate = 0.003",
                                       "learning_rate = 1e-9\nweight_scale = 0.001"))
    code, metrics = _train(tmp_path, "--epochs", "2", config=str(config))
    err = capsys.readouterr().err
    assert code == 0
    assert "warning: epoch 1: the output layer fired no spike" in err
    assert "is at chance" in err
    assert len(metrics["warnings"]) == 4
    assert metrics["history"][0]["warnings"]


def test_a_run_reports_the_synapses_pruning_left_idle(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gradr_deploy.netx import read_netx

    # 2% of the output layer's weights: most hidden neurons keep no outgoing synapse
    code, metrics = _train(tmp_path, "--epochs", "2", "--prune", "magnitude",
                           "--target-connectivity", "0=0.5,1=0.02")
    assert code == 0
    w0, w1 = (layer.weight_matrix() != 0
              for layer in read_netx(tmp_path / "run" / "model.net").synaptic_layers)
    live = w1.any(axis=0) & w0.any(axis=1)  # hidden neurons with an output and an input
    expected = [int(w0.sum() - w0[live].sum()), int(w1.sum() - w1[:, live].sum())]
    assert [layer["idle"] for layer in metrics["idle_synapses"]] == expected
    assert expected[0] > 0, "the test would prove nothing"
    assert [layer["live_neurons"] for layer in metrics["idle_synapses"]] == [
        int(live.sum()), int(w1[:, live].any(axis=1).sum())]
    out = capsys.readouterr().out
    assert f"note: layer 0: {expected[0]} of {int(w0.sum())}" in out
    assert "gradr-lava strip-idle" in out


def test_prune_ramp_ends_the_ramp_where_asked(tmp_path: Path) -> None:
    code, metrics = _train(tmp_path, "--epochs", "4", "--prune", "magnitude",
                           "--target-connectivity", "0.2", "--prune-ramp", "0,0.5")
    assert code == 0
    assert metrics["prune"]["prune_ramp"] == [0.0, 0.5]
    floats = [[layer["connectivity"] for layer in row["rewiring"]["layers"]]
              for row in metrics["history"]]
    assert floats[0][0] > 0.21  # still ramping after epoch 1 of 4
    for row in floats[1:]:  # at the target from the end of epoch 2 on
        assert row == pytest.approx([0.2, 0.2], abs=2e-3)


@pytest.mark.parametrize("flags, message", [
    (["--prune", "magnitude", "--prune-ramp", "0.5,0.2"], "START must be below END"),
    (["--prune", "magnitude", "--prune-ramp", "0.5"], "is not START,END"),
    (["--prune", "deepr", "--prune-ramp", "0,0.5"], "does not use --prune-ramp"),
])
def test_prune_ramp_errors_name_the_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         flags: list[str], message: str) -> None:
    try:
        code, _ = _train(tmp_path, "--epochs", "1", "--target-connectivity", "0.2", *flags)
    except SystemExit as exc:  # argparse rejects the value itself
        code = exc.code
    assert code == 2
    assert message in capsys.readouterr().err


def test_prune_idle_first_leaves_fewer_idle_synapses_at_the_same_connectivity(
        tmp_path: Path) -> None:
    flags = ("--epochs", "2", "--prune", "magnitude", "--target-connectivity", "0=0.1,1=0.1")
    code, plain = _train(tmp_path / "plain", *flags)
    assert code == 0
    code, first = _train(tmp_path / "first", *flags, "--prune-idle-first")
    assert code == 0
    assert first["prune"]["pruner_options"] == {"idle_first": True}
    assert first["history"][-1]["connectivity"] == pytest.approx(
        plain["history"][-1]["connectivity"], abs=2e-3)
    idle_plain, idle_first = (metrics["idle_synapses"][0]["idle"] for metrics in (plain, first))
    assert idle_plain > 100, "the test would prove nothing"
    assert idle_first < idle_plain / 4
    assert first["idle_synapses"][0]["live_neurons"] >= plain["idle_synapses"][0]["live_neurons"]


def test_prune_idle_first_is_refused_where_it_means_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = _train(tmp_path, "--epochs", "1", "--prune", "stds", "--target-connectivity",
                     "0.2", "--prune-idle-first")
    assert code == 2
    assert "does not use --prune-idle-first" in capsys.readouterr().err
    code, _ = _train(tmp_path, "--epochs", "1", "--prune", "gradr", "--alpha", "0.06",
                     "--target-connectivity", "0.2", "--prune-idle-first")
    assert code == 2
    assert "--prune-idle-first is a schedule-mode option" in capsys.readouterr().err


def test_gradr_idle_first_leaves_fewer_idle_synapses_at_the_same_connectivity(
        tmp_path: Path) -> None:
    flags = ("--epochs", "2", "--prune", "gradr", "--gradr-shift", "crossing",
             "--target-connectivity", "0=0.1,1=0.1")
    code, plain = _train(tmp_path / "plain", *flags)
    assert code == 0
    code, first = _train(tmp_path / "first", *flags, "--prune-idle-first")
    assert code == 0
    assert first["history"][-1]["connectivity"] == pytest.approx(
        plain["history"][-1]["connectivity"], abs=2e-3)
    idle_plain, idle_first = (metrics["idle_synapses"][0]["idle"] for metrics in (plain, first))
    assert idle_plain > 20, "the test would prove nothing"
    assert idle_first < idle_plain / 4
