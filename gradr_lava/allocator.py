"""Keep freed CPU memory in the process during training (glibc's malloc), for speed.

A training step allocates and frees the same large tensors (tens of MB) every batch. glibc
serves blocks over its mmap threshold with fresh pages from the kernel and returns them on free,
so each step pays a page fault per 4 KiB touched: on MNIST 2FC that is about a third of a CPU
step. Raising the mmap and trim thresholds (``mallopt``, the same knobs as the
``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` environment variables) makes malloc
reuse those blocks instead. The cost: memory freed after the peak stays with the process until
it exits. Set ``GRADR_LAVA_MALLOC=default`` to leave malloc as it is. Other C libraries (macOS,
musl) are left alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
_KEEP_BYTES = 1 << 30  # glibc caps the mmap threshold at 32 MiB on 64-bit: 1 GiB means "max"
_TOP_PAD_BYTES = 64 << 20


def keep_freed_memory() -> bool:
    """Tune glibc malloc as the module docstring says; True if it was applied."""
    if os.environ.get("GRADR_LAVA_MALLOC", "") == "default":
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018  (glibc only: raises AttributeError elsewhere)
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    applied = mallopt(_M_MMAP_THRESHOLD, 32 << 20) == 1
    applied &= mallopt(_M_TRIM_THRESHOLD, _KEEP_BYTES) == 1
    applied &= mallopt(_M_TOP_PAD, _TOP_PAD_BYTES) == 1
    return bool(applied)
