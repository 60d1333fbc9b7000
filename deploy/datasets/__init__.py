"""Image classification data sets as plain numpy arrays: scikit-learn's 8x8 digits and MNIST.

Both the training side and the deployment side load test data through this module, so it
imports only numpy and the standard library (scikit-learn is imported inside
:func:`load_digits`; tqdm draws the download progress bar on a terminal, gradr_deploy.progress).

Every loader returns a :class:`Dataset` whose images are float32 intensities in [0, 1] with
shape ``(N, H, W)`` and whose labels are int64 class indices with shape ``(N,)``.

Example:
    >>> ds = load_dataset("digits")
    >>> ds.train.images.shape, ds.test.images.shape, ds.image_shape, ds.num_classes
    ((1438, 8, 8), (359, 8, 8), (8, 8), 10)
"""

from __future__ import annotations

from pathlib import Path

from gradr_deploy.datasets.base import Dataset, Split, from_samples
from gradr_deploy.datasets.digits import load_digits
from gradr_deploy.datasets.mnist import MNIST_FILES, MNIST_URL, download_mnist, load_mnist
from gradr_deploy.errors import InputError, option

__all__ = [
    "DATASETS",
    "MNIST_FILES",
    "MNIST_URL",
    "Dataset",
    "Split",
    "download_mnist",
    "from_samples",
    "load_dataset",
    "load_digits",
    "load_mnist",
]

DATASETS: tuple[str, ...] = ("digits", "mnist")


def load_dataset(
    name: str, data_dir: str | Path | None = None, *, download: bool = False
) -> Dataset:
    """Load a data set by name (one of :data:`DATASETS`).

    Args:
        name: ``"digits"`` (scikit-learn's 8x8 digits, default split of :func:`load_digits`;
            ``data_dir`` and ``download`` are ignored) or ``"mnist"`` (needs ``data_dir``).
        data_dir: directory holding the MNIST IDX files.
        download: for MNIST, fetch missing files from :data:`MNIST_URL` into ``data_dir``.

    Raises:
        InputError: unknown name, MNIST without ``data_dir``, or a loader's InputError.
    """
    if name == "digits":
        return load_digits()
    if name == "mnist":
        if data_dir is None:
            raise InputError(
                f"dataset 'mnist' needs {option('data_dir', 'DIR')} holding the four IDX files "
                f"({', '.join(MNIST_FILES)}); add {option('download', True)} to fetch them into DIR"
            )
        return load_mnist(data_dir, download=download)
    raise InputError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
