"""Make lava-nc 0.10.0 and lava-dl 0.6.0 import on Python 3.11, without editing site-packages.

Both wheels declare ``Requires-Python <3.11`` and upstream is archived, so two incompatibilities
are handled here, at import time, by a meta-path finder that this module registers:

1. ``lava.magma.compiler.var_model`` uses ``ByteEncoder()`` instances as dataclass field
   defaults. Python 3.11 rejects unhashable dataclass defaults ("mutable default ... use
   default_factory"), so importing any Lava process fails. The finder loads that module from its
   own source with each ``= ByteEncoder()`` default rewritten to
   ``= dataclasses.field(default_factory=ByteEncoder)``. (On 3.10 every instance shared one
   default ``ByteEncoder`` object; a fresh one per instance is what the authors meant. These
   classes only describe Loihi hardware registers and are unused by the CPU simulator.)
2. ``lava.lib.dl.slayer`` imports ``slayer.object_detection``, which imports torchvision. No
   torchvision wheel works beside the CPU torch used here, and only object detection needs it.
   When torchvision cannot be imported, the finder supplies a placeholder module for
   ``lava.lib.dl.slayer.object_detection`` whose attributes raise an ImportError that says why.

A third fragility is not specific to 3.11 but bites any host program, pytest included:
``lava.magma.runtime.message_infrastructure.multiprocessing`` calls
``multiprocessing.set_start_method('fork')`` at import time, which raises "context has already
been set" if anything in the process fixed the start method first. The finder rewrites that
call to set ``fork`` only when the start method is not already ``fork`` (Lava's runtime needs
``fork`` either way).

Call :func:`install` before the first ``import lava``. It is idempotent and cheap (it imports
neither torch nor Lava). ``tests/test_lava_compat.py`` checks, in fresh interpreters, that Lava
and slayer import through it and that they still fail without it (so the fix stays needed and
stays working).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import re
import sys
import types
from collections.abc import Sequence

VAR_MODEL = "lava.magma.compiler.var_model"
MP_INFRASTRUCTURE = "lava.magma.runtime.message_infrastructure.multiprocessing"
OBJECT_DETECTION = "lava.lib.dl.slayer.object_detection"

# `x: ByteEncoder = ByteEncoder()` -> `x: ByteEncoder = _gl_field(default_factory=ByteEncoder)`
_BYTE_ENCODER_DEFAULT = re.compile(r"=\s*ByteEncoder\(\)")
_EXPECTED_BYTE_ENCODER_DEFAULTS = 8  # CoreEncoder 3, ChipEncoder 3, AxonEncoder 2 in lava-nc 0.10.0


class LavaCompatError(ImportError):
    """The installed Lava does not look like the release this shim was written for."""


def patch_var_model_source(source: str) -> str:
    """Return ``var_model.py`` source with ByteEncoder instance defaults made 3.11-legal.

    Raises:
        LavaCompatError: the number of rewritten defaults differs from lava-nc 0.10.0's, so the
            installed Lava is not the release this shim understands.
    """
    patched, count = _BYTE_ENCODER_DEFAULT.subn(
        "= _gl_field(default_factory=ByteEncoder)", source
    )
    if count != _EXPECTED_BYTE_ENCODER_DEFAULTS:
        raise LavaCompatError(
            f"{VAR_MODEL}: expected {_EXPECTED_BYTE_ENCODER_DEFAULTS} 'ByteEncoder()' dataclass "
            f"defaults (lava-nc 0.10.0), found {count}; install lava-nc==0.10.0."
        )
    return _insert_field_import(patched)


def _insert_field_import(source: str) -> str:
    # After `from __future__ import annotations`, which must stay the first statement.
    lines = source.splitlines(keepends=True)
    for index, line in enumerate(lines):
        if line.startswith("from __future__"):
            lines.insert(index + 1, "from dataclasses import field as _gl_field\n")
            return "".join(lines)
    return "from dataclasses import field as _gl_field\n" + source


_SET_FORK = "mp.set_start_method('fork')"


def patch_start_method_source(source: str) -> str:
    """Return the multiprocessing infrastructure's source with a tolerant ``fork`` setting.

    Raises:
        LavaCompatError: the expected ``set_start_method`` call is not there.
    """
    if source.count(_SET_FORK) != 1:
        raise LavaCompatError(
            f"{MP_INFRASTRUCTURE}: expected one {_SET_FORK!r} (lava-nc 0.10.0); "
            "install lava-nc==0.10.0."
        )
    tolerant = (
        "mp.get_start_method(allow_none=True) == 'fork' or "
        "mp.set_start_method('fork', force=True)"
    )
    return source.replace(_SET_FORK, tolerant)


_SOURCE_PATCHES = {VAR_MODEL: patch_var_model_source, MP_INFRASTRUCTURE: patch_start_method_source}


class _PatchedSourceLoader(importlib.machinery.SourceFileLoader):
    """Loads a module from its file with its source rewritten by its entry in _SOURCE_PATCHES."""

    def get_code(self, fullname: str) -> types.CodeType:
        path = self.get_filename(fullname)
        source = importlib.util.decode_source(self.get_data(path))
        patched = _SOURCE_PATCHES[fullname](source)
        return compile(patched, path, "exec", dont_inherit=True)


class _TorchvisionlessObjectDetectionLoader(importlib.abc.Loader):
    """Creates a placeholder for slayer.object_detection when torchvision is unusable."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = types.ModuleType(spec.name)
        reason = self.reason

        def __getattr__(name: str) -> object:
            if name.startswith("__"):
                raise AttributeError(name)
            raise ImportError(
                f"{OBJECT_DETECTION}.{name} is unavailable: slayer's object detection needs "
                f"torchvision, which could not be imported ({reason}). gradr-lava does not use it."
            )

        module.__getattr__ = __getattr__  # type: ignore[method-assign]
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        return None


def _torchvision_problem() -> str | None:
    """Return why torchvision cannot be imported, or None if it imports."""
    if importlib.util.find_spec("torchvision") is None:
        return "torchvision is not installed"
    try:
        import torchvision  # noqa: F401
    except Exception as exc:  # a broken torchvision raises RuntimeError, not ImportError
        return f"{type(exc).__name__}: {exc}"
    return None


class LavaCompatFinder(importlib.abc.MetaPathFinder):
    """Meta-path finder that intercepts exactly the three Lava modules described above."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname in _SOURCE_PATCHES:
            spec = importlib.machinery.PathFinder.find_spec(fullname, path)
            if spec is None or spec.origin is None:
                return None
            loader = _PatchedSourceLoader(fullname, spec.origin)
            return importlib.util.spec_from_file_location(fullname, spec.origin, loader=loader)
        if fullname == OBJECT_DETECTION:
            problem = _torchvision_problem()
            if problem is None:
                return None
            return importlib.machinery.ModuleSpec(
                fullname, _TorchvisionlessObjectDetectionLoader(problem)
            )
        return None


def is_installed() -> bool:
    """True when the finder is registered in ``sys.meta_path``."""
    return any(isinstance(finder, LavaCompatFinder) for finder in sys.meta_path)


def install() -> None:
    """Register the finder (once). Must run before ``lava.magma`` or slayer is first imported."""
    if not is_installed():
        sys.meta_path.insert(0, LavaCompatFinder())
