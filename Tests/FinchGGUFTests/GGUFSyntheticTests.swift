import Foundation
import XCTest
import FinchGGUF

/// The synthetic v3/v2 files from tools/vectors/gguf_vectors.py: every metadata value type and every
/// dequantisable tensor type, compared bit-exactly with gguf-py.
final class GGUFSyntheticTests: XCTestCase {
    func testVersion3File() throws { try checkSynthetic("synthetic.gguf", version: 3) }
    func testVersion2File() throws { try checkSynthetic("synthetic_v2.gguf", version: 2) }

    func checkSynthetic(_ name: String, version: Int) throws {
        let doc = try Assets.json("synthetic.json")
        let file = try GGUFFile(contentsOf: try Assets.require(name))
        XCTAssertEqual(file.version, version)
        XCTAssertEqual(file.alignment, doc["alignment"] as? Int)
        XCTAssertEqual(file.dataOffset, doc["data_offset"] as? Int)
        XCTAssertEqual(file.architecture, "finchtest")

        // Metadata: keys in file order, every value typed exactly.
        XCTAssertEqual(file.metadataKeys, doc["metadata_keys"] as? [String])
        let meta = doc["metadata"] as! [String: Any]
        for (key, spec) in meta {
            let expected = try expectedValue(spec as! [String: Any])
            XCTAssertEqual(file.metadata[key], expected, "metadata \(key)")
        }
        XCTAssertEqual(file.int("test.u32"), 4_000_000_000)
        XCTAssertEqual(file.int("test.i8"), -100)
        XCTAssertEqual(file.double("test.f64"), 2.718281828459045)
        XCTAssertEqual(file.float("test.f32"), Float(3.14159))
        XCTAssertEqual(file.bool("test.bool_true"), true)
        XCTAssertEqual(file.string("test.string"), "héllo, wörld ✓ 🐦")
        XCTAssertEqual(file.strings("test.arr_string"), ["a", "", "ünïcode", "<|im_end|>"])
        XCTAssertEqual(file.ints("test.arr_i32"), [-2147483648, 7, 2147483647])
        XCTAssertEqual(file.floats("test.arr_f32"), [0.5, -1e-3, 1e30].map { Float($0) })
        XCTAssertEqual(file.metadata["test.arr_nested"]?.array?.compactMap(\.ints), [[1, 2, 3], [4], [5, 6]])
        XCTAssertNil(file.int("test.u64"))  // 1.8e19 does not fit in Int
        XCTAssertEqual(file.metadata["test.u64"], .uint64(18_000_000_000_000_000_000))

        // Tensors: directory and values.
        let tensors = doc["tensors"] as! [[String: Any]]
        XCTAssertEqual(file.tensors.map(\.name), tensors.map { $0["name"] as! String })
        var seenTypes = Set<GGMLType>()
        for spec in tensors {
            let name = spec["name"] as! String
            let t = try XCTUnwrap(file.tensor(named: name), name)
            XCTAssertEqual(t.type.name, spec["type"] as? String, name)
            XCTAssertEqual(t.shape, spec["shape"] as? [Int], name)
            XCTAssertEqual(t.offset, spec["offset"] as? Int, name)
            XCTAssertEqual(t.byteCount, spec["bytes"] as? Int, name)
            XCTAssertEqual(t.elementCount, spec["elements"] as? Int, name)
            XCTAssertEqual(t.offset % file.alignment, 0)
            seenTypes.insert(t.type)
            let expected = try Assets.floats(spec["expected"] as! String)
            for threads in [1, 2] {
                let got = try file.dequantize(t, threads: threads)
                let bad = got.withUnsafeBufferPointer { g in expected.withUnsafeBufferPointer { firstMismatch(g, $0) } }
                if let i = bad {
                    XCTFail("\(name) (\(t.type)) element \(i): got \(i < got.count ? got[i].bitPattern : 0) expected \(i < expected.count ? expected[i].bitPattern : 0)")
                }
            }
        }
        let wanted: Set<GGMLType> = [.f32, .f16, .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K]
        XCTAssertEqual(seenTypes, wanted)
    }

    /// The block geometry of every ggml type matches gguf-py's GGML_QUANT_SIZES.
    func testTypeSizesMatchGGUFPy() throws {
        let doc = try Assets.json("synthetic.json")
        let sizes = doc["type_sizes"] as! [String: [Int]]
        for (name, v) in sizes {
            let t = try XCTUnwrap(GGMLType(name: name), "ggml type \(name) unknown to GGMLType")
            XCTAssertEqual(t.blockSize, v[0], name)
            XCTAssertEqual(t.typeSize, v[1], name)
            XCTAssertEqual(Int(t.rawValue), v[2], name)
            XCTAssertEqual(t.name, name)
        }
        XCTAssertEqual(sizes.count, GGMLType.allCases.count)
    }

