#!/usr/bin/env bash
# The test command: installs missing system packages, then runs the whole test suite in release mode
# (numeric code is far too slow in debug builds). Conformance cases print one line each.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
swift build -c release
swift test -c release "$@"
