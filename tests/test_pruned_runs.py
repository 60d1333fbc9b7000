"""Every pruning method from the command line on digits: the requested connectivity is reached,
and the exported network runs in Lava spike for spike like the quantized PyTorch network."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).parent / "gradr-lava"
TARGETS = {"0.3": [0.3, 0.3], "0=0.2,1=0.5": [0.2, 0.5]}  # flag value: per-layer target

CASES = {
    # name: (flags, target flag, which count reaches round(target * numel) per layer exactly:
    # "deployed" (8-bit nonzero), "float" (nonzero in float) or None)
    "gradr-schedule": (["--prune", "gradr", "--gradr-mode", "schedule"], "0.3", "deployed"),
    "gradr-paper-finetune": (["--prune", "gradr", "--alpha", "0.5", "--gradr-finetune", "0.25"],
                             "0.3", None),
    "deepr": (["--prune", "deepr"], "0.3", "float"),
    "magnitude-per-layer": (["--prune", "magnitude"], "0=0.2,1=0.5", "float"),
}


def gradr_lava(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=600)


@pytest.mark.parametrize("case", sorted(CASES))
def test_pruned_digits_run_reaches_its_connectivity_and_runs_bit_exactly_in_lava(
    case: str, tiny_configs: dict[str, Path], tmp_path: Path
) -> None:
    flags, target, exact = CASES[case]
    run = tmp_path / "run"
    trained = gradr_lava("train", "--dataset", "digits", "--model", tiny_configs["mlp"],
                         "--epochs", "2", "--target-connectivity", target, *flags,
                         "--out", run, "--quiet")
    assert trained.returncode == 0, trained.stderr
    metrics = json.loads((run / "metrics.json").read_text())
    last = metrics["history"][-1]["rewiring"]
    assert last["method"] == flags[1]
    for layer, wanted in zip(last["layers"], TARGETS[target], strict=True):
        assert layer["rewired"]
        # What is exported (8-bit nonzeros) is never more than what the optimizer sees.
        assert layer["nonzero_quantized"] <= layer["nonzero"]
        if exact is not None:
            count = layer["nonzero_quantized" if exact == "deployed" else "nonzero"]
            assert count == round(wanted * layer["numel"]), layer
        else:
            assert layer["finetuning"] is True
            assert layer["nonzero_quantized"] < layer["numel"] * 0.9
    assert metrics["history"][-1]["connectivity"] == last["total"]["connectivity_quantized"]

    deployed = gradr_lava("deploy", run / "model.net", "--target", "lava-sim", "--samples", "16",
                          "--out", tmp_path / "lava", "--quiet")
    assert deployed.returncode == 0, deployed.stderr
    report = json.loads((tmp_path / "lava" / "deploy.json").read_text())
    assert report["spike_agreement"] == 1.0
    assert report["lava_accuracy"] == report["torch_accuracy"]
