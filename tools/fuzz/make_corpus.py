#!/usr/bin/env python3
"""Writes the fuzz seed corpora under tools/fuzz/corpus/<target>/ (small valid and near-valid inputs).

Reproducible: run `python3 tools/fuzz/make_corpus.py` (needs numpy and the `gguf` package; `zstd` on PATH).
Everything is generated here; nothing is copied from model or data folders.
"""
import json, os, struct, subprocess, sys, tempfile, hashlib
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---------------------------------------------------------------- safetensors
def safetensors_bytes(tensors, metadata=None, pad=True):
    """tensors: list of (name, dtype, shape, raw bytes). Laid out in order, as the reference writer does."""
    header, blob, off = {}, b"", 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(raw)]}
        blob += raw
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + blob


def make_safetensors():
    f32 = np.arange(6, dtype="<f4").tobytes()
    f16 = np.array([1.0, -2.5, 65504, 6e-8], dtype="<f2").tobytes()
    bf16 = (np.array([1.0, -3.0, 0.5], dtype="<f4").view("<u4") >> 16).astype("<u2").tobytes()
    i64 = np.array([0, -1, 2**40], dtype="<i8").tobytes()
    i32 = np.array([7, 8], dtype="<i4").tobytes()
    f64 = np.array([3.25], dtype="<f8").tobytes()
    put("safetensors", "valid-mixed.safetensors", safetensors_bytes([
        ("model.embed_tokens.weight", "F32", [2, 3], f32), ("a.f16", "F16", [4], f16), ("b.bf16", "BF16", [3], bf16),
        ("c.i64", "I64", [3], i64), ("d.i32", "I32", [2, 1], i32), ("e.f64", "F64", [], f64), ("f.u8", "U8", [0], b""),
    ], metadata={"format": "pt"}))
    put("safetensors", "valid-one.safetensors", safetensors_bytes([("w", "F32", [1], struct.pack("<f", 1.5))]))
    # Near-valid: the reader must refuse each with an error.
    put("safetensors", "bad-offsets.safetensors", safetensors_bytes([("w", "F32", [2], f32[:8])]).replace(b"[0,8]", b"[4,8]"))
    put("safetensors", "bad-negative.safetensors", safetensors_bytes([("w", "F32", [2], f32[:8])]).replace(b"[0,8]", b"[-8,0]"))
    put("safetensors", "bad-shape.safetensors", safetensors_bytes([("w", "F32", [2], f32[:8])]).replace(b"[2]", b"[-2]"))
    good = safetensors_bytes([("w", "F32", [2], f32[:8])])
    put("safetensors", "bad-length.safetensors", struct.pack("<Q", 1 << 40) + good[8:])
    put("safetensors", "bad-overlap.safetensors", safetensors_bytes([("x", "F32", [1], f32[:4]), ("y", "F32", [1], f32[4:8])]).replace(b"[4,8]", b"[0,4]"))


