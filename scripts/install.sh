#!/usr/bin/env bash
# Create (or complete) the project's virtual environment: CPU torch, gradr-lava, Lava.
# Usage: scripts/install.sh [VENV_DIR] [PYTHON]
#
# 1. a CPU torch (the default torch wheel on PyPI is a multi-GB CUDA build);
# 2. gradr-lava in editable mode with its `dev` extra: every dependency, pinned in one place
#    (pyproject.toml), Lava's real runtime dependencies included;
# 3. `gradr-lava setup-lava`: lava-nc 0.10.0 and lava-dl 0.6.0, which declare Python <3.11 and
#    pin a CUDA torch<2.4, installed without their declared dependencies, plus a start-up hook
#    that applies deploy/simulation/lava_compat.py's Python 3.11 fixes to every `import lava` (nothing in
#    site-packages is edited). The same command is the wheel route's second step (README).
# `pip check` reports lava-dl's unmet pins afterwards: that is expected.
set -euo pipefail
venv=${1:-.venv}
python=${2:-python3.11}
# A CPU build of torch. Where pip cannot find 2.13.0 as a CPU wheel (its find-links or index),
# point PIP_EXTRA_INDEX_URL at PyTorch's CPU wheel index, or set TORCH_SPEC.
torch_spec=${TORCH_SPEC:-torch==2.13.0}

if ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
    echo "error: $python is not Python 3.11 (set PYTHON=/path/to/python3.11)" >&2
    exit 2
fi
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
# pip's output, less the expected noise: lava-dl's unmet pins, and warnings about package
# index locations configured on the machine that do not exist.
quiet_pip() {
    "$venv/bin/python" -m pip --quiet --disable-pip-version-check "$@" 2>&1 \
        | { grep -v -e "^WARNING: Location" -e "lava-dl 0.6.0 requires" \
                    -e "dependency resolver does not currently" || true; }
    return "${PIPESTATUS[0]}"
}
quiet_pip install "$torch_spec"
quiet_pip install --no-build-isolation -e ".[dev]"
"$venv/bin/gradr-lava" setup-lava \
    || { echo "error: Lava does not install or import in $venv (see above)" >&2; exit 1; }
echo "environment ready: $venv"
