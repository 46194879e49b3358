import Foundation
import XCTest
import FinchGGUF

/// GGUFWriter: what it writes, Finch's reader reads back unchanged; and a file gguf-py's GGUFWriter made, copied
/// through GGUFWriter, comes out byte for byte the same.
final class GGUFWriterTests: XCTestCase {
    /// A copy of `file` (metadata in file order, tensors as raw blocks) in a writer.
    static func copy(_ file: GGUFFile) throws -> GGUFWriter {
        var w = GGUFWriter()
        w.alignment = file.alignment
        for key in file.metadataKeys { w.set(key, file.metadata[key]!) }
        for t in file.tensors {
            let bytes = [UInt8](file.bytes(of: t))
            try w.addTensor(name: t.name, shape: t.shape, type: t.type, bytes: bytes)
        }
        return w
    }

    func testEveryValueTypeAndTensorTypeRoundTrips() throws {
        var w = GGUFWriter()
        let values: [(String, GGUFValue)] = [
            ("general.architecture", .string("llama")),
            ("t.u8", .uint8(200)), ("t.i8", .int8(-100)), ("t.u16", .uint16(60000)), ("t.i16", .int16(-30000)),
            ("t.u32", .uint32(4_000_000_000)), ("t.i32", .int32(-2_000_000_000)), ("t.f32", .float32(3.25)),
            ("t.bool", .bool(true)), ("t.string", .string("héllo ✓ 🐦")), ("t.empty", .string("")),
            ("t.u64", .uint64(18_000_000_000_000_000_000)), ("t.i64", .int64(-9_000_000_000_000_000_000)),
            ("t.f64", .float64(1.0 / 3.0)),
            ("t.strings", .array(.string, [.string("a"), .string(""), .string("<|im_end|>")])),
            ("t.floats", .array(.float32, [.float32(0.5), .float32(-1e-3)])),
            ("t.ints", .array(.int32, [.int32(1), .int32(-2), .int32(3)])),
            ("t.empty_array", .array(.uint8, [])),
            ("t.nested", .array(.array, [.array(.int32, [.int32(1)]), .array(.string, [.string("x")])])),
        ]
        for (k, v) in values { w.set(k, v) }
        w.set("t.u8", .uint8(7))   // replacing keeps the key's place
        var rng = SystemRandomNumberGenerator()
        var expected: [String: (GGMLType, [Int], [Float])] = [:]
        for (i, type) in GGMLQuantizer.supportedTypes.enumerated() {
            let shape = [type.blockSize * (1 + i % 3), 1 + i % 4, i % 2 == 0 ? 1 : 2]
            let n = shape.reduce(1, *)
            let x = (0..<n).map { _ in Float.random(in: -2...2, using: &rng) }
            let bytes = try GGMLQuantizer.quantize(type, x)
            try w.addTensor(name: "tensor.\(type.name)", shape: shape, type: type, bytes: bytes)
            expected["tensor.\(type.name)"] = (type, shape, try bytes.withUnsafeBytes { try GGMLQuants.dequantize(type, $0, count: n) })
        }
        let file = try GGUFFile(bytes: try w.serialized(), name: "written.gguf")
        XCTAssertEqual(file.version, 3)
        XCTAssertEqual(file.metadataKeys, values.map(\.0))
        for (k, v) in values { XCTAssertEqual(file.metadata[k], k == "t.u8" ? .uint8(7) : v, k) }
        XCTAssertEqual(file.tensors.map(\.name), GGMLQuantizer.supportedTypes.map { "tensor.\($0.name)" })
        for t in file.tensors {
            let (type, shape, values) = expected[t.name]!
            XCTAssertEqual(t.type, type)
            XCTAssertEqual(t.shape, shape)
            XCTAssertEqual(t.offset % 32, 0)
            let got = try file.dequantize(t)
            XCTAssertEqual(got.map(\.bitPattern), values.map(\.bitPattern), t.name)
        }
        XCTAssertEqual(try w.fileSize(), file.fileSize)
    }

    func testAlignmentOtherThanTheDefaultIsWrittenAsAKey() throws {
        var w = GGUFWriter()
        w.alignment = 64
        w.set("general.architecture", "llama")
        try w.addTensor(name: "a", shape: [3], type: .f32, bytes: [UInt8](repeating: 1, count: 12))
        try w.addTensor(name: "b", shape: [32], type: .q8_0, bytes: [UInt8](repeating: 0, count: 34))
        let file = try GGUFFile(bytes: try w.serialized())
        XCTAssertEqual(file.alignment, 64)
        XCTAssertEqual(file.tensor(named: "b")?.offset, 64)
        XCTAssertEqual(file.dataOffset % 64, 0)
    }

    func testRefusesWhatGGUFCannotHold() throws {
        var w = GGUFWriter()
        XCTAssertThrowsError(try w.addTensor(name: "x", shape: [33], type: .q8_0, bytes: [])) { e in
            XCTAssertTrue("\(e)".contains("not a multiple of the Q8_0 block size"), "\(e)")
        }
        XCTAssertThrowsError(try w.addTensor(name: String(repeating: "n", count: 64), shape: [1], type: .f32, bytes: [0, 0, 0, 0]))
        try w.addTensor(name: "x", shape: [1], type: .f32, bytes: [0, 0, 0, 0])
        XCTAssertThrowsError(try w.addTensor(name: "x", shape: [1], type: .f32, bytes: [0, 0, 0, 0])) { e in
            XCTAssertTrue("\(e)".contains("duplicate"), "\(e)")
        }
        try w.addTensor(name: "short", shape: [4], type: .f32, bytes: [0, 0, 0, 0])
        XCTAssertThrowsError(try w.serialized()) { e in XCTAssertTrue("\(e)".contains("4 bytes of data"), "\(e)") }
        var bad = GGUFWriter()
        bad.set("t.mixed", .array(.int32, [.int32(1), .string("x")]))
        XCTAssertThrowsError(try bad.serialized())
    }

    /// gguf-py's writer and GGUFWriter lay a file out the same way: the synthetic file of tools/vectors/gguf_vectors.py
    /// (every value type, every dequantisable tensor type, odd shapes) copied through GGUFWriter is the same bytes.
    func testGGUFPyFileCopiesByteForByte() throws {
        let url = try Assets.require("synthetic.gguf")
        let original = try Data(contentsOf: url)
        let file = try GGUFFile(contentsOf: url)
        let copy = try Self.copy(file).serialized()
        XCTAssertEqual(copy.count, original.count)
        XCTAssertTrue(copy == [UInt8](original), "the copy differs from gguf-py's bytes")
    }

    /// The real files (llama.cpp's writer) copied through GGUFWriter: the same bytes.
    func testRealFilesCopyByteForByte() throws {
        let paths = try Assets.json("paths.json")
        for (name, p) in paths {
            let url = URL(fileURLWithPath: p as! String)
            let file = try GGUFFile(contentsOf: url)
            let out = FileManager.default.temporaryDirectory.appendingPathComponent("finch-copy-\(getpid())-\(name).gguf")
            defer { try? FileManager.default.removeItem(at: out) }
            try Self.copy(file).write(to: out)
            let a = try Data(contentsOf: url), b = try Data(contentsOf: out)
            XCTAssertEqual(a.count, b.count, name)
            XCTAssertTrue(a == b, "\(name): the copy differs")
        }
    }
}
