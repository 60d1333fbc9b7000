"""The package boundary: deploy never imports gradr_lava; light modules load no torch or Lava."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_deploy_never_imports_gradr_lava() -> None:
    offenders = [
        f"{path.relative_to(REPO)} imports {name}"
        for path in sorted((REPO / "deploy").rglob("*.py"))
        for name in _imported_modules(path)
        if name == "gradr_lava" or name.startswith("gradr_lava.")
    ]
    assert offenders == []


LIGHT_MODULES = [
    "deploy", "deploy.errors", "deploy.atomic", "deploy.metadata", "deploy.netx_file",
    "deploy.datasets", "deploy.encoding", "deploy.stimulus", "deploy.pipeline",
    "deploy.mapping", "deploy.compiler_model", "deploy.compiler_profile",
    "deploy.compiler_mapping", "deploy.budget", "deploy.energy", "deploy.lava_sim",
    "deploy.interop", "deploy.interop.nir_export", "deploy.interop.nir_import",
    "deploy.netx_write", "deploy.neurobench", "deploy.inputs",
    "gradr_lava", "gradr_lava.cli", "gradr_lava.config",
]


def test_light_modules_load_neither_torch_nor_lava() -> None:
    code = (
        f"import importlib, sys\n"
        f"for name in {LIGHT_MODULES!r}: importlib.import_module(name)\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'lava'))\n"
        f"print(' '.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
