#!/usr/bin/env python3
"""Reference for `finch bench data`: the pip `sentencepiece` package encoding the text of the same JSONL files.

    python3 tools/sentencepiece_bench.py TOKENIZER.model FILE.jsonl...

Prints one line: `python-sentencepiece <version> threads=<n> <MB of JSONL per second>` for 1 and 2 threads,
timing only the encode calls (JSON parsing excluded, which favours Python), median of three.
Exits with status 3 when the sentencepiece module is missing (pip install sentencepiece).
"""
import json
import os
import sys
import time

try:
    import sentencepiece as spm
except ImportError:
    print("python sentencepiece is not installed (pip install sentencepiece)", file=sys.stderr)
    sys.exit(3)


def texts(record):
    out = []
    for value in record.values():
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, list):
            out += [m["content"] for m in value if isinstance(m, dict) and isinstance(m.get("content"), str)]
    return out


def main():
    model, files = sys.argv[1], sys.argv[2:]
    sp = spm.SentencePieceProcessor(model_file=model)
    size = sum(os.path.getsize(f) for f in files)
    strings = []
    for f in files:
        with open(f, encoding="utf-8") as fh:
            strings += [t for line in fh if line.strip() for t in texts(json.loads(line))]
    for threads in (1, 2):
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            sp.encode(strings, num_threads=threads)
            times.append(time.perf_counter() - t0)
        median = sorted(times)[1]
        print("python-sentencepiece %s threads=%d %.2f" % (spm.__version__, threads, size / 1e6 / median))


if __name__ == "__main__":
    main()
