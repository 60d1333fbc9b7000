"""MNIST from the original IDX files, verified against their published SHA-256, and its download.

A user's own copy works as published (gzipped) or uncompressed; ``download`` fetches what is
missing from a mirror (:data:`MNIST_URL`), atomically, with a progress bar on a terminal.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import sys
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gradr_deploy.atomic import atomic_path
from gradr_deploy.datasets.base import Dataset, Split
from gradr_deploy.errors import InputError, option

#: Default download location: the public mirror of the original LeCun files that PyTorch's
#: torchvision uses. Any URL urllib can open works (``https://``, ``http://``, ``file://``).
MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"

#: Seconds to wait for the mirror to answer or to send the next block of a download.
DOWNLOAD_TIMEOUT_S = 60.0

_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class _IdxMember:
    """One of the four MNIST IDX files: its name, expected content and checksums."""

    filename: str  # uncompressed name; the download is ``filename + ".gz"``
    shape: tuple[int, ...]  # array shape stored in the IDX header
    gz_sha256: str  # SHA256 of the official .gz file
    gz_bytes: int  # size of the official .gz file in bytes
    raw_sha256: str  # SHA256 of the uncompressed IDX file

    @property
    def gz_filename(self) -> str:
        return self.filename + ".gz"

    @property
    def magic(self) -> int:
        """IDX magic number: 0x0000 | dtype code 0x08 (unsigned byte) | number of dims."""
        return 0x0800 | len(self.shape)

    @property
    def raw_bytes(self) -> int:
        return 4 + 4 * len(self.shape) + math.prod(self.shape)


# The official files. gz_sha256 and gz_bytes: the published checksums and sizes of the original
# LeCun .gz files (copied from shared/data/mnist/SHA256SUMS and SOURCE.txt, which also match
# the published md5 sums torchvision uses). raw_sha256: the SHA256 of the uncompressed bytes of
# those verified .gz files; the train-images value equals the published hash of the raw file.
_TRAIN_IMAGES = _IdxMember(
    "train-images-idx3-ubyte",
    (60000, 28, 28),
    "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    9912422,
    "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
)
_TRAIN_LABELS = _IdxMember(
    "train-labels-idx1-ubyte",
    (60000,),
    "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    28881,
    "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
)
_TEST_IMAGES = _IdxMember(
    "t10k-images-idx3-ubyte",
    (10000, 28, 28),
    "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    1648877,
    "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
)
_TEST_LABELS = _IdxMember(
    "t10k-labels-idx1-ubyte",
    (10000,),
    "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    4542,
    "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
)
_MNIST_MEMBERS: tuple[_IdxMember, ...] = (_TRAIN_IMAGES, _TRAIN_LABELS, _TEST_IMAGES, _TEST_LABELS)

#: The four files :func:`download_mnist` fetches, in download order.
MNIST_FILES: tuple[str, ...] = tuple(m.gz_filename for m in _MNIST_MEMBERS)


def _parse_idx(data: bytes, member: _IdxMember, path: Path) -> np.ndarray:
    """Parse an uncompressed IDX file of unsigned bytes, checking header and length.

    Args:
        data: the whole file content.
        member: which MNIST file this should be (expected magic number and shape).
        path: the file, named in error messages.

    Returns:
        uint8 array of shape ``member.shape`` (a read-only view into ``data``).
    """
    fix = (f"delete it and download it again ({option('download', True)}), or copy the "
           "original file there")
    if len(data) < 4:
        raise InputError(f"MNIST file {path} is not an IDX file ({len(data)} bytes); {fix}")
    magic = int.from_bytes(data[:4], "big")
    if magic != member.magic:
        raise InputError(
            f"MNIST file {path} has IDX magic number {magic:#010x}, expected "
            f"{member.magic:#010x} for {member.filename}; {fix}"
        )
    ndim = len(member.shape)
    header = 4 + 4 * ndim
    if len(data) < header:
        raise InputError(f"MNIST file {path} is truncated inside its IDX header; {fix}")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    if dims != member.shape:
        raise InputError(
            f"MNIST file {path} holds an array of shape {dims}, expected {member.shape}; {fix}"
        )
    if len(data) != member.raw_bytes:
        raise InputError(
            f"MNIST file {path} has {len(data)} bytes, expected {member.raw_bytes} for shape "
            f"{member.shape}; {fix}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(member.shape)


def _read_member(data_dir: Path, member: _IdxMember) -> np.ndarray:
    """Read one MNIST file from ``data_dir``, preferring the .gz over an uncompressed copy.

    A .gz file must match the official SHA256. An uncompressed file must have the right IDX
    magic number, shape and length, and its bytes must match the SHA256 of the official
    file's uncompressed content.

    Returns:
        uint8 array of shape ``member.shape``.
    """
    gz_path = data_dir / member.gz_filename
    raw_path = data_dir / member.filename
    if gz_path.is_file():
        data = gz_path.read_bytes()
        actual = hashlib.sha256(data).hexdigest()
        if actual != member.gz_sha256:
            raise InputError(
                f"MNIST file {gz_path} is corrupt: its SHA256 is {actual}, expected "
                f"{member.gz_sha256}; delete it and download it again ({option('download', True)})"
            )
        try:
            raw = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:  # unreachable once the hash matched
            raise InputError(f"MNIST file {gz_path} is not valid gzip ({exc})") from exc
        return _parse_idx(raw, member, gz_path)
    if raw_path.is_file():
        raw = raw_path.read_bytes()
        array = _parse_idx(raw, member, raw_path)
        actual = hashlib.sha256(raw).hexdigest()
        if actual != member.raw_sha256:
            raise InputError(
                f"MNIST file {raw_path} is not the original MNIST data: its SHA256 is {actual}, "
                f"expected {member.raw_sha256}; delete it and download it again "
                f"({option('download', True)})"
            )
        return array
    raise InputError(
        f"MNIST file {member.gz_filename} not found in {data_dir}; pass "
        f"{option('data_dir', 'DIR')} holding the four IDX files ({', '.join(MNIST_FILES)}; "
        f"gzipped or not), or {option('download', True)}"
    )


def load_mnist(
    data_dir: str | Path, *, download: bool = False, base_url: str = MNIST_URL
) -> Dataset:
    """Load MNIST (60000 train and 10000 test images of 28x28 pixels, 10 classes).

    ``data_dir`` must hold the four original IDX files (:data:`MNIST_FILES`), each either
    gzipped as published or uncompressed (the same name without ``.gz``); a .gz file is used
    when both exist. Each .gz file is verified against the published SHA256. An uncompressed
    copy has no published checksum of its own except train-images, so it is checked instead by
    its IDX header (magic number and dimensions) and length, and then by the SHA256 of the
    official files' uncompressed content (computed from the verified .gz files), so that a
    look-alike with the same names and shapes (Fashion-MNIST, say) is refused.

    Pixel values 0..255 are divided by 255.

    Args:
        data_dir: directory holding the files.
        download: fetch every file that is missing or fails verification from ``base_url``
            into ``data_dir`` (see :func:`download_mnist`) before loading it.
        base_url: mirror to download from; a directory URL holding the four .gz files.

    Returns:
        A :class:`Dataset` named ``"mnist"``; images ``(N, 28, 28)`` float32 in [0, 1].

    Raises:
        InputError: a file is missing (and ``download`` is off), corrupt, or not MNIST, or a
            download failed.
    """
    data_dir = Path(data_dir)
    if not download and not data_dir.is_dir():
        raise InputError(
            f"MNIST data directory {data_dir} does not exist; pass {option('data_dir', 'DIR')} "
            f"holding the four IDX files ({', '.join(MNIST_FILES)}), or add "
            f"{option('download', True)} to fetch them there"
        )
    arrays: list[np.ndarray] = []
    for member in _MNIST_MEMBERS:
        try:
            arrays.append(_read_member(data_dir, member))
        except InputError:
            if not download:
                raise
            _fetch(base_url, data_dir, member, progress=True)
            arrays.append(_read_member(data_dir, member))
    train_images, train_labels, test_images, test_labels = arrays
    for labels, member in ((train_labels, _TRAIN_LABELS), (test_labels, _TEST_LABELS)):
        if labels.size and int(labels.max()) > 9:  # unreachable once the hash matched
            raise InputError(f"MNIST file {data_dir / member.filename} holds labels above 9")
    return Dataset(
        name="mnist",
        train=Split(_to_intensity(train_images), train_labels.astype(np.int64)),
        test=Split(_to_intensity(test_images), test_labels.astype(np.int64)),
        image_shape=(28, 28),
        num_classes=10,
        source=str(data_dir.resolve()),
    )


def _to_intensity(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels 0..255, any shape -> float32 intensities in [0, 1], same shape."""
    out = pixels.astype(np.float32)
    out /= np.float32(255.0)
    return out


