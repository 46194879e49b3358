#!/usr/bin/env python3
"""Reads a GGUF file that `finch export gguf` wrote with the `gguf` package's GGUFReader and checks it.

  python3 tools/gguf_export_check.py OUT.gguf [--source SRC.gguf] [--expect-arch llama] [--adapter]

Always: the file parses; every tensor's data has the size its type and shape need; general.architecture and
general.type are set; a model has the architecture's hyper-parameter keys and a vocabulary (tokens, token types,
bos/eos ids); an adapter has adapter.type = lora, adapter.lora.alpha and only *.lora_a / *.lora_b pairs.
With --source (the GGUF the model came from, no adapter merged): every metadata key of the source is in the export
with the same type and value (general.file_type and general.quantization_version aside), and every tensor:
  - F32, F16, BF16, Q8_0, Q4_0 in the source: the same type and the same bytes;
  - Q4_1, Q5_0, Q5_1 in the source: the bytes gguf.quants.quantize gives for the source's dequantised values;
  - Q4_K, Q6_K: the bytes ggml's reference quantiser gives for them (tools/vectors/gguf_quant_vectors.py builds it);
  - any other type: present with the same shape.
Prints one JSON line with the counts; exits 1 with the problems listed otherwise.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from gguf import GGUFReader, GGMLQuantizationType as QT, GGUFValueType as VT, GGML_QUANT_SIZES
from gguf.quants import dequantize, quantize

sys.path.insert(0, str(Path(__file__).resolve().parent / "vectors"))

REQUIRED = {
    "llama": ["context_length", "embedding_length", "block_count", "feed_forward_length", "attention.head_count",
              "attention.head_count_kv", "rope.freq_base", "attention.layer_norm_rms_epsilon", "rope.dimension_count",
              "vocab_size"],
    "qwen2": ["context_length", "embedding_length", "block_count", "feed_forward_length", "attention.head_count",
              "attention.head_count_kv", "rope.freq_base", "attention.layer_norm_rms_epsilon"],
    "qwen3": ["context_length", "embedding_length", "block_count", "feed_forward_length", "attention.head_count",
              "attention.head_count_kv", "rope.freq_base", "attention.layer_norm_rms_epsilon", "attention.key_length"],
    "gemma3": ["context_length", "embedding_length", "block_count", "feed_forward_length", "attention.head_count",
               "attention.head_count_kv", "rope.freq_base", "attention.layer_norm_rms_epsilon", "attention.key_length",
               "attention.value_length"],
    "gpt2": ["context_length", "embedding_length", "block_count", "feed_forward_length", "attention.head_count",
             "attention.layer_norm_epsilon"],
}


def value(field):
    """A metadata field as a Python value (arrays as lists)."""
    t = field.types[0]
    if t == VT.ARRAY:
        sub = field.types[1] if len(field.types) > 1 else None
        if sub == VT.STRING:
            return [bytes(field.parts[i]).decode("utf-8", "replace") for i in field.data]
        return [field.parts[i].tolist() for i in field.data]
    if t == VT.STRING:
        return bytes(field.parts[field.data[0]]).decode("utf-8", "replace")
    return field.parts[field.data[0]].tolist()


def tensor_bytes(t) -> bytes:
    return np.ascontiguousarray(t.data).view(np.uint8).tobytes()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--source")
    ap.add_argument("--expect-arch")
    ap.add_argument("--adapter", action="store_true")
    a = ap.parse_args()
    problems: list[str] = []
    r = GGUFReader(a.file)
    fields = {k: f for k, f in r.fields.items() if not k.startswith("GGUF.")}
    arch = value(fields["general.architecture"]) if "general.architecture" in fields else None
    if arch is None:
        problems.append("no general.architecture")
    if a.expect_arch and arch != a.expect_arch:
        problems.append(f"architecture {arch!r}, expected {a.expect_arch!r}")
    gtype = value(fields["general.type"]) if "general.type" in fields else None
    for t in r.tensors:
        block, size = GGML_QUANT_SIZES[t.tensor_type]
        need = int(np.prod([int(x) for x in t.shape])) // block * size
        if t.n_bytes != need:
            problems.append(f"{t.name}: {t.n_bytes} bytes, {t.tensor_type.name} {list(t.shape)} needs {need}")
    stats = {"tensors": len(r.tensors), "keys": len(fields), "architecture": arch, "type": gtype}
    if a.adapter:
        if gtype != "adapter" or value(fields.get("adapter.type")) != "lora" or "adapter.lora.alpha" not in fields:
            problems.append("not a LoRA adapter (general.type, adapter.type, adapter.lora.alpha)")
        names = {t.name for t in r.tensors}
        for n in names:
            if not (n.endswith(".lora_a") or n.endswith(".lora_b")):
                problems.append(f"unexpected adapter tensor {n}")
            elif n.endswith(".lora_a") and n[:-1] + "b" not in names:
                problems.append(f"{n} has no lora_b")
        stats["alpha"] = value(fields["adapter.lora.alpha"]) if "adapter.lora.alpha" in fields else None
    else:
        for k in REQUIRED.get(arch, []):
            if f"{arch}.{k}" not in fields:
                problems.append(f"missing {arch}.{k}")
        for k in ["tokenizer.ggml.model", "tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.bos_token_id",
                  "tokenizer.ggml.eos_token_id"]:
            if k not in fields:
                problems.append(f"missing {k}")
        if "tokenizer.ggml.model" in fields and value(fields["tokenizer.ggml.model"]) == "gpt2":
            for k in ["tokenizer.ggml.merges", "tokenizer.ggml.pre"]:
                if k not in fields:
                    problems.append(f"missing {k}")
    if a.source:
        s = GGUFReader(a.source)
        sfields = {k: f for k, f in s.fields.items() if not k.startswith("GGUF.")}
        same_keys = 0
        for k, f in sfields.items():
            if k in ("general.file_type", "general.quantization_version"):
                continue
            if k not in fields:
                problems.append(f"key {k} is missing")
            elif fields[k].types != f.types or value(fields[k]) != value(f):
                problems.append(f"key {k} differs")
            else:
                same_keys += 1
        out = {t.name: t for t in r.tensors}
        identical, requantised, shape_only = 0, 0, 0
        lib = None
        for t in s.tensors:
            o = out.get(t.name)
            if o is None:
                problems.append(f"tensor {t.name} is missing")
                continue
            if list(o.shape) != list(t.shape):
                problems.append(f"tensor {t.name}: shape {list(o.shape)}, source {list(t.shape)}")
                continue
            q = t.tensor_type
            if o.tensor_type == q and tensor_bytes(o) == tensor_bytes(t):
                identical += 1   # unchanged weights keep the source's blocks (K-quants from an imatrix included)
            elif q in (QT.F32, QT.F16, QT.BF16, QT.Q8_0, QT.Q4_0):
                problems.append(f"tensor {t.name}: {q.name} in the source, {o.tensor_type.name} in the export, bytes differ")
            elif q in (QT.Q4_1, QT.Q5_0, QT.Q5_1, QT.Q4_K, QT.Q6_K):
                x = dequantize(np.ascontiguousarray(t.data), q).reshape(-1, int(t.shape[0]))
                if q in (QT.Q4_K, QT.Q6_K):
                    if lib is None:
                        import gguf_quant_vectors as gqv
                        lib = gqv.ggml_reference()
                    want = np.concatenate([gqv.c_quantize(lib, q, row) for row in x]).tobytes()
                else:
                    want = np.asarray(quantize(x, q)).view(np.uint8).tobytes()
                if o.tensor_type != q or tensor_bytes(o) != want:
                    problems.append(f"tensor {t.name}: {q.name} re-quantised differs from the reference on the dequantised source")
                else:
                    requantised += 1
            else:
                shape_only += 1
        stats.update({"source_keys_equal": same_keys, "tensors_identical": identical,
                      "tensors_requantised_as_reference": requantised, "tensors_shape_only": shape_only})
    print(json.dumps(stats))
    if problems:
        for p in problems[:40]:
            print("problem:", p, file=sys.stderr)
        if len(problems) > 40:
            print(f"problem: … and {len(problems) - 40} more", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
