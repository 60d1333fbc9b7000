"""Spike encodings: how an image becomes the input spike trains of a network.

Two encodings, one spike train per pixel:

- rate coding (:class:`RateEncoding`): binary spikes; at every time step each pixel spikes
  independently with probability ``p = intensity * max_rate``;
- direct input (:class:`DirectEncoding`): graded spikes (Loihi 2 carries an integer payload per
  spike); every pixel sends ``round(intensity * levels)`` at every one of the T steps, the
  image itself as a constant input current, as the Grad R authors feed it. The network's first
  layer receives ``levels`` times the current of an intensity: its threshold is ``levels``
  times the model's (the training side builds it so), which keeps the weights on their 8-bit
  grid and every sum an integer that Lava computes exactly.

Spikes are reproducible per sample. The random numbers for a sample come from their own
generator, ``numpy.random.Generator(numpy.random.PCG64(numpy.random.SeedSequence(key)))``,
where ``key`` is ``[seed, sample_id]`` (see :func:`encode_samples`). So a test sample's spikes
depend only on the seed and its id: they are the same in any batch, in any order, in the
PyTorch evaluation and in the Lava run. Per sample the generator draws float32 uniforms
``u`` of shape ``(F, T)`` in C order (pixel-major, time-minor) and the spike is ``u < p``.

This module imports only numpy and the standard library.

Example:
    >>> import numpy as np
    >>> enc = RateEncoding(time_steps=8)
    >>> images = np.full((2, 28, 28), 0.5, dtype=np.float32)
    >>> spikes = encode_samples(enc, images, np.array([17, 42]), seed=0)
    >>> spikes.shape, spikes.dtype
    ((2, 784, 8), dtype('uint8'))
    >>> bool((spikes[1] == encode_samples(enc, images[1:], np.array([42]), seed=0)[0]).all())
    True
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradr_deploy.errors import InputError

__all__ = ["ENCODINGS", "DirectEncoding", "Encoding", "RateEncoding", "encode_samples",
           "encoding_from_dict"]

ENCODINGS: tuple[str, ...] = ("rate", "direct")
MAX_LEVELS = 127  # payloads stay int8 (the training path's exact int8 GEMM) and 7-bit messages


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


def _check_time_steps(time_steps: object) -> None:
    if not _is_int(time_steps) or time_steps < 1:  # type: ignore[operator]
        raise ValueError(f"time_steps must be an integer >= 1, got {time_steps!r}")


@dataclass(frozen=True)
class RateEncoding:
    """Bernoulli rate coding: each pixel spikes at each step with probability intensity*max_rate.

    Attributes:
        time_steps: T, the number of time steps a sample is presented (>= 1).
        max_rate: spike probability per time step at intensity 1.0, in (0, 1].
        name: ``"rate"``; stored so that :meth:`to_dict` records which encoding this is.
    """

    time_steps: int
    max_rate: float = 1.0
    name: str = "rate"

    def __post_init__(self) -> None:
        _check_time_steps(self.time_steps)
        if (
            not isinstance(self.max_rate, numbers.Real)
            or isinstance(self.max_rate, bool | np.bool_)
            or not 0.0 < float(self.max_rate) <= 1.0
        ):
            raise ValueError(f"max_rate must be a number in (0, 1], got {self.max_rate!r}")
        if self.name != "rate":
            raise ValueError(f"RateEncoding.name must be 'rate', got {self.name!r}")
        object.__setattr__(self, "time_steps", int(self.time_steps))
        object.__setattr__(self, "max_rate", float(self.max_rate))

    def encode(self, images: np.ndarray, seed: int | np.ndarray) -> np.ndarray:
        """Encode a batch of images as spike trains.

        Args:
            images: intensities in [0, 1], shape ``(N, ...)`` (e.g. ``(N, H, W)``).
            seed: either one non-negative integer, in which case sample ``i`` of this batch
                is keyed ``[seed, i]`` (the same as ``encode_samples(self, images,
                np.arange(N), seed)``); or an array of N non-negative integers, one per sample,
                in which case sample ``i`` is keyed ``[seed[i], 0]`` (its spikes equal
                ``self.encode(images[i:i+1], int(seed[i]))[0]``).

        Returns:
            uint8 spikes in {0, 1}, shape ``(N, F, T)`` with ``F = prod(images.shape[1:])``
            (pixels flattened in C order) and ``T = time_steps``.
        """
        images = np.asarray(images)
        n = images.shape[0] if images.ndim else 0
        if isinstance(seed, np.ndarray):
            seeds = _check_ids(seed, "seed", n)
            keys = [(s, 0) for s in seeds]
        else:
            _check_seed(seed)
            keys = [(int(seed), i) for i in range(n)]
        return self._spikes(images, keys)

    def _spikes(self, images: np.ndarray, keys: list[tuple[int, int]]) -> np.ndarray:
        """Spikes for ``images`` (N, ...) with sample ``i`` drawn from ``SeedSequence(keys[i])``."""
        p = _spike_probability(images, self.max_rate)
        n, f = p.shape
        t = self.time_steps
        spikes = np.empty((n, f, t), dtype=bool)
        for i, key in enumerate(keys):
            rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(list(key))))
            uniform = rng.random((f, t), dtype=np.float32)
            np.less(uniform, p[i, :, None], out=spikes[i])
        return spikes.view(np.uint8)

    @property
    def message_bits(self) -> int:
        """Bits of payload a spike carries: 0 (binary spikes)."""
        return 0

    @property
    def input_scale(self) -> int:
        """Input current per unit of intensity, relative to a binary spike: 1."""
        return 1

    def to_dict(self) -> dict[str, Any]:
        """``{"name": "rate", "time_steps": T, "max_rate": r}``, JSON-serialisable."""
        return {"name": self.name, "time_steps": self.time_steps, "max_rate": self.max_rate}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RateEncoding:
        """Inverse of :meth:`to_dict`.

        Raises:
            InputError: ``d`` is not a mapping, names an unknown encoding, lacks
                ``time_steps``, has unknown keys, or holds invalid values.
        """
        encoding = encoding_from_dict(d)
        if not isinstance(encoding, cls):
            raise InputError(f"spike encoding {d!r} is not rate coding")
        return encoding


@dataclass(frozen=True)
class DirectEncoding:
    """Direct (graded) input: every pixel sends ``round(intensity * levels)`` at every step.

    Attributes:
        time_steps: T, the number of time steps a sample is presented (>= 1).
        levels: payload of a pixel at intensity 1.0, an integer in [1, 127]; intensities are
            rounded to multiples of 1/levels (15: 16 grey levels, 4-bit messages).
        name: ``"direct"``.
    """

    time_steps: int
    levels: int = 15
    name: str = "direct"

    def __post_init__(self) -> None:
        _check_time_steps(self.time_steps)
        if not _is_int(self.levels) or not 1 <= self.levels <= MAX_LEVELS:
            raise ValueError(f"levels must be an integer in [1, {MAX_LEVELS}], got "
                             f"{self.levels!r}")
        if self.name != "direct":
            raise ValueError(f"DirectEncoding.name must be 'direct', got {self.name!r}")
        object.__setattr__(self, "time_steps", int(self.time_steps))
        object.__setattr__(self, "levels", int(self.levels))

    @property
    def message_bits(self) -> int:
        """Bits of payload a spike needs to carry ``levels``."""
        return int(self.levels).bit_length()

    @property
    def input_scale(self) -> int:
        """Input current per unit of intensity, relative to a binary spike: ``levels``."""
        return self.levels

    def encode(self, images: np.ndarray, seed: int | np.ndarray = 0) -> np.ndarray:
        """uint8 payloads ``(N, F, T)`` in [0, levels]; ``seed`` is accepted and unused (the
        encoding draws no random numbers)."""
        return self._spikes(np.asarray(images), [])

    def _spikes(self, images: np.ndarray, keys: list[tuple[int, int]]) -> np.ndarray:
        p = _spike_probability(images, 1.0)
        payload = np.rint(p * np.float32(self.levels)).astype(np.uint8)
        return np.repeat(payload[:, :, None], self.time_steps, axis=2)

    def to_dict(self) -> dict[str, Any]:
        """``{"name": "direct", "time_steps": T, "levels": L}``, JSON-serialisable."""
        return {"name": self.name, "time_steps": self.time_steps, "levels": self.levels}


#: Any spike encoding.
Encoding = RateEncoding | DirectEncoding


def encoding_from_dict(d: dict[str, Any]) -> Encoding:
    """The encoding that ``to_dict`` wrote (a netx file's metadata, a run's metrics).

    Raises:
        InputError: not a mapping, an unknown encoding, missing or unknown keys, bad values.
    """
    if not isinstance(d, dict):
        raise InputError(f"a spike encoding must be a mapping, got {type(d).__name__}")
    name = d.get("name", "rate")
    if name not in _OPTIONAL_KEYS:
        raise InputError(
            f"unknown spike encoding {name!r}; known encodings: {', '.join(ENCODINGS)}")
    cls, optional = _OPTIONAL_KEYS[name]
    unknown = sorted(set(d) - {"name", "time_steps", *optional})
    if unknown:
        raise InputError(f"spike encoding {d!r} has unknown keys {unknown}")
    if "time_steps" not in d:
        raise InputError(f"spike encoding {d!r} lacks 'time_steps'")
    try:
        return cls(time_steps=d["time_steps"],
                   **{key: d.get(key, default) for key, default in optional.items()})
    except ValueError as exc:
        raise InputError(f"invalid spike encoding {d!r}: {exc}") from exc


# per encoding: its class and the keys beside name and time_steps, with their defaults
_OPTIONAL_KEYS: dict[str, tuple[type, dict[str, Any]]] = {
    "rate": (RateEncoding, {"max_rate": 1.0}),
    "direct": (DirectEncoding, {"levels": 15}),
}


def _spike_probability(images: np.ndarray, max_rate: float) -> np.ndarray:
    """Per-pixel spike probability per step, ``intensity * max_rate``.

    Args:
        images: intensities in [0, 1], shape ``(N, ...)`` with at least one pixel dimension.
        max_rate: probability at intensity 1.0, in (0, 1].

    Returns:
        float32 probabilities in [0, max_rate], shape ``(N, F)``, pixels flattened in C order.

    Raises:
        ValueError: ``images`` is not a real-valued array of shape ``(N, ...)``, or holds values
            outside [0, 1] (NaN included); the message gives the offending value.
    """
    images = np.asarray(images)
    if images.ndim < 2:
        raise ValueError(
            f"images must have shape (N, ...) with at least one pixel dimension, "
            f"got shape {images.shape}"
        )
    if not (
        np.issubdtype(images.dtype, np.floating)
        or np.issubdtype(images.dtype, np.integer)
        or images.dtype == np.bool_
    ):
        raise ValueError(f"images must hold real numbers in [0, 1], got dtype {images.dtype}")
    if images.size and images.dtype != np.bool_:
        bad = ~((images >= 0) & (images <= 1))  # also catches NaN
        if bad.any():
            index = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"image intensities must lie in [0, 1]; got {images[index]!r} at index {index} "
                f"of images with shape {images.shape}; scale the images to [0, 1] first"
            )
    flat = images.reshape(images.shape[0], math.prod(images.shape[1:])).astype(np.float32)
    return flat * np.float32(max_rate)


def _check_seed(seed: object) -> None:
    if not _is_int(seed) or int(seed) < 0:  # type: ignore[call-overload]
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")


def _check_ids(ids: np.ndarray, what: str, n: int) -> list[int]:
    """Validate an array of N non-negative integers; return them as Python ints."""
    ids = np.asarray(ids)
    if not np.issubdtype(ids.dtype, np.integer) or ids.shape != (n,):
        raise ValueError(
            f"{what} must be an integer array of shape ({n},) (one per image), got "
            f"{ids.dtype} of shape {ids.shape}"
        )
    if ids.size and int(ids.min()) < 0:
        raise ValueError(f"{what} must be non-negative, got {int(ids.min())}")
    return [int(i) for i in ids]


def encode_samples(
    encoding: Encoding, images: np.ndarray, sample_ids: np.ndarray, seed: int
) -> np.ndarray:
    """Encode images whose spikes depend only on ``(seed, sample id)``.

    Sample ``i``'s spikes are drawn from ``SeedSequence([seed, sample_ids[i]])``, so they do
    not depend on which other samples are in the batch or on their order: a test sample gets
    identical spikes in a PyTorch batch of 128 and in a one-sample Lava run.

    Args:
        encoding: the spike encoding (e.g. ``RateEncoding(time_steps=8)``).
        images: intensities in [0, 1], shape ``(N, ...)``.
        sample_ids: non-negative integer ids, shape ``(N,)``; use each sample's index in its
            split so that ids are stable.
        seed: non-negative integer shared by the whole run.

    Returns:
        uint8 spikes ``(N, F, T)``: 0/1 for rate coding (see :meth:`RateEncoding.encode`),
        payloads in [0, levels] for direct input.
    """
    _check_seed(seed)
    images = np.asarray(images)
    n = images.shape[0] if images.ndim else 0
    ids = _check_ids(sample_ids, "sample_ids", n)
    return encoding._spikes(images, [(int(seed), i) for i in ids])
