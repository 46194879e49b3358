#!/usr/bin/env bash
# Crash soak (issue 18, item 6): kills training with SIGKILL at random moments, resumes it with --resume each
# time, and checks that the result equals an uninterrupted run's bit for bit.
#
#   tools/soak.sh [N] [--methods sft-lora,sft-full,reward,dpo,ppo] [--seed S] [--out DIR] [--keep]
#
# N (default 3) kills per method. For each method the script trains once without interruption (run A), then
# trains the same command into run B, killing it N times with SIGKILL and restarting it with --resume after each
# kill, and finally compares A and B:
#   - every file under final/, best/ and checkpoints/ (weights, optimizer state, trainer state, configs) byte
#     for byte, and the set of files (no leftovers such as .tmp-* folders in B);
#   - metrics.jsonl record for record, with the wall-clock fields (tokens_per_s, …) removed.
# About half the kills land at a random moment (a delay drawn up to the expected remaining run time, measured from
# run A); the others are aimed: inside a folder write (the 1st-4th checkpoint, best/ or final/ write the process
# makes, the moment its .tmp-* folder appears) or in the final stage (just after the last step is logged). Where
# each kill landed is read from the run folder it left behind. (sft runs also aim some kills at the data packing.) When run B finishes before all N kills have landed,
# it is compared with A and a fresh run B takes the kills still due, so exactly N kills land and each is checked.
#
# Inputs are tiny slices of corpora/ (as tools/demo.sh at FINCH_DEMO_SCALE=ci): a 640-piece tokenizer and a
# 1-layer base pretrained for a few steps, so each run takes seconds.
#
# The random choices come from one seed, printed at the start; give it back with --seed (or SOAK_SEED) to replay
# the same kill schedule (the moments are times, so a replay lands close to, not exactly at, the same places).
# Exit status: 0 when every method matched, 1 on any mismatch or failure (the differing file is named), 2 on usage.
#
# Environment: FINCH=PATH uses this finch binary (else `swift build -c release --product finch`, with
# SOAK_SCRATCH=DIR as its --scratch-path when set); TMPDIR for the default work folder.
set -euo pipefail
cd "$(dirname "$0")/.."

N=3
METHODS=sft-lora,sft-full,reward,dpo,ppo
SEED=${SOAK_SEED:-}
OUT=
KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --methods) METHODS=$2; shift 2 ;;
    --methods=*) METHODS=${1#*=}; shift ;;
    --seed) SEED=$2; shift 2 ;;
    --seed=*) SEED=${1#*=}; shift ;;
    --out) OUT=$2; shift 2 ;;
    --out=*) OUT=${1#*=}; shift ;;
    --keep) KEEP=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *[!0-9]*|'') echo "soak.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    *) N=$1; shift ;;
  esac
done

for m in ${METHODS//,/ }; do
  case "$m" in sft-lora|sft-full|reward|dpo|ppo) ;; *) echo "soak.sh: unknown method '$m' (sft-lora, sft-full, reward, dpo, ppo)" >&2; exit 2 ;; esac
done

FINCH=${FINCH:-}
if [ -z "$FINCH" ]; then
  SCRATCH=()
  [ -n "${SOAK_SCRATCH:-}" ] && SCRATCH=(--scratch-path "$SOAK_SCRATCH")
  swift build -c release --product finch ${SCRATCH[@]+"${SCRATCH[@]}"}
  FINCH="$(swift build -c release --show-bin-path ${SCRATCH[@]+"${SCRATCH[@]}"})/finch"
fi
[ -x "$FINCH" ] || { echo "soak.sh: no finch binary at $FINCH" >&2; exit 2; }
if [ -z "$OUT" ]; then OUT=$(mktemp -d "${TMPDIR:-/tmp}/finch-soak-XXXXXX"); fi
mkdir -p "$OUT"

exec python3 - "$FINCH" "$N" "$METHODS" "$SEED" "$OUT" "$KEEP" <<'PY'
import json, os, random, re, shutil, signal, subprocess, sys, time

finch, N, methods, seed, out, keep = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(","), sys.argv[4], sys.argv[5], sys.argv[6] == "1"
finch = os.path.abspath(finch)
seed = int(seed) if seed else int.from_bytes(os.urandom(4), "little")
rng = random.Random(seed)
T0 = time.time()
print(f"soak: {N} kill(s) per method, methods {','.join(methods)}, seed {seed}, work folder {out}")
print(f"      replay with: tools/soak.sh {N} --methods {','.join(methods)} --seed {seed}", flush=True)

