"""The stimulus a sample becomes: its encoded spikes followed by empty drain steps.

Training evaluation and deployment both build test inputs with :func:`present`, from the same
encoding, seed and sample indices, so the PyTorch forward and the Lava run see identical spikes.
"""

from __future__ import annotations

import numpy as np

from gradr_deploy.simulation.encoding import Encoding, encode_samples


def present(
    encoding: Encoding,
    images: np.ndarray,
    sample_ids: np.ndarray,
    seed: int,
    drain_steps: int,
) -> np.ndarray:
    """Spikes ``(N, F, time_steps + drain_steps)`` uint8 for ``images`` ``(N, H, W)``.

    Sample ``i``'s spikes depend only on ``(seed, sample_ids[i])``; the last ``drain_steps``
    steps are empty so that the last layer's delayed output spikes fall in the window.
    """
    return append_drain(encode_samples(encoding, images, np.asarray(sample_ids), seed),
                        drain_steps)


def append_drain(spikes: np.ndarray, drain_steps: int) -> np.ndarray:
    """``(N, F, T)`` spikes followed by ``drain_steps`` empty steps: ``(N, F, T + drain)``."""
    drain = np.zeros((*spikes.shape[:2], drain_steps), dtype=spikes.dtype)
    return np.concatenate([spikes, drain], axis=2)


def payload_bits(spikes: np.ndarray) -> int:
    """Payload bits the input spikes need: 0 for binary spikes, else the largest payload's."""
    largest = int(spikes.max()) if spikes.size else 0
    return largest.bit_length() if largest > 1 else 0


def run_window(window: int, target: str) -> int:
    """Steps per sample a run on ``target`` uses for a sample window of ``window`` steps.

    On Loihi 2 hardware netx's ``reset_interval`` must be a power of 2 (lava-dl's MNIST
    tutorial: "Since reset_interval on Loihi-2 Hardware has to be a power of 2"), so a
    ``loihi2`` run pads each sample with empty steps up to the next power of 2; the CPU
    simulation keeps the sample's own window.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    if target == "loihi2":
        return 1 << (window - 1).bit_length()
    return window


def pad_window(spikes: np.ndarray, window: int) -> np.ndarray:
    """``(N, F, S)`` spikes with empty steps appended up to ``window`` (>= S) steps."""
    extra = window - spikes.shape[-1]
    if extra < 0:
        raise ValueError(f"cannot pad {spikes.shape[-1]} steps down to {window}")
    return np.pad(spikes, ((0, 0), (0, 0), (0, extra))) if extra else spikes
