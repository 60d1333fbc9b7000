"""Install Lava into the running environment: ``gradr-lava setup-lava``.

lava-nc 0.10.0 and lava-dl 0.6.0, the last releases (upstream is archived), declare Python
< 3.11 and pin a CUDA torch < 2.4, so no plain ``pip install`` reaches them on Python 3.11 and
a wheel cannot declare them. Their real runtime dependencies (numpy, scipy, networkx, asteval,
h5py, pillow, ninja, opencv) are ordinary dependencies of gradr-lava (``pyproject.toml``), so
this step only has to:

1. install the two wheels with ``--no-deps --ignore-requires-python`` (:data:`LAVA_PACKAGES`);
2. write a start-up hook (:data:`HOOK_NAME`, a ``.pth`` file in site-packages) that registers
   :mod:`gradr_deploy.simulation.lava_compat`'s import fixes in every interpreter of the
   environment, so that a
   lava-dl user's own ``import lava.lib.dl.slayer`` / ``from lava.lib.dl import netx`` works
   without importing gradr-lava first. The hook costs one small import at start-up (no torch,
   no Lava) and does nothing when ``GRADR_LAVA_COMPAT=0``;
3. check both imports in a fresh interpreter.

Commands that need Lava call :func:`require_lava` first, which raises
:class:`~gradr_deploy.errors.BackendUnavailableError` (exit code 4) naming this command.

Only the standard library is imported.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import sysconfig
from pathlib import Path

from gradr_deploy.errors import BackendUnavailableError

LAVA_PACKAGES = ("lava-nc==0.10.0", "lava-dl==0.6.0")
HOOK_NAME = "gradr_lava_compat.pth"
# one line: .pth files execute lines that start with "import"; a broken or removed package must
# not print an error at every interpreter start, hence the try
HOOK_LINE = ("import sys; exec('try:\\n import gradr_deploy.simulation.lava_startup\\n"
             "except Exception:\\n pass')\n")
CHECK = "import lava.proc.lif.process, lava.lib.dl.slayer; from lava.lib.dl import netx"
SETUP_COMMAND = "gradr-lava setup-lava"


def lava_missing() -> str | None:
    """Why Lava cannot be used here (a sentence), or None when lava-nc and lava-dl are present."""
    missing = [name for name, module in (("lava-nc 0.10.0", "lava.magma"),
                                         ("lava-dl 0.6.0", "lava.lib.dl"))
               if _find(module) is None]
    if not missing:
        return None
    return f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed"


def require_lava(needed_for: str) -> None:
    """Raise BackendUnavailableError (exit 4) unless lava-nc and lava-dl are installed."""
    problem = lava_missing()
    if problem is not None:
        raise BackendUnavailableError(
            f"{needed_for} needs Lava, but {problem} in {sys.prefix}. Run `{SETUP_COMMAND}` "
            "once (pip cannot install them directly: their wheels declare Python < 3.11)")


def hook_path() -> Path:
    """Where the start-up hook goes: this environment's site-packages (purelib)."""
    return Path(sysconfig.get_paths()["purelib"]) / HOOK_NAME


def write_hook() -> Path:
    """Write (or refresh) the start-up hook atomically; return its path."""
    from gradr_deploy.atomic import atomic_path

    path = hook_path()
    with atomic_path(path) as tmp:
        tmp.write_text(HOOK_LINE)
    return path


def check_imports() -> subprocess.CompletedProcess[str]:
    """``import lava...; from lava.lib.dl import netx`` in a fresh interpreter, as a user would
    (the start-up hook, not this package, supplies the compat fixes)."""
    return subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True,
                          timeout=600)


def setup_lava(pip_args: tuple[str, ...] = (), progress=print) -> Path:
    """Install lava-nc and lava-dl (no dependencies), write the hook, check the imports.

    Args:
        pip_args: extra arguments for pip (e.g. ``--index-url ...``).
        progress: called with one line per step.

    Returns:
        the start-up hook's path.

    Raises:
        BackendUnavailableError: pip failed, or the imports fail afterwards (the message
            holds pip's or Python's last lines).
    """
    if lava_missing() is not None:
        progress(f"installing {' '.join(LAVA_PACKAGES)} (--no-deps) into {sys.prefix}")
        command = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check",
                   "--quiet", "--no-deps", "--ignore-requires-python", *pip_args,
                   *LAVA_PACKAGES]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise BackendUnavailableError(
                f"pip could not install {' '.join(LAVA_PACKAGES)}:\n{_tail(done.stderr)}\n"
                "Check that a package index with them is reachable (--index-url / "
                "PIP_INDEX_URL)")
    else:
        progress("lava-nc and lava-dl are already installed")
    path = write_hook()
    progress(f"wrote {path} (Lava's Python 3.11 fixes load with every `import lava`; "
             "GRADR_LAVA_COMPAT=0 turns them off)")
    checked = check_imports()
    if checked.returncode != 0:
        raise BackendUnavailableError(
            f"Lava is installed but does not import:\n{_tail(checked.stderr)}")
    progress("Lava imports: " + CHECK)
    return path


def _find(module: str) -> object | None:
    try:
        return importlib.util.find_spec(module)
    except (ImportError, ValueError):  # a parent package that is missing or broken
        return None


def _tail(text: str, lines: int = 12) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
