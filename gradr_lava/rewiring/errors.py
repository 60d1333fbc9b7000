"""The error raised for unusable rewiring settings or networks."""

from __future__ import annotations

from gradr_deploy.errors import InputError


class RewiringError(InputError, ValueError):
    """A pruning option or the network is unusable for the chosen method.

    A ``ValueError`` for library callers, an ``InputError`` (exit code 2) for the CLI.
    """
