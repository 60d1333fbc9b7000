"""Error types shared by the whole toolchain, each with the CLI exit code it maps to.

The command-line contract: 0 success, 2 usage or input error, 3 the network does not fit the
requested hardware budget, 4 a required backend (e.g. Intel's lava-loihi) is not installed.
Library code raises these; only the CLI turns them into messages and exit codes.
"""

from __future__ import annotations


class ToolchainError(Exception):
    """Base class for errors caused by the user's input or environment, not by a bug."""

    exit_code: int = 1


class InputError(ToolchainError):
    """A file, flag or value given by the user is missing, malformed or inconsistent."""

    exit_code = 2


class BudgetError(ToolchainError):
    """The network does not fit the requested number of cores or chips."""

    exit_code = 3


class BackendUnavailableError(ToolchainError):
    """A run target needs software that is not installed (e.g. lava-loihi for --target loihi2)."""

    exit_code = 4
