import Foundation
import XCTest
import FinchKernels
import FinchModel

/// The tiny architecture models, converted to GGUF by llama.cpp's own converter (tools/vectors/gguf_converted_vectors.py),
/// read back by Finch: the same parameters as the Hugging Face folder (Q/K permutation and Gemma's 1 + w norms undone),
/// and, where GGUF carries every hyper-parameter, the same logits.
final class ArchitectureGGUFTests: XCTestCase {
    static var assets: URL {
        ProcessInfo.processInfo.environment["FINCH_TEST_ASSETS"].map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/finch/test-assets")
    }

    func pair(_ name: String) throws -> (gguf: HFModelFolder, hf: HFModelFolder)? {
        let gguf = Self.assets.appendingPathComponent("arch_gguf/\(name).gguf")
        let hf = Self.assets.appendingPathComponent("arch_vectors/\(name)")
        guard FileManager.default.fileExists(atPath: gguf.path), FileManager.default.fileExists(atPath: hf.path) else {
            XCTFail("\(gguf.path) missing: run python3 tools/vectors/arch_vectors.py and tools/vectors/gguf_converted_vectors.py")
            return nil
        }
        return (try HFModelFolder.read(gguf), try HFModelFolder.read(hf))
    }

    func checkParameters(_ a: HFModelFolder, _ b: HFModelFolder, _ name: String) {
        XCTAssertEqual(Set(a.parameters.keys), Set(b.parameters.keys), name)
        for (k, t) in b.parameters {
            guard let g = a.parameters[k] else { continue }
            XCTAssertEqual(g.shape, t.shape, "\(name) \(k)")
            var worst: Float = 0
            for i in 0..<min(g.count, t.count) { worst = max(worst, abs(g.ptr[i] - t.ptr[i])) }
            XCTAssertLessThanOrEqual(worst, 1e-6, "\(name) \(k)")
        }
    }

    func logits(_ f: HFModelFolder, ids: [Int]) throws -> [Float] {
        let d = try Decoder(config: f.config, parameters: f.parameters)
        d.forwardHidden(ids: ids, batch: 1, length: ids.count)
        return d.lmHead().array
    }

    func testEveryArchitectureAsLlamaCppWritesIt() throws {
        for name in ["qwen2", "qwen3", "llama3-rope", "llama-bias"] {
            guard let (g, h) = try pair(name) else { continue }
            XCTAssertEqual(g.config.flavour, h.config.flavour, name)
            XCTAssertEqual(g.config.headDim, h.config.headDim, name)
            checkParameters(g, h, name)
            let ids = (0..<12).map { ($0 * 37 + 5) % h.config.vocabSize }
            let a = try logits(g, ids: ids), b = try logits(h, ids: ids)
            let worst = zip(a, b).map { abs($0 - $1) }.max() ?? .infinity
            print("arch GGUF \(name): max |logit(GGUF) - logit(HF)| = \(worst)")
            XCTAssertLessThan(worst, 1e-4, name)
        }
    }

    /// Gemma 3's GGUF does not store the sliding pattern or query_pre_attn_scalar: llama.cpp fixes them (every 6th
    /// layer global, head_dim^-0.5), and Finch reads the file the same way. The weights are the folder's.
    func testGemma3AsLlamaCppReadsIt() throws {
        guard let (g, h) = try pair("gemma3") else { return }
        XCTAssertEqual(g.config.flavour, .gemma3)
        XCTAssertEqual(g.config.slidingWindow, h.config.slidingWindow)
        XCTAssertEqual(g.config.localRopeTheta, 10000)
        XCTAssertEqual(g.config.ropeScaling?.type, "linear")
        XCTAssertEqual(g.config.layerTypes, Array(repeating: "sliding_attention", count: g.config.numLayers))
        XCTAssertEqual(g.config.queryPreAttnScalar, Float(g.config.headDim))
        checkParameters(g, h, "gemma3")
    }
}
