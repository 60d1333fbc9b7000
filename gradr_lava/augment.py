"""Random affine augmentation of training images, as the Grad R authors' code uses it.

Per image: a rotation uniform in +-30 degrees, a translation uniform in +-15% of the width and
height, and a scale uniform in [0.85, 1.11] (torchvision's ``RandomAffine(30, (0.15, 0.15),
(0.85, 1.11))``, without torchvision), about the image centre; a model config may narrow or
widen each range (``[training] affine_degrees``, ``affine_translate``, ``affine_scale_min``,
``affine_scale_max``). Where torchvision samples the nearest pixel by default, this
interpolates bilinearly (intensities stay in [0, 1]) and fills with 0 outside the image.

The parameters of sample ``i`` in epoch ``e`` are row ``i`` of one table drawn from
``SeedSequence([seed, e, 2])`` for the whole training split: they depend only on the seed, the
epoch and the sample, not on the batch, its order or the rank that trains it, so a resumed run
and a torchrun run see the same images.

Shapes: images ``(N, H, W)`` float32 in [0, 1] -> the same shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from gradr_lava.config import TrainingConfig


@dataclass(frozen=True)
class RandomAffine:
    """The distribution of one image's transform (degrees, fraction of size, scale factor)."""

    # the config's defaults (the Grad R authors' ranges), held in one place
    degrees: float = TrainingConfig.affine_degrees
    translate: float = TrainingConfig.affine_translate
    scale: tuple[float, float] = (TrainingConfig.affine_scale_min, TrainingConfig.affine_scale_max)

    def epoch_parameters(self, seed: int, epoch: int, samples: int) -> np.ndarray:
        """``(samples, 4)`` float32: angle (radians, counter-clockwise), shift x (right) and y
        (down) as fractions of the width and height, scale, for every sample of the split in
        this epoch."""
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, epoch, 2])))
        angle = rng.uniform(-self.degrees, self.degrees, samples) * (math.pi / 180)
        shift = rng.uniform(-self.translate, self.translate, (samples, 2))
        scale = rng.uniform(*self.scale, samples)
        return np.column_stack([angle, shift, scale]).astype(np.float32)


def affine_of(training: TrainingConfig) -> RandomAffine | None:
    """The augmentation a ``[training]`` table asks for, or ``None`` for ``augment = "none"``."""
    if training.augment != "affine":
        return None
    return RandomAffine(training.affine_degrees, training.affine_translate,
                        (training.affine_scale_min, training.affine_scale_max))


def apply_affine(images: np.ndarray, parameters: np.ndarray) -> np.ndarray:
    """Warp each image by its row of ``parameters`` (see :meth:`RandomAffine.epoch_parameters`).

    The output pixel at ``p`` samples the input at ``A^-1 (p - c - t) + c`` (rotation and scale
    ``A`` about the centre ``c``, translation ``t``), in the normalised coordinates of
    ``torch.nn.functional.affine_grid``, where a shift of ``f`` of the size is ``2 f``.
    """
    batch = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))[:, None]
    p = torch.from_numpy(np.ascontiguousarray(parameters, dtype=np.float32))
    # a positive angle turns the image counter-clockwise as displayed (rows down), as in
    # torchvision; affine_grid's y axis points down, hence the sign
    angle, shift, scale = -p[:, 0], p[:, 1:3] * 2.0, p[:, 3]
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    # inverse of (rotate by angle, scale by s): rotate by -angle, scale by 1/s
    inverse = torch.stack([torch.stack([cos, sin], 1), torch.stack([-sin, cos], 1)], 1)
    offset = -(inverse @ shift[:, :, None])
    theta = torch.cat([inverse, offset], dim=2)  # (N, 2, 3)
    grid = F.affine_grid(theta, list(batch.shape), align_corners=False)
    warped = F.grid_sample(batch, grid, mode="bilinear", padding_mode="zeros",
                           align_corners=False)
    return warped[:, 0].clamp_(0.0, 1.0).numpy()