# --------------------------------------------------------------------------------------------
# MNIST: downloading


def download_mnist(
    data_dir: str | Path, base_url: str = MNIST_URL, *, progress: bool = True
) -> None:
    """Download the four MNIST .gz files from ``base_url`` into ``data_dir``.

    A file already in ``data_dir`` with the official SHA256 is kept; any other is fetched
    from ``base_url + filename``. Each download is written to a temporary file beside its
    destination, checked against the official size and SHA256, and only then renamed into
    place, so ``data_dir`` never holds a partial or corrupt download (a corrupt download is
    deleted and reported). ``data_dir`` is created if needed.

    Args:
        data_dir: destination directory.
        base_url: directory URL of a mirror holding the original .gz files; ``https://``,
            ``http://`` and ``file://`` URLs work.
        progress: draw a progress bar per file on stderr (with tqdm when installed, otherwise
            one line per file).

    Raises:
        InputError: a download failed or did not match the official checksum (the message
            names the URL).
    """
    data_dir = Path(data_dir)
    for member in _MNIST_MEMBERS:
        destination = data_dir / member.gz_filename
        if destination.is_file() and _sha256_file(destination) == member.gz_sha256:
            continue
        _fetch(base_url, data_dir, member, progress=progress)


def _sha256_file(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _member_url(base_url: str, filename: str) -> str:
    return base_url.rstrip("/") + "/" + filename


class _Progress:
    """Download progress for one file on stderr (a bar on a terminal, lines in a log)."""

    def __init__(self, filename: str, url: str, total_bytes: int, enabled: bool) -> None:
        from gradr_deploy.progress import progress

        if enabled:
            print(f"downloading {url}", file=sys.stderr, flush=True)
        self._bar = progress(total=total_bytes, desc=filename, unit="B", enabled=enabled,
                             unit_scale=True)

    def update(self, n_bytes: int) -> None:
        self._bar.update(n_bytes)

    def close(self) -> None:
        self._bar.close()


def _fetch(base_url: str, data_dir: Path, member: _IdxMember, *, progress: bool) -> None:
    """Download one .gz file into ``data_dir`` atomically, verifying size and SHA256 first."""
    url = _member_url(base_url, member.gz_filename)
    destination = data_dir / member.gz_filename
    bar = _Progress(member.gz_filename, url, member.gz_bytes, progress)
    digest = hashlib.sha256()
    received = 0
    try:
        with (
            atomic_path(destination) as tmp,
            urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response,
            open(tmp, "wb") as out,
        ):
            while chunk := response.read(_CHUNK_BYTES):
                received += len(chunk)
                if received > member.gz_bytes:
                    raise InputError(
                        f"download from {url} is larger than the original {member.gz_filename} "
                        f"({member.gz_bytes} bytes); it was discarded. Check that the download URL "
                        f"points at the original MNIST files"
                    )
                digest.update(chunk)
                out.write(chunk)
                bar.update(len(chunk))
            out.flush()
            actual = digest.hexdigest()
            if received != member.gz_bytes or actual != member.gz_sha256:
                raise InputError(
                    f"download from {url} is corrupt: {received} bytes with SHA256 {actual}, "
                    f"expected {member.gz_bytes} bytes with SHA256 {member.gz_sha256}; it was "
                    f"discarded. Try again, or another mirror"
                )
    except urllib.error.HTTPError as exc:
        raise InputError(f"could not download {url}: HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise InputError(f"could not download {url}: {exc.reason}") from exc
    except (OSError, ValueError) as exc:  # timeouts, resets, unknown URL schemes, disk errors
        raise InputError(f"could not download {url} to {destination}: {exc}") from exc
    finally:
        bar.close()
