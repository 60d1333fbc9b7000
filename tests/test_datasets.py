"""Tests for gradr_deploy.datasets: digits split, MNIST IDX loading, verification and downloads.

The MNIST tests use the real files in ../shared/data/mnist (relative to the repository root)
and no internet: downloads come from a ``file://`` URL and from an http.server on 127.0.0.1.
"""

from __future__ import annotations

import doctest
import functools
import gzip
import hashlib
import http.server
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from gradr_deploy import datasets
from gradr_deploy.datasets import (
    DATASETS,
    MNIST_FILES,
    Dataset,
    Split,
    download_mnist,
    load_dataset,
    load_digits,
    load_mnist,
)
from gradr_deploy.datasets import digits as digits_module
from gradr_deploy.datasets import mnist as mnist_module
from gradr_deploy.errors import InputError

REPO = Path(__file__).resolve().parents[1]
MNIST_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
needs_mnist = pytest.mark.skipif(
    not all((MNIST_DIR / f).is_file() for f in MNIST_FILES),
    reason=f"the real MNIST .gz files are not in {MNIST_DIR}",
)

# Published class frequencies of MNIST (digits 0..9).
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]

TEST_LABELS_GZ = "t10k-labels-idx1-ubyte.gz"


def _files(directory: Path) -> list[str]:
    """Every entry in ``directory``, hidden temporary files included, sorted."""
    return sorted(p.name for p in directory.iterdir())


def _copy(names: list[str], source: Path, destination: Path) -> None:
    destination.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(source / name, destination / name)


# --------------------------------------------------------------------------------------------
# digits


def test_digits_shapes_values_and_split_sizes() -> None:
    ds = load_digits()
    assert ds.name == "digits" and ds.image_shape == (8, 8) and ds.num_classes == 10
    assert ds.source == "scikit-learn load_digits"
    assert ds.train.images.shape == (1438, 8, 8) and ds.test.images.shape == (359, 8, 8)
    for split in (ds.train, ds.test):
        assert split.images.dtype == np.float32 and split.labels.dtype == np.int64
        assert split.images.min() == 0.0 and split.images.max() == 1.0
        assert set(np.unique(split.labels)) == set(range(10))
        # every value is a multiple of 1/16
        np.testing.assert_array_equal(split.images * 16, np.round(split.images * 16))


def test_digits_split_is_a_stratified_partition_of_the_original() -> None:
    from sklearn.datasets import load_digits as sklearn_load_digits

    raw = sklearn_load_digits()
    ds = load_digits(test_fraction=0.25, seed=3)
    original = {}
    for image, label in zip(raw.images, raw.target, strict=True):
        original.setdefault((image / 16).astype(np.float32).tobytes(), []).append(int(label))
    seen = {key: [] for key in original}
    for split in (ds.train, ds.test):
        for image, label in zip(split.images, split.labels, strict=True):
            seen[image.tobytes()].append(int(label))
    assert {k: sorted(v) for k, v in seen.items()} == {k: sorted(v) for k, v in original.items()}
    class_sizes = np.bincount(raw.target)
    expected_test = np.floor(0.25 * class_sizes + 0.5).astype(int)
    np.testing.assert_array_equal(np.bincount(ds.test.labels, minlength=10), expected_test)


def test_digits_split_is_deterministic_and_seeded() -> None:
    a, b = load_digits(), load_digits()
    np.testing.assert_array_equal(a.test.images, b.test.images)
    np.testing.assert_array_equal(a.train.labels, b.train.labels)
    c = load_digits(seed=1)
    assert not np.array_equal(a.test.images, c.test.images)
    # pinned: the first test labels of the default split (guards against silent changes)
    assert a.test.labels[:12].tolist() == _DEFAULT_DIGITS_TEST_LABELS


_DEFAULT_DIGITS_TEST_LABELS = [3, 0, 8, 1, 5, 4, 0, 0, 4, 6, 3, 4]  # recorded from this code


