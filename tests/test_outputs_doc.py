"""docs/outputs.md lists every key of metrics.json, deploy.json and mapping.json as written."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).parent / "gradr-lava"
# written only when the reference cannot run (note), only by a distilled run (teacher:
# tests/test_distill.py checks its keys against this table)
CONDITIONAL = {"deploy.json": {"note"}, "metrics.json": {"teacher"}}


def documented() -> dict[str, list[str]]:
    """Per file, the key patterns of its table in docs/outputs.md."""
    tables: dict[str, list[str]] = {}
    current = None
    for line in (REPO / "docs" / "outputs.md").read_text().splitlines():
        heading = re.match(r"## (\S+\.json)", line)
        if heading:
            current = heading.group(1)
            tables[current] = []
        row = re.match(r"\| `([^`]+)` \|", line)
        if row and current:
            tables[current].append(row.group(1))
    return tables


def _regex(pattern: str) -> re.Pattern[str]:
    """``<anything>`` is one key of any name; a trailing ``[]`` (a list) is optional."""
    parts = [r"[^.\[]+" if re.fullmatch(r"<\w+>", p) else re.escape(p)
             for p in re.split(r"(<\w+>)", pattern.removesuffix("[]"))]
    return re.compile("".join(parts) + r"(\[\])?")


def key_paths(value: Any, prefix: str = "") -> set[str]:
    paths: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            paths.add(path)
            paths |= key_paths(item, path)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                paths.add(prefix + "[]")
                paths |= key_paths(item, prefix + "[]")
    return paths


def _run(*args: str | Path) -> None:
    done = subprocess.run([str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr


def test_every_written_key_is_documented(tiny_run: Path, tmp_path: Path) -> None:
    pruned = tmp_path / "pruned"
    _run("train", "--dataset", "digits", "--model", "digits-mlp", "--epochs", "2", "--quiet",
         "--prune", "gradr", "--target-connectivity", "0.5", "--out", pruned)
    _run("deploy", tiny_run / "model.net", "--target", "lava-sim", "--samples", "20",
         "--quiet", "--save-spikes", "--out", tmp_path / "deployed")
    _run("map", tiny_run / "model.net", "--out", tmp_path / "loihi2")
    _run("map", tiny_run / "model.net", "--hardware", "loihi2-brief", "--out",
         tmp_path / "brief")
    written = {
        "metrics.json": [tiny_run / "metrics.json", pruned / "metrics.json"],
        "deploy.json": [tmp_path / "deployed" / "deploy.json"],
        "mapping.json": [tmp_path / "loihi2" / "mapping.json",
                         tmp_path / "brief" / "mapping.json"],
    }
    tables = documented()
    assert set(tables) == set(written)
    for name, files in written.items():
        patterns = [_regex(p) for p in tables[name]]
        keys = set().union(*(key_paths(json.loads(f.read_text())) for f in files))
        missing = sorted(k for k in keys if not any(p.fullmatch(k) for p in patterns))
        assert missing == [], f"{name}: keys written but not in docs/outputs.md: {missing}"
        top = {p for p in tables[name] if "." not in p and "[" not in p and "<" not in p}
        stale = sorted(top - {k for k in keys if "." not in k} - CONDITIONAL.get(name, set()))
        assert stale == [], f"{name}: documented but never written: {stale}"
