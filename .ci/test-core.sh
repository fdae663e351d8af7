#!/usr/bin/env bash
# Runs the torch-free core's tests on Python 3.10 (setprofile, no co_qualname), and on 3.12 and 3.13,
# where sys.monitoring is the backend.
# Each gets a small virtual environment with pytest alone: the core must not need torch.
set -euo pipefail
cd "$(dirname "$0")/.."

find_python() {
    local v=$1 full
    if command -v "python$v" >/dev/null 2>&1 && "python$v" -c "" >/dev/null 2>&1; then
        command -v "python$v"
        return
    fi
    if command -v pyenv >/dev/null 2>&1; then
        full=$(pyenv versions --bare 2>/dev/null | grep -E "^$v\.[0-9]+$" | sort -V | tail -n 1)
        if [ -n "$full" ] && [ -x "$(pyenv root)/versions/$full/bin/python$v" ]; then
            echo "$(pyenv root)/versions/$full/bin/python$v"
        fi
    fi
}

missing=()
for v in 3.10 3.12 3.13; do
    python=$(find_python "$v")
    if [ -z "$python" ]; then
        missing+=("$v")
        continue
    fi
    venv=".venv$v"
    if [ ! -x "$venv/bin/pytest" ]; then
        "$python" -m venv "$venv"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$(grep -E '^pytest==' requirements.txt)"
    fi
    echo "== the torch-free core on Python $v ($("$venv/bin/python" -c 'import platform; print(platform.python_version())'))"
    PYTHONPATH=. "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/test_core.py
done
for v in "${missing[@]}"; do
    echo "NOTE: python$v is not installed: the torch-free core was not tested on it."
done