def test_split_keys_are_splitmix64() -> None:
    """The split hash is SplitMix64 (reference value computed with Python ints)."""

    def splitmix64(x: int) -> int:
        m = (1 << 64) - 1
        x = (x + 0x9E3779B97F4A7C15) & m
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & m
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & m
        return x ^ (x >> 31)

    indices = np.array([0, 1, 7, 1796])
    for seed in (0, 5, 2**40):
        expected = [splitmix64((seed * 0x9E3779B97F4A7C15 + int(i)) % (1 << 64)) for i in indices]
        assert digits_module._split_keys(indices, seed).tolist() == expected


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_digits_rejects_bad_test_fraction(fraction: float) -> None:
    with pytest.raises(ValueError, match=f"got {fraction}"):
        load_digits(test_fraction=fraction)


def test_digits_rejects_negative_seed() -> None:
    with pytest.raises(ValueError, match="got -1"):
        load_digits(seed=-1)


def test_load_dataset_by_name() -> None:
    assert DATASETS == ("digits", "mnist")
    ds = load_dataset("digits")
    assert isinstance(ds, Dataset) and ds.name == "digits"
    with pytest.raises(
        InputError, match=r"unknown dataset 'cifar10'; choose one of: digits, mnist"
    ):
        load_dataset("cifar10")
    with pytest.raises(InputError, match="data_dir='DIR'"):
        load_dataset("mnist")


def test_load_dataset_passes_mnist_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr(datasets, "load_mnist", lambda d, download: calls.append((d, download)))
    load_dataset("mnist", "/some/dir", download=True)
    assert calls == [("/some/dir", True)]


def test_split_validates_dtypes_and_shapes() -> None:
    with pytest.raises(ValueError, match="float32"):
        Split(np.zeros((2, 3, 3)), np.zeros(2, dtype=np.int64))
    with pytest.raises(ValueError, match="int64"):
        Split(np.zeros((2, 3, 3), dtype=np.float32), np.zeros(3, dtype=np.int64))


# --------------------------------------------------------------------------------------------
# MNIST from the real files


@pytest.fixture(scope="module")
def mnist() -> Dataset:
    if not all((MNIST_DIR / f).is_file() for f in MNIST_FILES):
        pytest.skip(f"the real MNIST .gz files are not in {MNIST_DIR}")
    return load_mnist(MNIST_DIR)


def test_mnist_contents(mnist: Dataset) -> None:
    assert mnist.name == "mnist" and mnist.image_shape == (28, 28) and mnist.num_classes == 10
    assert mnist.source == str(MNIST_DIR.resolve())
    assert mnist.train.images.shape == (60000, 28, 28)
    assert mnist.test.images.shape == (10000, 28, 28)
    for split in (mnist.train, mnist.test):
        assert split.images.dtype == np.float32 and split.labels.dtype == np.int64
        assert split.images.min() == 0.0 and split.images.max() == 1.0
        sample = split.images[:500] * 255  # pixel values k / 255
        np.testing.assert_allclose(sample, np.round(sample), atol=1e-4)
    assert np.bincount(mnist.train.labels).tolist() == TRAIN_COUNTS
    assert np.bincount(mnist.test.labels).tolist() == TEST_COUNTS
    assert mnist.train.labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert mnist.test.labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    # the digit strokes lie in the centre: the one-pixel border is almost always blank
    assert mnist.test.images[:, 0, :].mean() < 1e-3


@needs_mnist
def test_checksum_constants_match_the_shared_files() -> None:
    sums = dict(
        reversed(line.split()) for line in (MNIST_DIR / "SHA256SUMS").read_text().splitlines()
    )
    for member in mnist_module._MNIST_MEMBERS:
        data = (MNIST_DIR / member.gz_filename).read_bytes()
        assert member.gz_sha256 == sums[member.gz_filename]
        assert member.gz_bytes == len(data)
        raw = gzip.decompress(data)
        assert member.raw_sha256 == hashlib.sha256(raw).hexdigest()
        assert member.raw_bytes == len(raw)
    # the published SHA256 of the uncompressed train-images file (shared/data/mnist/SOURCE.txt)
    assert mnist_module._TRAIN_IMAGES.raw_sha256.startswith("ba891046e6505d7a")


