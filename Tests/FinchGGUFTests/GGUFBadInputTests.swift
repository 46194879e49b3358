import Foundation
import XCTest
import FinchGGUF

/// Corrupted and truncated copies of synthetic.gguf: each must throw a GGUFError naming the file
/// (never crash, never read past the buffer).
final class GGUFBadInputTests: XCTestCase {
    var good: [UInt8] = []

    override func setUpWithError() throws {
        good = try [UInt8](Data(contentsOf: try Assets.require("synthetic.gguf")))
    }

    @discardableResult
    func expectError(_ bytes: [UInt8], _ label: String, _ kind: GGUFError.Kind? = nil, mentions: [String] = [],
                     line: UInt = #line) -> GGUFError? {
        let name = "bad-\(label).gguf"
        do {
            _ = try GGUFFile(bytes: bytes, name: name)
            XCTFail("\(label): no error", line: line)
        } catch let e as GGUFError {
            XCTAssertTrue(e.description.contains(name), "\(label): \(e)", line: line)
            if let kind { XCTAssertEqual(e.kind, kind, "\(label): \(e)", line: line) }
            for m in mentions { XCTAssertTrue(e.description.contains(m), "\(label): '\(m)' not in: \(e)", line: line) }
            return e
        } catch {
            XCTFail("\(label): not a GGUFError: \(error)", line: line)
        }
        return nil
    }

    func patched(_ at: Int, _ value: some FixedWidthInteger) -> [UInt8] {
        var b = good
        withUnsafeBytes(of: value.littleEndian) { for (i, x) in $0.enumerated() { b[at + i] = x } }
        return b
    }

    /// Offset of the value-type field of metadata key `key`.
    func keyTypeOffset(_ key: String) throws -> Int {
        try XCTUnwrap(lengthPrefixedOffset(good, key), key) + 8 + key.utf8.count
    }

    /// Offsets of a tensor info's fields.
    func tensorFields(_ name: String) throws -> (nDims: Int, ne: Int, type: Int, offset: Int) {
        let at = try XCTUnwrap(lengthPrefixedOffset(good, name), name) + 8 + name.utf8.count
        let n = Int(good[at])
        return (at, at + 4, at + 4 + 8 * n, at + 8 + 8 * n)
    }

    func testGoodFileOpens() throws {
        _ = try GGUFFile(bytes: good, name: "good.gguf")
    }

    func testHeader() throws {
        var b = good
        b[3] = UInt8(ascii: "X")
        expectError(b, "magic", .badMagic, mentions: ["GGUX"])
        expectError(patched(4, UInt32(1)), "v1", .unsupportedVersion, mentions: ["version 1"])
        expectError(patched(4, UInt32(4)), "v4", .unsupportedVersion, mentions: ["version 4"])
        expectError(patched(4, UInt32(0)), "v0", .unsupportedVersion)
        expectError(patched(4, UInt32(3).byteSwapped), "big-endian", .unsupportedVersion, mentions: ["big-endian"])
        expectError(patched(8, UInt64(1) << 60), "tensor-count-huge", .malformed, mentions: ["at byte 8", "tensor count"])
        expectError(patched(8, UInt64.max), "tensor-count-max", .malformed)
        expectError(patched(16, UInt64(1) << 60), "kv-count-huge", .malformed, mentions: ["at byte 16"])
        expectError(patched(8, UInt64(24)), "tensor-count-plus-one")
        expectError(patched(16, UInt64(0)), "kv-count-zero")
        expectError(patched(16, UInt64(31)), "kv-count-plus-one")
        expectError([], "empty", .truncated)
        expectError(Array("GGUF".utf8), "magic-only", .truncated)
    }

