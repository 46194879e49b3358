import Foundation
import XCTest
import FinchGGUF

/// GGMLQuantizer against the block bytes of gguf.quants.quantize (F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) and of
/// ggml's reference C quantisers (Q4_K, Q6_K), written by tools/vectors/gguf_quant_vectors.py.
final class GGMLQuantizerTests: XCTestCase {
    static var dir: URL { Assets.root.appendingPathComponent("gguf_quant_vectors") }

    func loadCases() throws -> [[String: Any]] {
        let url = Self.dir.appendingPathComponent("cases.json")
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw AssetError("missing \(url.path): run `python3 tools/vectors/gguf_quant_vectors.py`")
        }
        let doc = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        return doc["cases"] as! [[String: Any]]
    }

    func floats(_ rel: String) throws -> [Float] {
        let data = try Data(contentsOf: Self.dir.appendingPathComponent(rel))
        return data.withUnsafeBytes { raw in
            (0..<data.count / 4).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
        }
    }

    func testEveryTypeIsBitIdenticalWithTheReference() throws {
        var checked: [String: Int] = [:]
        for c in try loadCases() {
            let name = c["name"] as! String
            let input = try floats(c["input"] as! String)
            for (typeName, rel) in c["expected"] as! [String: String] {
                let type = try XCTUnwrap(GGMLType(name: typeName))
                let expected = [UInt8](try Data(contentsOf: Self.dir.appendingPathComponent(rel)))
                for threads in [1, 2] {
                    let got = try GGMLQuantizer.quantize(type, input, threads: threads)
                    XCTAssertEqual(got.count, expected.count, "\(name) \(typeName)")
                    if let i = zip(got, expected).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
                        let block = i / type.typeSize
                        XCTFail("\(name) \(typeName) (threads \(threads)): first differing byte \(i) (block \(block), byte \(i % type.typeSize)): \(got[i]) vs \(expected[i])")
                        break
                    }
                }
                checked[typeName, default: 0] += 1
            }
        }
        print("quantiser vectors: \(checked.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))")
        for t in ["F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q6_K"] {
            XCTAssertGreaterThan(checked[t] ?? 0, 5, "too few cases for \(t)")
        }
    }

    /// Random shapes the vectors do not cover: quantise, dequantise, and the error stays within the format's step.
    func testRandomShapesRoundTripWithinTheStep() throws {
        var rng = SystemRandomNumberGenerator()
        for type in GGMLQuantizer.supportedTypes {
            for _ in 0..<4 {
                let blocks = Int.random(in: 1...9, using: &rng)
                let n = blocks * type.blockSize
                let scale = Float([1e-3, 1, 50][Int.random(in: 0...2, using: &rng)])
                let x = (0..<n).map { _ in Float.random(in: -1...1, using: &rng) * scale }
                let q = try GGMLQuantizer.quantize(type, x)
                XCTAssertEqual(q.count, blocks * type.typeSize)
                let y = try q.withUnsafeBytes { try GGMLQuants.dequantize(type, $0, count: n) }
                let amax = x.map(abs).max()!
                let bound: Float = switch type {
                case .f32: 0
                case .f16, .bf16: amax / 128
                case .q8_0: amax / 100
                case .q6_K: amax / 10
                default: amax / 5
                }
                let worst = zip(x, y).map { abs($0 - $1) }.max()!
                XCTAssertLessThanOrEqual(worst, bound, "\(type.name) n=\(n) scale=\(scale)")
            }
        }
    }

    func testRefusesWhatItCannotWrite() {
        XCTAssertThrowsError(try GGMLQuantizer.quantize(.q8_0, [Float](repeating: 1, count: 31))) { e in
            XCTAssertTrue("\(e)".contains("multiple of the Q8_0 block size 32"), "\(e)")
        }
        var x = [Float](repeating: 1, count: 256)
        x[100] = .nan
        XCTAssertThrowsError(try GGMLQuantizer.quantize(.q4_K, x)) { e in XCTAssertTrue("\(e)".contains("element 100"), "\(e)") }
        XCTAssertThrowsError(try GGMLQuantizer.quantize(.q2_K, [Float](repeating: 1, count: 256))) { e in
            XCTAssertTrue("\(e)".contains("cannot quantise to Q2_K"), "\(e)")
        }
        XCTAssertNoThrow(try GGMLQuantizer.quantize(.f16, [Float.nan, .infinity]))
    }

    /// A 135M-parameter model's worth of Q4_K (the slowest writer) must take seconds, not minutes.
    func testSpeed() throws {
        let n = 4 << 20
        var state: UInt32 = 12345
        let x = (0..<n).map { _ -> Float in state = state &* 1_664_525 &+ 1_013_904_223; return Float(Int32(bitPattern: state)) / 2e11 }
        for type in [GGMLType.q8_0, .q4_0, .q4_K, .q6_K] {
            let t0 = Date()
            _ = try GGMLQuantizer.quantize(type, x)
            let s = Date().timeIntervalSince(t0)
            print(String(format: "quantise %@: %.1f M elements/s", type.name, Double(n) / s / 1e6))
            XCTAssertLessThan(s, 10, type.name)
        }
    }
}