    func testUnsupportedTypesAreNamed() throws {
        let bytes = [UInt8](repeating: 0, count: 4096)
        for t in GGMLType.allCases where !t.canDequantize {
            let count = t.blockSize * 4
            XCTAssertThrowsError(try bytes.withUnsafeBytes { try GGMLQuants.dequantize(t, $0, count: count) }) { e in
                let text = "\(e)"
                XCTAssertTrue(text.contains(t.name) && text.contains("unsupported for dequantisation"), text)
            }
        }
        // Too-short source buffer and a partial block are errors, not reads past the end.
        XCTAssertThrowsError(try bytes.withUnsafeBytes { try GGMLQuants.dequantize(.q4_K, UnsafeRawBufferPointer(rebasing: $0[0..<143]), count: 256) })
        XCTAssertThrowsError(try bytes.withUnsafeBytes { try GGMLQuants.dequantize(.q4_0, $0, count: 33) })
    }

    /// A tensor whose type is patched to Q8_1 (known geometry, no dequantiser) opens, and dequantising
    /// it throws an error naming the type, the tensor and the file.
    func testUnsupportedTensorTypeInFile() throws {
        var bytes = try [UInt8](Data(contentsOf: try Assets.require("synthetic.gguf")))
        let at = try XCTUnwrap(lengthPrefixedOffset(bytes, "quant.q8_0"))
        let typeAt = at + 8 + "quant.q8_0".utf8.count + 4 + 2 * 8
        XCTAssertEqual(bytes[typeAt], 8)
        bytes[typeAt] = 9
        let file = try GGUFFile(bytes: bytes, name: "patched-q8_1.gguf")
        let t = try XCTUnwrap(file.tensor(named: "quant.q8_0"))
        XCTAssertEqual(t.type, .q8_1)
        XCTAssertThrowsError(try file.dequantize(t)) { e in
            let text = "\(e)"
            XCTAssertTrue(text.contains("patched-q8_1.gguf") && text.contains("Q8_1") && text.contains("quant.q8_0"), text)
        }
    }

    func testInMemoryMatchesMapped() throws {
        let url = try Assets.require("synthetic.gguf")
        let a = try GGUFFile(contentsOf: url)
        let b = try GGUFFile(bytes: [UInt8](Data(contentsOf: url)), name: "mem")
        XCTAssertEqual(a.metadataKeys, b.metadataKeys)
        XCTAssertEqual(a.tensors, b.tensors)
        for t in a.tensors { XCTAssertEqual(Array(a.bytes(of: t)), Array(b.bytes(of: t))) }
    }

    func testHalfConversion() {
        for h in 0...0xFFFF {
            let f = GGMLQuants.halfToFloat(UInt16(h))
            let ref = Float(Float16(bitPattern: UInt16(h)))
            if ref.isNaN {
                XCTAssertTrue(f.isNaN)
            } else {
                XCTAssertEqual(f.bitPattern, ref.bitPattern, "half \(h)")
            }
        }
    }
}

/// The byte offset of `name`'s tensor info (its length field) in a GGUF image.
func lengthPrefixedOffset(_ bytes: [UInt8], _ name: String) -> Int? {
    let needle = [UInt8](name.utf8)
    let lengthField = withUnsafeBytes(of: UInt64(needle.count).littleEndian, Array.init)
    let pattern = lengthField + needle
    guard bytes.count >= pattern.count else { return nil }
    for i in 0...(bytes.count - pattern.count) where bytes[i] == pattern[0] && Array(bytes[i..<i + pattern.count]) == pattern {
        return i
    }
    return nil
}

/// Builds a GGUFValue from the typed JSON written by gguf_vectors.py.
func expectedValue(_ spec: [String: Any]) throws -> GGUFValue {
    let type = spec["type"] as! String
    if type == "array" {
        let elem = spec["elem"] as! String
        let values = spec["value"] as! [Any]
        if elem == "array" {
            return .array(.array, try values.map { try expectedValue($0 as! [String: Any]) })
        }
        let t = try XCTUnwrap(valueType(elem))
        return .array(t, try values.map { try scalar(elem, $0) })
    }
    return try scalar(type, spec["value"]!)
}

func valueType(_ name: String) -> GGUFValueType? {
    ["uint8": .uint8, "int8": .int8, "uint16": .uint16, "int16": .int16, "uint32": .uint32, "int32": .int32,
     "float32": .float32, "bool": .bool, "string": .string, "array": .array, "uint64": .uint64,
     "int64": .int64, "float64": .float64][name]
}

func scalar(_ type: String, _ v: Any) throws -> GGUFValue {
    func int() -> Int { (v as? NSNumber)!.intValue }
    switch type {
    case "uint8": return .uint8(UInt8(int()))
    case "int8": return .int8(Int8(int()))
    case "uint16": return .uint16(UInt16(int()))
    case "int16": return .int16(Int16(int()))
    case "uint32": return .uint32(UInt32(int()))
    case "int32": return .int32(Int32(int()))
    case "uint64": return .uint64(UInt64(v as! String)!)
    case "int64": return .int64(Int64(v as! String)!)
    case "float32": return .float32(Float((v as! NSNumber).doubleValue))
    case "float64": return .float64((v as! NSNumber).doubleValue)
    case "bool": return .bool((v as! NSNumber).boolValue)
    case "string": return .string(v as! String)
    default: throw AssetError("unknown type \(type)")
    }
}
