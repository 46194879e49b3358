#!/usr/bin/env python3
"""The tiny architecture models of arch_vectors.py converted to GGUF by llama.cpp's own converter
(convert_hf_to_gguf.py from the llama_cpp_python sdist), so Finch's GGUF reader is checked on every architecture as
llama.cpp writes it: tensor names, the Q/K permutation, Gemma's 1 + w norms, Qwen biases and q/k norms, Llama 3's
rope_freqs factors. Each folder gets a 100-piece SentencePiece tokenizer (the converter needs a vocabulary).

Writes ${FINCH_TEST_ASSETS:-~/.cache/finch/test-assets}/arch_gguf/<case>.gguf (f32). Needs arch_vectors.py's output,
the sdist, and the `sentencepiece` and `torch` packages. Idempotent."""
import glob
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

root = Path(os.environ.get("FINCH_TEST_ASSETS", Path.home() / ".cache/finch/test-assets"))
src = root / "arch_vectors"
out = root / "arch_gguf"
cache = Path(os.environ.get("FINCH_CACHE", Path.home() / ".cache/finch"))
CASES = ["qwen2", "qwen3", "llama3-rope", "llama-bias", "gemma3"]


def converter():
    """llama.cpp's converter and its gguf-py, extracted once into the cache."""
    dest = cache / "llama.cpp-convert"
    script = dest / "convert_hf_to_gguf.py"
    if script.exists():
        return dest
    sdists = sorted(glob.glob(str(cache / "sdist/llama_cpp_python-*.tar.gz")))
    if not sdists:
        sys.exit("gguf_converted_vectors: no llama_cpp_python sdist (run tools/test_assets.sh)")
    tmp = Path(tempfile.mkdtemp(dir=cache))
    with tarfile.open(sdists[-1]) as tar:
        members = [m for m in tar.getmembers() if "/vendor/llama.cpp/" in m.name and (
            m.name.endswith("/convert_hf_to_gguf.py") or "/vendor/llama.cpp/gguf-py/" in m.name
            or "/vendor/llama.cpp/conversion/" in m.name)]
        tar.extractall(tmp, members=members)
    base = next(tmp.glob("*/vendor/llama.cpp"))
    shutil.move(str(base), str(dest))
    shutil.rmtree(tmp, ignore_errors=True)
    return dest


def tokenizer_model(vocab_size, folder):
    """A SentencePiece BPE model with exactly vocab_size pieces (the converter pads or refuses otherwise)."""
    import sentencepiece as spm
    text = folder / "corpus.txt"
    words = ["the", "cat", "sat", "on", "mat", "and", "dog", "ran", "far", "away", "a", "big", "red", "ball"]
    text.write_text("\n".join(" ".join(words[(i * 7 + j) % len(words)] for j in range(12)) for i in range(400)))
    spm.SentencePieceTrainer.train(input=str(text), model_prefix=str(folder / "tokenizer"), vocab_size=vocab_size,
                                   model_type="bpe", byte_fallback=False, character_coverage=1.0,
                                   bos_id=1, eos_id=2, unk_id=0, pad_id=-1, minloglevel=2, hard_vocab_limit=False)
    text.unlink()
    (folder / "tokenizer.vocab").unlink()


def main():
    out.mkdir(parents=True, exist_ok=True)
    conv = None
    for case in CASES:
        target = out / f"{case}.gguf"
        if target.exists():
            continue
        folder = src / case
        if not (folder / "config.json").exists():
            print(f"arch_gguf: {case}: no arch_vectors output (run tools/vectors/arch_vectors.py)", file=sys.stderr)
            continue
        conv = conv or converter()
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp) / case
            work.mkdir()
            for f in ["config.json", "generation_config.json", "model.safetensors"]:
                if (folder / f).exists():
                    shutil.copy(folder / f, work / f)
            import json
            vocab = json.load(open(folder / "config.json"))["vocab_size"]
            tokenizer_model(vocab, work)
            env = dict(os.environ, PYTHONPATH=str(conv / "gguf-py") + os.pathsep + os.environ.get("PYTHONPATH", ""))
            r = subprocess.run([sys.executable, str(conv / "convert_hf_to_gguf.py"), str(work), "--outtype", "f32",
                                "--outfile", str(target) + ".tmp"], env=env, capture_output=True, text=True)
            if r.returncode != 0:
                print(f"arch_gguf: {case}: llama.cpp's converter failed:\n{r.stderr[-3000:]}", file=sys.stderr)
                continue
            os.replace(str(target) + ".tmp", target)
            print(f"arch_gguf: wrote {target}")


if __name__ == "__main__":
    main()
