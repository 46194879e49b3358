#!/usr/bin/env bash
# Finch's main job: the whole story of instruction tuning on this CPU, from the repository root, no arguments.
#
#   tokenizer → pretrain a small Llama-flavour base → SFT (LoRA) → reward model → PPO → eval, compared with
#   a same-size model trained from scratch on the SFT data alone and with the untuned base prompted few-shot.
#
# Writes runs/demo-<timestamp>/ (report.md, eval.json, eval.svg, every stage's run folder with loss.svg) and, on a
# terminal, opens `finch chat` on the PPO model. About 20 minutes on 2 cores (build included; see the README).
#
# Environment:
#   FINCH_DEMO_SCALE=ci   tiny model, few steps, a slice of the data: the same pipeline in well under a minute
#   FINCH_DEMO_OUT=DIR    run folder (default runs/demo-<timestamp>)
#   FINCH_BIN=PATH        use this finch binary: skips tools/setup.sh and the build
#   FINCH_NO_CHAT=1       never open the chat at the end
# Re-running with the same FINCH_DEMO_OUT continues after the last finished stage (each writes STAGE/timing.json).
set -euo pipefail
cd "$(dirname "$0")/.."

SCALE=${FINCH_DEMO_SCALE:-full}
RUN=${FINCH_DEMO_OUT:-runs/demo-$(date +%Y%m%d-%H%M%S)}
FINCH=${FINCH_BIN:-}
T0=$(date +%s)

say() { printf '\n\033[1m== %s\033[0m  (%ds)\n' "$*" "$(( $(date +%s) - T0 ))"; }
now() { date +%s.%N; }
# timing STAGE START: writes RUN/STAGE/timing.json ({"training_seconds": …}) read by finch eval.
timing() {
  local secs; secs=$(python3 -c "print(round($(now) - $2, 1))")
  mkdir -p "$RUN/$1"
  printf '{"stage": "%s", "training_seconds": %s}\n' "$1" "$secs" > "$RUN/$1/timing.json"
  echo "$1: ${secs} s" >> "$RUN/timings.txt"
  echo "   $1 took ${secs} s"
}

# done STAGE: true when an earlier run into the same folder finished STAGE.
finished() { [ -f "$RUN/$1/timing.json" ] && echo "   $1: already done in $RUN (skipped)"; }

if [ -z "$FINCH" ]; then
  say "setup and release build"
  tools/setup.sh
  swift build -c release
  FINCH=.build/release/finch
fi
mkdir -p "$RUN/data"
echo "run folder: $RUN   scale: $SCALE"

# ---- Scale: the full demo and a seconds-long CI version of the same pipeline -------------------------------
PRETRAIN_TEXT=corpora/pretrain.txt
INSTRUCTIONS=(corpora/instructions.jsonl corpora/open_ended.jsonl)
PREFS=corpora/preferences.jsonl
PPO_PROMPTS=corpora/ppo_prompts.jsonl
EVAL=corpora/eval.jsonl
if [ "$SCALE" = ci ]; then
  VOCAB=640; FLAGS_PT=(--max-steps 4 --warmup 1 --batch-size 4 --seq-len 64 --eval-every=-1 --log-every 1)
  FLAGS_SFT=(--max-steps 4 --warmup 1 --batch-size 4 --seq-len 192 --eval-every=-1 --log-every 1)
  RM_FLAGS=(--steps 3 --batch-size 4 --max-length 192 --eval-fraction 0.2 --limit 40)
  PPO_FLAGS=(--iterations 2 --batch-size 4 --samples-per-prompt 2 --max-new-tokens 8 --max-length 128 --eval-prompts 4 --ppo-epochs 1)
  EVAL_FLAGS=(--limit 12 --max-tokens 8)
  head -c 60000 corpora/pretrain.txt > "$RUN/data/pretrain.txt"; PRETRAIN_TEXT="$RUN/data/pretrain.txt"
  head -n 200 corpora/instructions.jsonl > "$RUN/data/instructions.jsonl"
  INSTRUCTIONS=("$RUN/data/instructions.jsonl" corpora/open_ended.jsonl)
  head -n 24 corpora/ppo_prompts.jsonl > "$RUN/data/ppo_prompts.jsonl"; PPO_PROMPTS="$RUN/data/ppo_prompts.jsonl"
  python3 - "$RUN/data/model.json" <<'PY'
