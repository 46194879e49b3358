#!/usr/bin/env bash
# Reward model on Anthropic HH harmless-base preference pairs (../shared/data/preferences), end to end:
#   1. a seeded split into train / held-out pairs, written to files (the held-out pairs are never seen again);
#   2. a SentencePiece tokenizer and a small Llama base pretrained on the TRAIN transcripts only, written in
#      the ChatML form the reward model reads them in;
#   3. `finch reward` (full fine-tuning, Bradley–Terry) on the train pairs, evaluated on the held-out file;
#   4. `finch score` on the held-out file: pairwise accuracy ± standard error, mean margin.
# Usage: tools/hh_reward.sh [OUT_DIR]   (default /tmp/finch-hh-reward; FINCH=path/to/finch to pick the binary)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${1:-/tmp/finch-hh-reward}"
FINCH="${FINCH:-$ROOT/.build/release/finch}"
DATA="${HH_DATA:-$ROOT/../shared/data/preferences/hh-rlhf-harmless-base-train.jsonl}"
HELD_OUT="${HELD_OUT:-600}"     # held-out pairs (of 2188)
SEED="${SEED:-1}"
mkdir -p "$OUT"
[ -x "$FINCH" ] || { echo "no finch binary at $FINCH (swift build -c release)" >&2; exit 1; }
start=$(date +%s)
stamp() { echo "[$(( $(date +%s) - start )) s] $*"; }

stamp "split: $HELD_OUT held-out pairs, seed $SEED"
python3 - "$DATA" "$OUT" "$HELD_OUT" "$SEED" <<'PY'
import json, random, re, sys
src, out, n_eval, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
lines = [l if l.endswith('\n') else l + '\n' for l in open(src, encoding='utf-8') if l.strip()]
order = list(range(len(lines)))
random.Random(seed).shuffle(order)
held, train = sorted(order[:n_eval]), sorted(order[n_eval:])
open(f'{out}/train.jsonl', 'w', encoding='utf-8').writelines(lines[i] for i in train)
open(f'{out}/heldout.jsonl', 'w', encoding='utf-8').writelines(lines[i] for i in held)
# Pretraining text: each train transcript (prompt + chosen, prompt + rejected) in ChatML, as finch reward renders it.
SYSTEM = '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n'
def turns(t):
    parts = re.split(r'\n\n(Human|Assistant):', '\n\n' + t.lstrip('\n'))
    return [('user' if parts[k] == 'Human' else 'assistant', parts[k + 1].strip()) for k in range(1, len(parts), 2)]
with open(f'{out}/pretrain.txt', 'w', encoding='utf-8') as f:
    for i in train:
        r = json.loads(lines[i])
        prompt = [(role, c) for role, c in turns(r['prompt']) if c]
        for k in ('chosen', 'rejected'):
            conv = prompt + [('assistant', r[k].strip())]
            f.write(SYSTEM + ''.join(f'<|im_start|>{role}\n{c}<|im_end|>\n' for role, c in conv) + '\n')
print(f'{len(train)} train pairs, {len(held)} held out')
PY

stamp "tokenizer: 4096 pieces on the train transcripts"
"$FINCH" tokenizer train --input "$OUT/pretrain.txt" --vocab-size 4096 --out "$OUT/tok" > "$OUT/tokenizer.log" 2>&1

cat > "$OUT/base-model.json" <<'JSON'
{
  "architectures": ["LlamaForCausalLM"],
  "model_type": "llama",
  "vocab_size": 4096,
  "hidden_size": 192,
  "num_hidden_layers": 4,
  "num_attention_heads": 6,
  "num_key_value_heads": 2,
  "intermediate_size": 512,
  "max_position_embeddings": 512,
  "rms_norm_eps": 1e-5,
  "rope_theta": 10000.0,
  "hidden_act": "silu",
  "tie_word_embeddings": false,
  "bos_token_id": 1,
  "eos_token_id": 2,
  "pad_token_id": 3
}
JSON
stamp "pretrain: 4-layer 192-wide Llama on the train transcripts (200 steps of 16 x 256 tokens)"
rm -rf "$OUT/base"
"$FINCH" pretrain --data "$OUT/pretrain.txt" --tokenizer "$OUT/tok" --model-config "$OUT/base-model.json" --template chatml \
    --seq-len 256 --batch-size 16 --lr 3e-3 --warmup 20 --schedule cosine --max-steps 200 --weight-decay 0.1 \
    --eval-fraction 0.02 --eval-every=-1 --log-every 50 --seed "$SEED" --out "$OUT/base" > "$OUT/pretrain.log" 2>&1

stamp "reward model: full fine-tuning (Bradley-Terry), 1 epoch, lr 1e-4, 16 pairs per step, 256 tokens per sequence"
rm -rf "$OUT/rm"
"$FINCH" reward --model "$OUT/base/final" --data "$OUT/train.jsonl" --eval-data "$OUT/heldout.jsonl" --out "$OUT/rm" \
    --method full --lr 1e-4 --warmup-steps 10 --schedule cosine --batch-size 16 --epochs 1 --max-length 256 --seed "$SEED" \
    > "$OUT/reward.log" 2>&1
grep -E "^eval (before|after)" "$OUT/reward.log" | sed 's/^/  /'

stamp "finch score on the held-out pairs"
"$FINCH" score --reward "$OUT/rm/final" --data "$OUT/heldout.jsonl" --max-length 256 --out "$OUT/heldout-scores.jsonl" 2> "$OUT/score.log"
cat "$OUT/score.log"
stamp "done; reward model in $OUT/rm/final"
