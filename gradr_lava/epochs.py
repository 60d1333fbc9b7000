"""The pieces of one training epoch that are not the network: which samples form each batch,
which spikes encode them (drawn afresh each epoch, reproducibly), encoding the next batch while
the current one trains, and the learning-rate schedule."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from gradr_deploy.simulation.encoding import DirectEncoding, Encoding, RateEncoding
from gradr_lava.config import ModelConfig


def epoch_seed(seed: int, epoch: int) -> int:
    """Training spikes are drawn afresh each epoch, reproducibly."""
    return int(np.random.SeedSequence([seed, epoch, 1]).generate_state(1)[0] & 0x7FFFFFFF)


def batches(n: int, batch_size: int, rng: np.random.Generator | None) -> list[np.ndarray]:
    order = rng.permutation(n) if rng is not None else np.arange(n)
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


def make_encoding(config: ModelConfig) -> Encoding:
    """The input encoding a model config asks for (``[input]``)."""
    cfg = config.input
    if cfg.encoding == "direct":
        return DirectEncoding(time_steps=cfg.time_steps, levels=cfg.levels)
    return RateEncoding(time_steps=cfg.time_steps, max_rate=cfg.max_rate)


def encoded(count: int, encode: Callable[[int], torch.Tensor],
             background: bool) -> Iterator[torch.Tensor]:
    """``encode(0), ..., encode(count - 1)`` in order; with ``background``, each next one is
    computed on a second thread while the caller works on the current one."""
    if not background:
        for i in range(count):
            yield encode(i)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="encode") as pool:
        pending = pool.submit(encode, 0)
        for i in range(count):
            current = pending.result()
            if i + 1 < count:
                pending = pool.submit(encode, i + 1)
            yield current


def lr_scheduler(optimizer: torch.optim.Optimizer, schedule: str, total_steps: int,
                 hold: float = 0.0) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-step learning-rate schedule: constant, or cosine from the config's rate to 0.

    ``hold`` (cosine only): the fraction of ``total_steps`` at the full rate before the cosine
    decay, which then runs over the remaining steps.
    """
    if schedule == "cosine" and hold > 0.0:
        held = round(hold * total_steps)
        decay = max(1, total_steps - held)

        def factor(step: int) -> float:
            return 1.0 if step < held else (1.0 + math.cos(math.pi * min(
                1.0, (step - held) / decay))) / 2.0

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    if schedule == "cosine":  # hold 0 keeps torch's scheduler: runs before lr_hold resume
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
