"""The label loss: what a training step minimizes on the output spike counts (``[training] loss``).

``"cross_entropy"`` (the default) takes a sample's output spike counts ``s`` ``(classes,)`` as
logits: ``CE(s, label) = logsumexp(s) - s[label]``.

``"rate_mse"`` is the loss of the Grad R and STDS authors' code (Chen et al., IJCAI 2021 and
ICML 2022): the mean over classes of ``(s / T - onehot(label))^2``, with ``T`` the input's time
steps, so that ``s / T`` is each output neuron's firing rate. The counts are summed over the
``T + layers`` steps of the window, because each layer delays its spikes by one step, but a
neuron of the last layer fires at most about ``T`` times: the authors' network has no such
delay and counts over ``T``. The loss asks the winning neuron to fire at every input step and
the others never.

Both are summed over the batch; the trainer divides by the batch size.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from gradr_lava.config import LOSSES


def label_loss(counts: torch.Tensor, labels: torch.Tensor, kind: str,
               time_steps: int) -> torch.Tensor:
    """The label loss of a batch, summed over its samples.

    Args:
        counts: output spike counts ``(N, classes)``, with gradient.
        labels: ``(N,)`` class indices.
        kind: one of :data:`LOSSES`.
        time_steps: ``T``, the input's time steps (``rate_mse`` only: the counts that mean
            a rate of 1).

    Raises:
        ValueError: an unknown ``kind`` (the config check names the file first).
    """
    if kind == "cross_entropy":
        return F.cross_entropy(counts, labels, reduction="sum")
    if kind == "rate_mse":
        target = F.one_hot(labels, counts.shape[1]).to(counts.dtype)
        return ((counts / time_steps - target) ** 2).mean(dim=1).sum()
    raise _unknown(kind)


def silent_loss(kind: str, classes: int) -> float:
    """A sample's loss when no output neuron fires: ln(classes) for cross-entropy (every
    class equally likely), 1 / classes for ``rate_mse``; a run stuck there trains nothing."""
    if kind == "cross_entropy":
        return math.log(classes)
    if kind == "rate_mse":
        return 1.0 / classes
    raise _unknown(kind)


def _unknown(kind: str) -> ValueError:
    return ValueError(f"unknown loss {kind!r}: use one of {', '.join(LOSSES)}")
