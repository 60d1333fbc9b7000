"""Data-parallel training under torchrun: 2 CPU ranks (gloo) on digits.

Tolerance against one process at the same global batch: the ranks sum half-batch gradients
that DDP then adds, one process sums the whole batch; float32 addition in another order differs
by about one ulp per step, which Adam carries into the weights at ~lr x 1e-7 per step. Over the
90 steps here that stays below 1e-5 in the hidden weights, and nothing crosses an 8-bit step: the
masks, the spikes and so the losses and accuracies are the same.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
TRAIN = ["train", "--dataset", "digits", "--epochs", "2", "--quiet",
         "--prune", "deepr", "--target-connectivity", "0.3"]


def _run(args: list[str], ranks: int | None, timeout: float = 300) -> subprocess.CompletedProcess:
    if ranks is None:
        command = [sys.executable, "-m", "gradr_lava", *args]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   f"--nproc_per_node={ranks}", "-m", "gradr_lava", *args]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"  # two ranks share the CI machine's cores
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env=env)


def _state(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoint.pt", weights_only=True)["model"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("ddp")
    dirs = {"two": base / "two", "one": base / "one", "resumed": base / "resumed"}
    done = [_run([*TRAIN, "--out", str(dirs["two"])], ranks=2),
            _run([*TRAIN, "--out", str(dirs["one"])], ranks=None)]
    first = [a if a != "2" else "1" for a in TRAIN]  # --epochs 1, then resume to 2
    done.append(_run([*first, "--out", str(dirs["resumed"])], ranks=2))
    done.append(_run([*TRAIN, "--out", str(dirs["resumed"]), "--resume"], ranks=2))
    for result in done:
        assert result.returncode == 0, result.stderr[-3000:]
    dirs["stdout"] = done[0].stdout  # type: ignore[assignment]
    return dirs


def test_two_ranks_match_one_process_at_the_same_global_batch(runs: dict[str, Path]) -> None:
    two = json.loads((runs["two"] / "metrics.json").read_text())
    one = json.loads((runs["one"] / "metrics.json").read_text())
    assert (two["world_size"], two["backend"]) == (2, "gloo")
    assert one["world_size"] == 1
    for a, b in zip(two["history"], one["history"], strict=True):
        assert a["test_accuracy"] == b["test_accuracy"]
        assert a["connectivity"] == b["connectivity"]
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-5)
    state_two, state_one = _state(runs["two"]), _state(runs["one"])
    for name, value in state_two.items():
        if value.is_floating_point() and "original" in name:  # the trained hidden weights
            assert (value - state_one[name]).abs().max() < 1e-5, name
        else:  # signs, masks, decays
            assert torch.equal(value, state_one[name]), name


def test_resume_under_torchrun_equals_an_uninterrupted_run(runs: dict[str, Path]) -> None:
    resumed, straight = _state(runs["resumed"]), _state(runs["two"])
    for name, value in straight.items():
        assert torch.equal(value, resumed[name]), name


def test_only_rank_zero_writes_and_reports(runs: dict[str, Path]) -> None:
    out = str(runs["stdout"])
    assert out.count("wrote ") == 1
    files = sorted(p.name for p in runs["two"].iterdir() if not p.name.startswith("."))
    assert files == ["checkpoint.pt", "metrics.json", "model.net", "training_curves.png"]


def test_an_error_on_rank_zero_stops_every_rank(tmp_path: Path) -> None:
    """A held run-directory lock fails rank 0 only; rank 1 must exit too, not wait forever."""
    out = tmp_path / "locked"
    out.mkdir()
    with open(out / ".gradr-lava.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = _run([*TRAIN, "--out", str(out)], ranks=2, timeout=120)
    assert result.returncode != 0
    # both ranks say why in one line; torchrun's own report of the failed ranks follows
    assert result.stderr.count("gradr-lava train: error:") == 2
    assert "rank 0 stopped" in result.stderr
    assert "/gradr_lava/" not in result.stderr  # no traceback through our code


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_device_cuda_without_a_gpu_is_a_clear_error(tmp_path: Path) -> None:
    result = _run([*TRAIN, "--out", str(tmp_path / "r"), "--device", "cuda"], ranks=None)
    assert result.returncode == 2
    assert "--device cuda" in result.stderr and "no CUDA GPU" in result.stderr
