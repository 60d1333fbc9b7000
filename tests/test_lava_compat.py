"""The Python 3.11 shim for lava-nc 0.10.0 / lava-dl 0.6.0 keeps working, and is still needed.

Every check runs in a fresh interpreter: import state cannot leak between the cases.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from gradr_deploy.simulation import lava_compat


def _python(code: str, hook: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter; ``hook=False`` turns the environment's start-up
    hook (``gradr-lava setup-lava``'s .pth file) off."""
    env = {**os.environ, "GRADR_LAVA_COMPAT": "1" if hook else "0"}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=300, env=env,
    )


def test_lava_processes_slayer_and_netx_import_through_the_shim() -> None:
    result = _python("""
        from gradr_deploy.simulation import lava_compat
        lava_compat.install()
        from lava.proc.lif.process import LIF
        from lava.proc.dense.process import Dense
        from lava.magma.core.run_configs import Loihi2SimCfg
        from lava.magma.compiler.var_model import CoreEncoder
        import lava.lib.dl.slayer as slayer
        from lava.lib.dl import netx
        a, b = CoreEncoder(), CoreEncoder()
        assert a.x is not b.x, "each instance needs its own ByteEncoder"
        assert slayer.block.cuba.Dense is not None
        print("ok")
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_without_the_shim_lava_fails_on_python_311() -> None:
    result = _python("from lava.proc.lif.process import LIF", hook=False)
    assert result.returncode != 0
    assert "mutable default" in result.stderr


def test_slayer_object_detection_placeholder_explains_itself() -> None:
    result = _python("""
        from gradr_deploy.simulation import lava_compat
        lava_compat.install()
        import lava.lib.dl.slayer as slayer
        try:
            slayer.obd.models
        except ImportError as exc:
            print(exc)
    """)
    assert result.returncode == 0, result.stderr
    assert "torchvision" in result.stdout
    assert "gradr-lava does not use it" in result.stdout


def test_the_installed_lava_simulation_module_imports() -> None:
    result = _python("import gradr_deploy.simulation.lava_sim; print('ok')")
    assert result.returncode == 0, result.stderr


def test_patch_refuses_an_unknown_lava_release() -> None:
    source = "from __future__ import annotations\nx: ByteEncoder = ByteEncoder()\n"
    with pytest.raises(lava_compat.LavaCompatError, match="found 1"):
        lava_compat.patch_var_model_source(source)


def test_patch_keeps_the_future_import_first() -> None:
    body = "".join(f"f{i}: ByteEncoder = ByteEncoder()\n" for i in range(8))
    patched = lava_compat.patch_var_model_source(
        '"""doc"""\nfrom __future__ import annotations\n' + body
    )
    compile(patched, "var_model.py", "exec")
    assert patched.count("_gl_field(default_factory=ByteEncoder)") == 8


def test_install_is_idempotent() -> None:
    lava_compat.install()
    lava_compat.install()
    finders = [f for f in sys.meta_path if isinstance(f, lava_compat.LavaCompatFinder)]
    assert len(finders) == 1


def test_lava_imports_after_the_host_fixed_the_start_method() -> None:
    result = _python("""
        import multiprocessing
        multiprocessing.set_start_method('fork')
        from gradr_deploy.simulation import lava_compat
        lava_compat.install()
        import lava.magma.runtime.runtime
        print(multiprocessing.get_start_method())
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "fork"


def test_plain_lava_dl_scripts_work_in_the_environment() -> None:
    """The start-up hook (written by ``gradr-lava setup-lava``, which scripts/install.sh runs)
    lets a lava-dl user's own script import Lava without importing gradr-lava."""
    from gradr_deploy.simulation.lava_setup import hook_path

    assert hook_path().exists(), "run `gradr-lava setup-lava` (scripts/install.sh does)"
    result = _python("""
        import sys
        import lava.lib.dl.slayer as slayer
        from lava.lib.dl import netx
        from lava.proc.lif.process import LIF
        print(sorted(m for m in sys.modules if m.split(".")[0] == "gradr_lava"))
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
