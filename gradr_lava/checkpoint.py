"""Resumable training checkpoints, written atomically after every epoch.

A checkpoint holds everything needed to continue a run exactly where it stopped: model and
optimizer state, the pruner's state, the per-epoch history, the random generators' states, and
the config the run was started with (so ``--resume`` cannot silently continue a different run).

Trust: a run directory may come from someone else, so nothing in a checkpoint is ever executed.
It is read with ``torch.load(weights_only=True)``, PyTorch's restricted unpickler, which rebuilds
only tensors and plain containers (dict, list, tuple, str, int, float, bool, None) and refuses
any other global: a pickle crafted to call ``os.system`` on load is an :class:`InputError`, not
code that runs. :func:`save_checkpoint` checks that what it writes loads that way.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from gradr_deploy.atomic import atomic_path
from gradr_deploy.errors import InputError, option

CHECKPOINT_NAME = "checkpoint.pt"
_PLAIN = (str, int, float, bool, type(None), torch.Tensor)


def _check_plain(value: Any, where: str = "state") -> None:
    """Raise TypeError where ``value`` holds anything the restricted unpickler refuses."""
    if isinstance(value, _PLAIN):
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise TypeError(f"{where}: key {key!r} is a {type(key).__name__}")
            _check_plain(item, f"{where}[{key!r}]")
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]")
        return
    raise TypeError(f"{where} is a {type(value).__name__}, not a tensor or plain value")


def _refused_global(exc: Exception) -> str:
    """The line of torch's refusal that names the offending global, shortened."""
    match = re.search(r"GLOBAL (\S+)", str(exc))
    return f"it refers to {match.group(1)}" if match else "it refers to code"


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` via a temporary file, so a crash never leaves half a file.

    Raises:
        TypeError: ``state`` holds an object :func:`load_checkpoint` would refuse (a bug here,
            caught before the file is written rather than at ``--resume``).
        OSError: the file cannot be written (the previous checkpoint is left as it was).
    """
    _check_plain(state)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` without executing anything in it.

    Raises:
        InputError: no file, an unreadable or damaged file, or a file holding objects other
            than tensors and plain values (which could run code if unpickled freely).
    """
    if not path.is_file():
        raise InputError(
            f"{option('resume', True)}: no checkpoint at {path}; start the run without "
            f"{option('resume', True)}"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" not in str(exc):  # damaged, not hostile
            raise InputError(
                f"checkpoint {path} cannot be read (not a PyTorch checkpoint, or damaged); "
                "delete it to start over"
            ) from None
        raise InputError(
            f"checkpoint {path} holds objects other than tensors and plain values "
            f"({_refused_global(exc)}); it was not written by gradr-lava and was "
            "not loaded, since unpickling it could run code. Delete it to start over"
        ) from None
    except Exception as exc:  # torch raises several types for a damaged file
        raise InputError(
            f"checkpoint {path} cannot be read ({type(exc).__name__}: {exc}); "
            "delete it to start over"
        ) from None
    if not isinstance(state, dict):
        raise InputError(
            f"checkpoint {path} holds a {type(state).__name__}, not a gradr-lava training "
            "state; delete it to start over"
        )
    return state
