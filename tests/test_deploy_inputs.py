"""``gradr-lava deploy MODEL.net --inputs FILE``: any netx file on the user's own input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from netx_writer import shared_netx

from gradr_deploy.errors import InputError
from gradr_deploy.simulation.inputs import load_inputs

SCRIPT = Path(sys.executable).parent / "gradr-lava"


def _deploy(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), "deploy", *map(str, args), "--target", "lava-sim",
                           "--quiet"], capture_output=True, text=True, timeout=600)


def test_oxford_on_generated_input_dense_and_events(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    spikes = (rng.random((2, 200, 120)) < 0.05).astype(np.uint8)
    dense = tmp_path / "dense.npy"
    np.save(dense, spikes)
    events = tmp_path / "events.npy"  # lava-dl's 1-D event format: x, c, t (ms)
    feature, step = np.nonzero(spikes[1])
    np.save(events, np.column_stack([feature, np.zeros_like(feature), step]).astype(float))
    model = shared_netx("oxford.net")

    result = _deploy(model, "--inputs", dense, "--out", tmp_path / "dense", "--save-spikes")
    assert result.returncode == 0, result.stderr
    assert "2 samples of" in result.stdout and "NeuroBench:" in result.stdout
    report = json.loads((tmp_path / "dense" / "deploy.json").read_text())
    assert report["lava_accuracy"] is None and report["torch_accuracy"] is None
    assert report["spike_agreement"] == 1.0
    assert report["time_steps"] == 120 and report["window"] == 122  # 2 drain steps
    assert [row["spikes_total"] > 0 for row in report["layers"]] == [True, True]
    assert report["energy"]["energy_j"]["total"] > 0
    assert 0 < report["activation_sparsity"] < 1
    assert report["synaptic_operations"]["Effective_ACs"] > 0
    assert report["synaptic_operations"]["Effective_MACs"] == 0  # binary spikes
    saved = np.load(tmp_path / "dense" / "spikes.npz")
    assert "labels" not in saved.files
    np.testing.assert_array_equal(saved["inputs"][:, :, :120], spikes)

    result = _deploy(model, "--inputs", events, "--out", tmp_path / "events",
                     "--time-steps", "120", "--save-spikes")
    assert result.returncode == 0, result.stderr
    from_events = json.loads((tmp_path / "events" / "deploy.json").read_text())
    assert from_events["samples"] == 1 and from_events["spike_agreement"] == 1.0
    # the events are sample 1 of the dense file: Lava gives it the same output spikes
    np.testing.assert_array_equal(np.load(tmp_path / "events" / "spikes.npz")["outputs"][0],
                                  saved["outputs"][1])


def test_loader_formats_and_errors(tmp_path: Path) -> None:
    one = tmp_path / "one.npy"
    np.save(one, np.eye(4, 6, dtype=np.uint8))
    assert load_inputs(one, 4).shape == (1, 4, 6)
    events = tmp_path / "ev.npy"  # 2 channels of 3 positions: feature = c * 3 + x
    np.save(events, np.array([[2, 1, 0.4], [0, 0, 3.2]]))
    spikes = load_inputs(events, 6)
    assert spikes.shape == (1, 6, 4) and spikes[0, 5, 0] == 1 and spikes[0, 0, 3] == 1
    for array, message in [
        (np.zeros((2, 5, 6)), r"shape \(2, 5, 6\); the network reads 4 inputs"),
        (np.full((4, 6), 0.5), "with fractions"),
        (np.full((4, 6), -1.0), "0/1 spikes or integer payloads"),
    ]:
        bad = tmp_path / "bad.npy"
        np.save(bad, array)
        with pytest.raises(InputError, match=message):
            load_inputs(bad, 4)
    with pytest.raises(InputError, match="beyond time_steps=1"):
        load_inputs(events, 6, time_steps=1)
    np.save(events, np.array([[7, 0, 1.0]]))
    with pytest.raises(InputError, match="events reach x=7"):
        load_inputs(events, 6)


def test_a_network_that_does_not_fit_the_data_set_names_both_shapes(tmp_path: Path) -> None:
    result = _deploy(shared_netx("pilotnet_snn.net"), "--dataset", "digits", "--out", tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    for part in ("39600 inputs", "(3, 66, 200)", "64 pixels per sample (8x8)", "--inputs"):
        assert part in result.stderr, part
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((3, 7, 5), np.uint8))
    result = _deploy(shared_netx("oxford.net"), "--inputs", bad, "--out", tmp_path)
    assert result.returncode == 2 and "(N, 200, steps)" in result.stderr


def test_a_conv_first_file_from_lava_dl_without_our_metadata(tiny_conv_run: Path,
                                                            tmp_path: Path) -> None:
    """lava-dl's export of a conv-first network records no input shape: deploy derives
    netx's (x, y, f) from the data set's images, or from --inputs' size."""
    import shutil

    import h5py

    foreign = tmp_path / "foreign.net"
    shutil.copy(tiny_conv_run / "model.net", foreign)
    with h5py.File(foreign, "a") as handle:
        del handle.attrs["gradr_lava"]
    result = _deploy(foreign, "--dataset", "digits", "--samples", "20", "--out",
                     tmp_path / "digits")
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "digits" / "deploy.json").read_text())
    assert report["spike_agreement"] == 1.0 and report["lava_accuracy"] is not None
    spikes = tmp_path / "in.npy"
    np.save(spikes, (np.random.default_rng(0).random((2, 64, 8)) < 0.3).astype(np.uint8))
    result = _deploy(foreign, "--inputs", spikes, "--out", tmp_path / "inputs")
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "inputs" / "deploy.json").read_text())[
        "spike_agreement"] == 1.0
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((1, 50, 8), np.uint8))
    result = _deploy(foreign, "--inputs", wrong, "--out", tmp_path / "wrong")
    assert result.returncode == 2 and "input shapes (x, y, f) fit" in result.stderr