def say(msg): print(f"[{time.time() - T0:6.1f}s] {msg}", flush=True)

def run(cmd, log, check=True):
    with open(log, "ab") as f:
        f.write(("\n$ " + " ".join(cmd) + "\n").encode()); f.flush()
        r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if check and r.returncode != 0:
        tail = open(log, errors="replace").read()[-3000:]
        sys.exit(f"soak: command failed (status {r.returncode}): {' '.join(cmd)}\n--- {log} (end) ---\n{tail}")
    return r.returncode

# ---- Inputs: tiny slices of the shipped corpora, a tokenizer and a few-step base (as tools/demo.sh, ci scale) --
D = os.path.join(out, "setup")
os.makedirs(D, exist_ok=True)
base = os.path.join(D, "base", "final")
if not os.path.exists(os.path.join(base, "model.safetensors")):
    say("setup: data slices, tokenizer, tiny base model")
    open(os.path.join(D, "pretrain.txt"), "wb").write(open("corpora/pretrain.txt", "rb").read(60000))
    def head(src, dst, n):
        with open(src) as f: lines = [l for _, l in zip(range(n), f)]
        open(os.path.join(D, dst), "w").writelines(lines)
    head("corpora/instructions.jsonl", "instructions.jsonl", 160)
    head("corpora/preferences.jsonl", "preferences.jsonl", 80)
    head("corpora/ppo_prompts.jsonl", "ppo_prompts.jsonl", 40)
    c = json.load(open("recipes/demo-model.json"))
    c.update(vocab_size=640, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
             intermediate_size=64, max_position_embeddings=256)
    json.dump(c, open(os.path.join(D, "model.json"), "w"), indent=1)
    log = os.path.join(D, "setup.log")
    shutil.rmtree(os.path.join(D, "tokenizer"), ignore_errors=True); shutil.rmtree(os.path.join(D, "base"), ignore_errors=True)
    run([finch, "tokenizer", "train", "--input", os.path.join(D, "pretrain.txt"), os.path.join(D, "instructions.jsonl"),
         "--vocab-size", "640", "--type", "unigram", "--out", os.path.join(D, "tokenizer")], log)
    run([finch, "pretrain", "--model-config", os.path.join(D, "model.json"), "--tokenizer", os.path.join(D, "tokenizer"),
         "--template", "chatml", "--data", os.path.join(D, "pretrain.txt"), "--out", os.path.join(D, "base"),
         "--max-steps", "4", "--warmup", "1", "--batch-size", "4", "--seq-len", "64", "--eval-every=-1", "--seed", "1"], log)

# ---- The runs: tiny, with frequent checkpoints (every 2–3 steps) and evaluations, dropout on where it applies ---
# total = optimizer steps of the run (PPO: iterations × ppo-epochs × minibatches = iterations here).
SFT = ["sft", "--model", base, "--data", os.path.join(D, "instructions.jsonl"),
       "--warmup", "2", "--batch-size", "4", "--seq-len", "128", "--eval-fraction", "0.1", "--eval-batches", "2",
       "--keep-checkpoints", "2", "--log-every", "1", "--dropout", "0.1", "--seed", "7", "--lr", "3e-3"]
