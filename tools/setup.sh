#!/usr/bin/env bash
# Installs the system packages Finch needs when they are missing (Debian/Ubuntu), then nothing else.
# Safe to run again: it does nothing when everything is present.
set -euo pipefail
# chromium: headless, for the browser tests of `finch report`'s page (Tests/FinchTrainTests/ReportBrowserTests.swift).
need=(libsentencepiece-dev libzstd-dev libssl-dev pkg-config libopenmpi-dev openmpi-bin chromium)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "finch setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q >/dev/null || $SUDO apt-get update -q
  $SUDO apt-get install -y -q "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "finch setup: swift is not on PATH (install Swift 6 first)" >&2; exit 1; }
