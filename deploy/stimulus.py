"""The stimulus a sample becomes: its encoded spikes followed by empty drain steps.

Training evaluation and deployment both build test inputs with :func:`present`, from the same
encoding, seed and sample indices, so the PyTorch forward and the Lava run see identical spikes.
"""

from __future__ import annotations

import numpy as np

from deploy.encoding import RateEncoding, encode_samples


def present(
    encoding: RateEncoding,
    images: np.ndarray,
    sample_ids: np.ndarray,
    seed: int,
    drain_steps: int,
) -> np.ndarray:
    """Spikes ``(N, F, time_steps + drain_steps)`` uint8 for ``images`` ``(N, H, W)``.

    Sample ``i``'s spikes depend only on ``(seed, sample_ids[i])``; the last ``drain_steps``
    steps are empty so that the last layer's delayed output spikes fall in the window.
    """
    spikes = encode_samples(encoding, images, np.asarray(sample_ids), seed)
    drain = np.zeros((*spikes.shape[:2], drain_steps), dtype=spikes.dtype)
    return np.concatenate([spikes, drain], axis=2)
