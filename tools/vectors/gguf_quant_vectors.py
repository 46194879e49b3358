#!/usr/bin/env python3
"""Reference vectors for FinchGGUF's quantisers (GGMLQuantizer): float32 inputs and the block bytes ggml writes.

Writes into ${FINCH_TEST_ASSETS:-$HOME/.cache/finch/test-assets}/gguf_quant_vectors/:

  cases.json            [{"name", "shape" (numpy order: rows, row length), "input": "inputs/<name>.f32",
                          "expected": {"Q8_0": "expected/<name>.Q8_0", ...}}, ...] and "reference" notes
  inputs/<name>.f32     little-endian float32
  expected/<name>.<T>   the block bytes

References:
  F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1   gguf.quants.quantize (the PyPI gguf package)
  Q4_K, Q6_K                                ggml's reference quantisers quantize_row_q4_K_ref / quantize_row_q6_K_ref
                                            (no importance matrix), compiled from ggml-quants.c in the llama_cpp_python
                                            sdist (tools/test_assets.sh downloads it) with gcc -O2 -ffp-contract=off,
                                            called through ctypes. gguf-py has no K-quant writer.
The 32-block types are also quantised by the compiled C reference and must agree with gguf-py byte for byte
(the script fails otherwise), so both references are checked against each other.

Cases: random normal weights in several shapes (odd row counts, row lengths of 1, 3, 7 and 33 blocks), all zeros,
rows of zeros among random rows, constant rows, a single outlier, large ranges (1e3..1e12 between rows and within a
block), tiny values (1e-20), all-positive and all-negative rows, quantisation ties (x.5 levels), and for F16/BF16
the special values (±0, ±inf, NaN, subnormals, overflow to inf, values halfway between representable ones).

Deterministic (seeded) and idempotent: files are rewritten only when their content would change.
Usage: python3 tools/vectors/gguf_quant_vectors.py
"""
from __future__ import annotations

import ctypes
import hashlib
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as QT
from gguf.quants import quantize

ASSETS = Path(os.environ.get("FINCH_TEST_ASSETS", Path.home() / ".cache" / "finch" / "test-assets"))
OUT = ASSETS / "gguf_quant_vectors"
CACHE = Path(os.environ.get("FINCH_CACHE", Path.home() / ".cache" / "finch"))

STUB = r"""
// Just enough of ggml for ggml-quants.c's reference row quantisers (never called by them).
#include <stdio.h>
#include <stdlib.h>
#include "ggml.h"
void ggml_abort(const char * file, int line, const char * fmt, ...) { fprintf(stderr, "ggml_abort %s:%d\n", file, line); abort(); }
size_t ggml_row_size(enum ggml_type type, int64_t ne) { (void) type; (void) ne; abort(); }
const char * ggml_type_name(enum ggml_type type) { (void) type; return "?"; }
size_t ggml_type_size(enum ggml_type type) { (void) type; abort(); }
"""