import json, sys
c = json.load(open("recipes/demo-model.json"))
c.update(vocab_size=640, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
         intermediate_size=64, max_position_embeddings=256)
json.dump(c, open(sys.argv[1], "w"), indent=1)
PY
  MODEL_CONFIG="$RUN/data/model.json"
else
  VOCAB=2048; FLAGS_PT=(); FLAGS_SFT=()
  RM_FLAGS=(--steps 100 --batch-size 16 --max-length 128 --eval-fraction 0.05)
  # 240 rollout batches of 8 prompts × 8 sampled replies (1920 prompts: the 864 training prompts about twice).
  PPO_FLAGS=(--iterations 240 --batch-size 64 --samples-per-prompt 8 --max-new-tokens 24 --max-length 160 --eval-prompts 96 --ppo-epochs 2)
  EVAL_FLAGS=(--max-tokens 32)
  MODEL_CONFIG=recipes/demo-model.json
fi

# ---- 1. Tokenizer ---------------------------------------------------------------------------------------------
say "1/7 tokenizer ($VOCAB pieces, chat-template specials) on $PRETRAIN_TEXT"
finished tokenizer || {
t=$(now)
# Unigram, as the demo was tuned with (finch's default is BPE, which packs large datasets faster).
"$FINCH" tokenizer train --input "$PRETRAIN_TEXT" "${INSTRUCTIONS[@]}" --vocab-size "$VOCAB" --type unigram --out "$RUN/tokenizer"
timing tokenizer "$t"; }

# ---- 2. Pretraining -------------------------------------------------------------------------------------------
say "2/7 pretrain the base model on $PRETRAIN_TEXT"
finished base || {
t=$(now)
"$FINCH" pretrain --config recipes/demo-pretrain.yaml --model-config "$MODEL_CONFIG" --tokenizer "$RUN/tokenizer" \
  --data "$PRETRAIN_TEXT" --out "$RUN/base" "${FLAGS_PT[@]}"
timing base "$t"; }

# ---- 3. SFT with LoRA -----------------------------------------------------------------------------------------
say "3/7 SFT (LoRA) on ${INSTRUCTIONS[*]}"
finished sft || {
t=$(now)
"$FINCH" sft --config recipes/demo-sft.yaml --model "$RUN/base/final" --data "${INSTRUCTIONS[@]}" --out "$RUN/sft" "${FLAGS_SFT[@]}"
timing sft "$t"; }
SFT_MODEL="$RUN/sft/final/merged"

# ---- 4. No-transfer baseline: same shape, random init, SFT data only -------------------------------------------
say "4/7 no-transfer baseline: the same model from scratch on the SFT data alone"
finished scratch || {
t=$(now)
# A randomly initialised model folder (one step at a negligible rate writes the folder), then full fine-tuning.
head -c 20000 "$PRETRAIN_TEXT" > "$RUN/data/init.txt"
"$FINCH" pretrain --model-config "$MODEL_CONFIG" --tokenizer "$RUN/tokenizer" --template chatml --data "$RUN/data/init.txt" \
  --out "$RUN/scratch-init" --max-steps 1 --lr 1e-12 --batch-size 1 --seq-len 64 --eval-every=-1 --seed 3 > "$RUN/scratch-init.log"
"$FINCH" sft --config recipes/demo-scratch.yaml --model "$RUN/scratch-init/final" --data "${INSTRUCTIONS[@]}" \
  --out "$RUN/scratch" "${FLAGS_SFT[@]}"
timing scratch "$t"; }

# ---- 5. Reward model ------------------------------------------------------------------------------------------
say "5/7 reward model on $PREFS"
finished reward || {
t=$(now)
"$FINCH" reward --model "$SFT_MODEL" --data "$PREFS" --out "$RUN/reward" --lr 3e-4 "${RM_FLAGS[@]}"
timing reward "$t"; }