RLHF = ["--max-length", "128", "--keep-checkpoints", "2", "--seed", "5", "--lr", "3e-4"]
# The step counts and intervals are chosen so that both end paths are exercised: sft-lora, reward and dpo end
# between two periodic checkpoints (the final checkpoint and evaluation come after the loop), sft-full and ppo end on
# a periodic checkpoint that already holds the last evaluation. sft-full also accumulates 2 micro-batches per step;
# dpo and ppo train LoRA adapters (LoRA dropout in dpo), reward the full model; ppo adapts its KL coefficient.
METHODS = {
    "sft-lora": (62, SFT + ["--max-steps", "62", "--checkpoint-every", "4", "--eval-every", "15",
                            "--method", "lora", "--lora-r", "4", "--lora-alpha", "8", "--lora-dropout", "0.1", "--merge"]),
    "sft-full": (60, SFT + ["--max-steps", "60", "--checkpoint-every", "3", "--eval-every", "20", "--method", "full",
                            "--grad-accum", "2"]),
    "reward":   (40, ["reward", "--model", base, "--data", os.path.join(D, "preferences.jsonl"), "--steps", "40",
                      "--batch-size", "4", "--eval-fraction", "0.2", "--eval-every", "10", "--checkpoint-every", "3"] + RLHF),
    "dpo":      (42, ["dpo", "--model", base, "--data", os.path.join(D, "preferences.jsonl"), "--steps", "42",
                      "--batch-size", "4", "--eval-fraction", "0.2", "--eval-every", "10", "--checkpoint-every", "4",
                      "--beta", "0.1", "--method", "lora", "--lora-r", "4", "--lora-alpha", "8", "--lora-dropout", "0.1"] + RLHF),
    "ppo":      (16, ["ppo", "--policy", base, "--reward-command", "python3 tools/reward_check.py",
                      "--prompts", os.path.join(D, "ppo_prompts.jsonl"), "--iterations", "16", "--batch-size", "4",
                      "--samples-per-prompt", "2", "--group-baseline", "--max-new-tokens", "8", "--eval-prompts", "4",
                      "--ppo-epochs", "1", "--method", "lora", "--lora-r", "4", "--lora-alpha", "8", "--lora-targets", "all-linear",
                      "--temperature", "1.0", "--kl-coef", "0.05", "--kl-target", "0.5", "--eval-every", "3",
                      "--checkpoint-every", "2"] + RLHF),
}
for m in methods:
    if m not in METHODS: sys.exit(f"soak: unknown method '{m}' (choose from {', '.join(METHODS)})")

# Wall-clock fields of metrics.jsonl (they differ between any two runs); everything else must match exactly.
VOLATILE = re.compile(r"(^|_)(time|times|timestamp|elapsed|eta|seconds|secs|wall|per_s|per_second|throughput)($|_)")

IGNORED = set()
def strip(rec):
    IGNORED.update(k for k in rec if VOLATILE.search(k))
    return {k: v for k, v in rec.items() if not VOLATILE.search(k)}

def metrics(run_dir):
    p = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.exists(p): return []
    out = []
    for line in open(p, "rb").read().split(b"\n"):
        if not line.strip(): continue
        try: out.append(json.loads(line))
        except ValueError: out.append({"<torn line>": line.decode(errors="replace")})
    return out

def last_steps(run_dir):
    """The steps of the last few metrics records (cheap: reads the file's tail)."""
    try:
        with open(os.path.join(run_dir, "metrics.jsonl"), "rb") as f:
            f.seek(0, 2); f.seek(max(0, f.tell() - 2048)); tail = f.read()
    except FileNotFoundError: return []
    return [int(x) for x in re.findall(rb'"step":(-?\d+)', tail)]

def ckpt_steps(run_dir):
    try: names = os.listdir(os.path.join(run_dir, "checkpoints"))
    except FileNotFoundError: return []
    return sorted(int(n[5:]) for n in names if n.startswith("step-") and n[5:].isdigit())

def temp_names(run_dir):
    found = []
    for sub in ["", "checkpoints", "data"]:
        try: names = os.listdir(os.path.join(run_dir, sub))
        except FileNotFoundError: continue
        found += [os.path.join(sub, n) for n in names if n.startswith(".old-") or ".tmp-" in n or ".partial-" in n]
    return found

def landing(run_dir, total, stale=()):
    """Where a kill landed, read from what the killed process left in its run folder (`stale`: temporaries that
    were there before it started)."""
    tmp, cks, recs = [n for n in temp_names(run_dir) if n not in stale], ckpt_steps(run_dir), metrics(run_dir)
    steps = [r.get("step") for r in recs if isinstance(r.get("step"), int)]
    last = max(steps) if steps else None
    newest = cks[-1] if cks else None
    where = f"step {last}" if last is not None else "no step logged"
    where += f", newest checkpoint step-{newest}" if newest is not None else ", no checkpoint yet"
    names = [os.path.basename(t) for t in tmp]
    needed = ["trainable.safetensors", "optimizer.safetensors", "optimizer.json", "trainer_state.json"]
    partial = [c for c in cks if not all(os.path.exists(os.path.join(run_dir, "checkpoints", f"step-{c}", f)) for f in needed)]
    if partial: phase = "deleting an old checkpoint (incomplete: " + ", ".join(f"step-{c}" for c in partial) + ")"
    elif any(n.startswith(".tmp-final") for n in names): phase = "writing final/"
    elif any(n.startswith(".tmp-step-") for n in names): phase = "writing a checkpoint"
    elif any(n.startswith(".tmp-best") for n in names): phase = "writing best/"
    elif any(n.startswith(".old-step-") for n in names): phase = "deleting an old checkpoint"
    elif any(n.startswith(".old-") for n in names): phase = "swapping a folder in"
    elif any(".tmp-" in n for n in names): phase = "writing a file (" + ", ".join(n for n in names if ".tmp-" in n) + ")"
    elif any(".partial-" in n for n in names): phase = "packing data"
    elif os.path.isdir(os.path.join(run_dir, "final")): phase = "after final/ was written"
    elif not recs: phase = "startup (nothing logged)"
    elif last == total and newest == total: phase = "final stage, after the last checkpoint (evaluation / final/)"
    elif last == total: phase = "after the last step, before the final checkpoint (evaluation / best/ / final stage)"
    elif newest is None: phase = "training, before the first checkpoint"
    else: phase = "training"
    if recs and "<torn line>" in recs[-1]: phase += ", torn metrics line"
    return phase, where

