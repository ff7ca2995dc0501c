#!/usr/bin/env bash
# Install what the JupyterLab UI test needs: Debian's chromium and the Playwright Python client.
#
# Usage: scripts/install_ui_deps.sh [PYTHON]      (PYTHON defaults to .venv/bin/python)
#
# Idempotent and quick when both are present. Playwright drives the system chromium; its own
# browser download (`playwright install`) is never run: it cannot work offline and is not needed.
# Set SERLIB_CHROMIUM=/path/to/chromium to use a browser installed some other way.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${1:-.venv/bin/python}"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

fail() { echo "install_ui_deps: $*" >&2; exit 1; }

# ----- chromium --------------------------------------------------------------------------------
chromium_path() {
    if [ -n "${SERLIB_CHROMIUM:-}" ]; then
        [ -x "$SERLIB_CHROMIUM" ] || fail "SERLIB_CHROMIUM=$SERLIB_CHROMIUM is not an executable file"
        echo "$SERLIB_CHROMIUM"
    else
        command -v chromium || true
    fi
}

browser="$(chromium_path)"
if [ -z "$browser" ]; then
    command -v apt-get >/dev/null 2>&1 || fail "chromium is missing and apt-get is not available.
Install Chromium with your system's package manager and run again with SERLIB_CHROMIUM=/path/to/chromium."
    if [ "$(id -u)" -eq 0 ]; then
        as_root=()
    elif command -v sudo >/dev/null 2>&1; then
        echo "install_ui_deps: installing chromium with sudo (you may be asked for your password)"
        as_root=(sudo)
    else
        fail "chromium is missing; install it as root: apt-get update && apt-get install -y chromium"
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${as_root[@]}" apt-get update -qq
    "${as_root[@]}" apt-get install -y -qq --no-install-recommends chromium
    browser="$(chromium_path)"
    [ -n "$browser" ] || fail "apt-get installed chromium but no 'chromium' command is on PATH"
fi
# A snap wrapper (Ubuntu's transitional package) cannot run headless in containers: say so early.
version="$("$browser" --version 2>/dev/null)" || fail "$browser does not run ('$browser --version' failed).
On Ubuntu the 'chromium' apt package is a snap wrapper; install a .deb Chromium or Google Chrome and
set SERLIB_CHROMIUM=/path/to/it."
echo "install_ui_deps: browser  $browser ($version)"

# ----- Playwright client -----------------------------------------------------------------------
[ -x "$PY" ] || fail "$PY not found; run 'make install' first (or pass the Python to use)"
if ! "$PY" -c "import playwright" >/dev/null 2>&1; then
    constraints=()
    [ -f constraints.txt ] && constraints=(-c constraints.txt)
    "$PY" -m pip install --quiet "${constraints[@]}" playwright
fi
echo "install_ui_deps: client   playwright $("$PY" -c 'from importlib.metadata import version; print(version("playwright"))')"
