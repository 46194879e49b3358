#!/usr/bin/env python3
"""Test vectors for Finch's preference losses (Tests/FinchTrainTests/PreferenceLossVectorTests.swift), computed with
TRL (the `trl` package on PyPI) on fixed sequence log-probabilities; gradients by torch autograd.

- DPO variants `sigmoid`, `hinge`, `robust`, `apo_zero`: the per-sequence losses of `DPOTrainer` (trl/trainer/
  dpo_trainer.py, the `for loss_type, loss_weight in zip(self.loss_types, ...)` block, f_divergence reverse_kl),
  written out below term for term because TRL computes them inline in `_compute_loss`.
- SimPO: `trl.experimental.cpo.CPOTrainer.cpo_loss` itself (loss_type "simpo", alpha 0), called on TRL's length
  averages (`get_batch_logps(average_log_prob=True)` = summed log-probs / completion tokens).
- KTO (`kto`, `apo_zero_unpaired`): `KTOTrainer._compute_loss`'s loss (trl/trainer/kto_trainer.py), written out:
  kl = mean(policy_KL − ref_KL) detached and clamped at 0; desirable 1 − σ(β(c − kl)), undesirable
  1 − σ(β(kl − r)); weighted by λ_D / λ_U; mean over the batch.

Output: ${FINCH_TEST_ASSETS:-~/.cache/finch/test-assets}/preference_loss_vectors/cases.json
Deterministic (fixed seeds) and idempotent (rewritten only when the content changes).
"""
import json
import os
import random
import sys
import types
import warnings

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
warnings.filterwarnings("ignore")
import torch
import torch.nn.functional as F
import trl
from trl.experimental.cpo.cpo_trainer import CPOTrainer

OUT_DIR = os.path.join(os.environ.get("FINCH_TEST_ASSETS") or os.path.expanduser("~/.cache/finch/test-assets"),
                       "preference_loss_vectors")


def dpo_per_sequence(loss_type, beta, eps, pc, pr, rc, rr):
    chosen_logratios = pc - rc
    rejected_logratios = pr - rr
    delta_score = chosen_logratios - rejected_logratios
    if loss_type == "sigmoid":
        return -F.logsigmoid(beta * delta_score)
    if loss_type == "hinge":
        return torch.relu(1 - beta * delta_score)
    if loss_type == "robust":
        clean = -(1 - eps) * F.logsigmoid(beta * delta_score)
        flipped = -eps * F.logsigmoid(-beta * delta_score)
        return (clean - flipped) / (1 - 2 * eps)
    if loss_type == "apo_zero":
        return (1 - torch.sigmoid(beta * chosen_logratios)) + torch.sigmoid(beta * rejected_logratios)
    raise ValueError(loss_type)


def simpo(beta, gamma, eps, pc, pr, lc, lr):
    stub = types.SimpleNamespace(alpha=0.0, beta=beta, loss_type="simpo", simpo_gamma=gamma, label_smoothing=eps,
                                 accelerator=types.SimpleNamespace(device=torch.device("cpu")))
    losses, chosen_rewards, rejected_rewards = CPOTrainer.cpo_loss(stub, pc / lc, pr / lr)
    return losses, chosen_rewards, rejected_rewards


def kto(loss_type, beta, wd, wu, policy, reference, labels, kl_policy, kl_reference):
    kl = (kl_policy - kl_reference).mean().detach().clamp(min=0)
    lab = torch.tensor(labels, dtype=torch.bool)
    c_idx = torch.nonzero(lab).view(-1)
    r_idx = torch.nonzero(~lab).view(-1)
    c = policy.index_select(0, c_idx) - reference.index_select(0, c_idx)
    r = policy.index_select(0, r_idx) - reference.index_select(0, r_idx)
    if loss_type == "kto":
        cl = 1 - F.sigmoid(beta * (c - kl))
        rl = 1 - F.sigmoid(beta * (kl - r))
    else:   # apo_zero_unpaired
        cl = 1 - F.sigmoid(beta * c)
        rl = F.sigmoid(beta * r)
    losses = torch.cat((wd * cl, wu * rl), 0)
    # Per-example losses back in input order (TRL concatenates desirable first; the mean is the same).
    per = torch.empty(len(labels), dtype=torch.float64)
    per[c_idx] = (wd * cl).detach()
    per[r_idx] = (wu * rl).detach()
    return losses.nanmean(), per, kl


def f32(xs):
    """Inputs as Float32 values, as Finch holds log-probs: both sides then start from the same numbers."""
    return [float(v) for v in torch.tensor(xs, dtype=torch.float32).tolist()]


