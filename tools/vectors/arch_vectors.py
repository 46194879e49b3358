#!/usr/bin/env python3
"""Reference vectors for Finch's newer decoder architectures (qwen2, qwen3, llama with Llama 3 RoPE
scaling, Llama with attention/MLP biases and tied embeddings, gemma3_text), made with transformers on tiny random-weight float32 models.

Writes ${FINCH_TEST_ASSETS:-~/.cache/finch/test-assets}/arch_vectors/<case>/:
  config.json, generation_config.json, model.safetensors   save_pretrained output (HF names)
  case.json            inputs (ids, attention mask, labels, generation prompt), expected loss and
                       generated ids, tolerance, generator versions
  expected.safetensors logits [B,T,V], grad.<param> for every parameter, prefill_logits, step_logits

Batch: 2 rows of T=12; row 1 is left-padded (3 pads, attention_mask 0, labels -100). position_ids are
HF's default 0..T-1 on every row (padding does not shift them). Eager attention. Deterministic (seeded).
Usage: python3 tools/vectors/arch_vectors.py
       python3 tools/vectors/arch_vectors.py --check-export DIR   (transformers loads Finch's exports, see ArchitectureTests)
"""
import json
import math
import os
import shutil
import sys

import torch
import transformers
from safetensors.torch import save_file

OUT = os.path.join(os.environ.get("FINCH_TEST_ASSETS", os.path.expanduser("~/.cache/finch/test-assets")), "arch_vectors")
B, T, PAD, V = 2, 12, 0, 100
GEN_PROMPT_LEN, GEN_NEW = 6, 8


def cases():
    common = dict(vocab_size=V, hidden_size=64, intermediate_size=96, num_attention_heads=4, num_key_value_heads=2,
                  max_position_embeddings=64, rms_norm_eps=1e-6, pad_token_id=PAD, bos_token_id=1, eos_token_id=2)
    return {
        "qwen2": (transformers.Qwen2Config(num_hidden_layers=2, tie_word_embeddings=True, rope_theta=1_000_000.0,
                                           use_sliding_window=False, **common), transformers.Qwen2ForCausalLM),
        "qwen3": (transformers.Qwen3Config(num_hidden_layers=2, head_dim=24, attention_bias=False,
                                           tie_word_embeddings=False, rope_theta=1_000_000.0, **common),
                  transformers.Qwen3ForCausalLM),
        "llama3-rope": (transformers.LlamaConfig(num_hidden_layers=2, tie_word_embeddings=False, attention_bias=False,
                                                 mlp_bias=False, rope_theta=10000.0,
                                                 rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                                               "high_freq_factor": 4.0, "original_max_position_embeddings": 32},
                                                 **common), transformers.LlamaForCausalLM),
        "llama-bias": (transformers.LlamaConfig(num_hidden_layers=2, tie_word_embeddings=True, attention_bias=True,
                                                mlp_bias=True, rope_theta=10000.0, **common), transformers.LlamaForCausalLM),
        "gemma3": (transformers.Gemma3TextConfig(num_hidden_layers=3, head_dim=16, sliding_window=4, sliding_window_pattern=2,
                                                 query_pre_attn_scalar=24, rope_theta=1_000_000.0, rope_local_base_freq=10000.0,
                                                 rope_scaling={"rope_type": "linear", "factor": 2.0},
                                                 final_logit_softcapping=None, attn_logit_softcapping=None,
                                                 tie_word_embeddings=True, **common), transformers.Gemma3ForCausalLM),
    }


def init_weights(model, gemma, g):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif p.dim() == 1:   # norms: Gemma scales by (1 + w)
                p.copy_((0.0 if gemma else 1.0) + 0.1 * torch.randn(p.shape, generator=g))
            else:
                std = (0.08 if gemma else 0.4) if "embed" in name else (0.25 if name.endswith("q_proj.weight") or name.endswith("k_proj.weight") else 0.15)
                p.copy_(std * torch.randn(p.shape, generator=g))


