"""docs/tutorial.md runs as written: its Python block, then its shell block."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TUTORIAL = REPO / "docs" / "tutorial.md"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", TUTORIAL.read_text(), flags=re.S)


def test_the_python_block_runs_and_is_short(tmp_path: Path) -> None:
    (code,) = _blocks("python")
    assert len([line for line in code.splitlines() if line.strip()]) <= 40
    script = tmp_path / "tutorial.py"
    script.write_text(code)
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "spike agreement 1.0000" in done.stdout and "nJ per inference" in done.stdout


def test_the_shell_block_runs(tmp_path: Path) -> None:
    (commands,) = _blocks("sh")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", commands], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "runs" / "tutorial-sh" / "deploy.json").exists()
    assert (tmp_path / "runs" / "tutorial-sh" / "model.nir").exists()
