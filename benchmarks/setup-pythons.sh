#!/usr/bin/env bash
# The torch-free benchmark's other Pythons: .venv3.12 and .venv3.13 (where sys.monitoring runs), each with
# the pinned viztracer. Says which Pythons are missing; never fails for that.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/pythons.sh
viztracer=$(grep -E '^viztracer==' requirements.txt)
for v in 3.12 3.13; do
    if ! core_venv "$v"; then
        echo "NOTE: python$v is not installed: the torch-free benchmark leaves it out."
        continue
    fi
    ".venv$v/bin/python" -c "import viztracer" 2>/dev/null ||
        ".venv$v/bin/python" -m pip install --quiet --disable-pip-version-check "$viztracer"
done