def write_if_changed(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.read_bytes() == data:
        return
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def ggml_reference() -> ctypes.CDLL:
    """ggml-quants.c from the sdist, built once into $FINCH_CACHE/ggml-ref/<sdist hash>/libggmlquants.so."""
    sdists = sorted((CACHE / "sdist").glob("llama_cpp_python-*.tar.gz"))
    if not sdists:
        sys.exit("gguf_quant_vectors: no llama_cpp_python sdist in %s/sdist (run tools/test_assets.sh)" % CACHE)
    sdist = sdists[-1]
    key = hashlib.sha256(sdist.read_bytes()).hexdigest()[:16]
    root = CACHE / "ggml-ref" / key
    lib = root / "libggmlquants.so"
    if lib.exists():
        return ctypes.CDLL(str(lib))
    src = root / "src"
    src.mkdir(parents=True, exist_ok=True)
    with tarfile.open(sdist) as tar:
        for m in tar.getmembers():
            parts = m.name.split("/")
            if "vendor" not in parts or not m.isfile():
                continue
            rel = "/".join(parts[parts.index("vendor") + 2:])   # path inside llama.cpp/
            keep = (rel.startswith("ggml/include/") or (rel.startswith("ggml/src/") and rel.count("/") == 2
                    and (rel.endswith(".h") or rel == "ggml/src/ggml-quants.c"))
                    or rel.startswith("ggml/src/ggml-cpu/") and rel.endswith(".h"))
            if keep:
                dest = src / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(tar.extractfile(m).read())
    (src / "stub.c").write_text(STUB)
    g = src / "ggml"
    cmd = ["gcc", "-O2", "-ffp-contract=off", "-fno-fast-math", "-DNDEBUG", "-shared", "-fPIC",
           "-I", str(g / "include"), "-I", str(g / "src"),
           str(g / "src" / "ggml-quants.c"), str(src / "stub.c"), "-lm", "-o", str(lib) + ".tmp"]
    subprocess.run(cmd, check=True)
    os.replace(str(lib) + ".tmp", lib)
    return ctypes.CDLL(str(lib))


def c_quantize(lib: ctypes.CDLL, qtype: QT, x: np.ndarray) -> np.ndarray:
    fn = getattr(lib, "quantize_row_%s_ref" % qtype.name.lower().replace("_k", "_K"))
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    fn.restype = None
    x = np.ascontiguousarray(x, dtype=np.float32)
    from gguf import GGML_QUANT_SIZES
    block, size = GGML_QUANT_SIZES[qtype]
    out = np.zeros(x.size // block * size, dtype=np.uint8)
    fn(x.ctypes.data, out.ctypes.data, x.size)
    return out


def cases(rng: np.random.Generator) -> list[tuple[str, np.ndarray, bool]]:
    """(name, float32 array [rows, row length], row length fits 256-blocks)."""
    out = []

    def add(name, a):
        a = np.asarray(a, dtype=np.float32)
        out.append((name, a))

    for rows, cols in [(1, 256), (3, 256), (5, 768), (7, 1792), (2, 8448), (1, 32), (3, 96), (9, 224), (4, 1056)]:
        add(f"normal_{rows}x{cols}", rng.standard_normal((rows, cols)) * 0.02)
    add("zeros_2x512", np.zeros((2, 512)))
    a = rng.standard_normal((6, 512)); a[1] = 0; a[4, :256] = 0; a[5, 40:72] = 0
    add("zero_rows_6x512", a)
    add("constant_4x256", np.array([[0.5], [-3.0], [1e-3], [7.25]]) * np.ones((4, 256)))
    a = rng.standard_normal((3, 512)) * 0.01; a[0, 17] = 40.0; a[1, 300] = -55.0; a[2, 0] = 1e4
    add("outlier_3x512", a)
    scales = np.array([1e3, 1e6, 1e9, 1e12, 1e-6, 1.0])[:, None]
    add("large_ranges_6x512", rng.standard_normal((6, 512)) * scales)
    a = rng.standard_normal((2, 512)); a[0, ::7] *= 1e8; a[1, ::5] *= 1e-8
    add("mixed_magnitudes_2x512", a)
    add("tiny_2x256", rng.standard_normal((2, 256)) * 1e-20)
    add("positive_3x256", np.abs(rng.standard_normal((3, 256))) + 0.1)
    add("negative_3x256", -np.abs(rng.standard_normal((3, 256))) - 0.1)
    # Ties: integer multiples of a scale so that levels land on .5 before rounding.
    add("ties_4x256", (rng.integers(-16, 17, size=(4, 256)) * 0.5 + np.array([0, 0.25, -0.25, 0.125])[:, None]) / 8)
    add("uniform_3x512", rng.uniform(-1, 1, size=(3, 512)))
    return out


def special_f16_case(rng: np.random.Generator) -> np.ndarray:
    sp = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 5.96e-8, 2.98e-8, 2.9802322e-8, 6.1e-5, 65504.0, 65520.0,
          65519.99, 70000.0, -1e10, 1.0009765625, 1.00048828125, 1.0014648437, 3.4028235e38, 1.17549435e-38]
    a = np.concatenate([np.array(sp, dtype=np.float32), rng.standard_normal(64 - len(sp)).astype(np.float32)])
    # values exactly halfway between bfloat16 neighbours (ties to even), and NaNs with payloads
    halves = (rng.integers(0, 1 << 15, size=32, dtype=np.uint32) << 16 | 0x8000).view(np.float32)
    nan_payload = np.array([0x7F800001, 0xFFC00001, 0x7FBFFFFF, 0x7FC12345], dtype=np.uint32).view(np.float32)
    return np.concatenate([a, halves, nan_payload, rng.standard_normal(28).astype(np.float32)]).reshape(2, 64)


def main() -> None:
    rng = np.random.default_rng(20261216)
    lib = ggml_reference()
    entries = []
    agree = {}
    all_cases = [(n, a) for n, a in cases(rng)] + [("special_2x64", special_f16_case(rng))]
    for name, a in all_cases:
        write_if_changed(OUT / "inputs" / f"{name}.f32", a.astype("<f4").tobytes())
        expected = {}
        types = [QT.F16, QT.BF16]
        if name != "special_2x64":
            types += [QT.Q8_0, QT.Q4_0, QT.Q4_1, QT.Q5_0, QT.Q5_1]
            if a.shape[1] % 256 == 0:
                types += [QT.Q4_K, QT.Q6_K]
        for qt in types:
            if qt in (QT.Q4_K, QT.Q6_K):
                q = np.concatenate([c_quantize(lib, qt, row) for row in a])
            else:
                with np.errstate(all="ignore"):
                    q = np.asarray(quantize(a, qt))
                q = q.view(np.uint8).reshape(-1)
                if qt not in (QT.F16, QT.BF16):
                    c = np.concatenate([c_quantize(lib, qt, row) for row in a])
                    same = bool(np.array_equal(c, q))
                    agree[qt.name] = agree.get(qt.name, True) and same
                    if not same:
                        sys.exit(f"gguf_quant_vectors: gguf.quants and ggml's C reference disagree on {qt.name} for {name}")
            path = f"expected/{name}.{qt.name}"
            write_if_changed(OUT / path, q.tobytes())
            expected[qt.name] = path
        entries.append({"name": name, "shape": list(a.shape), "input": f"inputs/{name}.f32", "expected": expected})
    doc = {"reference": {"gguf_py": "gguf.quants.quantize (F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1)",
                         "ggml_c": "quantize_row_*_ref from ggml-quants.c, gcc -O2 -ffp-contract=off (Q4_K, Q6_K)",
                         "c_equals_gguf_py": agree},
           "cases": entries}
    write_if_changed(OUT / "cases.json", (json.dumps(doc, indent=1) + "\n").encode())
    print(f"gguf_quant_vectors: {len(entries)} cases, C reference = gguf-py for {sorted(k for k, v in agree.items() if v)}")


if __name__ == "__main__":
    main()
