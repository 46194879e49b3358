#!/usr/bin/env python3
"""Checks a Hugging Face model folder that Finch wrote against transformers (and PEFT), as a user of transformers
would load it (issue 16, item 4).

  python3 tools/hf_export_check.py FOLDER --finch BIN [--texts FILE.jsonl] [--source M.gguf]
                                   [--logits-ids 1,2,3 --logits finch.f32] [--base BASE --adapter ADAPTER]

Checks, each printed as one line ("ok ..." or "FAIL ..."), exit 1 on any failure:
  files      tokenizer.json, tokenizer_config.json (with the chat template), special_tokens_map.json and
             generation_config.json are present, and AutoTokenizer / AutoConfig / GenerationConfig load them;
  tokens     transformers' tokenizer of FOLDER gives `finch tokenizer encode --model FOLDER` ids on every text
             (built-in texts plus the "text"/"prompt"/"response"/"instruction"/"output" strings of --texts); with
             --source (the GGUF the model came from) it also notes how often transformers' own tokenizer of that
             file agrees (not a failure: its GGUF loader ignores some `tokenizer.ggml.pre` rules llama.cpp has);
  chat       apply_chat_template renders `finch template render --model FOLDER` text byte for byte for a few
             conversations (with and without a system turn, several turns, with the generation prompt);
  logits     with --logits: AutoModelForCausalLM (float32) on --logits-ids gives Finch's logits within 2e-4
             (absolute);
  merge      with --base and --adapter: PEFT's merge_and_unload() of ADAPTER on BASE (a GGUF file, dequantised by
             transformers, or a model folder) equals FOLDER's weights within 1e-6 (absolute, relative to the
             largest weight of each tensor).
Needs torch, transformers, tokenizers, peft, gguf (for GGUF sources). Used by the real-model tests; never a
dependency of finch itself.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

TEXTS = [
    "Hello world",
    "The capital of France is Paris.",
    "  leading spaces and   runs   of spaces\tand a tab\n\nand new lines  ",
    "Numbers: 1234567890, 3.14159, -42, 1e-5 and 10,000,000.",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n",
    "Ünïcödé: naïve café, Straße, 東京は日本の首都です。 Привет, мир! 🙂👍🏽",
    "emoji and symbols ™ © ® → ≤ ≥ ∑ ∫ √ ∞",
    "<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>",
    "'s 're 've 'll 'd 'm 't I'M WE'RE",
    "a" * 300,
    "",
    " ",
    "\n",
    "tab\tseparated\tvalues\r\nwith CRLF",
]
CHATS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Name a prime number."}],
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"},
     {"role": "user", "content": "Write a haiku about the sea."}],
]

failures = []


def report(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def finch(binary, args):
    r = subprocess.run([binary] + args, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"finch {' '.join(args[:3])} … failed: {r.stderr.strip()[-500:]}")
    return r.stdout


def texts_from(path, limit=200):
    out = []
    for line in open(path, encoding="utf-8"):
        try:
            o = json.loads(line)
        except json.JSONDecodeError:
            continue
        for k in ("text", "prompt", "response", "instruction", "input", "output", "chosen", "rejected"):
            if isinstance(o.get(k), str):
                out.append(o[k])
        for m in o.get("messages", []) if isinstance(o.get("messages"), list) else []:
            if isinstance(m, dict) and isinstance(m.get("content"), str):
                out.append(m["content"])
        if len(out) >= limit:
            break
    return out[:limit]


def source_template(source):
    """The chat template a GGUF source carries (None when it has none, as Gemma 3 270M's base file)."""
    import gguf
    field = gguf.GGUFReader(source).fields.get("tokenizer.chat_template")
    return field.contents() if field is not None else None


def check_files(folder, template_expected=True):
    from transformers import AutoConfig, AutoTokenizer, GenerationConfig
    names = ["config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"]
    missing = [n for n in names if not (folder / n).exists()]
    report(not missing, f"files: {', '.join(names)}" + (f" (missing: {', '.join(missing)})" if missing else ""))
    cfg = json.load(open(folder / "tokenizer_config.json")) if (folder / "tokenizer_config.json").exists() else {}
    has_template = bool(cfg.get("chat_template")) or (folder / "chat_template.jinja").exists()
    if template_expected:
        report(has_template, "files: tokenizer_config.json carries the chat template")
    else:
        report(not has_template, "files: no chat template, as the source has none")
    AutoConfig.from_pretrained(folder)
    gen = GenerationConfig.from_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    report(type(tok).__name__ != "" and tok.is_fast, f"files: AutoTokenizer loads a fast tokenizer ({type(tok).__name__}), "
           f"bos {tok.bos_token!r} eos {tok.eos_token!r} pad {tok.pad_token!r}; generation eos {gen.eos_token_id}")
    return tok


def check_tokens(tok, folder, binary, texts, source):
    ref_tok = None
    if source:
        from transformers import AutoTokenizer
        src = Path(source)
        ref_tok = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name)
    bad, bad_src = [], []
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "texts.jsonl"
        f.write_text("".join(json.dumps(t) + "\n" for t in texts), encoding="utf-8")
        lines = finch(binary, ["tokenizer", "encode", "--model", str(folder), "--json-lines", str(f)]).splitlines()
    for i, text in enumerate(texts):
        got = json.loads(lines[i]) if i < len(lines) else None
        hf = tok(text, add_special_tokens=False).input_ids
        if hf != got:
            bad.append((i, text, got, hf))
        if ref_tok is not None and ref_tok(text, add_special_tokens=False).input_ids != hf:
            bad_src.append((i, text))
    for i, text, got, hf in bad[:3]:
        print(f"     text {i} {text[:60]!r}: finch {(got or [])[:20]} transformers {hf[:20]}")
    report(not bad, f"tokens: transformers' tokenizer of the folder gives finch's ids on {len(texts) - len(bad)}/{len(texts)} texts")
    if ref_tok is not None:
        # Not a failure: transformers' GGUF loader knows only some tokenizer.ggml.pre values (SmolLM2's "smollm"
        # digit split is not among them), while Finch follows llama.cpp, which its own tests check.
        for i, text in bad_src[:3]:
            print(f"     text {i} {text[:60]!r}: differs from transformers' tokenizer of {Path(source).name}")
        print(f"note transformers' own tokenizer of the source GGUF gives the same ids on {len(texts) - len(bad_src)}/{len(texts)} texts")


