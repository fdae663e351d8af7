#!/usr/bin/env bash
# Makes .venv-torch2.13, the drift report's second environment: torch 2.13.0 (CPU) and a kernel, from
# requirements-drift.txt, again only when that file changed. Where torch 2.13.0 cannot be had, it says so
# and exits 0: the drift test then skips with that reason.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
venv=.venv-torch2.13
stamp=$venv/.installed
if [ -f "$stamp" ] && [ ! requirements-drift.txt -nt "$stamp" ]; then
    exit 0
fi
echo "== the drift report's second environment: $venv (torch 2.13.0, CPU)"
if "$PYTHON" -m venv "$venv" && "$venv/bin/python" -m pip install --disable-pip-version-check --progress-bar off \
        -r requirements-drift.txt; then
    touch "$stamp"
else
    rm -rf "$venv"
    echo "NOTE: torch 2.13.0 could not be installed for $PYTHON: the drift report and its test are left out."
fi
exit 0
