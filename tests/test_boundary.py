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
    "gradr_deploy", "gradr_deploy.errors", "gradr_deploy.atomic", "gradr_deploy.netx.metadata",
    "gradr_deploy.netx", "gradr_deploy.datasets", "gradr_deploy.simulation.encoding",
    "gradr_deploy.simulation.stimulus", "gradr_deploy.pipeline", "gradr_deploy.mapping",
    "gradr_deploy.mapping.compiler_model", "gradr_deploy.hardware.compiler_profile",
    "gradr_deploy.mapping.compiler_mapping", "gradr_deploy.mapping.budget", "gradr_deploy.energy",
    "gradr_deploy.simulation.lava_sim",
    "gradr_deploy.interop", "gradr_deploy.interop.nir_export", "gradr_deploy.interop.nir_import",
    "gradr_deploy.netx.write", "gradr_deploy.energy.neurobench", "gradr_deploy.simulation.inputs",
    "gradr_deploy.api",
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


def test_every_package_folder_is_in_the_wheel() -> None:
    """pyproject.toml lists packages explicitly (deploy/ is mapped to ``gradr_deploy``): a new
    subpackage that is not listed would be missing from the wheel."""
    import tomllib

    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {"gradr_lava": REPO / "gradr_lava", "gradr_deploy": REPO / "deploy"}
    assert config["package-dir"] == {"gradr_deploy": "deploy"}
    found = {
        ".".join([name, *init.parent.relative_to(root).parts])
        for name, root in folders.items() for init in root.rglob("__init__.py")
    }
    assert set(config["packages"]) == found


def test_the_start_up_hook_stays_cheap() -> None:
    """Every interpreter of the environment imports gradr_deploy.simulation.lava_startup (the .pth
    hook):
    it must not pull in numpy, h5py or anything heavy."""
    code = ("import sys, gradr_deploy, gradr_deploy.simulation.lava_startup\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('numpy', 'h5py', 'torch', 'lava', 'scipy')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def _cli_flags() -> set[str]:
    import argparse

    from gradr_lava.cli import build_parser

    flags: set[str] = set()
    commands = next(a for a in build_parser()._actions
                    if isinstance(a, argparse._SubParsersAction))
    for parser in commands.choices.values():
        flags.update(s for a in parser._actions for s in a.option_strings
                     if s.startswith("--") and s != "--help")
    return flags


def _message_strings(path: Path) -> list[tuple[int, str]]:
    """String constants of ``path`` that are not docstrings: what messages are built from."""
    tree = ast.parse(path.read_text(), str(path))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef
                                | ast.AsyncFunctionDef)
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in docstrings]


def test_only_the_cli_spells_its_flags() -> None:
    """Library messages name options through gradr_deploy.errors.option (a keyword from
    Python, a flag from the command line); a flag spelled in a library string would be wrong
    for Python callers. An argv element that is exactly a flag (pip's --quiet) is no message."""
    import re

    flags = _cli_flags()
    assert {"--data-dir", "--override", "--gradr-mode", "--inputs"} <= flags
    pattern = re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, sorted(flags))) + r")(?![\w-])")
    cli = REPO / "gradr_lava" / "cli"
    offenders = [
        f"{path.relative_to(REPO)}:{line}: {text[:80]!r}"
        for folder in ("deploy", "gradr_lava") for path in sorted((REPO / folder).rglob("*.py"))
        if cli not in path.parents and path.name != "__main__.py"
        for line, text in _message_strings(path)
        if text not in flags and pattern.search(text)
    ]
    assert offenders == []


def test_a_message_names_the_option_as_the_caller_spells_it() -> None:
    from gradr_deploy.datasets import load_dataset
    from gradr_deploy.errors import InputError, flag_names, option, renamed_options

    def message() -> str:
        try:
            load_dataset("mnist")
        except InputError as exc:
            return str(exc)
        raise AssertionError("no error")

    assert "needs data_dir='DIR'" in message() and "add download=True" in message()
    with flag_names(lambda name: "--" + name.replace("_", "-")):
        assert "needs --data-dir DIR" in message() and "add --download to" in message()
        assert option("override", {"chips": 2}) == "--override chips=2"
        with renamed_options({"mode": "gradr_mode"}):
            assert option("mode", "paper") == "--gradr-mode paper"
    assert "needs data_dir='DIR'" in message()  # the block ended: back to keywords
    assert option("override", {"chips": 2}) == "override={'chips': 2}"
