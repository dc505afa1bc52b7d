#!/usr/bin/env bash
# The whole suite: lint and types, then pytest on SQLite (browser tier included), then — when
# CERTNET_TEST_POSTGRES=1 — the same suite on a throwaway PostgreSQL cluster on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

echo "== lint: ruff, mypy, import contracts"
$BIN/ruff check .
$BIN/ruff format --check .
$BIN/mypy certnet
$BIN/lint-imports

scripts/ensure-chromium.sh || true
scripts/ensure-redis.sh || true

echo "== tests on SQLite"
$BIN/python -m pytest -p no:cacheprovider --create-db "$@"

if [ "${CERTNET_TEST_POSTGRES:-0}" = "1" ]; then
  echo "== tests on PostgreSQL"
  scripts/with-postgres.sh $BIN/python -m pytest -p no:cacheprovider --create-db "$@"
fi
