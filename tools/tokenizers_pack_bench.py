#!/usr/bin/env python3
"""Reference for `finch bench data` with a tokenizer.json (byte-level BPE): the Rust `tokenizers` package
encoding the text of the same JSONL files.

    python3 tools/tokenizers_pack_bench.py TOKENIZER.json FILE.jsonl...

Prints `python-tokenizers <version> threads=<n> <MB of JSONL per second>` for 1 and 2 threads (encode_batch
over the same strings as tools/sentencepiece_bench.py, no special tokens added; JSON parsing excluded), median
of three, each on a freshly loaded tokenizer. The thread count is fixed per process (RAYON_NUM_THREADS), so
each count runs in a child process. Exits with status 3 when the tokenizers module is missing.
"""
import json
import os
import subprocess
import sys
import time


def texts(record):
    out = []
    for value in record.values():
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, list):
            out += [m["content"] for m in value if isinstance(m, dict) and isinstance(m.get("content"), str)]
    return out


def child(model, files):
    from tokenizers import Tokenizer, __version__
    size = sum(os.path.getsize(f) for f in files)
    strings = []
    for f in files:
        with open(f, encoding="utf-8") as fh:
            strings += [t for line in fh if line.strip() for t in texts(json.loads(line))]
    times = []
    for _ in range(3):
        tok = Tokenizer.from_file(model)
        t0 = time.perf_counter()
        tok.encode_batch(strings, add_special_tokens=False)
        times.append(time.perf_counter() - t0)
    print("python-tokenizers %s threads=%s %.2f" % (__version__, os.environ["RAYON_NUM_THREADS"], size / 1e6 / sorted(times)[1]))


def main():
    if os.environ.get("FINCH_TOKENIZERS_CHILD"):
        return child(sys.argv[1], sys.argv[2:])
    try:
        import tokenizers  # noqa: F401
    except ImportError:
        print("python tokenizers is not installed (pip install tokenizers)", file=sys.stderr)
        sys.exit(3)
    for threads in (1, 2):
        env = dict(os.environ, FINCH_TOKENIZERS_CHILD="1", RAYON_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM="true")
        subprocess.run([sys.executable, __file__] + sys.argv[1:], env=env, check=True)


if __name__ == "__main__":
    main()
