#!/usr/bin/env python3
"""Test vectors for Finch's GRPO arithmetic (Tests/FinchTrainTests/GRPOVectorTests.swift), computed with TRL 1.16.

- Advantages: `GRPOTrainer._generate_and_score_completions`'s "sum_then_normalize" block with `trl.trainer.utils.nanstd`
  (group mean subtracted; divided by the group's or the batch's std + 1e-4, or not at all).
- Loss: `GRPOTrainer._compute_loss` with token-level importance sampling, no entropy mask, no off-policy mask, one
  process, no gradient accumulation (so DAPO's normaliser is num_items_in_batch): the clipped surrogate with
  epsilon_low / epsilon_high, the k3 KL times beta, and the grpo / dapo / dr_grpo averages, written out below term for
  term (TRL computes them inside the method, on model outputs). Gradients w.r.t. the per-token log-probs by autograd
  (so torch.min's and torch.clamp's subgradients are TRL's).

Output: ${FINCH_TEST_ASSETS:-~/.cache/finch/test-assets}/grpo_vectors/cases.json
"""
import json
import os
import random
import sys
import warnings

warnings.filterwarnings("ignore")
import torch
import trl
from trl.trainer.utils import nanstd

OUT_DIR = os.path.join(os.environ.get("FINCH_TEST_ASSETS") or os.path.expanduser("~/.cache/finch/test-assets"), "grpo_vectors")


def f32(xs):
    return [float(v) for v in torch.tensor(xs, dtype=torch.float32).tolist()]


def advantages(rewards, G, scale):
    rewards = torch.tensor(rewards, dtype=torch.float64)
    mean = torch.nanmean(rewards.view(-1, G), dim=1).repeat_interleave(G, dim=0)
    if scale in ("group", "none"):
        std = nanstd(rewards.view(-1, G), dim=1).repeat_interleave(G, dim=0) if G > 1 else torch.zeros_like(rewards)
    else:
        std = nanstd(rewards).expand_as(rewards)
    adv = rewards - mean
    if scale != "none":
        adv = adv / (std + 1e-4)
    return adv.tolist(), torch.isclose(std, torch.zeros_like(std)).tolist()


def loss(lp, old, ref, adv, mask, loss_type, eps_low, eps_high, beta, max_len, num_items):
    per_token_logps = torch.tensor(lp, dtype=torch.float64, requires_grad=True)
    old_per_token_logps = torch.tensor(old, dtype=torch.float64)
    advantages = torch.tensor(adv, dtype=torch.float64).unsqueeze(1)
    mask = torch.tensor(mask, dtype=torch.float64)
    log_importance_weights = per_token_logps - old_per_token_logps
    coef_1 = torch.exp(log_importance_weights)
    if beta != 0.0:
        ref_per_token_logps = torch.tensor(ref, dtype=torch.float64)
        per_token_kl = torch.exp(ref_per_token_logps - per_token_logps) - (ref_per_token_logps - per_token_logps) - 1
    coef_2 = torch.clamp(coef_1, 1 - eps_low, 1 + eps_high)
    per_token_loss = -torch.min(coef_1 * advantages, coef_2 * advantages)
    if beta != 0.0:
        per_token_loss = per_token_loss + beta * per_token_kl
    if loss_type == "grpo":
        value = ((per_token_loss * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    elif loss_type == "dr_grpo":
        value = (per_token_loss * mask).sum() / (per_token_loss.size(0) * max_len)
    else:   # dapo
        value = (per_token_loss * mask).sum() / torch.tensor(num_items, dtype=torch.float64).clamp(min=1.0)
    value.backward()
    is_low = (coef_1 < 1 - eps_low) & (advantages < 0)
    is_high = (coef_1 > 1 + eps_high) & (advantages > 0)
    region = is_low | is_high
    def masked_mean(x):
        return float((x.double() * mask).sum() / mask.sum())
    out = {"loss": value.item(), "grad": per_token_logps.grad.view(-1).tolist(),
           "clip_low": masked_mean(is_low), "clip_high": masked_mean(is_high), "clip_region": masked_mean(region)}
    if beta != 0.0:
        out["kl"] = masked_mean(per_token_kl.detach())
    return out


def main():
    rng = random.Random(21)
    adv_cases = []
    for G, groups, kind in [(2, 3, "float"), (4, 2, "binary"), (8, 1, "float"), (3, 4, "tied")]:
        for scale in ["group", "batch", "none"]:
            if kind == "binary":
                rewards = [float(rng.random() < 0.5) for _ in range(G * groups)]
            elif kind == "tied":
                rewards = [v for g in range(groups) for v in ([1.0] * G if g % 2 == 0 else f32([rng.uniform(-2, 2) for _ in range(G)]))]
            else:
                rewards = f32([rng.uniform(-3, 3) for _ in range(G * groups)])
            adv, zero = advantages(rewards, G, scale)
            adv_cases.append({"rewards": rewards, "group_size": G, "scaling": scale, "advantages": adv, "zero_std": zero})
    loss_cases = []
    for loss_type in ["grpo", "dapo", "dr_grpo"]:
        for B, T, eps_low, eps_high, beta in [(1, 3, 0.2, 0.2, 0.0), (4, 6, 0.2, 0.28, 0.0), (3, 5, 0.1, 0.3, 0.04), (6, 4, 0.2, 0.2, 0.1)]:
            lp = f32([rng.uniform(-6, -0.1) for _ in range(B * T)])
            old = f32([x + rng.uniform(-0.5, 0.5) for x in lp])
            ref = f32([x + rng.uniform(-1, 1) for x in lp])
            adv = [float(torch.tensor(rng.uniform(-2, 2), dtype=torch.float32)) for _ in range(B)]
            if B > 2:
                adv[1] = 0.0
            lengths = [rng.randint(1, T) for _ in range(B)]
            if B > 1:
                lengths[-1] = T
            mask = [1.0 if t < lengths[b] else 0.0 for b in range(B) for t in range(T)]
            max_len = T + 3
            num_items = sum(mask) + (7 if B > 2 else 0)   # a minibatch of a larger generation batch
            res = loss([lp[b * T:(b + 1) * T] for b in range(B)], [old[b * T:(b + 1) * T] for b in range(B)],
                       [ref[b * T:(b + 1) * T] for b in range(B)], adv, [mask[b * T:(b + 1) * T] for b in range(B)],
                       loss_type, eps_low, eps_high, beta, max_len, num_items)
            loss_cases.append({"loss_type": loss_type, "batch": B, "length": T, "epsilon_low": eps_low, "epsilon_high": eps_high,
                               "beta": beta, "max_completion_length": max_len, "tokens_in_batch": num_items,
                               "logprobs": lp, "old_logprobs": old, "ref_logprobs": ref, "advantages": adv, "mask": mask, **res})
    doc = {"trl_version": trl.__version__, "advantages": adv_cases, "losses": loss_cases}
    text = json.dumps(doc, indent=1, sort_keys=True) + "\n"
    os.makedirs(OUT_DIR, exist_ok=True)
    path = os.path.join(OUT_DIR, "cases.json")
    old_text = open(path, encoding="utf-8").read() if os.path.exists(path) else None
    if old_text != text:
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(path + ".tmp", path)
        print(f"grpo_vectors: wrote {len(adv_cases)} advantage and {len(loss_cases)} loss cases to {path}")
    else:
        print(f"grpo_vectors: {path} is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
