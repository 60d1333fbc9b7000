"""A user's own input spikes for ``gradr-lava deploy --inputs FILE``.

Two formats, told apart by shape:

- **dense**: a ``.npy`` array ``(N, features, steps)`` (N samples) or ``(features, steps)``
  (one sample): 0/1 spikes, or graded payloads (non-negative integers up to 255), in the C
  order of the network's stored input shape (``(f, y, x)`` for a conv-first network);
- **events**: lava-dl's numpy event format (``slayer.io.read_np_spikes`` / ``encode_np_spikes``,
  ``fmt='xypt'``): an ``(events, 3)`` array of ``x, c, t`` (1-D data) or ``(events, 4)`` of
  ``x, y, c, t`` (2-D data), ``t`` in milliseconds, binned into 1 ms time steps as
  ``Event.to_tensor`` does (``round(t)``, several events in one bin count once). Channel ``c``
  and position become the feature index of lava-dl's ``CHW`` tensor: ``c * W + x`` (1-D) or
  ``(c * H + y) * W + x`` (2-D), with ``(W, H, C)`` taken from the network's input.

A 2-D array whose first axis equals the network's input features is read as dense. Only numpy
is imported.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gradr_deploy.errors import InputError, option

MAX_PAYLOAD = 255  # graded payloads travel as 8-bit messages


def load_inputs(path: str | Path, features: int, time_steps: int | None = None,
                input_shape: tuple[int, ...] | None = None) -> np.ndarray:
    """The input spikes in ``path`` as ``(N, features, steps)`` uint8.

    Args:
        path: a ``.npy`` file (see the module docstring).
        features: the network's input size.
        time_steps: steps per sample; for events, the default is the last event's step + 1; a
            dense array keeps its own and must agree with it if given.
        input_shape: netx's ``(x, y, f)`` input of a conv-first network (for 2-D events).

    Raises:
        InputError: unreadable file, wrong shape or values; the message names the file, the
            shapes and what would fix it.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{option('inputs', path)}: no such file")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"{option('inputs', path)}: not a numpy .npy array ({exc}); save it with "
                         "numpy.save") from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
        raise InputError(f"{option('inputs', path)}: holds {getattr(array, 'dtype', type(array))}; "
                         "expected numbers")
    if array.ndim == 2 and array.shape[0] != features and array.shape[1] in (3, 4):
        return _from_events(path, array, features, time_steps, input_shape)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or array.shape[1] != features:
        raise InputError(
            f"{option('inputs', path)}: shape {array.shape}; the network reads {features} "
            "inputs, so a "
            f"dense array must be (N, {features}, steps) or ({features}, steps), or events "
            "(events, 3) as x, c, t / (events, 4) as x, y, c, t")
    if time_steps is not None and array.shape[2] != time_steps:
        raise InputError(f"{option('inputs', path)}: {array.shape[2]} steps per sample, but "
                         f"{option('time_steps', time_steps)}; drop {option('time_steps')}")
    if array.shape[0] == 0 or array.shape[2] == 0:
        raise InputError(f"{option('inputs', path)}: shape {array.shape} holds no samples or steps")
    return _as_payloads(path, array)


def _as_payloads(path: Path, array: np.ndarray) -> np.ndarray:
    values = np.asarray(array, dtype=np.float64)
    if not np.isfinite(values).all() or (values < 0).any() or (values > MAX_PAYLOAD).any() \
            or not np.array_equal(values, np.round(values)):
        raise InputError(f"{option('inputs', path)}: values must be 0/1 spikes or integer payloads "
                         f"0 .. {MAX_PAYLOAD}; found {values.min():g} .. {values.max():g}"
                         + ("" if np.array_equal(values, np.round(values)) else
                            " with fractions"))
    return values.astype(np.uint8)


def _from_events(path: Path, events: np.ndarray, features: int, time_steps: int | None,
                 input_shape: tuple[int, ...] | None) -> np.ndarray:
    events = np.asarray(events, dtype=np.float64)
    if not np.isfinite(events).all() or (events < 0).any():
        raise InputError(f"{option('inputs', path)}: events must be finite and non-negative")
    x = np.round(events[:, 0]).astype(np.int64)
    if events.shape[1] == 3:
        y = np.zeros_like(x)
        c, t = np.round(events[:, 1]).astype(np.int64), np.round(events[:, 2]).astype(np.int64)
        channels = int(c.max()) + 1 if len(c) else 1
        if features % channels:
            raise InputError(f"{option('inputs', path)}: events use {channels} channels, "
                             "which do not "
                             f"divide the network's {features} inputs")
        height, width = 1, features // channels
    else:
        y = np.round(events[:, 1]).astype(np.int64)
        c, t = np.round(events[:, 2]).astype(np.int64), np.round(events[:, 3]).astype(np.int64)
        if input_shape is None:
            raise InputError(f"{option('inputs', path)}: 2-D events (x, y, c, t) need the "
                             "network's "
                             "(x, y, channels) input shape, which only a conv-first network "
                             "records; convert them to a dense (N, features, steps) array")
        width, height, channels = (int(v) for v in input_shape)
    if len(x) and (x.max() >= width or y.max() >= height or c.max() >= channels):
        raise InputError(
            f"{option('inputs', path)}: events reach x={x.max()}, y={y.max()}, c={c.max()} but the "
            f"network's input is {width} wide, {height} high, {channels} channels")
    steps = time_steps if time_steps is not None else (int(t.max()) + 1 if len(t) else 1)
    if len(t) and t.max() >= steps:
        raise InputError(f"{option('inputs', path)}: events up to t = {t.max()} ms, beyond "
                         f"{option('time_steps', steps)}; raise {option('time_steps')}")
    spikes = np.zeros((1, features, steps), dtype=np.uint8)
    spikes[0, (c * height + y) * width + x, t] = 1  # lava-dl's 'OR' binning
    return spikes
