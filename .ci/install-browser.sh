#!/bin/sh
# Installs Debian's headless-capable Chromium for the browser tests (tests/test_browser.py).
# Idempotent: does nothing when chromium is already installed.
set -eu

if command -v chromium >/dev/null 2>&1; then
    exit 0
fi

# apt needs root; use sudo only when we are not root already.
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
if command -v apt-get >/dev/null 2>&1 && $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q chromium >/dev/null \
        && command -v chromium >/dev/null 2>&1; then
    exit 0
fi
echo "NOTE: could not install Debian's chromium: the browser tests (tests/test_browser.py) will be skipped." >&2
# CI must run them: there a missing browser is a failure, not a skip.
[ -z "${CI:-}" ]