    func testMetadata() throws {
        let u8 = try keyTypeOffset("test.u8")
        expectError(patched(u8, UInt32(13)), "value-type", .malformed, mentions: ["test.u8", "unknown metadata value type 13", "at byte \(u8)"])
        expectError(patched(u8 - 8 - 7, UInt64(1) << 62), "key-length-huge", .truncated)
        expectError(patched(u8 - 8 - 7, UInt64(good.count)), "key-length-file", .truncated)
        let str = try keyTypeOffset("test.string")
        expectError(patched(str + 4, UInt64(1) << 61), "string-length", .truncated, mentions: ["test.string"])
        expectError(patched(str + 4, UInt64.max), "string-length-max", .malformed, mentions: ["test.string"])
        let arr = try keyTypeOffset("test.arr_u32")
        expectError(patched(arr + 4, UInt32(77)), "array-elem-type", .malformed, mentions: ["test.arr_u32", "77"])
        expectError(patched(arr + 8, UInt64(1) << 60), "array-count", .truncated, mentions: ["test.arr_u32"])
        let nested = try keyTypeOffset("test.arr_nested")
        expectError(patched(nested + 8 + 4 + 4, UInt64(1) << 59), "nested-array-count", .truncated, mentions: ["test.arr_nested"])
        let bool = try keyTypeOffset("test.bool_true")
        expectError(patched(bool + 4, UInt8(2)), "bool", .malformed, mentions: ["test.bool_true"])
        let align = try keyTypeOffset("general.alignment")
        expectError(patched(align + 4, UInt32(48)), "alignment-48", .malformed, mentions: ["general.alignment"])
        expectError(patched(align + 4, UInt32(0)), "alignment-0", .malformed, mentions: ["general.alignment"])
        // Rename test.i8 to test.u8: duplicate key.
        var b = good
        let i8 = try XCTUnwrap(lengthPrefixedOffset(good, "test.i8")) + 8
        b[i8 + 5] = UInt8(ascii: "u")
        expectError(b, "dup-key", .malformed, mentions: ["duplicate metadata key", "test.u8"])
    }

