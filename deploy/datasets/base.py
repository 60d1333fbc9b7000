"""The shape every loader returns: a :class:`Dataset` of two :class:`Split` s of numpy arrays."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gradr_deploy.errors import InputError


@dataclass(frozen=True)
class Split:
    """One part (train or test) of a data set.

    Attributes:
        images: float32 intensities in [0, 1], shape ``(N, H, W)``.
        labels: int64 class indices in ``[0, num_classes)``, shape ``(N,)``.
    """

    images: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        if self.images.dtype != np.float32 or self.images.ndim != 3:
            raise ValueError(
                f"Split.images must be float32 of shape (N, H, W), got {self.images.dtype} "
                f"of shape {self.images.shape}"
            )
        if self.labels.dtype != np.int64 or self.labels.shape != self.images.shape[:1]:
            raise ValueError(
                f"Split.labels must be int64 of shape ({self.images.shape[0]},), got "
                f"{self.labels.dtype} of shape {self.labels.shape}"
            )

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True)
class Dataset:
    """A named data set with a fixed train/test split.

    Attributes:
        name: one of :data:`DATASETS`.
        train, test: the two splits; images ``(N, H, W)`` float32 in [0, 1].
        image_shape: ``(H, W)`` in pixels.
        num_classes: number of classes; labels lie in ``[0, num_classes)``.
        source: where the data came from (a directory, or ``"scikit-learn load_digits"``).
    """

    name: str
    train: Split
    test: Split
    image_shape: tuple[int, int]
    num_classes: int
    source: str


def from_samples(name: str, train: Any, test: Any, num_classes: int | None = None,
                 source: str = "user data") -> Dataset:
    """A :class:`Dataset` from two map-style data sets of ``(image, label)`` pairs (anything
    with ``len`` and ``[i]``: a list, a ``torch.utils.data.Dataset``, ...).

    Images may be ``(H, W)`` or ``(1, H, W)``, numpy arrays or tensors, floats in [0, 1] or
    ``uint8`` 0..255 (divided by 255); labels integer classes. ``num_classes`` defaults to the
    largest label + 1.

    Raises:
        InputError: the samples differ in shape, values lie outside [0, 1], a label is not a
            non-negative integer, or a split is empty; the message names the split and sample.
    """
    splits = {}
    for part, samples in (("train", train), ("test", test)):
        count = len(samples)
        if count == 0:
            raise InputError(f"data set {name!r}: the {part} split is empty")
        images, labels = [], []
        for i in range(count):
            image, label = samples[i]
            array = np.asarray(image.numpy() if hasattr(image, "numpy") else image)
            if array.dtype == np.uint8:
                array = array / 255.0
            array = np.asarray(array, dtype=np.float32)
            if array.ndim == 3 and array.shape[0] == 1:
                array = array[0]
            if array.ndim != 2 or (images and array.shape != images[0].shape):
                expected = images[0].shape if images else "(H, W) or (1, H, W)"
                raise InputError(f"data set {name!r}: {part} sample {i} has shape "
                                 f"{array.shape}, expected {expected}")
            if not (np.isfinite(array).all() and array.min() >= 0.0 and array.max() <= 1.0):
                raise InputError(f"data set {name!r}: {part} sample {i} has values outside "
                                 "[0, 1] (give intensities, or uint8 pixels 0..255)")
            value = int(label)
            if value != label or value < 0:
                raise InputError(f"data set {name!r}: {part} sample {i} has label {label!r}; "
                                 "labels are class indices 0, 1, ...")
            images.append(array)
            labels.append(value)
        splits[part] = Split(np.stack(images), np.asarray(labels, dtype=np.int64))
    classes = num_classes or int(max(splits["train"].labels.max(), splits["test"].labels.max())) + 1
    image_shape = tuple(int(n) for n in splits["train"].images.shape[1:])
    if splits["test"].images.shape[1:] != image_shape:
        raise InputError(f"data set {name!r}: test images are {splits['test'].images.shape[1:]}, "
                         f"train images {image_shape}")
    return Dataset(name, splits["train"], splits["test"], image_shape,  # type: ignore[arg-type]
                   classes, source)
