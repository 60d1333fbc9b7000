"""Tests for gradr_deploy.simulation.encoding: rate-coded input spikes, statistics and
reproducibility."""

from __future__ import annotations

import doctest
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gradr_deploy.errors import InputError
from gradr_deploy.simulation import encoding
from gradr_deploy.simulation.encoding import ENCODINGS, RateEncoding, encode_samples

REPO = Path(__file__).resolve().parents[1]


def _reference_spikes(image: np.ndarray, key: list[int], time_steps: int, max_rate: float):
    """The documented scheme, written out independently: uniforms (F, T) from PCG64(key)."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(key)))
    u = rng.random((image.size, time_steps), dtype=np.float32)
    p = image.reshape(-1).astype(np.float32) * np.float32(max_rate)
    return (u < p[:, None]).astype(np.uint8)


def test_shape_dtype_and_binary_values() -> None:
    images = np.random.default_rng(1).random((3, 5, 7), dtype=np.float32)
    spikes = RateEncoding(time_steps=4, max_rate=0.8).encode(images, seed=3)
    assert spikes.shape == (3, 35, 4)
    assert spikes.dtype == np.uint8
    assert set(np.unique(spikes)) <= {0, 1}


@pytest.mark.parametrize("shape", [(2, 6), (2, 3, 4), (2, 2, 3, 4)])
def test_pixels_are_flattened_in_c_order(shape: tuple[int, ...]) -> None:
    """A single full-intensity pixel at max_rate 1 spikes at every step, in its C-order row."""
    images = np.zeros(shape, dtype=np.float32)
    pixel = (1, *tuple(s // 2 for s in shape[1:]))
    images[pixel] = 1.0
    spikes = RateEncoding(time_steps=5).encode(images, seed=0)
    row = int(np.ravel_multi_index(pixel[1:], shape[1:]))
    expected = np.zeros((shape[0], math.prod(shape[1:]), 5), dtype=np.uint8)
    expected[1, row, :] = 1
    np.testing.assert_array_equal(spikes, expected)


def test_matches_documented_scheme() -> None:
    images = np.random.default_rng(2).random((4, 3, 3))
    enc = RateEncoding(time_steps=6, max_rate=0.7)
    ids = np.array([9, 0, 123456789012, 9])
    spikes = encode_samples(enc, images, ids, seed=11)
    for i, sample_id in enumerate(ids):
        ref = _reference_spikes(images[i], [11, int(sample_id)], 6, 0.7)
        np.testing.assert_array_equal(spikes[i], ref)
    per_sample_seed = enc.encode(images, seed=np.array([5, 6, 7, 8]))
    for i, s in enumerate([5, 6, 7, 8]):
        np.testing.assert_array_equal(
            per_sample_seed[i], _reference_spikes(images[i], [s, 0], 6, 0.7)
        )


def test_seed_forms_agree() -> None:
    images = np.random.default_rng(3).random((5, 4))
    enc = RateEncoding(time_steps=3)
    by_int = enc.encode(images, seed=21)
    np.testing.assert_array_equal(by_int, encode_samples(enc, images, np.arange(5), seed=21))
    seeds = np.array([4, 4, 17, 0, 99])
    by_array = enc.encode(images, seed=seeds)
    for i, s in enumerate(seeds):
        np.testing.assert_array_equal(by_array[i], enc.encode(images[i : i + 1], int(s))[0])


def test_deterministic_and_seed_dependent() -> None:
    images = np.full((8, 10, 10), 0.5)
    enc = RateEncoding(time_steps=10)
    ids = np.arange(8)
    a = encode_samples(enc, images, ids, seed=0)
    np.testing.assert_array_equal(a, encode_samples(enc, images, ids, seed=0))
    b = encode_samples(enc, images, ids, seed=1)
    assert (a != b).mean() > 0.4  # independent Bernoulli(0.5) trains differ in half the draws
    # same image, different ids: different spike trains
    assert (a[0] != a[1]).mean() > 0.4


def test_batch_independence() -> None:
    """A sample's spikes depend on (seed, id) only: not on batch size, neighbours or order."""
    rng = np.random.default_rng(4)
    images = rng.random((6, 28, 28), dtype=np.float32)
    ids = np.array([100, 3, 57, 8, 2, 41])
    enc = RateEncoding(time_steps=8, max_rate=0.9)
    batch = encode_samples(enc, images, ids, seed=7)
    for i in range(6):
        alone = encode_samples(enc, images[i : i + 1], ids[i : i + 1], seed=7)
        np.testing.assert_array_equal(alone[0], batch[i])
    perm = np.array([5, 2, 0, 4, 1, 3])
    np.testing.assert_array_equal(encode_samples(enc, images[perm], ids[perm], seed=7), batch[perm])
    other = rng.random((3, 28, 28))
    mixed = encode_samples(
        enc, np.concatenate([other, images[2:4]]), np.array([0, 1, 999, 57, 8]), seed=7
    )
    np.testing.assert_array_equal(mixed[3:], batch[2:4])