def run_files(run_dir):
    files = {}
    for top in ["final", "best", "checkpoints"]:
        root = os.path.join(run_dir, top)
        for dirpath, dirnames, filenames in os.walk(root):
            for f in filenames:
                p = os.path.join(dirpath, f)
                files[os.path.relpath(p, run_dir)] = p
    for t in temp_names(run_dir):
        files[t + " (leftover temporary)"] = None
    return files

def compare(a, b):
    """Differences between run A and run B (empty when equal)."""
    problems = []
    fa, fb = run_files(a), run_files(b)
    for k in sorted(set(fa) - set(fb)): problems.append(f"{k}: only in the uninterrupted run")
    for k in sorted(set(fb) - set(fa)): problems.append(f"{k}: only in the killed-and-resumed run")
    same_files = 0
    for k in sorted(set(fa) & set(fb)):
        if fa[k] is None or fb[k] is None: continue
        if subprocess.run(["cmp", "-s", fa[k], fb[k]]).returncode != 0: problems.append(f"{k}: bytes differ (cmp {fa[k]} {fb[k]})")
        else: same_files += 1
    ma, mb = [strip(r) for r in metrics(a)], [strip(r) for r in metrics(b)]
    for i, (x, y) in enumerate(zip(ma, mb)):
        if x != y:
            problems.append(f"metrics.jsonl line {i + 1} differs:\n      A {json.dumps(x, sort_keys=True)}\n      B {json.dumps(y, sort_keys=True)}")
            break
    if len(ma) != len(mb): problems.append(f"metrics.jsonl: {len(ma)} records in A, {len(mb)} in B")
    return problems, same_files, len(ma)