# ---------------------------------------------------------------- GGUF
def make_gguf():
    import gguf
    from gguf import GGUFWriter, GGMLQuantizationType

    tmp = tempfile.mkdtemp()

    def write(target, name, fill):
        path = os.path.join(tmp, name)
        w = GGUFWriter(path, "llama")
        fill(w)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        put(target, name, open(path, "rb").read())

    # A tiny Llama: every tensor the importer needs (hidden 8, 2 heads, 1 layer, vocab 8), F32 and F16, no vocab.
    def tiny_llama(w):
        w.add_context_length(16); w.add_embedding_length(8); w.add_block_count(1); w.add_feed_forward_length(16)
        w.add_head_count(2); w.add_head_count_kv(1); w.add_layer_norm_rms_eps(1e-5); w.add_rope_freq_base(10000.0)
        w.add_vocab_size(8); w.add_file_type(1)
        rng = np.random.default_rng(0)
        def t(name, *shape, dtype=np.float32):
            w.add_tensor(name, rng.standard_normal(shape).astype(dtype))
        t("token_embd.weight", 8, 8); t("output_norm.weight", 8)
        t("blk.0.attn_norm.weight", 8); t("blk.0.ffn_norm.weight", 8)
        t("blk.0.attn_q.weight", 8, 8, dtype=np.float16); t("blk.0.attn_k.weight", 4, 8, dtype=np.float16)
        t("blk.0.attn_v.weight", 4, 8); t("blk.0.attn_output.weight", 8, 8)
        t("blk.0.ffn_gate.weight", 16, 8); t("blk.0.ffn_up.weight", 16, 8); t("blk.0.ffn_down.weight", 8, 16)
    write("gguf", "tiny-llama.gguf", tiny_llama)

    # Metadata of every value type, nested arrays, and quantised blocks (Q8_0, Q4_0) made with gguf-py.
    def kinds(w):
        w.add_uint8("k.u8", 7); w.add_int8("k.i8", -7); w.add_uint16("k.u16", 700); w.add_int16("k.i16", -700)
        w.add_uint32("k.u32", 70000); w.add_int32("k.i32", -70000); w.add_uint64("k.u64", 2**40); w.add_int64("k.i64", -2**40)
        w.add_float32("k.f32", 0.5); w.add_float64("k.f64", 0.25); w.add_bool("k.bool", True); w.add_string("k.str", "héllo")
        w.add_array("k.arr", [1, 2, 3]); w.add_array("k.strs", ["a", "b"]); w.add_array("k.nested", [[1, 2], [3]])
        w.add_custom_alignment(64)
        x = np.linspace(-1, 1, 64, dtype=np.float32).reshape(2, 32)
        for name, qt in [("q8", GGMLQuantizationType.Q8_0), ("q4", GGMLQuantizationType.Q4_0)]:
            q = gguf.quants.quantize(x, qt)
            w.add_tensor(name, q, raw_shape=q.shape, raw_dtype=qt)
        w.add_tensor("bf", x.astype(np.float16))
    write("gguf", "kinds.gguf", kinds)

    # Vocabularies for the tokenizer target: byte-level BPE ("gpt2") and SentencePiece ("llama").
    bl = bytes_to_unicode()
    pieces = [bl[b] for b in range(256)]
    merges = ["Ġ t", "h e", "Ġt he", "i n", "Ġ a"]
    for m in merges:
        pieces.append(m.replace(" ", ""))
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    def gpt2_vocab(w):
        w.add_tokenizer_model("gpt2"); w.add_tokenizer_pre("gpt-2")
        w.add_token_list(pieces + specials)
        w.add_token_types([1] * len(pieces) + [3] * len(specials))
        w.add_token_merges(merges)
        w.add_bos_token_id(len(pieces)); w.add_eos_token_id(len(pieces) + 2); w.add_add_bos_token(False)
        w.add_chat_template("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}")
    write("tokenizer", "vocab-gpt2.gguf", gpt2_vocab)

    def spm_vocab(w):
        w.add_tokenizer_model("llama")
        toks = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)] + ["▁", "▁the", "▁a", "e", "t", "h", "▁t", "he"]
        w.add_token_list(toks)
        w.add_token_scores([0.0] * 3 + [0.0] * 256 + [-1.0, -2.0, -3.0, -4.0, -5.0, -6.0, -7.0, -8.0])
        w.add_token_types([2, 3, 3] + [6] * 256 + [1] * 8)
        w.add_bos_token_id(1); w.add_eos_token_id(2); w.add_unk_token_id(0)
    write("tokenizer", "vocab-spm.gguf", spm_vocab)

    # Near-valid: truncated, bad version, huge counts.
    good = open(os.path.join(OUT, "gguf", "tiny-llama.gguf"), "rb").read()
    put("gguf", "bad-truncated.gguf", good[: len(good) // 2])
    put("gguf", "bad-version.gguf", good[:4] + struct.pack("<I", 1) + good[8:200])
    put("gguf", "bad-counts.gguf", good[:8] + struct.pack("<QQ", 2**62, 2**62) + good[24:200])
    put("gguf", "header-only.gguf", b"GGUF" + struct.pack("<IQQ", 3, 0, 0))


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b); cs.append(256 + n); n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


# ---------------------------------------------------------------- JSONL records
def make_jsonl():
    # The first byte of each seed picks the mode (0 = detect the format; see Sources/jsonl/Fuzz.swift).
    def seed(name, lines, mode=0):
        put("jsonl", name, bytes([mode]) + ("\n".join(lines) + "\n").encode())
    j = lambda o: json.dumps(o, ensure_ascii=False)
    seed("alpaca.jsonl", [j({"instruction": "Add 2 and 3.", "input": "", "output": "5"}),
                          j({"instruction": "Translate", "input": "chat", "output": "cat", "system": "Be brief."})])
    seed("chat.jsonl", [j({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"},
                                        {"role": "assistant", "content": "hello"}]}),
                        j({"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]})])
    seed("preference.jsonl", [j({"prompt": "Pick", "chosen": "good", "rejected": "bad"}),
                              j({"chosen": "\n\nHuman: hi\n\nAssistant: hello", "rejected": "\n\nHuman: hi\n\nAssistant: go away"}),
                              j({"prompt": [{"role": "user", "content": "x"}], "chosen": [{"role": "assistant", "content": "y"}],
                                 "rejected": [{"role": "assistant", "content": "z"}]})], mode=0)
    seed("prompt.jsonl", [j({"prompt": "Write a haiku."}), j({"prompt": [{"role": "user", "content": "Hi"}]}),
                          j({"messages": [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}, {"role": "user", "content": "v"}]})],
         mode=4)
    seed("text.jsonl", [j({"text": "Plain text."}), j({"text": "ünïcödé 🙂"})])
    seed("mixed.jsonl", [j({"instruction": "i", "output": "o"}), "", "   ", j({"text": "t"}),
                         j({"messages": [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}]})], mode=6)
    seed("bad.jsonl", ['{"instruction": "x"', "[1,2]", j({"messages": [{"role": "wizard", "content": "x"}]}),
                       j({"messages": []}), "\r", j({"chosen": "same", "rejected": "same", "prompt": "p"})], mode=6)


# ---------------------------------------------------------------- dataset manifest + shard
def zstd_frame(raw):
    with tempfile.NamedTemporaryFile(delete=False) as f:
        f.write(raw)
        name = f.name
    out = subprocess.run(["zstd", "-q", "-c", "--check", "-3", name], check=True, capture_output=True).stdout
    os.unlink(name)
    return out


def entry_bytes(ids, mask, docs, id_bytes=2):
    spans, i = [], 0
    while i < len(mask):
        if not mask[i]:
            i += 1; continue
        s = i
        while i < len(mask) and mask[i]:
            i += 1
        spans.append((s, i - s))
    out = struct.pack("<IIII", 1, len(ids), len(docs), len(spans)) + bytes([id_bytes, 0, 0, 0])
    for d in docs:
        out += struct.pack("<IIII", *d)
    for s, l in spans:
        out += struct.pack("<II", s, l)
    for plane in range(id_bytes):
        out += bytes((i >> (8 * plane)) & 0xFF for i in ids)
    return out


def make_manifest():
    entries = [
        entry_bytes([1, 5, 9, 300, 2], [0, 0, 1, 1, 1], [(5, 0, 0, 1)]),
        entry_bytes([1, 7, 2, 1, 8, 8, 2], [0, 1, 1, 0, 0, 1, 1], [(3, 1, 0, 2), (4, 2, 0, 3)]),
        entry_bytes([1, 4, 2], [0, 1, 1], [(3, 3, 0, 4)], id_bytes=1),
    ]
    shard, index = b"", b"FIDX" + struct.pack("<I", len(entries))
    first = [0, 1, 3]
    for raw, rec in zip(entries, first):
        frame = zstd_frame(raw)
        tokens = struct.unpack_from("<I", raw, 4)[0]
        index += struct.pack("<QIII", len(shard), len(frame), tokens, rec)
        shard += frame
    manifest = {
        "format": "finch-dataset", "format_version": 1, "kind": "sequences",
        "tokenizer": {"sha256": "0" * 64, "vocab_size": 512, "bos_id": 1, "eos_id": 2, "pad_id": 0, "unk_id": -1},
        "max_length": 8, "packed": True, "train_on_prompt": False, "id_bytes": 2, "zstd_level": 3,
        "sources": [{"path": "train.jsonl", "format": "alpaca", "records": 4, "skipped": 0}],
        "records": 4, "entries": 3, "tokens": 15, "trained_tokens": 9, "truncated": 0, "skipped": 0,
        "lengths": {"min": 3, "max": 5, "mean": 3.75, "p50": 3, "p90": 5, "p99": 5,
                    "histogram": [{"from": 0, "to": 15, "count": 4}]},
        "shards": [{"file": "shard-00000.zst", "index": "shard-00000.idx", "sha256": "@SHARD_SHA@",
                    "index_sha256": "@INDEX_SHA@", "bytes": 0, "entries": 3, "records": 4, "tokens": 15}],
        "created_by": "tools/fuzz/make_corpus.py",
    }
    text = json.dumps(manifest, indent=1).replace('"bytes": 0', '"bytes": @SHARD_BYTES@')
    sep = b"@@FUZZ@@"
    put("manifest", "packed.bin", text.encode() + sep + index + sep + shard)
    # With a template and the overlong report (optional fields), one shard entry, no shuffle (last byte odd).
    m2 = dict(manifest)
    m2["template"] = {"name": "chatml", "bos": False, "user": {"prefix": "<|im_start|>user\n", "suffix": "<|im_end|>\n"},
                      "assistant": {"prefix": "<|im_start|>assistant\n", "suffix": "<|im_end|>\n"}, "end_of_turn": "<|im_end|>"}
    m2["overlong"] = {"policy": "drop", "maxLength": 8, "files": [{"file": "train.jsonl", "dropped": 1, "truncated": 0}],
                      "longest": 9, "longestAt": "train.jsonl:4"}
    m2["entries"] = 1
    m2["shards"] = [dict(manifest["shards"][0], entries=1)]
    frame = zstd_frame(entries[0])
    idx1 = b"FIDX" + struct.pack("<I", 1) + struct.pack("<QIII", 0, len(frame), 5, 0)
    text2 = json.dumps(m2, indent=1).replace('"bytes": 0', '"bytes": @SHARD_BYTES@')
    put("manifest", "template.bin", text2.encode() + sep + idx1 + sep + frame + b"\x01")
    put("manifest", "manifest-only.bin", json.dumps(dict(manifest, shards=[], entries=0)).encode())


# ---------------------------------------------------------------- chat templates (written here, in the styles models use)
TEMPLATES = {
    "chatml.jinja": """{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}""",
    "llama3.jinja": """{{- bos_token }}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}
{{- "<|start_header_id|>system<|end_header_id|>\\n\\n" }}
{{- "Cutting Knowledge Date: December 2023\\nToday Date: " + strftime_now("%d %b %Y") + "\\n\\n" }}
{{- system_message }}
{{- "<|eot_id|>" }}
{%- for message in messages %}
    {%- if message.content is string %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- else %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}
        {%- for part in message.content %}{{ part.text }}{% endfor %}
        {{- '<|eot_id|>' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
{%- endif %}
""",
    "tools.jinja": """{%- macro render(m) -%}
{%- if m.tool_calls is defined -%}{% for c in m.tool_calls %}<tool_call>{{ c.function | tojson }}</tool_call>{% endfor %}
{%- else -%}{{ m.content if m.content is string else m.content | map(attribute='text') | join(' ') }}{%- endif -%}
{%- endmacro -%}
{%- if tools %}Tools: {% for t in tools %}{{ t.function.name | upper }}{{ ', ' if not loop.last }}{% endfor %}
{% endif -%}
{%- set ns = namespace(last_user=-1) -%}
{%- for m in messages %}{% if m.role == 'user' %}{% set ns.last_user = loop.index0 %}{% endif %}{% endfor -%}
{%- for m in messages -%}
[{{ m.role | capitalize }}{% if m.name %}:{{ m.name }}{% endif %}] {% if m.role == 'assistant' %}{% generation %}{{ render(m) }}{% endgeneration %}{% else %}{{ render(m) }}{% endif %}
{% if loop.index0 == ns.last_user %}(last user turn){% endif %}
{%- endfor -%}
{%- if add_generation_prompt %}[Assistant] {% endif -%}""",
    "gemma.jinja": """{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set first = messages[0]['content'] + '\\n\\n' %}{% set loop_messages = messages[1:] %}{% else %}{% set first = '' %}{% set loop_messages = messages %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}{{ '<start_of_turn>' + role + '\\n' + (first if loop.first else '') }}{{ message['content'] | trim }}{{ '<end_of_turn>\\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}""",
    "filters.jinja": """{% set xs = [3, 1, 2] %}{{ xs | sort | join(',') }} {{ xs | length }} {{ (xs | max) ** 2 }} {{ 'a,b'.split(',') }} {{ '%05d' | format(42) if false else 42 }}
{{ {'k': 1, 'j': [1, 2.5, none, true]} | tojson(indent=2) }} {{ 'Hi ' ~ 'there' | title }} {{ range(3) | list }} {{ messages | selectattr('role', 'equalto', 'user') | list | length }}
{% for k, v in {'a': 1}.items() %}{{ k }}={{ v }}{% endfor %} {{ 'x' * 3 }} {{ '  s  '.strip() }} {{ 'abc'[::-1] }} {{ 'abc'[1:] }} {{ 10 // 3 }} {{ 7 % 3 }} {{ -1.5 | abs }} {{ 'a' in 'cat' }}
{% if messages | length > 2 and not (messages[0].role != 'system') %}long{% elif true %}x{% else %}y{% endif %}
{% for i in range(5) %}{% if i == 3 %}{% break %}{% endif %}{% if i == 1 %}{% continue %}{% endif %}{{ loop.index }}{{ loop.cycle('a', 'b') }}{% endfor %}
{%- set d = dict(a=1) -%}{{ d.a }}{{ d.get('b', 'none') }}{{ messages[-1].content is defined }}{{ none is none }}{{ 3 is divisibleby 3 }}""",
    "raw-comment.jinja": """{# a comment #}{% raw %}{{ not rendered }}{% endraw %}{%- if true -%}
  trimmed
{%- endif %}
{% set s %}captured {{ 1 + 2 }}{% endset %}{{ s | upper }}""",
    "bad-unclosed.jinja": """{% for m in messages %}{{ m.content }""",
    "bad-unknown.jinja": """{% frobnicate %}{{ x | nosuchfilter }}""",
}


def make_templates():
    for name, src in TEMPLATES.items():
        put("template", name, src)


# ---------------------------------------------------------------- tokenizer.json
def make_tokenizer_json():
    bl = bytes_to_unicode()
    vocab = {bl[b]: b for b in range(256)}
    merges = ["Ġ t", "h e", "Ġt he", "i n", "Ġ a", "e r"]
    for m in merges:
        vocab.setdefault(m.replace(" ", ""), len(vocab))
    added = [{"id": len(vocab) + i, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, c in enumerate(["<|endoftext|>", "<|im_start|>", "<|im_end|>"])]
    bytelevel = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": merges},
    }
    put("tokenizer", "bytelevel.json", json.dumps(bytelevel, ensure_ascii=False))
    # Llama 3 style: Sequence pre-tokenizer with a Split regex, ignore_merges, pair merges as lists.
    l3 = json.loads(json.dumps(bytelevel))
    l3["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
         "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
    l3["model"]["ignore_merges"] = True
    l3["model"]["merges"] = [m.split(" ") for m in merges]
    l3["post_processor"] = {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}},
                            {"Sequence": {"id": "A", "type_id": 0}}], "pair": [], "special_tokens": {
                            "<|endoftext|>": {"id": "<|endoftext|>", "ids": [added[0]["id"]], "tokens": ["<|endoftext|>"]}}}
    put("tokenizer", "llama3-style.json", json.dumps(l3, ensure_ascii=False))
    # SentencePiece style: Metaspace / byte fallback.
    spm_vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        spm_vocab["<0x%02X>" % b] = len(spm_vocab)
    for p in ["▁", "t", "h", "e", "▁t", "he", "▁the", "a", "▁a"]:
        spm_vocab[p] = len(spm_vocab)
    spm = {
        "version": "1.0", "added_tokens": [{"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
                                            "normalized": False, "special": True} for i, c in enumerate(["<unk>", "<s>", "</s>"])],
        "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
        "pre_tokenizer": None,
        "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [], "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
        "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"},
                                                      {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": True, "byte_fallback": True, "ignore_merges": False, "vocab": spm_vocab,
                  "merges": ["▁ t", "h e", "▁t he", "▁ a"]},
    }
    put("tokenizer", "metaspace.json", json.dumps(spm, ensure_ascii=False))
    put("tokenizer", "bad-merge.json", json.dumps(dict(bytelevel, model=dict(bytelevel["model"], merges=["Ġ zz"])), ensure_ascii=False))
    put("tokenizer", "bad-wordpiece.json", json.dumps({"model": {"type": "WordPiece", "vocab": {"a": 0}}}))


