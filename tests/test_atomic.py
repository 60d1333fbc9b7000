"""Atomic writes: the destination is either the old file or the complete new one."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from gradr_deploy.atomic import atomic_path, write_json


def test_write_json_replaces_the_file_with_the_mode_a_plain_open_gives(tmp_path: Path) -> None:
    destination = tmp_path / "out" / "report.json"
    old_mask = os.umask(0o022)
    try:
        write_json(destination, {"accuracy": 0.97})
    finally:
        os.umask(old_mask)
    assert json.loads(destination.read_text()) == {"accuracy": 0.97}
    assert stat.S_IMODE(destination.stat().st_mode) == 0o644
    assert [p.name for p in destination.parent.iterdir()] == ["report.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    destination = tmp_path / "model.net"
    destination.write_bytes(b"old network")
    with pytest.raises(RuntimeError, match="interrupted"):
        with atomic_path(destination) as tmp:
            tmp.write_bytes(b"half a netw")
            raise RuntimeError("interrupted")
    assert destination.read_bytes() == b"old network"
    assert [p.name for p in tmp_path.iterdir()] == ["model.net"]
