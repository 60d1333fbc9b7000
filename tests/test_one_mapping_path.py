"""`map`, `deploy` and the Python API give one answer for one file and profile."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from gradr_deploy.simulation.stimulus import pad_window, run_window

SCRIPT = Path(sys.executable).parent / "gradr-lava"


def _layer(group: h5py.Group, index: int, weight: np.ndarray) -> None:
    node = group.create_group(str(index))
    node.create_dataset("type", (1,), "S10", [b"dense"])
    node.create_dataset("shape", data=np.array([weight.shape[0]]))
    node.create_dataset("inFeatures", data=weight.shape[1])
    node.create_dataset("outFeatures", data=weight.shape[0])
    node.create_dataset("weight", data=weight.astype(np.float32))
    neuron = node.create_group("neuron")
    for key, value in (("gradedSpike", False), ("iDecay", 4096), ("refDelay", 1),
                       ("vDecay", 2048), ("vThMant", 64)):
        neuron.create_dataset(key, data=value)
    neuron.create_dataset("type", data=b"CUBA")


def shuffled_blocks(path: Path, metadata: str) -> Path:
    """64 digits inputs -> 256 neurons in 4 blocks of 64, each reading its own 16 inputs,
    stored shuffled -> 10 readout neurons, each reading 16 neurons of one block."""
    rng = np.random.default_rng(0)
    hidden = np.zeros((256, 64))
    for b in range(4):
        hidden[64 * b : 64 * (b + 1), 16 * b : 16 * (b + 1)] = rng.integers(4, 40, (64, 16)) * 2
    perm = rng.permutation(256)
    hidden = hidden[perm]
    where = np.argsort(perm)  # stored position of original neuron i
    readout = np.zeros((10, 256))
    for j in range(10):
        readout[j, where[64 * (j % 4) : 64 * (j % 4) + 16]] = rng.integers(4, 40, 16) * 2
    with h5py.File(path, "w") as handle:
        group = handle.create_group("layer")
        _layer(group, 0, hidden)
        _layer(group, 1, readout)
        handle.attrs["gradr_lava"] = metadata
    return path


def _run(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=600)


@pytest.mark.parametrize(("hardware", "sets"), [
    ("loihi1", ["--set", "input_axons_per_core=16"]),
    ("loihi2", []),
])
def test_map_and_deploy_report_the_same_cores(tiny_run: Path, tmp_path: Path, hardware: str,
                                              sets: list[str]) -> None:
    with h5py.File(tiny_run / "model.net") as handle:
        metadata = handle.attrs["gradr_lava"]
    model = shuffled_blocks(tmp_path / "blocks.net", metadata)
    mapped = _run("map", model, "--hardware", hardware, *sets, "--out", tmp_path / "map")
    assert mapped.returncode == 0, mapped.stderr
    deployed = _run("deploy", model, "--target", "lava-sim", "--samples", "3", "--quiet",
                    "--hardware", hardware, *sets, "--out", tmp_path / "deploy")
    assert deployed.returncode == 0, deployed.stderr
    mapping = json.loads((tmp_path / "map" / "mapping.json").read_text())
    report = json.loads((tmp_path / "deploy" / "deploy.json").read_text())
    assert report["cores"] == mapping["total_cores"]
    assert report["best_partition_cores"] == mapping["best_partition_cores"]
    from gradr_deploy.mapping import map_file

    overrides = dict(s.split("=") for s in sets[1::2])
    api = map_file(model, hardware, overrides)
    assert api.total_cores == mapping["total_cores"]
    if hardware == "loihi1":  # the stored order needs far more: the search must run everywhere
        from gradr_deploy.hardware.profile import load_profile
        from gradr_deploy.mapping import dense_connectivity, partition
        from gradr_deploy.netx import read_netx

        weight = read_netx(model).layers[0].weight_matrix()
        stored = partition(dense_connectivity(weight != 0), np.zeros(256, np.int64), 8,
                           load_profile(hardware, overrides), "stored")
        assert len(stored.neurons) > 2 * api.layers[0].cores
        assert api.layers[0].cores == 4  # one block per core
    limit = mapping["total_cores"]
    for command, extra in (("map", []), ("deploy", ["--target", "lava-sim", "--samples", "1",
                                                   "--quiet"])):
        fits = _run(command, model, *extra, "--hardware", hardware, *sets,
                    "--max-cores", limit, "--out", tmp_path / f"{command}-fits")
        over = _run(command, model, *extra, "--hardware", hardware, *sets,
                    "--max-cores", limit - 1, "--out", tmp_path / f"{command}-over")
        assert (fits.returncode, over.returncode) == (0, 3), (command, fits.stderr, over.stderr)


def test_hardware_runs_pad_each_sample_to_a_power_of_two() -> None:
    assert [run_window(w, "loihi2") for w in (1, 2, 3, 16, 17, 18, 33)] == [1, 2, 4, 16, 32,
                                                                             32, 64]
    assert run_window(18, "lava-sim") == 18
    spikes = np.ones((2, 3, 18), np.uint8)
    padded = pad_window(spikes, run_window(18, "loihi2"))
    assert padded.shape == (2, 3, 32)
    assert padded[..., :18].all() and not padded[..., 18:].any()
