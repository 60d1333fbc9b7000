"""Tests for gradr_deploy.netx: real lava-dl files, lava-dl's own exporter, malformed files."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import subprocess
import sys
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from netx_writer import shared_netx

from gradr_deploy.errors import InputError
from gradr_deploy.netx import SignMode, read_netx, weight_format

REAL_FILES = ("oxford.net", "pilotnet_snn.net", "pilotnet_sdnn.net")
HAVE_TORCH = importlib.util.find_spec("torch") is not None
HAVE_LAVA_DL = importlib.util.find_spec("lava") is not None


real_file = shared_netx


def write_dense_net(path: Path, layers: list[dict]) -> Path:
    """Write a minimal netx file; each dict maps dataset names to values."""
    with h5py.File(path, "w") as handle:
        group = handle.create_group("layer")
        for index, datasets in enumerate(layers):
            node = group.create_group(str(index))
            for key, value in datasets.items():
                if key == "type":
                    node.create_dataset("type", (1,), "S10", [value.encode("ascii")])
                else:
                    node.create_dataset(key, data=value)
    return path


def dense(n_in: int, n_out: int, weight: np.ndarray | None = None) -> dict:
    w = np.ones((n_out, n_in), np.float32) if weight is None else weight
    return {
        "type": "dense",
        "shape": np.array([n_out]),
        "inFeatures": n_in,
        "outFeatures": n_out,
        "weight": w,
        "neuron/type": "CUBA",
        "neuron/vThMant": 80,
        "neuron/iDecay": 4096,
    }


# --- real files -------------------------------------------------------------------------------


def test_oxford_reads_two_dense_cuba_layers() -> None:
    net = read_netx(real_file("oxford.net"))
    assert [layer.kind for layer in net.layers] == ["dense", "dense"]
    first = net.layers[0]
    assert (first.in_features, first.out_features, first.neurons) == (200, 256, 256)
    assert first.weight is not None and first.weight.shape == (256, 200)
    assert first.neuron is not None and first.neuron.kind == "CUBA"
    assert first.neuron.params["vDecay"] == 415 and first.neuron.params["gradedSpike"] is False


@pytest.mark.parametrize("name", ["pilotnet_snn.net", "pilotnet_sdnn.net"])
def test_pilotnet_reads_conv_geometry_and_flatten(name: str) -> None:
    net = read_netx(real_file(name))
    kinds = [layer.kind for layer in net.layers]
    assert kinds == ["input"] + ["conv"] * 5 + ["flatten"] + ["dense"] * 4
    assert net.layers[0].shape == (3, 66, 200)  # (f, y, x) as stored
    conv4 = net.layers[4]
    assert conv4.conv is not None
    assert (conv4.conv.stride, conv4.conv.padding, conv4.conv.kernel) == ((2, 1), (1, 0), (3, 3))
    assert conv4.kernel().shape == (64, 48, 3, 3)
    assert net.layers[7].in_features == 2560 == net.layers[5].neurons
    assert net.layers[-1].weight_matrix().shape == (1, 10)  # stored 1-D in the SNN file


def test_sdnn_neuron_keeps_string_params_and_simulation_group() -> None:
    sdnn = read_netx(real_file("pilotnet_sdnn.net"))
    neuron = sdnn.layers[1].neuron
    assert neuron is not None and neuron.kind == "SDNN" and neuron.params["activation"] == "relu"
    assert sdnn.layers[-1].neuron.params["sigma_output"] is True  # type: ignore[union-attr]
    snn = read_netx(real_file("pilotnet_snn.net"))
    assert dict(snn.simulation) == {"Ts": 1, "tSample": 16}
    assert snn.layers[1].neuron.kind == "LOIHI"  # type: ignore[union-attr]


def test_root_attributes_are_decoded(tmp_path: Path) -> None:
    path = write_dense_net(tmp_path / "a.net", [dense(3, 2)])
    with h5py.File(path, "a") as handle:
        handle.attrs["name"] = b"tiny"
        handle.attrs["steps"] = np.int64(16)
        handle.attrs["scale"] = np.array([1.5, 2.0])
    attrs = read_netx(path).attrs
    assert attrs == {"name": "tiny", "steps": 16, "scale": [1.5, 2.0]}
    assert type(attrs["steps"]) is int


# --- lava-dl's own exporter -------------------------------------------------------------------


@pytest.mark.skipif(not (HAVE_TORCH and HAVE_LAVA_DL), reason="needs torch and lava-dl")
def test_file_written_by_slayer_export_hdf5(tmp_path: Path) -> None:
    import gradr_deploy.simulation.lava_compat

    gradr_deploy.simulation.lava_compat.install()
    import lava.lib.dl.slayer as slayer
    import torch

    params = {"threshold": 1.0, "current_decay": 0.25, "voltage_decay": 0.03}
    blocks = [
        slayer.block.cuba.Input(params),
        slayer.block.cuba.Conv(params, 2, 4, 3, stride=2, padding=1),
        slayer.block.cuba.Flatten(),
        slayer.block.cuba.Dense(params, 4 * 4 * 5, 8, delay=True),
        slayer.block.cuba.Dense(params, 8, 3),
    ]
    x = torch.rand(1, 2, 8, 10, 5)  # N, C, y, x, T
    for block in blocks:
        x = block(x)  # sets the neuron shapes that export_hdf5 writes
    path = tmp_path / "slayer.net"
    with h5py.File(path, "w") as handle:
        group = handle.create_group("layer")
        for index, block in enumerate(blocks):
            block.export_hdf5(group.create_group(str(index)))

    net = read_netx(path)
    assert [layer.kind for layer in net.layers] == ["input", "conv", "flatten", "dense", "dense"]
    assert net.layers[0].shape == (2, 8, 10)
    assert net.layers[1].shape == (4, 4, 5)
    assert net.layers[1].conv.padding == (1, 1)  # type: ignore[union-attr]
    assert net.layers[3].weight.shape == (8, 80)  # type: ignore[union-attr]
    assert net.layers[3].delay is not None and net.layers[3].delay.shape == (8,)
    assert net.layers[4].neuron.kind == "CUBA"  # type: ignore[union-attr]


@pytest.mark.skipif(not HAVE_LAVA_DL, reason="needs lava-dl (netx) to compare against")
@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(-256, 254), min_size=1, max_size=30),
    st.integers(0, 8),
)
def test_weight_format_matches_netx_optimize_weight_bits(values: list[int], shift: int) -> None:
    import gradr_deploy.simulation.lava_compat

    gradr_deploy.simulation.lava_compat.install()
    from lava.lib.dl.netx.utils import optimize_weight_bits

    w = (np.array(values) >> shift) << shift
    if not w.any():
        return  # netx divides by zero on an all-zero matrix
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, bits, exponent, mode = optimize_weight_bits(w.astype(int))
    ours = weight_format(w.astype(np.float32))
    assert (ours.bits, ours.exponent, int(ours.sign_mode)) == (bits, exponent, int(mode))


def test_weight_format_hand_cases() -> None:
    # mixed, -20..18, all even: scale = min(127/18, 128/20) = 6.4 -> 2 + 1 sign = 3 shift bits;
    # divisible by 2 only -> n = 1 - 1 = 0; bits = 8 - 3 - 0 = 5 (pilotnet_snn layer 1)
    fmt = weight_format(np.array([-20.0, 18.0, 2.0]))
    assert (fmt.bits, fmt.exponent, fmt.sign_mode) == (5, -3, SignMode.MIXED)
    # excitatory, max 255 -> scale 1, odd values -> 8 bits
    assert weight_format(np.array([1.0, 255.0])).bits == 8
    with pytest.raises(InputError, match=r"-256\.\.254"):
        weight_format(np.array([-10.0, 300.0]))


# --- malformed files --------------------------------------------------------------------------


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope\.net: no such file"):
        read_netx(tmp_path / "nope.net")


def test_garbage_bytes_are_not_hdf5(tmp_path: Path) -> None:
    path = tmp_path / "garbage.net"
    path.write_bytes(b"this is not an hdf5 file at all" * 10)
    with pytest.raises(InputError, match="not an HDF5 file: corrupt or truncated"):
        read_netx(path)


def test_truncated_file(tmp_path: Path) -> None:
    source = write_dense_net(tmp_path / "full.net", [dense(300, 200)])
    data = source.read_bytes()
    path = tmp_path / "truncated.net"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"truncated\.net.*(corrupt or truncated)"):
        read_netx(path)


def test_missing_layer_group(tmp_path: Path) -> None:
    path = tmp_path / "empty.net"
    with h5py.File(path, "w") as handle:
        handle.create_group("layers")  # wrong name
    with pytest.raises(InputError, match="no '/layer' group"):
        read_netx(path)


def test_layer_groups_with_a_gap(tmp_path: Path) -> None:
    path = write_dense_net(tmp_path / "gap.net", [dense(3, 2), dense(2, 2)])
    with h5py.File(path, "a") as handle:
        handle.move("layer/1", "layer/2")
    with pytest.raises(InputError, match="no gaps"):
        read_netx(path)


def test_wrong_weight_shape_names_layer_and_expected_shape(tmp_path: Path) -> None:
    bad = dense(4, 3, weight=np.ones((4, 3), np.float32))
    path = write_dense_net(tmp_path / "w.net", [dense(5, 4), bad])
    with pytest.raises(InputError, match=r"layer 1: weight shape \(4, 3\).*\[3, 4\]"):
        read_netx(path)


def test_in_features_must_match_previous_layer(tmp_path: Path) -> None:
    path = write_dense_net(tmp_path / "f.net", [dense(5, 4), dense(6, 2)])
    with pytest.raises(InputError, match=r"layer 1: inFeatures = 6 but layer 0 .* 4 neurons"):
        read_netx(path)


def test_unknown_layer_type_reports_index(tmp_path: Path) -> None:
    odd = dense(4, 4)
    odd["type"] = "lstm"
    path = write_dense_net(tmp_path / "u.net", [dense(5, 4), odd])
    with pytest.raises(InputError, match="layer 1: unknown layer type 'lstm'"):
        read_netx(path)


def test_missing_shape_and_conv_fields(tmp_path: Path) -> None:
    no_shape = dense(3, 2)
    del no_shape["shape"]
    with pytest.raises(InputError, match="layer 0: missing 'shape'"):
        read_netx(write_dense_net(tmp_path / "s.net", [no_shape]))
    conv = {
        "type": "conv",
        "shape": np.array([4, 3, 3]),
        "inChannels": 2,
        "outChannels": 4,
        "kernelSize": np.array([3, 3]),
        "padding": np.array([0, 0]),
        "groups": 1,
        "weight": np.ones((4, 2, 3, 3), np.float32),
    }
    with pytest.raises(InputError, match="layer 0: missing 'stride'"):
        read_netx(write_dense_net(tmp_path / "c.net", [conv]))


def test_conv_output_size_is_checked(tmp_path: Path) -> None:
    inp = {"type": "input", "shape": np.array([2, 9, 9])}
    conv = {
        "type": "conv",
        "shape": np.array([4, 5, 5]),
        "inChannels": 2,
        "outChannels": 4,
        "kernelSize": np.array([3, 3]),
        "stride": np.array([2, 2]),
        "padding": np.array([0, 0]),
        "dilation": np.array([1, 1]),
        "groups": 1,
        "weight": np.ones((4, 2, 3, 3), np.float32),
    }
    with pytest.raises(InputError, match=r"layer 1: .*gives \(inChannels, y, x\) = \(2, 4, 4\)"):
        read_netx(write_dense_net(tmp_path / "o.net", [inp, conv]))


# --- import boundary --------------------------------------------------------------------------


def test_deploy_modules_import_without_torch_or_lava() -> None:
    code = (
        "import sys\n"
        "import gradr_deploy.netx, gradr_deploy.hardware.profile, gradr_deploy.mapping\n"
        "import gradr_deploy.mapping.budget\n"
        "import gradr_deploy.energy, gradr_deploy.reports.mapping\n"
        "heavy = sorted(m for m in sys.modules\n"
        "               if m.split('.')[0] in ('torch', 'lava', 'matplotlib', 'scipy'))\n"
        "print(heavy)\n"
        "sys.exit(1 if heavy else 0)\n"
    )
    repo = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
