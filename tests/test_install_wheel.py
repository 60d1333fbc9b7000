"""The wheel route, as a new user takes it: a fresh venv, ``pip install`` the wheel, a command
that needs Lava exits 4 naming ``gradr-lava setup-lava``, the setup command, then lava-dl imports
in a plain interpreter and ``train`` + ``deploy`` run end to end.

torch is installed first at the version of the test environment's torch (from the machine's
find-links or index, as pip finds it), so the test does not download another torch build.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def _run(*command: str | Path, env: dict[str, str] | None = None,
         timeout: float = 1200) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in command], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_wheel_plus_setup_lava_trains_and_deploys(tmp_path: Path) -> None:
    dist, venv = tmp_path / "dist", tmp_path / "venv"
    built = _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                 "--quiet", "-w", dist, REPO)
    assert built.returncode == 0, built.stderr
    wheel = next(dist.glob("gradr_lava-*.whl"))
    base = getattr(sys, "_base_executable", sys.executable)
    assert _run(base, "-m", "venv", venv).returncode == 0
    python, command = venv / "bin" / "python", venv / "bin" / "gradr-lava"
    pip = (python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check")
    try:
        done = _run(*pip, f"torch=={torch.__version__}")
        assert done.returncode == 0, done.stderr[-2000:]
        done = _run(*pip, wheel)
        assert done.returncode == 0, done.stderr[-2000:]
        out = tmp_path / "run"

        before = _run(command, "deploy", REPO / "models" / "digits-mlp.net", "--target",
                      "lava-sim", "--out", out)
        assert before.returncode == 4, before.stderr
        assert "gradr-lava setup-lava" in before.stderr and "Traceback" not in before.stderr
        assert not out.exists() or not (out / "deploy.json").exists()

        setup = _run(command, "setup-lava")
        assert setup.returncode == 0, setup.stdout + setup.stderr
        plain = _run(python, "-c", "import lava.lib.dl.slayer; from lava.lib.dl import netx; "
                     "import sys; print('gradr_lava' in sys.modules)")
        assert plain.returncode == 0, plain.stderr
        assert plain.stdout.strip() == "False"  # lava-dl alone, not through gradr-lava

        trained = _run(command, "train", "--dataset", "digits", "--epochs", "1", "--out", out,
                       "--quiet")
        assert trained.returncode == 0, trained.stderr
        deployed = _run(command, "deploy", out / "model.net", "--target", "lava-sim",
                        "--samples", "30", "--quiet")
        assert deployed.returncode == 0, deployed.stderr
        report = json.loads((out / "deploy.json").read_text())
        assert report["spike_agreement"] == 1.0
        assert report["samples"] == 30
        off = _run(python, "-c", "from lava.proc.lif.process import LIF",
                   env={**os.environ, "GRADR_LAVA_COMPAT": "0"})
        assert off.returncode != 0 and "mutable default" in off.stderr  # the hook's opt-out
    finally:
        shutil.rmtree(venv, ignore_errors=True)  # ~1 GB
