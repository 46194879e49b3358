#!/usr/bin/env python3
"""Encode throughput of the Rust `tokenizers` package, single thread, for comparison with
`BPETokenizer.benchmark` (Finch). Usage:
  python3 tools/tokenizer_bench.py TOKENIZER_JSON [TEXT_FILE] [--max-bytes N]
Reports MB/s (UTF-8 bytes of input per second) for encode_batch over the lines and for one encode of the
whole text, each on a freshly loaded tokenizer (cold word cache), best of 3."""
import os, sys, time

os.environ["TOKENIZERS_PARALLELISM"] = "false"   # encode_batch runs on the calling thread
os.environ["RAYON_NUM_THREADS"] = "1"
from tokenizers import Tokenizer

args = [a for a in sys.argv[1:] if not a.startswith("--")]
max_bytes = 4_000_000
if "--max-bytes" in sys.argv:
    max_bytes = int(sys.argv[sys.argv.index("--max-bytes") + 1])
    args = [a for a in args if a != str(max_bytes)]
if not args:
    sys.exit(__doc__)
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
text_path = args[1] if len(args) > 1 else os.path.join(os.path.dirname(root), "shared", "data", "text", "eltec-eng.txt")
raw = open(text_path, "rb").read()[:max_bytes]
text = raw.decode("utf-8", errors="ignore")
lines = text.split("\n")
nbytes = len(text.encode("utf-8"))


def best(f):
    times = []
    for _ in range(3):
        tok = Tokenizer.from_file(args[0])
        t0 = time.perf_counter()
        n = f(tok)
        times.append(time.perf_counter() - t0)
    return min(times), n


t_lines, n_lines = best(lambda tok: sum(len(e.ids) for e in tok.encode_batch(lines, add_special_tokens=False)))
t_whole, n_whole = best(lambda tok: len(tok.encode(text, add_special_tokens=False).ids))
print(f"tokenizers {args[0]}: {nbytes / 1e6:.2f} MB of {os.path.basename(text_path)}")
print(f"  encode_batch(lines): {nbytes / t_lines / 1e6:.2f} MB/s ({n_lines} tokens, {t_lines:.3f} s)")
print(f"  encode(whole text):  {nbytes / t_whole / 1e6:.2f} MB/s ({n_whole} tokens, {t_whole:.3f} s)")
