#!/usr/bin/env python3
"""llama.cpp's SentencePiece (tokenizer.ggml.model = "llama") vocabulary test vectors, for Finch's GGUF → SentencePiece
path: extracts models/ggml-vocab-llama-spm.gguf with its .inp/.out from the llama_cpp_python sdist into
${FINCH_TEST_ASSETS:-~/.cache/finch/test-assets}/spm_gguf/. Idempotent."""
import glob
import os
import sys
import tarfile
from pathlib import Path

out = Path(os.environ.get("FINCH_TEST_ASSETS", Path.home() / ".cache/finch/test-assets")) / "spm_gguf"
sdist = os.environ.get("FINCH_LLAMA_CPP_SDIST") or next(iter(sorted(glob.glob(
    str(Path(os.environ.get("FINCH_CACHE", Path.home() / ".cache/finch")) / "sdist/llama_cpp_python-*.tar.gz")))), None)
names = ["ggml-vocab-llama-spm.gguf", "ggml-vocab-llama-spm.gguf.inp", "ggml-vocab-llama-spm.gguf.out"]
if all((out / n).exists() for n in names):
    sys.exit(0)
if sdist is None:
    sys.exit("spm_gguf_vectors: no llama_cpp_python sdist (run tools/test_assets.sh)")
out.mkdir(parents=True, exist_ok=True)
with tarfile.open(sdist) as tar:
    for m in tar.getmembers():
        base = os.path.basename(m.name)
        if base in names and "/models/" in m.name:
            data = tar.extractfile(m).read()
            tmp = out / (base + ".tmp")
            tmp.write_bytes(data)
            tmp.replace(out / base)
print(f"spm_gguf: wrote {out}")
