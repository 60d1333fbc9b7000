"""Which device a run trains on, and how its processes cooperate under ``torchrun``.

One process (``gradr-lava train``) or several (``torchrun --nproc_per_node N -m gradr_lava
train``) run the same code. With several, each process (rank) computes the gradient of its share
of every global batch, DDP averages the gradients (gloo on CPU, nccl on GPU), and every rank
applies the same update, so the weights, optimizer and pruner state stay identical on all ranks;
:func:`check_identical` verifies that after every epoch. Only rank 0 writes files.

Nothing here starts processes: ``torchrun`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from gradr_deploy.errors import InputError, option

DEVICES = ("auto", "cpu", "cuda")
T = TypeVar("T")


@dataclass(frozen=True)
class Context:
    """This process's place in the run: ``rank`` of ``world_size``, on ``device``."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes checkpoints, outputs and progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def describe(self) -> dict[str, Any]:
        return {"device": str(self.device), "world_size": self.world_size,
                "backend": dist.get_backend() if self.distributed else None}


def resolve_device(choice: str, local_rank: int = 0) -> torch.device:
    """``--device`` -> a torch device: "auto" takes a GPU when torch sees one."""
    if choice not in DEVICES:
        raise InputError(f"{option('device')} must be one of {', '.join(DEVICES)}, got "
                         f"{choice!r}")
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise InputError(f"{option('device', 'cuda')}: torch sees no CUDA GPU (torch "
                             f"{torch.__version__}); use {option('device', 'cpu')} or auto")
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def setup(device_choice: str) -> Context:
    """Join the process group that ``torchrun`` describes (if any) and pick the device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_choice, local_rank)
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend, rank=rank, world_size=world_size,
                                timeout=timedelta(minutes=30))
    return Context(rank=rank, world_size=world_size, device=device)


def barrier(context: Context) -> None:
    """Wait until every rank gets here."""
    if context.distributed:
        dist.barrier()


def shutdown(context: Context) -> None:
    if context.distributed and dist.is_initialized():
        dist.destroy_process_group()


def data_parallel(network: torch.nn.Module, context: Context) -> torch.nn.Module:
    """``network`` wrapped in DDP (gradients averaged over ranks during backward)."""
    import inspect

    from torch.nn.parallel import DistributedDataParallel

    # Buffers (pruner signs and masks, slayer's neuron state) are identical on every rank by
    # construction; synchronizing them before every forward would only cost time.
    accepted = inspect.signature(DistributedDataParallel.__init__).parameters
    buffers = ({"forward_sync_buffers": False} if "forward_sync_buffers" in accepted
               else {"broadcast_buffers": False})
    cuda = context.device.type == "cuda"
    return DistributedDataParallel(network, device_ids=[context.device] if cuda else None,
                                   **buffers)


def shard(ids: T, context: Context) -> T:
    """This rank's part of a global batch (every ``world_size``-th sample)."""
    return ids[context.rank :: context.world_size] if context.distributed else ids


def all_sum(values: list[float], context: Context) -> list[float]:
    """Element-wise sum of ``values`` over ranks (float64)."""
    if not context.distributed:
        return list(values)
    device = context.device if context.device.type == "cuda" else torch.device("cpu")
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def broadcast(value: T, context: Context) -> T:
    """Rank 0's ``value`` (any picklable object) on every rank."""
    if not context.distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def agree(error: Exception | None, context: Context) -> None:
    """Raise on every rank if any rank had ``error``: no rank waits forever for another that
    already stopped. Rank 0's error is raised where it has one, else the first rank's."""
    if not context.distributed:
        if error is not None:
            raise error
        return
    gathered: list[Any] = [None] * context.world_size
    dist.all_gather_object(gathered, None if error is None else
                           (type(error).__name__, str(error)))
    failures = [(rank, item) for rank, item in enumerate(gathered) if item is not None]
    if not failures:
        return
    if error is not None:
        raise error
    rank, (kind, message) = failures[0]
    raise InputError(f"rank {rank} stopped ({kind}): {message}")


def fingerprint(tensors: Iterable[torch.Tensor]) -> str:
    """SHA-256 of the tensors' bytes, in order: equal on two ranks iff their state is equal."""
    digest = hashlib.sha256()
    for tensor in tensors:
        digest.update(tensor.detach().cpu().reshape(-1).contiguous().view(torch.uint8).numpy()
                      .tobytes())
    return digest.hexdigest()


def check_identical(tensors: Iterable[torch.Tensor], what: str, context: Context) -> None:
    """Stop every rank if ``tensors`` differ between ranks (they must not)."""
    if not context.distributed:
        return
    gathered: list[Any] = [None] * context.world_size
    dist.all_gather_object(gathered, fingerprint(tensors))
    differing = [rank for rank, value in enumerate(gathered) if value != gathered[0]]
    if differing:
        raise InputError(f"{what} differs between rank 0 and rank(s) {differing}: the ranks "
                         "diverged (a nondeterministic operation?); the checkpoint of the last "
                         "epoch is rank 0's")