@pytest.mark.parametrize("max_rate", [1.0, 0.5, 0.2])
def test_empirical_rate_matches_intensity_times_max_rate(max_rate: float) -> None:
    """Spike frequency per intensity level is p = intensity * max_rate within 6 sigma.

    Each level has n = 4 samples x 250 pixels x 100 steps = 100000 Bernoulli draws, so the
    frequency has standard deviation sqrt(p (1 - p) / n) <= 0.0016; a 6-sigma band fails by
    chance with probability below 2e-9 per level, while a rate off by 0.01 is detected.
    """
    levels = np.array([0.0, 0.05, 0.25, 0.5, 0.75, 0.9, 1.0], dtype=np.float32)
    pixels_per_level, samples, steps = 250, 4, 100
    image = np.repeat(levels, pixels_per_level)
    images = np.broadcast_to(image, (samples, image.size))
    spikes = RateEncoding(time_steps=steps, max_rate=max_rate).encode(images, seed=2024)
    per_level = spikes.reshape(samples, levels.size, pixels_per_level, steps)
    n = samples * pixels_per_level * steps
    for k, level in enumerate(levels):
        p = float(level) * max_rate
        freq = per_level[:, k].mean()
        if p in (0.0, 1.0):
            assert freq == p  # exact: u in [0, 1) is never < 0 and always < 1
        else:
            tolerance = 6 * math.sqrt(p * (1 - p) / n)
            assert abs(freq - p) < tolerance, (level, max_rate, freq, p, tolerance)


def test_steps_and_samples_are_independent() -> None:
    """At p = 0.5 consecutive steps, and two samples with the same image, agree half the time.

    n = 200000 pairs each; standard deviation of the agreement frequency is 0.5/sqrt(n) ~
    0.0011, so a 6-sigma band is +-0.0067.
    """
    enc = RateEncoding(time_steps=101)
    images = np.full((2, 2000), 0.5)
    spikes = encode_samples(enc, images, np.array([0, 1]), seed=5)
    lag1 = (spikes[:, :, 1:] == spikes[:, :, :-1]).mean()
    across = (spikes[0, :, :100] == spikes[1, :, :100]).mean()
    tolerance = 6 * 0.5 / math.sqrt(200000)
    assert abs(lag1 - 0.5) < tolerance
    assert abs(across - 0.5) < tolerance


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"time_steps": 0}, "time_steps must be an integer >= 1, got 0"),
        ({"time_steps": -3}, "got -3"),
        ({"time_steps": 2.5}, "got 2.5"),
        ({"time_steps": True}, "got True"),
        ({"time_steps": 4, "max_rate": 0.0}, "max_rate must be a number in (0, 1], got 0.0"),
        ({"time_steps": 4, "max_rate": 1.5}, "got 1.5"),
        ({"time_steps": 4, "max_rate": float("nan")}, "got nan"),
        ({"time_steps": 4, "name": "latency"}, "'latency'"),
    ],
)
def test_invalid_parameters_raise_value_error(kwargs: dict, needle: str) -> None:
    with pytest.raises(ValueError) as info:
        RateEncoding(**kwargs)
    assert needle in str(info.value)


@pytest.mark.parametrize(("bad", "shown"), [(1.25, "1.25"), (-0.5, "-0.5"), (np.nan, "nan")])
def test_intensities_outside_unit_interval_raise(bad: float, shown: str) -> None:
    images = np.full((2, 3, 3), 0.5)
    images[1, 2, 0] = bad
    with pytest.raises(ValueError) as info:
        RateEncoding(time_steps=2).encode(images, seed=0)
    assert f"got {shown} at index (1, 2, 0)" in str(info.value)


