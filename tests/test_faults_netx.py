"""Hostile netx files: nothing outside the file is read, nothing huge is allocated."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from gradr_deploy.errors import InputError
from gradr_deploy.netx import read_netx


def _copy(tiny_run: Path, tmp_path: Path) -> Path:
    path = tmp_path / "model.net"
    shutil.copy(tiny_run / "model.net", path)
    return path


def _replace(path: Path, key: str, make) -> None:
    with h5py.File(path, "a") as handle:
        del handle[key]
        make(handle, key)


def test_reads_the_plain_file(tiny_run: Path, tmp_path: Path) -> None:
    assert read_netx(_copy(tiny_run, tmp_path)).layers


def test_external_link_is_refused(tiny_run: Path, tmp_path: Path) -> None:
    path = _copy(tiny_run, tmp_path)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as handle:
        handle["w"] = np.full((24, 64), 2.0)
    _replace(path, "layer/1/weight",
             lambda h, k: h.__setitem__(k, h5py.ExternalLink(str(other), "/w")))
    with pytest.raises(InputError, match="external link"):
        read_netx(path)


def test_soft_link_including_a_self_reference_is_refused(tiny_run: Path, tmp_path: Path) -> None:
    path = _copy(tiny_run, tmp_path)
    with h5py.File(path, "a") as handle:
        handle["layer/1/loop"] = h5py.SoftLink("/layer/1/loop")
    with pytest.raises(InputError, match="soft link"):
        read_netx(path)


def test_external_raw_storage_is_refused(tiny_run: Path, tmp_path: Path) -> None:
    path = _copy(tiny_run, tmp_path)
    secret = tmp_path / "secret.bin"
    secret.write_bytes(bytes(range(256)) * 24)
    _replace(path, "layer/1/weight", lambda h, k: h.create_dataset(
        k, shape=(24, 64), dtype="u1", external=[(str(secret), 0, 24 * 64)]))
    with pytest.raises(InputError, match="other files"):
        read_netx(path)


def test_virtual_dataset_is_refused(tiny_run: Path, tmp_path: Path) -> None:
    path = _copy(tiny_run, tmp_path)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as handle:
        handle["w"] = np.full((24, 64), 2.0)
    layout = h5py.VirtualLayout(shape=(24, 64), dtype="f8")
    layout[:] = h5py.VirtualSource(str(other), "w", shape=(24, 64))
    _replace(path, "layer/1/weight", lambda h, k: h.create_virtual_dataset(k, layout))
    with pytest.raises(InputError, match="other files"):
        read_netx(path)


def test_huge_declared_weight_is_refused_before_reading(tiny_run: Path, tmp_path: Path) -> None:
    path = _copy(tiny_run, tmp_path)
    _replace(path, "layer/1/weight", lambda h, k: h.create_dataset(
        k, shape=(10**6, 10**6), dtype="f4", chunks=(64, 64)))
    with pytest.raises(InputError, match="more than"):
        read_netx(path)
    assert path.stat().st_size < 10**6  # the declared data was never written or read


@pytest.mark.parametrize("dtype", ["c8", "S4"])
def test_non_real_weight_dtypes_are_refused(tiny_run: Path, tmp_path: Path, dtype: str) -> None:
    path = _copy(tiny_run, tmp_path)
    _replace(path, "layer/1/weight",
             lambda h, k: h.create_dataset(k, data=np.ones((24, 64)).astype(dtype)))
    with pytest.raises(InputError, match="real"):
        read_netx(path)
