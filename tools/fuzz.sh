#!/usr/bin/env bash
# Fuzzes Finch's parsers with libFuzzer (issue 18, item 4).
#
#   tools/fuzz.sh SECONDS [TARGET...]      TARGET: safetensors gguf jsonl manifest template tokenizer (default: all)
#
# Builds the fuzz package in tools/fuzz (`-sanitize=fuzzer,address`, instrumenting the Finch targets too), then runs
# each target for SECONDS on a writable copy of its committed seed corpus (tools/fuzz/corpus/TARGET, never written
# to), with -rss_limit_mb=2048 -timeout=10. Crash, timeout and out-of-memory inputs go to an artifacts folder that
# is printed at the end. Exits 1 when any target found something, 2 on a usage or build error.
#
# Environment:
#   FINCH_FUZZ_BUILD   build cache (default ~/.cache/finch/fuzz-build)
#   FINCH_FUZZ_WORK    working corpora, logs, artifacts (default ~/.cache/finch/fuzz-work); the working corpus of a
#                      target grows across runs (new inputs that reach new code are kept)
#   FINCH_FUZZ_SKIP_BUILD=1   reuse the last build
#   FINCH_FUZZ_ARGS    extra libFuzzer flags, e.g. "-jobs=2 -workers=2" or "-max_len=65536"
#
# To reproduce a finding: FINCH_FUZZ_VERBOSE=1 ~/.cache/finch/fuzz-build/release/fuzz-TARGET ARTIFACT
# (prints the error an input is refused with; a crash reproduces with its stack). Minimise with
# fuzz-TARGET -minimize_crash=1 -runs=10000 ARTIFACT.
set -euo pipefail

ALL_TARGETS=(safetensors gguf jsonl manifest template tokenizer)
usage() {
    echo "usage: tools/fuzz.sh SECONDS [TARGET...]   (targets: ${ALL_TARGETS[*]})" >&2
    exit 2
}

