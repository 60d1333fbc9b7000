"""The ``gradr-lava`` command line: ``train``, ``deploy`` and ``map``.

Each command parses its flags (:mod:`gradr_lava.cli.parser`), calls the Python API and prints a
short summary (:mod:`gradr_lava.cli.commands`). Errors are printed as one line with the exit
code of their type; library messages name options as this command line's flags.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Sequence

from gradr_deploy.errors import ToolchainError, flag_names
from gradr_lava.cli.parser import EXIT_CODES, build_parser

__all__ = ["EXIT_CODES", "build_parser", "main"]


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived: unwind like Ctrl-C (``finally`` blocks run), then exit."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum: int, _frame: object) -> None:
    raise Terminated(signum)


# Python keywords whose flag is not the keyword with "-" for "_" (gradr_lava.Pruning(method))
FLAG_NAMES = {"method": "--prune"}


def _flag_name(keyword: str) -> str:
    """The flag of a Python API keyword, as library messages name it (``option()``)."""
    return FLAG_NAMES.get(keyword, "--" + keyword.replace("_", "-"))


def _os_error_message(exc: OSError) -> str:
    where = exc.filename if exc.filename is not None else "a file"
    reason = exc.strerror or str(exc)
    return f"{where}: {reason}; check the path, its permissions and the free disk space"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    previous = {}
    if threading.current_thread() is threading.main_thread():  # signal() works only there
        previous = {sig: signal.signal(sig, _raise_terminated)
                    for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        with flag_names(_flag_name):
            return args.handler(args)
    except ToolchainError as exc:
        print(f"gradr-lava {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        print(f"gradr-lava {args.command}: error: {_os_error_message(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gradr-lava {args.command}: interrupted", file=sys.stderr)
        return 130
    except Terminated as exc:
        name = signal.Signals(exc.signum).name
        print(f"gradr-lava {args.command}: stopped by {name}", file=sys.stderr)
        return 128 + exc.signum
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