def check_chat(tok, folder, binary):
    bad = 0
    with tempfile.TemporaryDirectory() as d:
        for i, messages in enumerate(CHATS):
            f = Path(d) / "m.json"
            f.write_text(json.dumps(messages), encoding="utf-8")
            try:
                hf = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            except Exception as e:  # a template that refuses a system turn, for example: finch must refuse too
                hf = f"error: {type(e).__name__}"
            try:
                got = finch(binary, ["template", "render", "--model", str(folder), "--messages", str(f), "--add-generation-prompt"])
                if got.endswith("\n") and not hf.endswith("\n"):
                    got = got[:-1]
            except RuntimeError:
                got = hf if hf.startswith("error:") else "error"
            if got != hf:
                bad += 1
                print(f"     chat {i}: finch {got[:200]!r}\n             transformers {hf[:200]!r}")
    report(bad == 0, f"chat: apply_chat_template renders finch's text for {len(CHATS) - bad}/{len(CHATS)} conversations")


def check_logits(folder, ids, path):
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    with torch.no_grad():
        ref = model(torch.tensor([ids])).logits[0].float().numpy()
    got = np.fromfile(path, dtype="<f4").reshape(ref.shape)
    diff = float(np.abs(got - ref).max())
    report(diff <= 2e-4, f"logits: max |finch - transformers| = {diff:.3g} over {len(ids)} positions "
           f"(largest logit {float(np.abs(ref).max()):.3g}; tolerance 2e-4)")


def load_base(base):
    import torch
    from transformers import AutoModelForCausalLM
    p = Path(base)
    if p.suffix == ".gguf":
        return AutoModelForCausalLM.from_pretrained(p.parent, gguf_file=p.name, dtype=torch.float32)
    return AutoModelForCausalLM.from_pretrained(p, dtype=torch.float32)


def check_merge(folder, base, adapter):
    import numpy as np
    from peft import PeftModel
    from safetensors.numpy import load_file
    base_model = load_base(base)
    base_sd = {k: v.float().numpy().copy() for k, v in base_model.state_dict().items()}
    merged = PeftModel.from_pretrained(base_model, adapter).merge_and_unload()
    ref = {k: v.float().numpy() for k, v in merged.state_dict().items()}
    index = folder / "model.safetensors.index.json"
    files = sorted(set(json.load(open(index))["weight_map"].values())) if index.exists() else ["model.safetensors"]
    got = {}
    for name in files:
        got.update(load_file(folder / name))
    worst, worst_name, moved = 0.0, "-", 0
    for name, r in ref.items():
        if name not in got:
            if name == "lm_head.weight" and "model.embed_tokens.weight" in got:
                continue  # tied
            report(False, f"merge: {name} missing from the folder")
            continue
        d = float(np.abs(got[name] - r).max()) / max(1e-30, float(np.abs(r).max()))
        if d > worst:
            worst, worst_name = d, name
        if name in base_sd and float(np.abs(base_sd[name] - r).max()) > 0:
            moved += 1
    report(worst <= 1e-6 and moved > 0,
           f"merge: folder weights equal PEFT merge_and_unload within {worst:.3g} (relative, worst {worst_name}); "
           f"{moved} tensors changed by the adapter")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder")
    ap.add_argument("--finch", required=True, help="the finch binary")
    ap.add_argument("--texts", action="append", default=[], help="JSONL files whose strings are tokenized too")
    ap.add_argument("--source", help="the GGUF file the model came from (its tokenizer and chat template are the reference)")
    ap.add_argument("--logits-ids")
    ap.add_argument("--logits")
    ap.add_argument("--base")
    ap.add_argument("--adapter")
    a = ap.parse_args()
    folder = Path(a.folder)
    tok = check_files(folder, template_expected=not a.source or source_template(a.source) is not None)
    texts = list(TEXTS)
    for f in a.texts:
        texts += texts_from(f)
    check_tokens(tok, folder, a.finch, texts, a.source)
    check_chat(tok, folder, a.finch)
    if a.logits:
        check_logits(folder, [int(x) for x in a.logits_ids.split(",")], a.logits)
    if a.base and a.adapter:
        check_merge(folder, a.base, a.adapter)
    print("all checks passed" if not failures else f"{len(failures)} check(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
