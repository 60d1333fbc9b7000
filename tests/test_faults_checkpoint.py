"""Hostile checkpoints: nothing in a run directory executes on ``--resume``."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from gradr_deploy.errors import InputError
from gradr_lava.checkpoint import load_checkpoint, save_checkpoint
from gradr_lava.cli import main


class _RunsCode:
    """Unpickling this calls ``Path.touch(marker)``: a stand-in for ``os.system``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _plant(run_dir: Path, marker: Path) -> Path:
    """Overwrite the run's checkpoint with one that carries a code-running object."""
    path = run_dir / "checkpoint.pt"
    state = torch.load(path, weights_only=True)
    state["history"].append(_RunsCode(marker))
    torch.save(state, path)
    return path


def test_malicious_checkpoint_is_refused_and_runs_nothing(
    tiny_run: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes((tiny_run / "checkpoint.pt").read_bytes())
    marker = tmp_path / "pwned"
    path = _plant(run, marker)
    # Sanity: a free unpickler would run it.
    torch.load(path, weights_only=False)
    assert marker.exists()
    marker.unlink()
    with pytest.raises(InputError, match="not loaded"):
        load_checkpoint(path)
    assert not marker.exists()


def test_malicious_checkpoint_via_cli_exits_2(
    tiny_run: Path, tiny_configs: dict[str, Path], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes((tiny_run / "checkpoint.pt").read_bytes())
    marker = tmp_path / "pwned"
    _plant(run, marker)
    code = main(["train", "--dataset", "digits", "--model", str(tiny_configs["mlp"]),
                 "--out", str(run), "--resume", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert "could run code" in err and "Traceback" not in err
    assert not marker.exists()


def test_plain_pickle_of_a_non_dict_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pt"
    torch.save([1, 2, 3], path)
    with pytest.raises(InputError, match="not a gradr-lava training state"):
        load_checkpoint(path)


def test_raw_pickle_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(pickle.dumps(_RunsCode(tmp_path / "pwned")))
    with pytest.raises(InputError):
        load_checkpoint(path)
    assert not (tmp_path / "pwned").exists()


def test_save_refuses_state_the_safe_loader_would_reject(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"state\['bad'\]"):
        save_checkpoint(tmp_path / "checkpoint.pt", {"bad": object()})
    assert not (tmp_path / "checkpoint.pt").exists()
