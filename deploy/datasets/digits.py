"""scikit-learn's 8x8 digits (embedded in scikit-learn: no download), split reproducibly."""

from __future__ import annotations

import math

import numpy as np

from gradr_deploy.datasets.base import Dataset, Split


def _split_keys(indices: np.ndarray, seed: int) -> np.ndarray:
    """SplitMix64 hash of ``(seed, index)``: a shuffle key fixed by this code, not by numpy.

    Args:
        indices: non-negative integer indices, shape ``(K,)``.
        seed: non-negative integer.

    Returns:
        uint64 keys, shape ``(K,)``; sorting by them gives a pseudo-random order.
    """
    offset = ((seed + 1) * 0x9E3779B97F4A7C15) % (1 << 64)  # Python ints: exact
    with np.errstate(over="ignore"):  # uint64 arithmetic wraps modulo 2**64 on purpose
        x = indices.astype(np.uint64) + np.uint64(offset)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def _stratified_split(
    labels: np.ndarray, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split sample indices into train and test, keeping each class's proportion.

    Within each class the samples are ordered by :func:`_split_keys` of ``(seed, index)`` and
    the first ``round(test_fraction * class_size)`` (at least 1, at most class_size - 1) go to
    the test set. Both index arrays are returned in ascending order, shape ``(N_train,)`` and
    ``(N_test,)``.
    """
    train: list[np.ndarray] = []
    test: list[np.ndarray] = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        ordered = members[np.argsort(_split_keys(members, seed), kind="stable")]
        n_test = min(max(math.floor(test_fraction * members.size + 0.5), 1), members.size - 1)
        test.append(ordered[:n_test])
        train.append(ordered[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def load_digits(test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """scikit-learn's embedded 8x8 handwritten digits (1797 images, 10 classes), split in two.

    Pixel values 0..16 are divided by 16. The split is stratified and deterministic: within
    each class, samples are ordered by a SplitMix64 hash of ``(seed, sample index)`` and the
    first ``round(test_fraction * class_size)`` become test samples. The hash is written out
    in this module, so the split is the same on every call, machine and numpy version. With the
    defaults (``test_fraction=0.2, seed=0``) there are 1438 training and 359 test images.
    Needs scikit-learn, and no network: the data ships inside the scikit-learn package.

    Args:
        test_fraction: fraction of each class put in the test split, strictly between 0 and 1.
        seed: non-negative integer choosing the split.

    Returns:
        A :class:`Dataset` named ``"digits"`` with images of shape ``(N, 8, 8)``.
    """
    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    from sklearn.datasets import load_digits as sklearn_load_digits

    bunch = sklearn_load_digits()
    images = (np.asarray(bunch.images, dtype=np.float64) / 16.0).astype(np.float32)
    labels = np.asarray(bunch.target, dtype=np.int64)
    train_idx, test_idx = _stratified_split(labels, float(test_fraction), int(seed))
    return Dataset(
        name="digits",
        train=Split(images[train_idx], labels[train_idx]),
        test=Split(images[test_idx], labels[test_idx]),
        image_shape=(8, 8),
        num_classes=10,
        source="scikit-learn load_digits",
    )
