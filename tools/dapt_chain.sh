#!/usr/bin/env bash
# Intermediate fine-tuning (issue 22): domain-adaptive pretraining → SFT → DPO, each stage starting from the merged
# model of the one before, with what each stage gained and what it cost measured on the way.
#
#   tools/dapt_chain.sh MODEL DOMAIN_TEXT [OUT]
#
# MODEL is any model finch loads (a .gguf file or a model folder); DOMAIN_TEXT raw text of the target domain (the
# README runs it on SmolLM2-135M-Instruct and the shared ELTeC novels). Stage 1 (`finch pretrain --model`, LoRA on
# every linear layer, merged) continues pretraining on the domain with 20% replay of corpora/pretrain.txt and reports
# the domain's held-out perplexity and that of general text it does not train on, before and after (forgetting). Stage 2 tunes the adapted
# model on corpora/instructions.jsonl, stage 3 aligns it with DPO on corpora/preferences.jsonl.
# Environment: FINCH_BIN (default .build/release/finch), DOMAIN_BYTES (default 600000: the slice of DOMAIN_TEXT
# used), DAPT_STEPS / SFT_STEPS / DPO_STEPS (defaults 60 / 40 / 20), THREADS_N (default: every core), GENERAL_TEXT (a
# natural text for the forgetting measure; default: the part of corpora/pretrain.txt that is not replayed).
# SFT measures the domain text before and after too (--base-eval): what instruction tuning costs the adaptation.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:?usage: tools/dapt_chain.sh MODEL DOMAIN_TEXT [OUT]}
DOMAIN=${2:?usage: tools/dapt_chain.sh MODEL DOMAIN_TEXT [OUT]}
OUT=${3:-runs/dapt-chain-$(date +%Y%m%d-%H%M%S)}
FINCH=${FINCH_BIN:-.build/release/finch}
THREADS=(); [ -n "${THREADS_N:-}" ] && THREADS=(--threads "$THREADS_N")
mkdir -p "$OUT/data"
head -c "${DOMAIN_BYTES:-600000}" "$DOMAIN" > "$OUT/data/domain.txt"
# General text: the first 1.6 MB of corpora/pretrain.txt is replayed, the rest only measured (forgetting is measured
# on text the run never trains on).
head -c 1600000 corpora/pretrain.txt > "$OUT/data/replay.txt"
if [ -n "${GENERAL_TEXT:-}" ]; then
  # A natural text of the model's general domain measures what the model itself forgets (the rest of pretrain.txt is
  # the replay's own generated corpus, which the replay keeps).
  head -c 400000 "$GENERAL_TEXT" > "$OUT/data/general-eval.txt"
else
  tail -c +1600001 corpora/pretrain.txt > "$OUT/data/general-eval.txt"
fi
LORA=(--method lora --lora-r 16 --lora-alpha 32 --lora-targets all-linear --lora-dropout 0 --merge)

echo "== 1/3 domain-adaptive pretraining on $DOMAIN"
"$FINCH" pretrain --model "$MODEL" --data "$OUT/data/domain.txt" "${LORA[@]}" --replay "$OUT/data/replay.txt" --replay-ratio 0.2 \
  --base-eval "$OUT/data/general-eval.txt" \
  --seq-len 256 --batch-size 4 --lr 1e-3 --warmup 5 --max-steps "${DAPT_STEPS:-60}" --eval-fraction 0.05 --eval-every "${DAPT_STEPS:-60}" \
  --log-every 10 --out "$OUT/dapt" "${THREADS[@]}" | tee "$OUT/dapt.log"
echo "== 2/3 SFT of the adapted model on corpora/instructions.jsonl"
"$FINCH" sft --model "$OUT/dapt/final/merged" --data corpora/instructions.jsonl "${LORA[@]}" --seq-len 256 --batch-size 8 \
  --lr 1e-3 --warmup 5 --max-steps "${SFT_STEPS:-40}" --eval-fraction 0.03 --log-every 10 --base-eval "$OUT/data/domain.txt" \
  --out "$OUT/sft" "${THREADS[@]}" | tee "$OUT/sft.log"
echo "== 3/3 DPO on corpora/preferences.jsonl"
"$FINCH" dpo --model "$OUT/sft/final/merged" --data corpora/preferences.jsonl --method lora --lora-r 16 --lora-targets all-linear \
  --steps "${DPO_STEPS:-20}" --batch-size 4 --max-length 256 --lr 5e-4 --out "$OUT/dpo" "${THREADS[@]}" | tee "$OUT/dpo.log"
echo "== summary"
grep -h -E "held-out ppl|base-corpus ppl|final eval|eval_accuracy|reward accuracy" "$OUT"/dapt.log "$OUT"/sft.log "$OUT"/dpo.log || true
