#!/usr/bin/env bash
# Test needs that are not Python packages, installed only when missing (the README's test
# command and .ci/run start with this script):
#   - Debian's chromium and chromium-driver, the real browser the console tests drive;
#   - axe-core from npm, the accessibility checker those tests inject into each page,
#     kept in a cache directory outside the repository (FACEGATE_TEST_CACHE).
set -euo pipefail
cache="${FACEGATE_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/facegate-tests}"
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
command -v npm >/dev/null || missing+=(npm)
if [ "${#missing[@]}" -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ ! -f "$cache/node_modules/axe-core/axe.min.js" ]; then
    mkdir -p "$cache"
    npm install --silent --no-audit --no-fund --prefix "$cache" axe-core@4 >/dev/null
fi
