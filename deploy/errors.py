"""Error types shared by the whole toolchain, each with the CLI exit code it maps to, and how a
message names the option to change.

The command-line contract: 0 success, 2 usage or input error, 3 the network does not fit the
requested hardware budget, 4 a required backend (e.g. Intel's lava-loihi) is not installed.
Library code raises these; only the CLI turns them into messages and exit codes.

A message that tells the user which option to change names it with :func:`option`: as the
keyword argument (``data_dir=DIR``) when called from Python, as the flag (``--data-dir DIR``)
inside the command line's :func:`flag_names` block. Library code
therefore never spells a flag, and no message is rewritten after the fact.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import PurePath
from types import MappingProxyType

_flag_of: ContextVar[Callable[[str], str] | None] = ContextVar("flag_of", default=None)
_renames: ContextVar[Mapping[str, str]] = ContextVar("renames", default=MappingProxyType({}))


def option(name: str, value: object = None) -> str:
    """The option ``name`` (a keyword of the Python API), with ``value`` if given, as the caller
    spells it: ``"data_dir='DIR'"`` from Python, ``"--data-dir DIR"`` from the command line
    (``value=True``: a switch, ``"download=True"`` / ``"--download"``; a mapping: a repeatable
    ``KEY=VALUE`` flag, ``"override={'chips': 2}"`` / ``"--override chips=2"``)."""
    name = _renames.get().get(name, name)
    flag_of = _flag_of.get()
    if flag_of is None:
        if isinstance(value, Mapping):
            return f"{name}={dict(value)!r}"
        if isinstance(value, PurePath):
            value = str(value)
        return f"{name}=" if value is None else f"{name}={value!r}"
    flag = flag_of(name)
    if isinstance(value, Mapping):  # a repeatable KEY=VALUE flag
        return " ".join(f"{flag} {key}={item}" for key, item in value.items())
    return flag if value is None or value is True else f"{flag} {value}"


@contextmanager
def flag_names(flag_of: Callable[[str], str]) -> Iterator[None]:
    """Within the block, :func:`option` names options as flags (``flag_of("data_dir") ==
    "--data-dir"``); the command line runs each command inside it."""
    token = _flag_of.set(flag_of)
    try:
        yield
    finally:
        _flag_of.reset(token)


@contextmanager
def renamed_options(names: Mapping[str, str]) -> Iterator[None]:
    """Within the block, :func:`option` names the keyword ``a`` as ``names[a]``: a caller that
    passes its own keywords on under other names (``gradr_mode`` -> a pruner's ``mode``) wraps
    the call, and the callee's messages name the caller's option."""
    token = _renames.set({**_renames.get(), **names})
    try:
        yield
    finally:
        _renames.reset(token)


class ToolchainError(Exception):
    """Base class for errors caused by the user's input or environment, not by a bug."""

    exit_code: int = 1


class InputError(ToolchainError):
    """A file, option or value given by the user is missing, malformed or inconsistent."""

    exit_code = 2


class BudgetError(ToolchainError):
    """The network does not fit the requested number of cores or chips."""

    exit_code = 3


class BackendUnavailableError(ToolchainError):
    """A run target needs software that is not installed (e.g. Intel's lava-loihi for running
    on Loihi 2 hardware)."""

    exit_code = 4
