#!/usr/bin/env bash
# System packages the test suite needs: Debian's Chromium (browser tests, driven by
# Playwright), a CJK font (so Chinese renders in screenshots and PNG exports) and
# PostgreSQL 15 with PostGIS 3 (the PostGIS backend's tests start a private cluster).
# Installs only what is missing (running it again changes nothing); needs root (or
# passwordless sudo) when something is.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
fc-list 2>/dev/null | grep -qi "Noto Sans CJK" || need+=(fonts-noto-cjk)
dpkg-query -W -f='${Status}' postgresql-15-postgis-3 2>/dev/null | grep -q "install ok installed" \
  || need+=(postgresql-15-postgis-3)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "geoapp: missing system packages: ${need[*]} (install them as root: apt-get install ${need[*]})" >&2
    exit 1
  fi
fi
echo "geoapp: installing system packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" fontconfig >/dev/null
