#!/usr/bin/env bash
# Does a hyper-parameter sweep beat the demo's hand-set SFT configuration? (issue 22, `finch sweep`)
#
#   tools/sweep_demo.sh DEMO_RUN [OUT]
#
# DEMO_RUN is a finished `tools/demo.sh` run folder (its base model, its SFT model and eval.json are reused). The
# sweep searches recipes/sweep-sft-space.yaml around recipes/demo-sft.yaml with TPE and successive halving (its rung at
# step 500 ranks the trials' answers to the validation rows as they train), scoring each finished trial by exact match
# on a validation slice (the last 400 rows of corpora/instructions.jsonl, which the trials
# do not train on); corpora/eval.jsonl stays untouched until the end. Then the best configuration is trained on the
# demo's full SFT data and evaluated on corpora/eval.jsonl beside the demo's SFT model, with the paired standard
# error of the difference. Environment: FINCH_BIN (default .build/release/finch), SWEEP_TRIALS (default 12).
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO=${1:?usage: tools/sweep_demo.sh DEMO_RUN [OUT]}
OUT=${2:-runs/sweep-demo-$(date +%Y%m%d-%H%M%S)}
FINCH=${FINCH_BIN:-.build/release/finch}
TRIALS=${SWEEP_TRIALS:-12}
mkdir -p "$OUT/data"
head -n -400 corpora/instructions.jsonl > "$OUT/data/train.jsonl"
tail -n 400 corpora/instructions.jsonl > "$OUT/data/validation.jsonl"
{ cat recipes/demo-sft.yaml; echo "model: $DEMO/base/final"; echo "data: [$OUT/data/train.jsonl, corpora/open_ended.jsonl]"; } > "$OUT/data/base.yaml"
T0=$(date +%s)
"$FINCH" sweep --config "$OUT/data/base.yaml" --space recipes/sweep-sft-space.yaml --trials "$TRIALS" --metric exact_match \
  --eval-data "$OUT/data/validation.jsonl" --rung-metric exact_match --rung-limit 400 --grace-steps 500 --out "$OUT/sweep" --seed 1
echo "sweep: $(( $(date +%s) - T0 )) s" | tee "$OUT/timings.txt"
# The best configuration on the demo's full SFT data, as the demo trains its SFT stage.
grep -v -E '^(model|data):|^- ' "$OUT/sweep/best.yaml" > "$OUT/best-sft.yaml"
T1=$(date +%s)
"$FINCH" sft --config "$OUT/best-sft.yaml" --model "$DEMO/base/final" --data corpora/instructions.jsonl corpora/open_ended.jsonl --out "$OUT/best"
echo "best config on the full data: $(( $(date +%s) - T1 )) s" | tee -a "$OUT/timings.txt"
# A LoRA recipe's model is the merged one; a full fine-tuning recipe's is final/ itself.
BEST="$OUT/best/final/merged"; [ -f "$BEST/config.json" ] || BEST="$OUT/best/final"
"$FINCH" eval --model "$DEMO/sft/final/merged" "$BEST" --name demo-sft sweep-best --data corpora/eval.jsonl \
  --reward-command "python3 tools/reward_check.py" --out "$OUT/eval"
python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
ev = json.load(open(out + "/eval/eval.json"))
a, b = ev["models"]
ra, rb = a["rowExactMatch"], b["rowExactMatch"]
d = [y - x for x, y in zip(ra, rb)]
n = len(d); mean = sum(d) / n
se = (sum((x - mean) ** 2 for x in d) / (n - 1) / n) ** 0.5
verdict = "beats" if mean > se else "does not beat"
line = ("sweep-best %s demo-sft on held-out exact match: %.1f%% vs %.1f%% (margin %+.1f points, paired standard error %.1f points, %.1f×)"
        % (verdict, 100 * b["exactMatch"], 100 * a["exactMatch"], 100 * mean, 100 * se, abs(mean) / se if se else float("inf")))
print(line)
open(out + "/verdict.txt", "w").write(line + "\n")
PY
