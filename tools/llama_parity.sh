#!/usr/bin/env bash
# The llama.cpp parity tier of `finch export gguf` (slow, so not part of tools/test.sh):
#   1. builds llama.cpp once, from the llama_cpp_python sdist tools/test_assets.sh downloads, into
#      $FINCH_CACHE/llama.cpp-build (installs cmake and g++ from Debian when missing), with tools/llama_parity/greedy_ids.cpp
#      (greedy token ids through libllama's C API, optionally with a LoRA adapter);
#   2. runs `FINCH_LLAMA_CPP=1 swift test -c release --filter LlamaCppParityTests`: SmolLM2-135M-Instruct exported as
#      every --type and as a LoRA adapter loads in llama.cpp and generates; for f32, f16, bf16 and q8_0 llama.cpp's greedy
#      tokens for several prompts equal Finch's on the same file; for q4_0, q4_k and q6_k llama.cpp's perplexity on the
#      shipped corpora/pretrain.txt is within 1% of Finch's on the same file (tools/llama_parity/perplexity_ids.cpp).
# Usage: tools/llama_parity.sh [--build-only]
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${FINCH_CACHE:-$HOME/.cache/finch}"
BUILD="$CACHE/llama.cpp-build"
BIN="$BUILD/cmake/bin"   # where llama.cpp's CMakeLists puts binaries and libraries
SDIST=$(ls "$CACHE"/sdist/llama_cpp_python-*.tar.gz 2>/dev/null | tail -1 || true)
[ -n "$SDIST" ] || { echo "llama_parity: no llama_cpp_python sdist in $CACHE/sdist: run tools/test_assets.sh" >&2; exit 1; }

missing=()
command -v cmake >/dev/null || missing+=(cmake)
command -v g++ >/dev/null || missing+=(g++)
if [ ${#missing[@]} -gt 0 ]; then
  echo "llama_parity: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}" >/dev/null
fi

# Native code, but never AMX: some virtual machines report AMX in cpuid and then fault on its first tile instruction
# (seen here: SIGILL in ggml's AMX Q8_0 matmul), so ggml's AMX kernels are compiled out. The stamp names the flags, so a
# cached build made with other flags is rebuilt.
NO_AMX="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
STAMP="$BUILD/.built-from-$(basename "$SDIST" .tar.gz)-noamx"
if [ ! -f "$STAMP" ] || [ ! -x "$BIN/greedy_ids" ] || [ tools/llama_parity/greedy_ids.cpp -nt "$BIN/greedy_ids" ] \
   || [ ! -x "$BIN/perplexity_ids" ] || [ tools/llama_parity/perplexity_ids.cpp -nt "$BIN/perplexity_ids" ]; then
  if [ ! -f "$STAMP" ]; then
    echo "llama_parity: building llama.cpp from $(basename "$SDIST") into $BUILD (once; about 10 minutes on 2 cores)"
    rm -rf "$BUILD"; mkdir -p "$BUILD/src"
    tar xzf "$SDIST" -C "$BUILD/src" --strip-components=3 --wildcards '*/vendor/llama.cpp/*'
    cmake -S "$BUILD/src" -B "$BUILD/cmake" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON -DLLAMA_CURL=OFF \
      -DCMAKE_C_FLAGS="$NO_AMX" -DCMAKE_CXX_FLAGS="$NO_AMX" \
      -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_UI=OFF \
      >"$BUILD/cmake.log" 2>&1 \
      || { tail -30 "$BUILD/cmake.log"; exit 1; }
    cmake --build "$BUILD/cmake" -j 2 --target llama-simple llama-completion >"$BUILD/build.log" 2>&1 \
      || { tail -30 "$BUILD/build.log"; exit 1; }
    touch "$STAMP"
  fi
  g++ -O2 -std=c++17 tools/llama_parity/greedy_ids.cpp -I "$BUILD/src/include" -I "$BUILD/src/ggml/include" \
    -L "$BIN" -lllama -lggml -lggml-base -Wl,-rpath,"$BIN" -o "$BIN/greedy_ids"
  g++ -O2 -std=c++17 tools/llama_parity/perplexity_ids.cpp -I "$BUILD/src/include" -I "$BUILD/src/ggml/include" \
    -L "$BIN" -lllama -lggml -lggml-base -Wl,-rpath,"$BIN" -o "$BIN/perplexity_ids"
fi
echo "llama_parity: llama.cpp in $BIN (llama-simple, llama-completion, greedy_ids, perplexity_ids)"
[ "${1:-}" = "--build-only" ] && exit 0
swift build -c release --build-tests
FINCH_LLAMA_CPP=1 FINCH_LLAMA_CPP_BIN="$BIN" swift test -c release --skip-build --filter LlamaCppParityTests
