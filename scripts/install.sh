#!/usr/bin/env bash
# Create (or complete) the project's virtual environment: CPU torch, Lava engines, gradr-lava.
# Usage: scripts/install.sh [VENV_DIR] [PYTHON]
#
# lava-nc 0.10.0 and lava-dl 0.6.0 declare Python <3.11 and pin torch<2.4 (a multi-GB CUDA build
# by default), torchvision and pytest<8, none of which are needed to run on the CPU. They are
# therefore installed with --no-deps, and their real runtime dependencies are resolved normally
# from requirements/runtime.txt. The two import-time incompatibilities with Python 3.11 are
# handled by deploy/lava_compat.py at run time; nothing in site-packages is edited.
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
quiet_pip install --no-deps --ignore-requires-python lava-nc==0.10.0 lava-dl==0.6.0
quiet_pip install -r requirements/runtime.txt -r requirements/dev.txt
quiet_pip install --no-deps --no-build-isolation -e .
"$venv/bin/python" -c "import deploy.lava_compat as c; c.install(); import lava.proc.lif.process, lava.lib.dl.slayer" \
    || { echo "error: Lava does not import in $venv (see above)" >&2; exit 1; }
echo "environment ready: $venv"
