#!/usr/bin/env bash
# The browser tests drive Debian's chromium. Install it when missing and we may (root, apt).
# With CERTNET_REQUIRE_BROWSER=1 the browser tests fail instead of skipping if it is still missing.
set -uo pipefail
[ -x /usr/bin/chromium ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "== installing chromium (Debian package) for the browser tests"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi
[ -x /usr/bin/chromium ] || { echo "chromium not available: browser tests will be skipped" >&2; exit 1; }
