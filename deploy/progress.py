"""Progress on stderr: a tqdm bar on a terminal, plain lines in a log.

A tqdm bar redraws itself with carriage returns, which fill a log file or CI output with noise.
When stderr is not a terminal, :func:`progress` instead prints one line each time another 10%
is done (count, rate, time left) and one at the end.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TextIO


def is_terminal(stream: TextIO | None = None) -> bool:
    stream = stream or sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())


def progress(iterable: Iterable[Any] | None = None, *, total: int, desc: str, unit: str,
             enabled: bool = True, stream: TextIO | None = None, **tqdm_args: Any) -> Any:
    """A progress object with tqdm's ``update``, ``set_postfix``, ``close`` and iteration.

    Args:
        iterable: what to iterate over, or None to call ``update`` by hand.
        total: the count at 100% (in ``unit``).
        desc: the label (e.g. ``"lava"``).
        unit: what is counted (e.g. ``"sample"``).
        enabled: False: no output at all.
        stream: where to write (default stderr).
        tqdm_args: passed to tqdm on a terminal.
    """
    stream = stream or sys.stderr
    if enabled and is_terminal(stream):
        from tqdm import tqdm

        return tqdm(iterable, total=total, desc=desc, unit=unit, file=stream, **tqdm_args)
    return LineProgress(iterable, total=total, desc=desc, unit=unit, stream=stream,
                        enabled=enabled)


class LineProgress:
    """One line per 10% done, for logs (see the module docstring)."""

    def __init__(self, iterable: Iterable[Any] | None, *, total: int, desc: str, unit: str,
                 stream: TextIO, enabled: bool = True, step: float = 0.1) -> None:
        self.iterable, self.total, self.desc, self.unit = iterable, max(int(total), 0), desc, unit
        self.stream, self.enabled, self.step = stream, enabled, step
        self.n, self._next, self._postfix = 0, step, ""
        self._start = time.perf_counter()
        self._closed = False

    def __iter__(self) -> Iterator[Any]:
        for item in self.iterable or ():
            yield item
            self.update(1)

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.total and self.n / self.total >= self._next - 1e-12 and self.n < self.total:
            self._line()
            while self._next <= self.n / self.total:
                self._next += self.step

    def set_postfix(self, refresh: bool = False, **values: Any) -> None:
        self._postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def close(self) -> None:
        if not self._closed and self.n:
            self._line()
        self._closed = True

    def _line(self) -> None:
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self._start
        rate = self.n / elapsed if elapsed > 0 else float("nan")
        share = f"{100 * self.n / self.total:.0f}%" if self.total else "?"
        left = (self.total - self.n) / rate if self.total and rate > 0 else 0.0
        extra = f", {self._postfix}" if self._postfix else ""
        print(f"{self.desc}: {share} ({self.n}/{self.total} {self.unit}s, {rate:.3g} "
              f"{self.unit}s/s, {elapsed:.0f} s, {left:.0f} s left{extra})", file=self.stream,
              flush=True)
