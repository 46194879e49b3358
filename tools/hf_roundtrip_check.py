#!/usr/bin/env python3
"""Check that a model folder Finch wrote loads in Hugging Face transformers and gives the expected logits.

Usage:
  python3 tools/hf_roundtrip_check.py MODEL_DIR [--ids 1,5,9,3] [--expected expected.safetensors]
                                      [--key logits] [--atol 2e-4] [--rtol 2e-4]
  python3 tools/hf_roundtrip_check.py MODEL_DIR --config-only

Loads MODEL_DIR with AutoModelForCausalLM.from_pretrained (float32, eager attention, CPU), runs the ids
(default: the `input_ids` / `attention_mask` of a conformance `case.json` beside --expected, else 1..8) and
prints the logits. With --expected, compares with the tensor --key of that safetensors file (a conformance
case's expected.safetensors, or logits Finch wrote) and exits 1 on a mismatch.

--config-only needs no torch: it checks that transformers' AutoConfig accepts config.json (and
generation_config.json) and that every weight file opens with the safetensors library, then prints the
config class and tensor count.

Needs: transformers, safetensors, numpy, and torch (CPU) unless --config-only. Not used by the test suite.
"""
import argparse
import json
import os
import sys


def config_only(folder):
    from transformers import AutoConfig, GenerationConfig
    from safetensors.numpy import load_file

    config = AutoConfig.from_pretrained(folder)
    print(f"config: {type(config).__name__} architectures={config.architectures} "
          f"vocab={config.vocab_size} tie_word_embeddings={getattr(config, 'tie_word_embeddings', None)}")
    if os.path.exists(os.path.join(folder, "generation_config.json")):
        gen = GenerationConfig.from_pretrained(folder)
        print(f"generation config: bos={gen.bos_token_id} eos={gen.eos_token_id} pad={gen.pad_token_id}")
    index = os.path.join(folder, "model.safetensors.index.json")
    files = sorted(set(json.load(open(index))["weight_map"].values())) if os.path.exists(index) else ["model.safetensors"]
    count = 0
    for name in files:
        tensors = load_file(os.path.join(folder, name))
        count += len(tensors)
    print(f"weights: {count} tensors in {len(files)} file(s) open with safetensors")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model")
    p.add_argument("--ids", help="comma-separated token ids (one row)")
    p.add_argument("--expected", help="safetensors file holding the expected logits")
    p.add_argument("--key", default="logits")
    p.add_argument("--atol", type=float, default=2e-4)
    p.add_argument("--rtol", type=float, default=2e-4)
    p.add_argument("--config-only", action="store_true")
    a = p.parse_args()

    if a.config_only:
        return config_only(a.model)

    import torch
    import transformers
    from transformers import AutoModelForCausalLM

    # transformers 5 calls the dtype argument `dtype`; 4.x calls it `torch_dtype`.
    dtype_arg = "dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"
    model = AutoModelForCausalLM.from_pretrained(a.model, attn_implementation="eager", **{dtype_arg: torch.float32})
    model.eval()

    mask = None
    if a.ids:
        ids = torch.tensor([[int(x) for x in a.ids.split(",")]])
    elif a.expected and os.path.exists(os.path.join(os.path.dirname(a.expected), "case.json")):
        inputs = json.load(open(os.path.join(os.path.dirname(a.expected), "case.json")))["inputs"]
        ids = torch.tensor(inputs["input_ids"])
        if "attention_mask" in inputs:
            mask = torch.tensor(inputs["attention_mask"])
    else:
        ids = torch.arange(1, 9).unsqueeze(0)

    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits
    print(f"logits {list(logits.shape)}; row 0, last position, first 8: {logits[0, -1, :8].tolist()}")

    if not a.expected:
        return 0
    from safetensors.torch import load_file
    expected = load_file(a.expected)[a.key].to(torch.float32)
    if expected.shape != logits.shape:
        print(f"FAIL: shape {list(logits.shape)} vs expected {list(expected.shape)}")
        return 1
    if mask is not None:  # pad positions are defined too, but compare real tokens only to be safe
        keep = mask.bool()
        logits, expected = logits[keep], expected[keep]
    diff = (logits - expected).abs()
    bound = a.atol + a.rtol * expected.abs()
    # An exact comparison (atol = rtol = 0) fails on any difference instead of dividing by zero.
    exact = torch.where(diff > 0, torch.full_like(diff, float("inf")), torch.zeros_like(diff))
    worst = torch.where(bound > 0, diff / bound.clamp_min(1e-30), exact).max().item()
    print(f"max |diff| {diff.max().item():.3e}; worst element uses {100 * worst:.1f}% of the tolerance")
    if worst > 1:
        print("FAIL")
        return 1
    print("pass")
    return 0


if __name__ == "__main__":
    sys.exit(main())