def t(x):
    return torch.tensor(x, dtype=torch.float64, requires_grad=True)


def main():
    rng = random.Random(19)
    dpo_cases = []
    for variant in ["sigmoid", "hinge", "robust", "apo_zero", "simpo"]:
        for k, (n, beta, eps) in enumerate([(1, 0.1, 0.0), (5, 0.5, 0.1), (8, 2.0, 0.25), (3, 0.05, 0.0)]):
            if variant in ("sigmoid", "hinge", "apo_zero") and eps > 0:
                eps = 0.0   # TRL 1.16's DPOTrainer applies label smoothing to robust (and exo/aot) only
            pc = f32([rng.uniform(-60, -2) for _ in range(n)])
            pr = f32([rng.uniform(-60, -2) for _ in range(n)])
            rc = f32([x + rng.uniform(-3, 3) for x in pc])
            rr = f32([x + rng.uniform(-3, 3) for x in pr])
            lc = [rng.randint(1, 40) for _ in range(n)]
            lr = [rng.randint(1, 40) for _ in range(n)]
            gamma = [0.5, 1.0, 0.0, 2.5][k]
            tpc, tpr = t(pc), t(pr)
            if variant == "simpo":
                per, crew, rrew = simpo(beta, gamma, eps, tpc, tpr, torch.tensor(lc, dtype=torch.float64),
                                        torch.tensor(lr, dtype=torch.float64))
            else:
                per = dpo_per_sequence(variant, beta, eps, tpc, tpr, torch.tensor(rc, dtype=torch.float64),
                                       torch.tensor(rr, dtype=torch.float64))
                crew = beta * (tpc - torch.tensor(rc, dtype=torch.float64)).detach()
                rrew = beta * (tpr - torch.tensor(rr, dtype=torch.float64)).detach()
            loss = per.mean()
            loss.backward()
            dpo_cases.append({
                "variant": variant, "beta": beta, "label_smoothing": eps, "simpo_gamma": gamma,
                "policy_chosen": pc, "policy_rejected": pr, "reference_chosen": rc, "reference_rejected": rr,
                "chosen_lengths": lc, "rejected_lengths": lr,
                "loss": loss.item(), "losses": per.detach().tolist(),
                "chosen_rewards": crew.detach().tolist(), "rejected_rewards": rrew.detach().tolist(),
                "grad_chosen": tpc.grad.tolist(), "grad_rejected": tpr.grad.tolist(),
            })
    kto_cases = []
    for variant in ["kto", "apo_zero_unpaired"]:
        for n, beta, wd, wu, shift in [(1, 0.1, 1.0, 1.0, 0.0), (6, 0.5, 1.0, 1.33, 2.0), (9, 1.0, 0.8, 1.0, -4.0),
                                       (4, 0.2, 1.0, 1.0, 8.0)]:
            labels = [rng.random() < 0.5 for _ in range(n)]
            if n > 1 and all(labels):
                labels[0] = False
            policy = f32([rng.uniform(-50, -2) for _ in range(n)])
            reference = f32([x + rng.uniform(-3, 3) for x in policy])
            kl_policy = f32([rng.uniform(-80, -10) for _ in range(n)])
            kl_reference = f32([x - shift + rng.uniform(-1, 1) for x in kl_policy])
            tp = t(policy)
            loss, per, kl = kto(variant, beta, wd, wu, tp, torch.tensor(reference, dtype=torch.float64), labels,
                                torch.tensor(kl_policy, dtype=torch.float64),
                                torch.tensor(kl_reference, dtype=torch.float64))
            loss.backward()
            kto_cases.append({
                "variant": variant, "beta": beta, "desirable_weight": wd, "undesirable_weight": wu,
                "policy": policy, "reference": reference, "desirable": labels,
                "kl_policy": kl_policy, "kl_reference": kl_reference,
                "loss": loss.item(), "losses": per.tolist(), "kl": float(kl), "grad": tp.grad.tolist(),
            })
    doc = {"trl_version": trl.__version__, "torch_version": torch.__version__, "dpo": dpo_cases, "kto": kto_cases}
    text = json.dumps(doc, indent=1, sort_keys=True) + "\n"
    os.makedirs(OUT_DIR, exist_ok=True)
    path = os.path.join(OUT_DIR, "cases.json")
    old = open(path, encoding="utf-8").read() if os.path.exists(path) else None
    if old != text:
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(path + ".tmp", path)
        print(f"preference_loss_vectors: wrote {len(dpo_cases)} DPO and {len(kto_cases)} KTO cases to {path}")
    else:
        print(f"preference_loss_vectors: {path} is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
