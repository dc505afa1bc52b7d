#!/usr/bin/env bash
# The distributed feed tests start their own redis-server on loopback. Install Debian's package when
# missing and we may (root, apt). With CERTNET_REQUIRE_REDIS=1 those tests fail instead of skipping.
set -uo pipefail
command -v redis-server >/dev/null && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "== installing redis-server (Debian package) for the distributed feed tests"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq redis-server >/dev/null
fi
command -v redis-server >/dev/null || { echo "redis-server not available: distributed feed tests will be skipped" >&2; exit 1; }