def test_bad_seeds_ids_and_shapes_raise() -> None:
    enc = RateEncoding(time_steps=2)
    images = np.zeros((3, 4))
    with pytest.raises(ValueError, match="seed must be a non-negative integer, got -1"):
        enc.encode(images, seed=-1)
    with pytest.raises(ValueError, match=r"got 1\.5"):
        enc.encode(images, seed=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        enc.encode(images, seed=np.array([1, 2]))
    with pytest.raises(ValueError, match="sample_ids must be non-negative, got -2"):
        encode_samples(enc, images, np.array([0, -2, 1]), seed=0)
    with pytest.raises(ValueError, match="float64"):
        encode_samples(enc, images, np.array([0.0, 1.0, 2.0]), seed=0)
    with pytest.raises(ValueError, match=r"got shape \(4,\)"):
        enc.encode(np.zeros(4), seed=0)


def test_empty_batch_and_bool_images() -> None:
    enc = RateEncoding(time_steps=3)
    assert enc.encode(np.zeros((0, 2, 2)), seed=0).shape == (0, 4, 3)
    spikes = enc.encode(np.array([[True, False]]), seed=0)
    np.testing.assert_array_equal(spikes, [[[1, 1, 1], [0, 0, 0]]])


def test_dict_round_trip_through_json() -> None:
    enc = RateEncoding(time_steps=16, max_rate=0.25)
    d = json.loads(json.dumps(enc.to_dict()))
    assert d == {"name": "rate", "time_steps": 16, "max_rate": 0.25}
    assert RateEncoding.from_dict(d) == enc
    assert ENCODINGS == ("rate", "direct")


@pytest.mark.parametrize(
    ("d", "needle"),
    [
        ({"name": "latency", "time_steps": 4}, "unknown spike encoding 'latency'"),
        ({"name": "rate"}, "lacks 'time_steps'"),
        ({"name": "rate", "time_steps": 4, "gain": 2}, "unknown keys ['gain']"),
        ({"name": "rate", "time_steps": 0}, "time_steps must be an integer >= 1, got 0"),
        ({"name": "rate", "time_steps": 4, "max_rate": 2.0}, "got 2.0"),
    ],
)
def test_from_dict_rejects_bad_input(d: dict, needle: str) -> None:
    with pytest.raises(InputError) as info:
        RateEncoding.from_dict(d)
    assert needle in str(info.value)


@st.composite
def _batches(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    dims = draw(st.lists(st.integers(1, 5), min_size=1, max_size=3))
    n = draw(st.integers(1, 5))
    images = draw(
        hnp.arrays(
            np.float32,
            (n, *dims),
            elements=st.floats(0.0, 1.0, width=32, allow_nan=False),
        )
    )
    ids = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, 2**40), unique=True))
    return images, ids


@settings(max_examples=60, deadline=None)
@given(
    batch=_batches(),
    time_steps=st.integers(1, 6),
    max_rate=st.floats(0.01, 1.0),
    seed=st.integers(0, 2**32),
    data=st.data(),
)
def test_property_shapes_bounds_and_batch_independence(
    batch: tuple[np.ndarray, np.ndarray], time_steps: int, max_rate: float, seed: int, data
) -> None:
    images, ids = batch
    enc = RateEncoding(time_steps=time_steps, max_rate=max_rate)
    spikes = encode_samples(enc, images, ids, seed)
    n, f = images.shape[0], math.prod(images.shape[1:])
    assert spikes.shape == (n, f, time_steps)
    assert spikes.dtype == np.uint8
    assert spikes.max(initial=0) <= 1
    flat = images.reshape(n, f)
    assert not spikes[flat == 0.0].any()  # zero intensity never spikes
    if max_rate == 1.0:
        assert spikes[flat == 1.0].all()
    perm = np.array(data.draw(st.permutations(range(n))), dtype=np.intp)
    np.testing.assert_array_equal(encode_samples(enc, images[perm], ids[perm], seed), spikes[perm])


def test_docstring_examples_run() -> None:
    result = doctest.testmod(encoding, raise_on_error=False)
    assert result.attempted > 0
    assert result.failed == 0


def test_imports_neither_torch_nor_lava() -> None:
    code = (
        "import sys, numpy as np; import gradr_deploy.simulation.encoding as e; "
        "e.RateEncoding(2).encode(np.zeros((1, 2)), 0); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'lava', 'sklearn')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
