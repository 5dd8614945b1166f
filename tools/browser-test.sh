#!/usr/bin/env bash
# Browser test of the check page at `/`: drives Debian's chromium headless (through playwright-core
# from npm, which downloads no browser) against a real `hibp-mirror serve` on 127.0.0.1, with the
# bundled sample. See tools/browser-test/test.mjs for the list of checks.
#
# Usage: tools/browser-test.sh [--quick] [--screenshot docs/check-page.png]
#   Installs chromium (apt) and node (apt) when missing, and playwright-core (npm ci, pinned in
#   tools/browser-test/package-lock.json). Takes about 15 s once built; --quick is accepted for
#   symmetry with the other tools (the test is always quick). Screenshots go to target/browser-test.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
    else
        echo "browser-test: please install $* (apt-get install $*)" >&2
        exit 1
    fi
}
command -v chromium >/dev/null || apt_install chromium
command -v node >/dev/null || apt_install nodejs npm

cargo build --quiet --bin hibp-mirror
(cd tools/browser-test && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --silent --no-audit --no-fund)
node tools/browser-test/test.mjs --bin target/debug/hibp-mirror --out target/browser-test \
    --chromium "$(command -v chromium)" "$@"