# ---- 6. PPO ---------------------------------------------------------------------------------------------------
say "6/7 PPO on $PPO_PROMPTS against tools/reward_check.py"
finished ppo || {
t=$(now)
# A LoRA adapter (rank 8, every linear layer) on the merged SFT model; the reference is the adapter switched off.
# Each prompt gets 8 sampled replies and each reply's score is taken relative to the other seven (RLOO baseline),
# so prompts whose replies all score alike add no gradient noise (most rollouts of this small policy score 0).
# Temperature 1: the log-probs PPO trains on are the sampling distribution's (on-policy). KL penalty 0.05 per token;
# the run stops if a rollout batch's KL to the reference exceeds 2 nats per reply (measured: mean 0.21, at most 0.64).
# What PPO learns here: the checker pays 1 for the bare answer and 0.5 for the right answer inside a sentence;
# a quarter of the SFT replies are sentences, so the SFT policy often answers in one. No PPO-ptx: mixing in the SFT
# loss on those demonstrations pulls the policy back toward sentences (README, demo section).
"$FINCH" ppo --policy "$SFT_MODEL" --reward-command "python3 tools/reward_check.py" --prompts "$PPO_PROMPTS" \
  --out "$RUN/ppo" --method lora --lora-r 8 --lora-alpha 16 --lora-targets all-linear --lr 3e-4 \
  --temperature 1.0 --kl-coef 0.05 --max-kl 2 --group-baseline "${PPO_FLAGS[@]}"
timing ppo "$t"
# Trainable in PPO: the rank-8 adapter on every linear layer plus the value head (RUN/ppo/final holds the merged model).
python3 - "$RUN/ppo" "$SFT_MODEL/config.json" 8 <<'PY'
import json, os, sys
run, c, r = sys.argv[1], json.load(open(sys.argv[2])), int(sys.argv[3])
h, i = c["hidden_size"], c["intermediate_size"]
kv = c["num_key_value_heads"] * (h // c["num_attention_heads"])
per_layer = r * ((h + h) + (h + kv) * 2 + (h + h) + (h + i) * 2 + (i + h))   # q, k, v, o, gate, up, down
n = per_layer * c["num_hidden_layers"] + h + 1                                 # + value head (weight, bias)
t = json.load(open(os.path.join(run, "timing.json"))); t["trainable_parameters"] = n
json.dump(t, open(os.path.join(run, "timing.json"), "w"))
PY
}

# ---- 7. Evaluation and report ---------------------------------------------------------------------------------
say "7/7 evaluation on $EVAL (held out)"
"$FINCH" eval --model "$RUN/scratch/final" "$RUN/base/final" "$SFT_MODEL" "$RUN/ppo/final" \
  --name scratch base-4shot sft ppo --few-shot 0 4 0 0 --few-shot-data corpora/instructions.jsonl \
  --data "$EVAL" --reward-command "python3 tools/reward_check.py" --kl-reference "$SFT_MODEL" \
  --out "$RUN" "${EVAL_FLAGS[@]}"
python3 - "$RUN" "$SCALE" "$(( $(date +%s) - T0 ))" <<'PY'
# report.md: the comparison table, SFT-vs-base and PPO-vs-SFT margins, stage timings, pictures, samples.
import json, os, sys
run, scale, total = sys.argv[1], sys.argv[2], int(sys.argv[3])
ev = json.load(open(os.path.join(run, "eval.json")))
m = {x["name"]: x for x in ev["models"]}
def val(name, key):
    v = m.get(name, {}).get(key)
    return None if v in (None, "nan") else float(v)
def margin(a, b, key, pct):
    x, y = val(a, key), val(b, key)
    if x is None or y is None: return "n/a"
    d = x - y
    verdict = "beats" if d > 0 else ("ties" if d == 0 else "does NOT beat")
    f = (lambda v: "%.1f%%" % (100 * v)) if pct else (lambda v: "%.3f" % v)
    # Both models answered the same rows: the standard error of the mean per-row difference (paired) when
    # eval.json has per-row scores, else the unpaired sqrt(se_a² + se_b²).
    rows = {"exactMatch": "rowExactMatch", "meanReward": "rowRewards"}[key]
    ra, rb = m.get(a, {}).get(rows), m.get(b, {}).get(rows)
    if ra and rb and len(ra) == len(rb) and len(ra) > 1:
        diffs = [p - q for p, q in zip(ra, rb)]
        mean = sum(diffs) / len(diffs)
        noise = (sum((x - mean) ** 2 for x in diffs) / (len(diffs) - 1) / len(diffs)) ** 0.5
        changed = sum(1 for x in diffs if x != 0)
        kind = "paired standard error over %d rows, %d of them scored differently" % (len(diffs), changed)
    else:
        se = {"exactMatch": "exactMatchStderr", "meanReward": "rewardStderr"}[key]
        noise = ((val(a, se) or 0) ** 2 + (val(b, se) or 0) ** 2) ** 0.5
        kind = "standard error"
    shown = "%.1f points" % (100 * noise) if pct else "%.3f" % noise
    note = (" — within one %s (%s), not a measured difference" % (kind, shown) if abs(d) <= noise
            else " (%.1f× the %s, %s)" % (abs(d) / noise if noise > 0 else float("inf"), kind, shown))
    return "%s %s %s: %s vs %s (margin %s%s)%s" % (a, verdict, b, f(x), f(y), "+" if d >= 0 else "", f(d) if not pct else "%.1f points" % (100 * d), note)
lines = ["# Finch demo run", "", "Scale: `%s`. Total wall time: %d s (%.1f min)." % (scale, total, total / 60), "",
         "## Held-out comparison (`%s`)" % ev["data"], "", open(os.path.join(run, "eval.md")).read().strip(), "",
         "![metrics](eval.svg)", "", "## Margins", ""]
for a, b in [("sft", "base-4shot"), ("ppo", "sft")]:
    lines.append("- exact match: " + margin(a, b, "exactMatch", True))
    lines.append("- mean reward: " + margin(a, b, "meanReward", False))
# Reply form: how often each model answers a checkable row in a sentence (three or more words beyond the answer)
# instead of with the bare answer, and how many of those sentences the checker gives half credit (the right answer
# inside, where exact match gives nothing).
data = [json.loads(l) for l in open(ev["data"]) if l.strip()]
lines += ["", "## Reply form (checkable rows)", ""]
for x in ev["models"]:
    replies, rewards = x.get("rowResponses") or [], x.get("rowRewards") or []
    rows = [(d, r, w) for d, r, w in zip(data, replies, rewards) if d.get("task", "open_ended") != "open_ended"]
    long = [(d, r, w) for d, r, w in rows if len(r.split()) >= len(d["answer"].split()) + 3]
    half = sum(1 for d, r, w in long if w == 0.5)
    lines.append("- %s: %d of %d replies are sentences; %d of them hold the right answer (half credit)" % (x["name"], len(long), len(rows), half))
# The reward model is measured on its own held-out pairs (PPO above is rewarded by the checker, not by it).
rm_metrics = os.path.join(run, "reward", "metrics.jsonl")
evals = [json.loads(l) for l in open(rm_metrics) if '"eval_accuracy"' in l] if os.path.exists(rm_metrics) else []
if len(evals) >= 2:
    a, b = evals[0], evals[-1]
    lines += ["", "## Reward model (held-out preference pairs)", "",
              "- pairwise accuracy %.3f before training, %.3f after; mean margin %.3f → %.3f" %
              (a["eval_accuracy"], b["eval_accuracy"], a["eval_margin"], b["eval_margin"])]
lines += ["", "Train time is each model's own stage: SFT and PPO build on the base's pretraining (and PPO on SFT); "
          "the scratch baseline never saw the pretraining text. KL is the mean per-token KL(model ‖ SFT) over the "
          "model's own greedy replies. Exact match is task-aware (case kept for uppercase / title_case).", ""]
lines += ["", "## Stage timings", "", "```", open(os.path.join(run, "timings.txt")).read().strip(), "```", "", "## Training curves", ""]
for stage in ["base", "sft", "scratch", "reward", "ppo"]:
    if os.path.exists(os.path.join(run, stage, "loss.svg")):
        lines.append("- %s: ![%s](%s/loss.svg)" % (stage, stage, stage))
lines += ["", "## Sample replies", ""]
for x in ev["models"]:
    lines.append("### " + x["name"])
    for s in x.get("samples", [])[:4]:
        lines.append("- `%s` → `%s` (reference `%s`)" % (s["prompt"].replace("\n", " ")[:80], s["response"][:80], s["reference"][:60]))
    lines.append("")
open(os.path.join(run, "report.md"), "w").write("\n".join(lines) + "\n")
print("\n".join(l for l in lines if l.startswith("- exact") or l.startswith("- mean")))
PY
say "done: $RUN/report.md"

if [ -t 1 ] && [ -t 0 ] && [ "$SCALE" != ci ] && [ -z "${FINCH_NO_CHAT:-}" ]; then
  echo "Opening a chat with the PPO model (Ctrl-D to leave)."
  "$FINCH" chat --model "$RUN/ppo/final"
fi