[[ $# -ge 1 ]] || usage
SECONDS_PER_TARGET=$1; shift
[[ "$SECONDS_PER_TARGET" =~ ^[0-9]+$ && "$SECONDS_PER_TARGET" -gt 0 ]] || { echo "fuzz.sh: SECONDS must be a positive integer, got '$SECONDS_PER_TARGET'" >&2; usage; }
TARGETS=("$@")
[[ ${#TARGETS[@]} -gt 0 ]] || TARGETS=("${ALL_TARGETS[@]}")
for t in "${TARGETS[@]}"; do
    [[ " ${ALL_TARGETS[*]} " == *" $t "* ]] || { echo "fuzz.sh: unknown target '$t'" >&2; usage; }
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PKG="$ROOT/tools/fuzz"
BUILD=${FINCH_FUZZ_BUILD:-$HOME/.cache/finch/fuzz-build}
WORK=${FINCH_FUZZ_WORK:-$HOME/.cache/finch/fuzz-work}
RUN_ID=$(date -u +%Y%m%d-%H%M%S)
ARTIFACTS="$WORK/artifacts/$RUN_ID"
LOGS="$WORK/logs/$RUN_ID"
mkdir -p "$BUILD" "$ARTIFACTS" "$LOGS"

# --- build ------------------------------------------------------------------------------------------------------
if [[ "${FINCH_FUZZ_SKIP_BUILD:-0}" != 1 ]]; then
    # Resolve the main package's dependencies at its pinned versions (the fuzz package depends on it by path).
    [[ -f "$PKG/Package.resolved" ]] || cp "$ROOT/Package.resolved" "$PKG/Package.resolved" 2>/dev/null || true
    echo "fuzz.sh: building the fuzz targets (cache: $BUILD) ..."
    start=$(date +%s)
    if ! (cd "$PKG" && swift build -c release --scratch-path "$BUILD" \
            -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library) > "$LOGS/build.log" 2>&1; then
        grep -v "Cannot export local symbol" "$LOGS/build.log" | tail -40 >&2
        echo "fuzz.sh: build failed (full log: $LOGS/build.log)" >&2
        exit 2
    fi
    echo "fuzz.sh: built in $(( $(date +%s) - start )) s"
fi
BIN="$BUILD/release"
for t in "${TARGETS[@]}"; do
    [[ -x "$BIN/fuzz-$t" ]] || { echo "fuzz.sh: $BIN/fuzz-$t is missing (build first, without FINCH_FUZZ_SKIP_BUILD)" >&2; exit 2; }
done

# --- run --------------------------------------------------------------------------------------------------------
# Swift's own crash backtracer would take over libFuzzer's crash handling (and can hang); leaks are not checked:
# Swift keeps heap references in enum payloads with spare-bit tags, which LeakSanitizer reports as leaked
# (huge allocations are still caught by -rss_limit_mb and libFuzzer's malloc limit).
export SWIFT_BACKTRACE=enable=no
export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=0:${ASAN_OPTIONS:-}"

found=0
summary=()
for t in "${TARGETS[@]}"; do
    corpus="$WORK/corpus/$t"
    art="$ARTIFACTS/$t"
    tmp="$WORK/tmp/$t"
    log="$LOGS/$t.log"
    mkdir -p "$corpus" "$art" "$tmp"
    cp -n "$PKG/corpus/$t/"* "$corpus/" 2>/dev/null || true   # seeds into the working copy; committed seeds untouched
    echo "fuzz.sh: fuzzing $t for ${SECONDS_PER_TARGET}s (corpus $corpus, $(ls "$corpus" | wc -l) inputs) ..."
    status=0
    # shellcheck disable=SC2086
    TMPDIR="$tmp" timeout --kill-after=30 $(( SECONDS_PER_TARGET + 120 )) \
        "$BIN/fuzz-$t" "$corpus" -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048 -timeout=10 \
        -detect_leaks=0 -print_final_stats=1 -artifact_prefix="$art/" ${FINCH_FUZZ_ARGS:-} > "$log" 2>&1 || status=$?
    rm -rf "$tmp"
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    [[ -n "$execs" ]] || execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | awk '{print $2}')
    ft=$(grep -oE 'ft: [0-9]+' "$log" | tail -1 | awk '{print $2}')
    units=$(grep -oE 'corp: [0-9]+' "$log" | tail -1 | awk '{print $2}')
    artifacts=$(find "$art" -type f | sort)
    if [[ $status -eq 0 && -z "$artifacts" ]]; then
        result="ok"
    else
        found=1
        kind=$(grep -oE 'ERROR: (libFuzzer|AddressSanitizer): [a-z-]+( [a-z-]+)?|Fatal error: [^ ]+.*|out-of-memory \([^)]*\)' "$log" | head -1 || true)
        [[ -n "$kind" ]] || kind="exit status $status"
        result="FOUND: $kind"
        for a in $artifacts; do result+=$'\n'"      artifact: $a"; done
        if [[ $status -eq 124 || $status -eq 137 ]]; then result+=" (the fuzzer itself hung and was killed)"; fi
    fi
    line=$(printf '%-12s runs %-10s cov %-6s ft %-7s corpus %-5s %s' "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${units:-?}" "$result")
    echo "  $line"
    summary+=("$line")
done

echo
echo "fuzz.sh: ${SECONDS_PER_TARGET}s per target; logs in $LOGS"
for line in "${summary[@]}"; do echo "  $line"; done
if [[ $found -ne 0 ]]; then
    echo "fuzz.sh: findings saved in $ARTIFACTS (reproduce: FINCH_FUZZ_VERBOSE=1 $BIN/fuzz-TARGET ARTIFACT)" >&2
    exit 1
fi
rmdir "$ARTIFACTS"/* "$ARTIFACTS" 2>/dev/null || true
echo "fuzz.sh: no crashes, hangs or out-of-memory inputs found"
