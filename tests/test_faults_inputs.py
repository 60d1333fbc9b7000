"""Hostile and careless inputs from the issue's list: each gives exit 2 (or 3) with one line
naming the file, the field or the flag, never a traceback, and leaves no partial output."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from netx_writer import even_weights, write_net

SCRIPT = Path(sys.executable).parent / "gradr-lava"


def run(*args: object, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def _one_line_error(result: subprocess.CompletedProcess[str], code: int = 2) -> str:
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, result.stderr
    return errors[0]


@pytest.mark.parametrize(("section", "line", "field"), [
    ("[training]", "learning_rate = inf", "learning_rate"),
    ("[training]", "weight_scale = nan", "weight_scale"),
    ("[neuron]", "tau_grad = -0.01", "tau_grad"),
    ("[input]", "time_steps = 100000000", "time_steps"),
    ("[input]", 'encoding = "latency"', "encoding"),
])
def test_config_values_are_checked(tiny_configs: dict[str, Path], tmp_path: Path, section: str,
                                   line: str, field: str) -> None:
    text = tiny_configs["mlp"].read_text().replace(section, f"{section}\n{line}", 1)
    key = line.split("=")[0].strip()
    text = "\n".join(row for row in text.splitlines()
                     if not (row.startswith(key + " ") and row != line))
    config = tmp_path / "bad.toml"
    config.write_text(text)
    message = _one_line_error(run("train", "--dataset", "digits", "--model", config, "--out",
                                  tmp_path / "run"))
    assert field in message and str(config) in message
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_a_second_layer_without_type_and_binary_configs(tiny_configs, tmp_path: Path) -> None:
    config = tmp_path / "two.toml"
    config.write_text(tiny_configs["mlp"].read_text() + "\n[[layers]]\nfeatures = 5\n")
    assert "#2" in _one_line_error(run("train", "--dataset", "digits", "--model", config,
                                       "--out", tmp_path / "a"))
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00\x81" * 20)
    assert "UTF-8" in _one_line_error(run("train", "--dataset", "digits", "--model", binary,
                                          "--out", tmp_path / "b"))


def test_seeds_outside_numpys_range(tmp_path: Path) -> None:
    for seed in ("-1", str(2**64)):
        assert "--seed" in run("train", "--dataset", "digits", "--seed", seed, "--out",
                               tmp_path).stderr


@pytest.mark.parametrize("value", ["nan", "inf", "-5"])
def test_hardware_overrides_must_be_finite_and_positive(tiny_run: Path, tmp_path: Path,
                                                        value: str) -> None:
    message = _one_line_error(run("map", tiny_run / "model.net", "--set", f"synop_pj={value}",
                                  "--out", tmp_path))
    assert "synop_pj" in message
    assert not (tmp_path / "mapping.json").exists()


def test_absurd_constants_and_non_profiles(tiny_run: Path, tmp_path: Path) -> None:
    assert "synapses_per_block" in _one_line_error(run(
        "map", tiny_run / "model.net", "--hardware", "loihi1", "--set",
        "synapses_per_block=1e12", "--out", tmp_path))
    assert "/bin/true" in _one_line_error(run("map", tiny_run / "model.net", "--hardware",
                                              "/bin/true", "--out", tmp_path))


def test_self_referencing_soft_link(tmp_path: Path) -> None:
    loop = tmp_path / "loop.net"
    os.symlink(loop, loop)
    message = _one_line_error(run("map", loop, "--out", tmp_path / "o"))
    assert "loop.net" in message


def test_unwritable_out_fails_before_any_simulation(tiny_run: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = run("deploy", tiny_run / "model.net", "--target", "lava-sim", "--out", blocker)
    assert "a-file" in _one_line_error(result)
    assert "lava:" not in result.stderr  # no progress bar: nothing was simulated
    for command in (["map", tiny_run / "model.net"],
                    ["train", "--dataset", "digits", "--epochs", "1"]):
        assert "a-file" in _one_line_error(run(*command, "--out", blocker / "sub"))


def test_a_full_disk_during_a_checkpoint_keeps_the_previous_one(
        tiny_configs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from gradr_deploy.errors import InputError
    from gradr_lava.trainer import TrainOptions, train

    out = tmp_path / "run"
    options = TrainOptions(dataset="digits", out=out, model=str(tiny_configs["mlp"]),
                           progress=False, epochs=1)
    train(options)
    before = (out / "checkpoint.pt").read_bytes()
    real_save = torch.save

    def full(obj, path, *args, **kwargs):
        real_save(obj, path, *args, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(InputError, match=r"epoch 2.*No space left.*epoch 1 is kept.*resume=True"):
        train(TrainOptions(dataset="digits", out=out, model=str(tiny_configs["mlp"]),
                           progress=False, epochs=2, resume=True))
    assert (out / "checkpoint.pt").read_bytes() == before
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_two_trainings_into_one_directory(tiny_configs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = subprocess.Popen(
        [str(SCRIPT), "train", "--dataset", "digits", "--model", str(tiny_configs["mlp"]),
         "--epochs", "30", "--out", str(out), "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(200):
            if (out / ".gradr-lava.lock").exists():
                break
            import time

            time.sleep(0.05)
        second = run("train", "--dataset", "digits", "--model", tiny_configs["mlp"],
                     "--epochs", "30", "--out", out)
        message = _one_line_error(second)
        assert "in use by another gradr-lava run" in message and str(first.pid) in message
    finally:
        first.kill()
        first.communicate()


def _with_metadata(tiny_run: Path, tmp_path: Path, **changes: object) -> Path:
    import json

    path = tmp_path / "model.net"
    path.write_bytes((tiny_run / "model.net").read_bytes())
    with h5py.File(path, "a") as handle:
        meta = json.loads(handle.attrs["gradr_lava"])
        meta.update(changes)
        handle.attrs["gradr_lava"] = json.dumps(meta)
    return path


def test_metadata_out_of_range_and_a_wrong_bias(tiny_run: Path, tmp_path: Path) -> None:
    bad = _with_metadata(tiny_run, tmp_path, drain_steps=-3)
    assert "drain_steps" in _one_line_error(run("deploy", bad, "--target", "lava-sim",
                                                "--out", tmp_path / "o"))
    rng = np.random.default_rng(0)
    with h5py.File(tiny_run / "model.net") as handle:
        meta = handle.attrs["gradr_lava"]
    wrong_bias = write_net(tmp_path / "bias.net", [
        {"kind": "dense", "weight": even_weights(rng, (24, 64)), "bias": np.ones(7)},
        {"kind": "dense", "weight": even_weights(rng, (10, 24))}], metadata=meta)
    message = _one_line_error(run("deploy", wrong_bias, "--target", "lava-sim", "--out",
                                  tmp_path / "o2", timeout=120))
    assert "bias" in message and "layer 0" in message


def test_a_conv_first_network_with_a_data_set_of_another_shape(tiny_conv_run: Path,
                                                              tmp_path: Path) -> None:
    bad = _with_metadata(tiny_conv_run, tmp_path, input_shape=[8, 8, 3])
    assert "inChannels" in _one_line_error(run("deploy", bad, "--target", "lava-sim",
                                             "--out", tmp_path / "o"))


def test_conv_geometry_larger_than_the_input(tiny_conv_run: Path, tmp_path: Path) -> None:
    import json

    rng = np.random.default_rng(1)
    with h5py.File(tiny_conv_run / "model.net") as handle:
        meta = json.loads(handle.attrs["gradr_lava"])
    meta["input_shape"] = [8, 8, 1]
    model = write_net(tmp_path / "big-kernel.net", [
        {"kind": "conv", "weight": even_weights(rng, (4, 1, 9, 9)), "shape": (4, 1, 1),
         "padding": (0, 0)},
        {"kind": "flatten", "shape": (4, 1, 1)},
        {"kind": "dense", "weight": even_weights(rng, (10, 4))}], metadata=json.dumps(meta))
    for command in (["map"], ["deploy", "--target", "lava-sim"]):
        message = _one_line_error(run(command[0], model, *command[1:], "--out", tmp_path / "o"))
        assert "layer 0" in message and "kernel (9, 9)" in message
