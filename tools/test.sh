#!/usr/bin/env bash
# The test command: installs missing system packages, prepares the reference vectors and real models the tests
# compare against (tools/test_assets.sh, cached outside the tree), then runs the whole test suite in release mode
# (numeric code is far too slow in debug builds). Conformance cases print one line each.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
tools/test_assets.sh || echo "test.sh: some reference assets could not be prepared; the tests that need them will say so"
swift build -c release
swift test -c release "$@"
