#!/usr/bin/env python3
"""Loads a GGUF base model in transformers (dequantised by the `gguf` package), applies a PEFT adapter folder that
`finch sft` wrote, and compares its logits on given token ids with logits Finch wrote (little-endian float32,
[len(ids), vocab]). Prints the largest difference; exit 1 when it exceeds --tol (relative to the largest logit).

  python3 tools/peft_gguf_check.py --model M.gguf --adapter runs/x/final --ids 1,2,3 --logits finch.f32
Used by the real-model tests; needs torch, transformers, peft, gguf (never a dependency of finch itself).
"""
import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

ap = argparse.ArgumentParser()
ap.add_argument("--model", required=True)
ap.add_argument("--adapter", required=True)
ap.add_argument("--ids", required=True)
ap.add_argument("--logits", required=True)
ap.add_argument("--tol", type=float, default=2e-3)
a = ap.parse_args()
path = Path(a.model)
base = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
model = PeftModel.from_pretrained(base, a.adapter)
model.eval()
ids = [int(x) for x in a.ids.split(",")]
with torch.no_grad():
    ref = model(torch.tensor([ids])).logits[0].float().numpy()
with torch.no_grad(), model.disable_adapter():
    plain = model(torch.tensor([ids])).logits[0].float().numpy()
got = np.fromfile(a.logits, dtype="<f4").reshape(ref.shape)
diff = float(np.abs(got - ref).max())
scale = float(np.abs(ref).max())
moved = float(np.abs(ref - plain).max())
print(f"peft: max |finch - transformers+peft| = {diff:.3g} (largest logit {scale:.3g}; the adapter moves logits by up to {moved:.3g})")
sys.exit(0 if diff <= a.tol * max(1.0, scale) and moved > 10 * diff else 1)