# ---------------------------------------------------------------- regressions (inputs that crashed; see Tests/*/FuzzRegressionTests.swift)
def make_regressions():
    from gguf import GGUFWriter
    reg = os.path.join(HERE, "regressions")

    def save(target, name, data):
        d = os.path.join(reg, target)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
        put(target, "regression-" + name, data)   # also a seed: the fuzzer starts from what once crashed

    # GGUF: a Gemma 3 header with block_count 2^31-1 (the config sized per-layer lists by it: out of memory).
    path = os.path.join(tempfile.mkdtemp(), "x.gguf")
    w = GGUFWriter(path, "gemma3")
    w.add_embedding_length(8); w.add_head_count(2); w.add_block_count(2**31 - 1); w.add_feed_forward_length(16); w.add_vocab_size(8)
    w.add_tensor("token_embd.weight", np.zeros((8, 8), np.float32))
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
    save("gguf", "gemma3-block-count.gguf", open(path, "rb").read())

    # Packed datasets whose index or frame is hostile (segfault / 8 GB allocation in DatasetReader).
    seed = open(os.path.join(OUT, "manifest", "packed.bin"), "rb").read()
    man, idx, shard = seed.split(b"@@FUZZ@@")
    sep = b"@@FUZZ@@"
    save("manifest", "index-offset-past-int-max.bin", man + sep + idx[:8] + struct.pack("<Q", 2**63 + 5) + idx[16:] + sep + shard)
    save("manifest", "index-offset-overflows.bin", man + sep + idx[:8] + struct.pack("<QI", 2**63 - 3, 100) + idx[20:] + sep + shard)
    frame = struct.pack("<I", 0xFD2FB528) + bytes([0xE0]) + struct.pack("<Q", 2**33) + bytes([0x01, 0x00, 0x00])
    huge = b"FIDX" + struct.pack("<I", 3) + b"".join(struct.pack("<QIII", 0, len(frame), 5, 0) for _ in range(3))
    save("manifest", "frame-claims-8gb.bin", man + sep + huge + sep + frame)

    # Chat templates that overflowed the stack, exhausted memory or ran (practically) forever.
    templates = {
        "recursive-macro.jinja": "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
        "recursive-call-block.jinja": "{% macro m() %}{% call m() %}x{% endcall %}{% endmacro %}{{ m() }}",
        "deep-unary.jinja": "{{ " + "-" * 4000 + "1 }}",
        "string-repeat.jinja": "{{ 'ab' * 100000000000 }}",
        "list-repeat.jinja": "{{ ([1, 2] * 100000000000) | length }}",
        "doubling-concat.jinja": "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}",
        "doubling-plus.jinja": "{% set ns = namespace(s=['ab']) %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s | length }}",
        "nested-ranges.jinja": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "namespace-cycle.jinja": "{% set ns = namespace(a=1) %}{% set ns.me = [ns] %}{{ ns }}",
    }
    for name, src in templates.items():
        save("template", name, src.encode())


if __name__ == "__main__":
    make_safetensors()
    make_gguf()
    make_jsonl()
    make_manifest()
    make_templates()
    make_tokenizer_json()
    make_regressions()
    total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(OUT) for f in fs)
    print(f"wrote {OUT}: {sum(len(fs) for _, _, fs in os.walk(OUT))} files, {total} bytes")
