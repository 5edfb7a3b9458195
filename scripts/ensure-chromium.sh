#!/usr/bin/env bash
# Make sure a Chromium exists for Playwright: the one playwright.config names, Playwright's own,
# or Debian's package (installed through apt when we are root), else `playwright install chromium`.
set -euo pipefail
PY="${1:-.venv/bin/python}"
exe=$("$PY" -c 'from scraper.config import load_browser_settings as l; print(l().executable_path or "")')
if [ -n "$exe" ] && [ -x "$exe" ]; then
    exit 0
fi
if [ -n "$exe" ] && [ "$exe" != /usr/bin/chromium ]; then
    echo "playwright.config (or SHORTVID_EXECUTABLE_PATH) names $exe, which does not exist; fix the path" >&2
    exit 1
fi
if [ -z "$exe" ] && ls "${PLAYWRIGHT_BROWSERS_PATH:-$HOME/.cache/ms-playwright}"/chromium-*/chrome-linux*/chrome >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's chromium through apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium >/dev/null
    exit 0
fi
echo "no chromium found; trying 'playwright install chromium'" >&2
"$PY" -m playwright install chromium
