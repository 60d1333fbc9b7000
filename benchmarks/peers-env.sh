#!/usr/bin/env bash
# Build the peers' environment for benchmarks/training_throughput.py: CPU torch plus
# SpikingJelly and snnTorch (requirements/bench-peers.txt). Usage: benchmarks/peers-env.sh [DIR]
set -euo pipefail
venv=${1:-.venv-peers}
python=${PYTHON:-python3.11}
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip --quiet --disable-pip-version-check install \
    -r "$(dirname "$0")/../requirements/bench-peers.txt" 2>&1 | grep -v "^WARNING: Location" || true
"$venv/bin/python" -c "import spikingjelly, snntorch, torch; print('peers ready:', torch.__version__)"
