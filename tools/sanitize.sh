#!/usr/bin/env bash
# The sanitizer tier (issue 18): the test suite under AddressSanitizer, or the concurrent parts (thread pool,
# kernels that use it, streaming chat and batched generation) under ThreadSanitizer.
#
#   tools/sanitize.sh address            # every test, ASan (release build: numeric code is too slow in debug)
#   tools/sanitize.sh thread             # the concurrent tests, TSan
#   tools/sanitize.sh address --filter X # extra arguments go to `swift test`
#
# Builds go to ${FINCH_SAN_BUILD:-~/.cache/finch/san}/<sanitizer>, outside the tree, so they are reused.
# Exits non-zero when a sanitizer reports an error or a test fails.
set -euo pipefail
cd "$(dirname "$0")/.."
kind="${1:-}"; shift || true
case "$kind" in
  address|thread) ;;
  *) echo "usage: tools/sanitize.sh address|thread [swift test arguments]" >&2; exit 2 ;;
esac
build="${FINCH_SAN_BUILD:-$HOME/.cache/finch/san}/$kind"
mkdir -p "$build"

# ThreadSanitizer's default: only the tests that run work on several threads at once (the whole suite under TSan
# takes hours on two cores). AddressSanitizer runs everything.
filter=()
if [[ "$kind" == thread && $# -eq 0 ]]; then
  filter=(--filter 'ThreadPoolTests|GemmTests|AttentionTests|CrossEntropyTests|ChatSessionTests|ChatProcessTests|GenerationTests|DecoderChatEngineTests|BatchGeneratorTests|StreamTextTests|PackReaderTests|SegmentCacheConcurrencyTests')
fi

# halt_on_error: the first report fails the run. Leak checking is off: Swift's runtime keeps metadata and
# globals alive on purpose, which LeakSanitizer reports as leaks.
export ASAN_OPTIONS="${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=0}"
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}"

start=$(date +%s)
echo "sanitize.sh: building with -sanitize=$kind into $build"
swift build -c release --build-tests --sanitize="$kind" --scratch-path "$build"
echo "sanitize.sh: running the tests under $kind sanitizer"
swift test -c release --skip-build --sanitize="$kind" --scratch-path "$build" "${filter[@]}" "$@"
echo "sanitize.sh: $kind sanitizer: no report, every test passed ($(( $(date +%s) - start )) s)"
