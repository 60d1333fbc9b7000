"""The installed ``gradr-lava`` command: exit codes and messages for user mistakes.

These run the real console script in a subprocess, as a user would.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).parent / "gradr-lava"


def run(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def test_help_documents_the_exit_codes() -> None:
    result = run("--help")
    assert result.returncode == 0
    for code in ("0 ", "2 ", "3 ", "4 "):
        assert f"  {code}" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--out", "x"], "--dataset"),
        (["train", "--dataset", "cifar", "--out", "x"], "invalid choice: 'cifar'"),
        (["train", "--dataset", "digits", "--out", "x", "--epochs", "0"], "must be >= 1"),
        (["train", "--dataset", "digits", "--out", "x", "--epochs", "many"], "not an integer"),
        (["train", "--dataset", "digits", "--out", "x", "--target-connectivity", "0=1.5"],
         "must be a fraction in (0, 1]"),
        (["train", "--dataset", "digits", "--out", "x", "--target-connectivity", "first=0.1"],
         "is not LAYER=FRACTION"),
        (["deploy", "m.net"], "--target"),
        (["deploy", "m.net", "--target", "spinnaker"], "invalid choice"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_flags_exit_2_with_usage(args: list[str], message: str) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_model_exits_2(tmp_path: Path) -> None:
    result = run("train", "--dataset", "digits", "--model", "resnet", "--out", tmp_path / "r")
    assert result.returncode == 2
    assert "unknown model 'resnet'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "r").exists()


def test_mnist_without_data_dir_exits_2(tmp_path: Path) -> None:
    result = run("train", "--dataset", "mnist", "--out", tmp_path / "r")
    assert result.returncode == 2
    assert "--data-dir" in result.stderr


def test_missing_model_file_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "nope.net"
    result = run("deploy", missing, "--target", "lava-sim")
    assert result.returncode == 2
    assert str(missing) in result.stderr
    assert "Traceback" not in result.stderr


def test_corrupt_hdf5_exits_2(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.net"
    corrupt.write_bytes(b"\x89HDF\r\n\x1a\n" + b"garbage" * 50)
    result = run("deploy", corrupt, "--target", "lava-sim")
    assert result.returncode == 2
    assert str(corrupt) in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "deploy.json").exists()


def test_foreign_file_without_dataset_exits_2(tmp_path: Path) -> None:
    oxford = Path(__file__).resolve().parents[2] / "shared" / "data" / "netx" / "oxford.net"
    if not oxford.exists():
        pytest.skip(f"{oxford} not available")
    result = run("deploy", oxford, "--target", "lava-sim", "--out", tmp_path)
    assert result.returncode == 2
    assert "--dataset" in result.stderr


def test_too_many_samples_exits_2(tiny_run: Path, tmp_path: Path) -> None:
    result = run("deploy", tiny_run / "model.net", "--target", "lava-sim", "--samples", "100000",
                 "--out", tmp_path)
    assert result.returncode == 2
    assert "359" in result.stderr


def test_loihi2_target_without_lava_loihi_exits_4(tiny_run: Path, tmp_path: Path) -> None:
    result = run("deploy", tiny_run / "model.net", "--target", "loihi2", "--out", tmp_path)
    assert result.returncode == 4
    assert "lava-loihi" in result.stderr
    assert "--target lava-sim" in result.stderr
    assert not (tmp_path / "deploy.json").exists()


def test_deploy_prints_and_writes_the_report(tiny_run: Path, tmp_path: Path) -> None:
    result = run("deploy", tiny_run / "model.net", "--target", "lava-sim", "--samples", "12",
                 "--out", tmp_path, "--quiet")
    assert result.returncode == 0, result.stderr
    assert "spike agreement 1.0000" in result.stdout
    report = json.loads((tmp_path / "deploy.json").read_text())
    for key in ("lava_accuracy", "torch_accuracy", "spike_agreement", "samples",
                "time_steps_per_second"):
        assert key in report
    assert report["samples"] == 12
    assert report["cores"] >= 2 and report["chips"] == 1
    energy = report["energy"]
    assert energy["energy_j"]["total"] > 0
    assert all("source" in str(constant) for constant in energy["constants"].values())
    assert "cores on 1 chip(s)" in result.stdout


def test_map_prints_the_table_and_writes_json_and_png(tiny_run: Path, tmp_path: Path) -> None:
    result = run("map", tiny_run / "model.net", "--hardware", "loihi2", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "synapse" in result.stdout.lower()
    mapping = json.loads((tmp_path / "mapping.json").read_text())
    for key in ("total_cores", "chips", "lower_bound_cores", "layers"):
        assert key in mapping
    assert (tmp_path / "mapping.png").read_bytes()[:4] == b"\x89PNG"


def test_map_over_budget_exits_3_naming_layer_and_limit(tiny_run: Path, tmp_path: Path) -> None:
    result = run("map", tiny_run / "model.net", "--max-cores", "1", "--out", tmp_path)
    assert result.returncode == 3
    assert "layer 0" in result.stderr
    assert "budget allows 1" in result.stderr
    assert "Traceback" not in result.stderr


def test_deploy_over_budget_exits_3_before_simulating(tiny_run: Path, tmp_path: Path) -> None:
    result = run("deploy", tiny_run / "model.net", "--target", "lava-sim", "--max-cores", "1",
                 "--out", tmp_path)
    assert result.returncode == 3
    assert not (tmp_path / "deploy.json").exists()


def test_bad_profile_override_exits_2(tiny_run: Path, tmp_path: Path) -> None:
    result = run("map", tiny_run / "model.net", "--set", "no_such_constant=1", "--out", tmp_path)
    assert result.returncode == 2
    assert "no_such_constant" in result.stderr


def test_map_uses_the_recorded_input_shape_of_a_conv_first_network(
    tiny_conv_run: Path, tmp_path: Path
) -> None:
    result = run("map", tiny_conv_run / "model.net", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    layers = json.loads((tmp_path / "mapping.json").read_text())["layers"]
    assert layers[0]["type"] == "conv" and layers[0]["cores"] >= 1
    assert layers[0]["neurons"] == 4 * 4 * 4  # 4 channels of 4 x 4 (8 x 8, stride 2)


def test_version_prints_the_installed_version() -> None:
    from importlib.metadata import version

    done = subprocess.run([sys.executable, "-m", "gradr_lava", "--version"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0
    assert done.stdout.strip() == f"gradr-lava {version('gradr-lava')}"