def make(name, config, cls, seed):
    folder = os.path.join(OUT, name)
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    config._attn_implementation = "eager"
    model = cls(config).float().eval()
    init_weights(model, cls is transformers.Gemma3ForCausalLM, g)
    if config.tie_word_embeddings:
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()

    ids = torch.randint(3, V, (B, T), generator=g)
    mask = torch.ones(B, T, dtype=torch.long)
    ids[1, :3] = PAD
    mask[1, :3] = 0
    labels = ids.clone()
    labels[mask == 0] = -100
    labels[0, :2] = -100
    labels[1, 3:5] = -100

    model.zero_grad()
    out = model(input_ids=ids, attention_mask=mask, labels=labels)
    out.loss.backward()
    expected = {"logits": out.logits.detach().contiguous()}
    grads = {}
    for pname, p in model.named_parameters():
        expected["grad." + pname] = p.grad.detach().clone().contiguous()
        grads[pname] = float(p.grad.abs().max())

    # float64 cross-check of the forward on the unpadded row (how far float32 itself is from exact; in float64
    # HF's fully masked pad queries turn into NaN that spreads through the padded row's pad positions).
    m64 = cls(config).double().eval()
    m64.load_state_dict({k: v.double() for k, v in model.state_dict().items()})
    with torch.no_grad():
        l64 = m64(input_ids=ids[:1]).logits
    f32_vs_f64 = float((l64[0] - out.logits.detach().double()[0]).abs().max())

    # Greedy generation with the KV cache (batch 1, no EOS stop); choose a prompt whose greedy margins are safe.
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = PAD
    best = None
    for attempt in range(40):
        prompt = torch.randint(3, V, (1, GEN_PROMPT_LEN), generator=g)
        with torch.no_grad():
            gen = model.generate(prompt, attention_mask=torch.ones_like(prompt), do_sample=False, max_new_tokens=GEN_NEW,
                                 min_new_tokens=0, use_cache=True, output_logits=True, return_dict_in_generate=True)
            prefill = model(input_ids=prompt).logits[0]
        steps = torch.stack([l[0] for l in gen.logits])
        top2 = steps.topk(2, dim=-1).values
        margin = float((top2[:, 0] - top2[:, 1]).min())
        if best is None or margin > best[0]:
            best = (margin, prompt, gen.sequences[0, GEN_PROMPT_LEN:], steps, prefill)
        if margin >= 0.02:
            break
    margin, prompt, new_ids, steps, prefill = best
    assert len(new_ids) == GEN_NEW, "generation stopped early"
    expected["step_logits"] = steps.float().contiguous()
    expected["prefill_logits"] = prefill.float().contiguous()

    if os.path.isdir(folder):
        shutil.rmtree(folder)
    model.save_pretrained(folder, safe_serialization=True)
    save_file({k: v.float().contiguous() for k, v in expected.items()}, os.path.join(folder, "expected.safetensors"),
              metadata={"format": "pt"})
    case = {
        "kind": "arch-forward-backward",
        "architecture": type(model).__name__,
        "model_type": config.model_type,
        "description": f"{type(model).__name__}: logits, HF causal-LM loss, every parameter gradient, greedy KV-cached generation",
        "inputs": {"input_ids": ids.tolist(), "attention_mask": mask.tolist(), "labels": labels.tolist(),
                   "generate_prompt": prompt[0].tolist(), "max_new_tokens": GEN_NEW},
        "expected": {"loss": out.loss.item(), "generated_ids": new_ids.tolist(),
                     "min_top1_top2_logit_margin": margin},
        "expected_tensors": sorted(expected.keys()),
        "notes": "Compare logits at attention_mask == 1 positions only: a left-pad query sees no key (HF's eager "
                 "attention then averages masked keys; Finch outputs zero). Pads never influence real positions.",
        "tolerance": {"abs": 2e-4, "rel": 2e-4, "overrides": {"loss": {"abs": 1e-5, "rel": 1e-5},
                                                              "grad.*": {"abs": 2e-5, "rel": 1e-3}}},
        "diagnostics": {"logits_float32_vs_float64_max_abs": f32_vs_f64, "grad_max_abs": grads},
        "seed": seed,
        "generator": {"torch": torch.__version__, "transformers": transformers.__version__, "python": sys.version.split()[0]},
    }
    with open(os.path.join(folder, "case.json"), "w") as f:
        json.dump(case, f, indent=1)
    print(f"{name}: loss {float(out.loss):.6f}, greedy margin {margin:.4f}, f32-vs-f64 logits {f32_vs_f64:.2e} -> {folder}")


def check_export(root):
    """Loads folders Finch exported (ArchitectureTests with FINCH_ARCH_EXPORT_DIR=root) in transformers and
    compares their logits with the reference case's."""
    ok = True
    for name in cases():
        folder = os.path.join(root, name)
        if not os.path.isdir(folder):
            print(f"{name}: no export at {folder}"); ok = False; continue
        model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").eval()
        case = json.load(open(os.path.join(OUT, name, "case.json")))
        from safetensors.torch import load_file
        exp = load_file(os.path.join(OUT, name, "expected.safetensors"))["logits"]
        ids = torch.tensor(case["inputs"]["input_ids"]); mask = torch.tensor(case["inputs"]["attention_mask"])
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask).logits
        diff = float((logits - exp)[mask.bool()].abs().max())
        print(f"{name}: transformers on Finch's export ({type(model).__name__}): max |logits - reference| = {diff:.2e}")
        ok &= diff < 1e-5
    sys.exit(0 if ok else 1)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--check-export":
        return check_export(sys.argv[2])
    os.makedirs(OUT, exist_ok=True)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    for i, (name, (config, cls)) in enumerate(cases().items()):
        make(name, config, cls, seed=1234 + i)


if __name__ == "__main__":
    main()
