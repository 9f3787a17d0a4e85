#!/usr/bin/env bash
# Installs Debian's Chromium for the prioritised view's browser test (cmd/threatpipe
# TestBrowserView, driven with chromedp). It installs only when chromium is missing, the machine
# has apt-get and the script runs as root; otherwise it says why and exits 0, and the browser test
# skips itself with the reason (make test sets THREATPIPE_TEST_REQUIRE_BROWSER=1 where it can
# install, so that there it fails instead).
#
#   scripts/install-chromium.sh
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
	echo "install-chromium: $(chromium --version 2>/dev/null || echo chromium) is present"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "install-chromium: not root; not installing chromium (the browser test will skip)"
	exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "install-chromium: no apt-get; not installing chromium (the browser test will skip)"
	exit 0
fi
echo "install-chromium: installing chromium (Debian package)"
export DEBIAN_FRONTEND=noninteractive
# A stale package index makes install fail with 404s; refresh it once and retry.
if ! apt-get install -y --no-install-recommends chromium; then
	apt-get update
	apt-get install -y --no-install-recommends chromium
fi
chromium --version