results = []
for m in methods:
    total, args = METHODS[m]
    mdir = os.path.join(out, m)
    shutil.rmtree(mdir, ignore_errors=True); os.makedirs(mdir)
    A, B, log = os.path.join(mdir, "A"), os.path.join(mdir, "B"), os.path.join(mdir, "log.txt")
    say(f"{m}: uninterrupted run A")
    t = time.time(); run([finch] + args + ["--out", A], log); ta = time.time() - t
    say(f"{m}: run A took {ta:.1f} s; run B with {N} SIGKILL(s)")
    # Run B in rounds: a round starts a fresh B and kills it until it finishes; then B is compared with A. A round
    # that finishes before all N kills have landed (a kill drawn later than the run's end) is compared too, and
    # a new round continues with the kills still due, so exactly N kills land and every one is checked.
    kills, launches, rounds, problems, nfiles, nrec = [], 0, 0, [], 0, 0
    while (len(kills) < N or rounds == 0) and not problems and rounds < 2 * N + 2:
        rounds += 1
        shutil.rmtree(B, ignore_errors=True)
        resume, in_round = False, 0
        while True:
            cmd = [finch] + args + ["--out", B] + (["--resume"] if resume else [])
            launches += 1
            if len(kills) >= N:
                rc = run(cmd, log, check=False)
                if rc != 0: problems.append(f"run B failed with status {rc} when resumed after its last kill (see {log})")
                break
            cks = ckpt_steps(B)
            frac = (cks[-1] / total) if cks else 0.0
            remaining = ta * max(0.25, 1.0 - frac)          # startup and the final stage never go away
            modes = ["time", "time", "folder-write", "final-stage"]
            if m.startswith("sft") and not resume: modes += ["data-packing", "data-packing"]   # only a fresh run packs its data
            mode = rng.choice(modes)
            delay = rng.uniform(0.0, remaining)
            with open(log, "ab") as f:
                f.write((f"\n$ {' '.join(cmd)}   # soak: kill {len(kills) + 1}, mode {mode}, delay {delay:.3f}s\n").encode()); f.flush()
                p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
                t = time.time(); trigger = None; aim_at = None
                deadline = delay if mode == "time" else remaining   # aimed kills fall back to a timer
                stale = set(temp_names(B))          # left by the previous kill; the new process removes them
                nth, seen = rng.randint(1, 4), set()  # checkpoint-write: kill inside the nth checkpoint write seen
                mpath = os.path.join(B, "metrics.jsonl")
                while p.poll() is None:
                    now = time.time() - t
                    if mode == "folder-write":
                        seen |= {n for n in temp_names(B) if os.path.basename(n).startswith(".tmp-") and n not in stale}
                        if len(seen) >= nth: trigger = "aimed"; break
                    if mode == "data-packing" and any(".partial-" in n for n in temp_names(B)): trigger = "aimed"; break
                    if mode == "final-stage" and aim_at is None:
                        try: fresh = os.stat(mpath).st_mtime > t      # written by this process, not the killed one
                        except FileNotFoundError: fresh = False
                        if fresh and total in last_steps(B): aim_at = now + rng.uniform(0.0, 0.01)
                    if aim_at is not None and now >= aim_at: trigger = "aimed"; break
                    if now >= deadline: trigger = "timer"; break
                    time.sleep(0.002 if mode == "time" else 0.0005)
                if p.poll() is None:
                    p.send_signal(signal.SIGKILL); p.wait()
                    killed_at = time.time() - t
                    phase, where = landing(B, total, stale)
                    kills.append((mode if trigger == "aimed" else "time", killed_at, phase, where))
                    in_round += 1
                    f.write(f"# soak: SIGKILL at {killed_at:.3f}s ({phase}; {where})\n".encode())
                    say(f"{m}: kill {len(kills)} at {killed_at:.2f}s ({'aimed at ' + mode if trigger == 'aimed' else 'random moment'}): {phase}; {where}")
                    resume = True
                    continue
            if p.returncode != 0:
                problems.append(f"run B failed with status {p.returncode} after {len(kills)} kill(s) (see {log})")
            else:
                say(f"{m}: run B finished before kill {len(kills) + 1} was due")
            break
        if problems: break
        pr, nfiles, nrec = compare(A, B)
        problems += pr
        if not pr and len(kills) < N:
            say(f"{m}: round {rounds} ({in_round} kill(s)) identical; a new run B for the {N - len(kills)} kill(s) still due")
    results.append((m, kills, launches, problems, nfiles, nrec, ta))
    if problems:
        say(f"{m}: MISMATCH")
        for pr in problems: print("    " + pr)
    else:
        say(f"{m}: identical ({nfiles} files under final/, best/, checkpoints/ byte for byte; {nrec} metrics records)")

# ---- Summary -----------------------------------------------------------------------------------------------
print("\n== soak summary (seed %d, %.0f s) ==" % (seed, time.time() - T0))
failed = False
for m, kills, launches, problems, nfiles, nrec, ta in results:
    status = "OK  " if not problems else "FAIL"
    failed |= bool(problems)
    print(f"{status} {m:9s} {len(kills)} kill(s) survived in {launches} launches (run A {ta:.1f} s); "
          + ("final/, best/, checkpoints/ and metrics identical" if not problems else f"{len(problems)} difference(s)"))
    for i, (mode, at, phase, where) in enumerate(kills, 1):
        print(f"       kill {i}: {at:6.2f}s  {'aimed at ' + mode if mode != 'time' else 'random'}: {phase} ({where})")
    for pr in problems: print("       DIFF " + pr)
print("metrics fields ignored as wall-clock: " + (", ".join(sorted(IGNORED)) or "none"))
total_kills = sum(len(k) for _, k, *_ in results)
print(f"total: {total_kills} kill(s) survived across {len(results)} method(s)" + ("" if not failed else "; MISMATCHES above"))
if failed or keep:
    print(f"run folders kept in {out}")
else:
    shutil.rmtree(out, ignore_errors=True)
sys.exit(1 if failed else 0)
PY