@needs_mnist
def test_uncompressed_copies_are_accepted(mnist: Dataset, tmp_path: Path) -> None:
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (tmp_path / name).write_bytes(gzip.decompress((MNIST_DIR / f"{name}.gz").read_bytes()))
    images = mnist_module._read_member(tmp_path, mnist_module._TEST_IMAGES)
    labels = mnist_module._read_member(tmp_path, mnist_module._TEST_LABELS)
    np.testing.assert_array_equal(images.astype(np.float32) / 255, mnist.test.images)
    np.testing.assert_array_equal(labels, mnist.test.labels)


# --------------------------------------------------------------------------------------------
# MNIST: missing and corrupt files


def test_missing_directory_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"does not exist; pass data_dir='DIR'"):
        load_mnist(tmp_path / "nowhere")


def test_missing_file_names_file_directory_and_fix(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        load_mnist(tmp_path)
    message = str(info.value)
    assert f"MNIST file train-images-idx3-ubyte.gz not found in {tmp_path}" in message
    assert "pass data_dir='DIR' holding the four IDX files" in message
    assert "download=True" in message


@needs_mnist
def test_corrupt_gz_names_file_and_both_hashes(tmp_path: Path) -> None:
    data = bytearray((MNIST_DIR / TEST_LABELS_GZ).read_bytes())
    data[100] ^= 0xFF
    (tmp_path / TEST_LABELS_GZ).write_bytes(bytes(data))
    with pytest.raises(InputError) as info:
        mnist_module._read_member(tmp_path, mnist_module._TEST_LABELS)
    message = str(info.value)
    assert str(tmp_path / TEST_LABELS_GZ) in message
    assert mnist_module._TEST_LABELS.gz_sha256 in message
    assert hashlib.sha256(bytes(data)).hexdigest() in message
    assert "delete it and download it again" in message


def test_corrupt_first_file_fails_load_mnist(tmp_path: Path) -> None:
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(InputError, match=r"train-images-idx3-ubyte\.gz is corrupt"):
        load_mnist(tmp_path)


def _idx_labels(n: int, magic: int = 0x0801) -> bytes:
    return magic.to_bytes(4, "big") + n.to_bytes(4, "big") + bytes(n)


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"\x00\x00", "is not an IDX file (2 bytes)"),
        (_idx_labels(10000, magic=0x0803), "magic number 0x00000803, expected 0x00000801"),
        (_idx_labels(9999), r"shape (9999,), expected (10000,)"),
        (_idx_labels(10000)[:-1], "has 10007 bytes, expected 10008"),
        (_idx_labels(10000) + b"\x00", "has 10009 bytes, expected 10008"),
        (_idx_labels(10000)[:6], "truncated inside its IDX header"),
        (_idx_labels(10000), "is not the original MNIST data: its SHA256 is"),
    ],
)
def test_bad_uncompressed_file_is_refused(tmp_path: Path, content: bytes, needle: str) -> None:
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(content)
    with pytest.raises(InputError) as info:
        mnist_module._read_member(tmp_path, mnist_module._TEST_LABELS)
    assert needle in str(info.value)
    assert str(path) in str(info.value)


# --------------------------------------------------------------------------------------------
# MNIST: downloads without the internet


