#!/usr/bin/env bash
# Runs the torch-free core's tests on Python 3.10 (setprofile, no co_qualname), and on 3.12 and 3.13,
# where sys.monitoring is the backend.
# Each gets a small virtual environment with pytest and the package alone: the core must not need torch.
set -euo pipefail
cd "$(dirname "$0")/.."

source .ci/pythons.sh

missing=()
for v in 3.10 3.12 3.13; do
    if ! core_venv "$v"; then
        missing+=("$v")
        continue
    fi
    venv=".venv$v"
    echo "== the torch-free core on Python $v ($("$venv/bin/python" -c 'import platform; print(platform.python_version())'))"
    "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/test_core.py tests/test_faults.py tests/test_views.py tests/test_workers_core.py tests/test_eventlog.py tests/test_build.py
done
for v in "${missing[@]}"; do
    echo "NOTE: python$v is not installed: the torch-free core was not tested on it."
done
