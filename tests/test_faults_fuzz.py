"""A fuzzer for the netx reader and ``gradr-lava map``: mutated real files exit 0, 2 or 3 with a
message, never with a traceback or a hang."""

from __future__ import annotations

import contextlib
import io
import shutil
import tempfile
from pathlib import Path

import h5py
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradr_lava.cli import main

VALUES = st.one_of(
    st.integers(-(2**40), 2**40), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([b"CUBA", b"dense", b"conv", b"FOO", "x" * 20, b"\xff\xfe"]),
    st.lists(st.integers(-3, 1000), min_size=0, max_size=5),
    st.sampled_from(["zeros", "huge_shape", "complex", "string_array", "bool", "transpose",
                     "ragged", "empty"]),
)
ACTIONS = st.sampled_from(["replace", "delete", "add_layer", "retype", "replace", "replace"])


def _datasets(handle: h5py.File) -> list[str]:
    names: list[str] = []
    handle.visititems(lambda name, node: names.append(name)
                      if isinstance(node, h5py.Dataset) else None)
    return sorted(names)


def _value(kind, old: np.ndarray):
    if isinstance(kind, str) and kind == "zeros":
        return np.zeros_like(old)
    if kind == "huge_shape":
        return np.array([2**30, 2**30])
    if kind == "complex":
        return np.ones(old.shape, np.complex64)
    if kind == "string_array":
        return np.array([b"a", b"b"])
    if kind == "bool":
        return np.ones(old.shape, bool)
    if kind == "transpose":
        return old.T.copy() if old.ndim == 2 else old
    if kind == "ragged":
        return np.arange(7, dtype=np.float32)
    if kind == "empty":
        return np.zeros((0,))
    return kind


def _mutate(path: Path, data) -> None:
    with h5py.File(path, "a") as handle:
        for _ in range(data.draw(st.integers(1, 3))):
            names = _datasets(handle)
            action = data.draw(ACTIONS)
            if action == "add_layer":
                handle["layer"].create_group(str(len(handle["layer"])))
                continue
            if not names:
                return
            name = data.draw(st.sampled_from(names))
            old = handle[name][()]
            del handle[name]
            if action == "delete":
                continue
            if action == "retype":
                dtype = data.draw(st.sampled_from(["f2", "i1", "u1", "f8", "i8"]))
                try:
                    handle[name] = np.asarray(old).astype(dtype)
                except (TypeError, ValueError):  # e.g. a string: keep it
                    handle[name] = old
                continue
            value = _value(data.draw(VALUES), np.asarray(old))
            try:
                handle[name] = value
            except (TypeError, ValueError):
                handle[name] = np.asarray(old)


def _run_map(path: Path, out: Path) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["map", str(path), "--out", str(out)])
    return code, err.getvalue()


@settings(max_examples=1000, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data(), which=st.sampled_from(["mlp", "conv"]))
def test_mutated_netx_files_never_crash_map(tiny_run: Path, tiny_conv_run: Path, data,
                                            which: str) -> None:
    source = (tiny_run if which == "mlp" else tiny_conv_run) / "model.net"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.net"
        shutil.copy(source, path)
        _mutate(path, data)
        code, err = _run_map(path, Path(folder) / "out")  # any traceback fails the test
        assert code in (0, 2, 3), (code, err)
        if code:
            assert err.strip() and "Traceback" not in err