@pytest.fixture(scope="module")
def served_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory whose ``good/`` subfolder is a mirror holding copies of the real files."""
    if not all((MNIST_DIR / f).is_file() for f in MNIST_FILES):
        pytest.skip(f"the real MNIST .gz files are not in {MNIST_DIR}")
    root = tmp_path_factory.mktemp("mirror")
    _copy(list(MNIST_FILES), MNIST_DIR, root / "good")
    return root


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def http_root(served_root: Path) -> Iterator[str]:
    """``http://127.0.0.1:PORT`` serving ``served_root`` from a thread, shut down afterwards."""
    handler = functools.partial(_QuietHandler, directory=str(served_root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.timeout = 10
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _assert_official(directory: Path) -> None:
    assert _files(directory) == sorted(MNIST_FILES)
    for member in mnist_module._MNIST_MEMBERS:
        digest = hashlib.sha256((directory / member.gz_filename).read_bytes()).hexdigest()
        assert digest == member.gz_sha256


def test_download_from_file_url_then_skips_verified_files(
    served_root: Path, tmp_path: Path
) -> None:
    destination = tmp_path / "new" / "mnist"
    download_mnist(destination, (served_root / "good").as_uri() + "/", progress=False)
    _assert_official(destination)
    # all four verified files are kept: an unreachable mirror is never contacted
    download_mnist(destination, (tmp_path / "no-such-mirror").as_uri(), progress=False)
    _assert_official(destination)


def test_download_over_http(http_root: str, tmp_path: Path) -> None:
    download_mnist(tmp_path, f"{http_root}/good", progress=False)
    _assert_official(tmp_path)


def test_load_mnist_download_replaces_corrupt_file(
    served_root: Path, mnist: Dataset, tmp_path: Path
) -> None:
    (tmp_path / TEST_LABELS_GZ).write_bytes(b"garbage")
    ds = load_mnist(tmp_path, download=True, base_url=(served_root / "good").as_uri())
    _assert_official(tmp_path)
    np.testing.assert_array_equal(ds.train.images, mnist.train.images)
    np.testing.assert_array_equal(ds.test.labels, mnist.test.labels)


def _bad_mirror(served_root: Path, name: str, content: bytes) -> str:
    """A mirror folder holding ``content`` as the t10k labels file; returns its folder name."""
    (served_root / name).mkdir(exist_ok=True)
    (served_root / name / TEST_LABELS_GZ).write_bytes(content)
    return name


@pytest.mark.parametrize("scheme", ["file", "http"])
@pytest.mark.parametrize(
    ("damage", "needle"),
    [("flip", "is corrupt: 4542 bytes with SHA256"), ("grow", "is larger than the original")],
)
def test_corrupt_download_is_rejected_and_leaves_nothing(
    served_root: Path, http_root: str, tmp_path: Path, scheme: str, damage: str, needle: str
) -> None:
    original = (MNIST_DIR / TEST_LABELS_GZ).read_bytes()
    if damage == "flip":
        content = original[:200] + bytes([original[200] ^ 1]) + original[201:]
    else:
        content = original + b"\x00" * 10
    folder = _bad_mirror(served_root, f"bad-{damage}", content)
    base = f"{http_root}/{folder}/" if scheme == "http" else (served_root / folder).as_uri()
    others = [f for f in MNIST_FILES if f != TEST_LABELS_GZ]
    _copy(others, MNIST_DIR, tmp_path)  # already present and valid: skipped
    with pytest.raises(InputError) as info:
        download_mnist(tmp_path, base, progress=False)
    message = str(info.value)
    assert f"{base.rstrip('/')}/{TEST_LABELS_GZ}" in message
    assert needle in message
    if damage == "flip":
        assert mnist_module._TEST_LABELS.gz_sha256 in message
        assert hashlib.sha256(content).hexdigest() in message
    assert _files(tmp_path) == sorted(others)  # no partial file, no temporary file


def test_http_error_names_url_and_leaves_nothing(http_root: str, tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        download_mnist(tmp_path / "d", f"{http_root}/absent/", progress=False)
    assert f"could not download {http_root}/absent/train-images-idx3-ubyte.gz: HTTP 404" in str(
        info.value
    )
    assert _files(tmp_path / "d") == []


def test_unknown_url_scheme_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="could not download nonsense/train-images"):
        download_mnist(tmp_path, "nonsense", progress=False)
    assert _files(tmp_path) == []


def test_missing_file_url_is_an_input_error(tmp_path: Path) -> None:
    base = (tmp_path / "empty").as_uri()
    with pytest.raises(InputError, match=f"could not download {base}/train-images"):
        download_mnist(tmp_path / "d", base, progress=False)


@needs_mnist
def test_progress_goes_to_stderr(
    served_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _copy([f for f in MNIST_FILES if f != TEST_LABELS_GZ], MNIST_DIR, tmp_path)
    download_mnist(tmp_path, (served_root / "good").as_uri(), progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert TEST_LABELS_GZ in captured.err
    _assert_official(tmp_path)


# --------------------------------------------------------------------------------------------
# module hygiene


def test_docstring_examples_run() -> None:
    result = doctest.testmod(datasets, raise_on_error=False)
    assert result.attempted > 0
    assert result.failed == 0


def test_imports_neither_torch_nor_lava_nor_eagerly_sklearn() -> None:
    code = (
        "import sys; import gradr_deploy.datasets; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'lava', 'sklearn'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
