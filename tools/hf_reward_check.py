#!/usr/bin/env python3
"""Check that a reward model folder Finch wrote loads in transformers and gives Finch's scores.

Usage:
  finch score --reward RM_DIR --data rows.jsonl --with-ids > scores.jsonl
  python3 tools/hf_reward_check.py RM_DIR scores.jsonl [--atol 1e-3] [--rtol 1e-3]

Loads RM_DIR with AutoModelForSequenceClassification (float32, eager attention, CPU), checks that it is a
LlamaForSequenceClassification with num_labels = 1, runs every id sequence of scores.jsonl ("ids", or
"chosen_ids" and "rejected_ids") one at a time and compares the score with Finch's ("score", or
"chosen_score" and "rejected_score"). Prints the worst difference; exits 1 on a mismatch.

Needs: transformers, torch (CPU). Not used by the test suite.
"""
import argparse
import json
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("scores")
    ap.add_argument("--atol", type=float, default=1e-3)
    ap.add_argument("--rtol", type=float, default=1e-3)
    args = ap.parse_args()

    import torch
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(args.model, torch_dtype=torch.float32,
                                                               attn_implementation="eager")
    model.eval()
    name = type(model).__name__
    labels = model.config.num_labels
    print("loaded %s (num_labels=%d, pad_token_id=%s)" % (name, labels, model.config.pad_token_id))
    if name != "LlamaForSequenceClassification" or labels != 1:
        print("expected LlamaForSequenceClassification with num_labels=1", file=sys.stderr)
        return 1

    checks = []
    with open(args.scores, encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            row = json.loads(line)
            for ids_key, score_key in (("ids", "score"), ("chosen_ids", "chosen_score"), ("rejected_ids", "rejected_score")):
                if ids_key in row:
                    checks.append((row["line"], row[ids_key], float(row[score_key])))
    if not checks:
        print("no id sequences in %s (run finch score with --with-ids)" % args.scores, file=sys.stderr)
        return 1

    worst, bad = 0.0, 0
    with torch.no_grad():
        for line, ids, finch_score in checks:
            # One row, no padding: transformers pools at the last token.
            hf = model(input_ids=torch.tensor([ids])).logits[0, 0].item()
            diff = abs(hf - finch_score)
            worst = max(worst, diff)
            if diff > args.atol + args.rtol * abs(hf):
                bad += 1
                if bad <= 5:
                    print("line %d: transformers %.6f, finch %.6f" % (line, hf, finch_score))
    print("%d sequences, worst |transformers - finch| = %.2e, %d outside atol %g + rtol %g"
          % (len(checks), worst, bad, args.atol, args.rtol))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