    func testNestingDepthLimit() throws {
        // A hand-made file: one key holding arrays nested 40 deep.
        var b = Array("GGUF".utf8)
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { b.append(contentsOf: $0) } }
        put(UInt32(3)); put(UInt64(0)); put(UInt64(1))
        put(UInt64(4)); b.append(contentsOf: Array("deep".utf8)); put(UInt32(9))
        for _ in 0..<40 { put(UInt32(9)); put(UInt64(1)) }
        put(UInt32(0)); put(UInt64(0))
        expectError(b, "deep", .malformed, mentions: ["deep", "nested"])
    }

    func testTensorInfos() throws {
        let f = try tensorFields("plain.f32")
        expectError(patched(f.nDims, UInt32(5)), "n_dims", .malformed, mentions: ["plain.f32", "n_dims 5"])
        expectError(patched(f.nDims, UInt32(1) << 31), "n_dims-huge", .malformed, mentions: ["plain.f32"])
        expectError(patched(f.ne, UInt64(0)), "ne-zero", .malformed, mentions: ["plain.f32", "ne[0]"])
        expectError(patched(f.ne + 8, UInt64(1) << 62), "ne-overflow", .malformed, mentions: ["plain.f32"])
        expectError(patched(f.ne + 8, UInt64.max), "ne-max", .malformed, mentions: ["plain.f32"])
        expectError(patched(f.ne + 8, UInt64(1) << 40), "ne-past-end", .truncated, mentions: ["plain.f32"])
        expectError(patched(f.type, UInt32(31)), "type-unknown", .malformed, mentions: ["plain.f32", "unknown ggml tensor type 31"])
        expectError(patched(f.type, UInt32(1000)), "type-unknown-big", .malformed, mentions: ["plain.f32"])
        expectError(patched(f.type, UInt32(2)), "type-partial-block", .malformed, mentions: ["plain.f32", "block size"])
        expectError(patched(f.offset, UInt64(1) << 40), "offset-past-end", .malformed, mentions: ["plain.f32"])
        expectError(patched(f.offset, UInt64.max), "offset-max", .malformed, mentions: ["plain.f32"])
        expectError(patched(f.offset, UInt64(8)), "offset-misaligned", .malformed, mentions: ["plain.f32", "alignment"])
        // The last tensor's data moved one alignment unit past the end.
        let lastName = "random4d.q6_k"
        let l = try tensorFields(lastName)
        let lastOffset = good.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: l.offset, as: UInt64.self) }
        expectError(patched(l.offset, lastOffset + 64 * 40), "data-past-end", .truncated, mentions: [lastName])
        // Rename random.q8_0 to random.q4_0: duplicate tensor name.
        var b = good
        let q8 = try XCTUnwrap(lengthPrefixedOffset(good, "random.q8_0")) + 8
        b[q8 + 8] = UInt8(ascii: "4")
        expectError(b, "dup-tensor", .malformed, mentions: ["duplicate tensor name", "random.q4_0"])
    }

    /// Every truncation before the end of the last tensor's data throws; no read goes past the buffer.
    func testTruncation() throws {
        let file = try GGUFFile(bytes: good, name: "good.gguf")
        let dataEnd = file.tensors.map { file.dataOffset + $0.offset + $0.byteCount }.max()!
        var cuts = Array(0..<(file.dataOffset + 80))
        cuts += stride(from: file.dataOffset + 80, to: dataEnd, by: 37)
        cuts.append(dataEnd - 1)
        for n in cuts {
            expectError(Array(good[0..<n]), "cut-\(n)")
        }
        _ = try GGUFFile(bytes: Array(good[0..<dataEnd]), name: "cut-at-data-end.gguf")
    }

    /// Errors from real files name the path; bad files on disk are rejected the same way.
    func testFileErrorsNameThePath() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("finch-gguf-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let cases: [(String, [UInt8])] = [
            ("short.gguf", Array(good[0..<10])),
            ("cut.gguf", Array(good[0..<good.count / 2])),
            ("v1.gguf", patched(4, UInt32(1))),
            ("magic.gguf", [UInt8](repeating: 0x47, count: 100)),
        ]
        for (name, bytes) in cases {
            let url = dir.appendingPathComponent(name)
            try Data(bytes).write(to: url)
            XCTAssertThrowsError(try GGUFFile(contentsOf: url)) { e in
                XCTAssertTrue("\(e)".contains(url.path), "\(e)")
            }
        }
        XCTAssertThrowsError(try GGUFFile(contentsOf: dir.appendingPathComponent("missing.gguf"))) { e in
            XCTAssertTrue("\(e)".contains("missing.gguf"), "\(e)")
        }
        XCTAssertThrowsError(try GGUFFile(contentsOf: dir)) { e in
            XCTAssertTrue("\(e)".contains(dir.path), "\(e)")
        }
    }

    /// Seeded random byte corruption of the header and directory: each copy either opens (and its
    /// tensors then dequantise within bounds) or throws a GGUFError naming the file.
    func testRandomCorruption() throws {
        let file = try GGUFFile(bytes: good, name: "good.gguf")
        var rng = SplitMix64(seed: 42)
        var thrown = 0, opened = 0
        for i in 0..<3000 {
            var b = good
            for _ in 0..<(1 + Int(rng.next() % 4)) {
                let at = Int(rng.next() % UInt64(file.dataOffset))
                b[at] = UInt8(truncatingIfNeeded: rng.next())
            }
            let name = "fuzz-\(i).gguf"
            do {
                let f = try GGUFFile(bytes: b, name: name)
                opened += 1
                for t in f.tensors where t.type.canDequantize && t.elementCount <= 1 << 16 {
                    _ = try f.dequantize(t)
                }
            } catch let e as GGUFError {
                thrown += 1
                XCTAssertTrue(e.description.contains(name), "\(e)")
            }
        }
        XCTAssertGreaterThan(thrown, 0)
        print("random corruption: \(thrown) rejected, \(opened) opened")
    }
}

/// A small seeded generator (deterministic across platforms).
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
