"""Resumable training checkpoints, written atomically after every epoch.

A checkpoint holds everything needed to continue a run exactly where it stopped: model and
optimizer state, the pruner's state, the per-epoch history, the random generators' states, and
the config the run was started with (so ``--resume`` cannot silently continue a different run).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from deploy.atomic import atomic_path
from deploy.errors import InputError

CHECKPOINT_NAME = "checkpoint.pt"


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` via a temporary file, so a crash never leaves half a file."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`; InputError if unreadable."""
    if not path.is_file():
        raise InputError(
            f"--resume: no checkpoint at {path}; start the run without --resume"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises several types for a damaged file
        raise InputError(
            f"checkpoint {path} cannot be read ({type(exc).__name__}: {exc}); "
            "delete it to start over"
        ) from None
