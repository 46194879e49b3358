import Foundation
import XCTest
import FinchKernels
import FinchModel
import FinchData
import FinchTrain

/// `CausalLMModel.loss` on packed rows: each document trains as if alone (document ids and position resets
/// reach the decoder for every method and the feature cache); too many positions are refused up front.
final class TrainerPackingTests: XCTestCase {
    func config(_ f: Flavour) -> DecoderConfig {
        DecoderConfig(flavour: f, vocabSize: 41, hiddenSize: 32, numLayers: 2, numHeads: 4,
                      numKVHeads: f == .llama ? 2 : 4, intermediateSize: 48, maxPositions: 40)
    }

    func document(_ ids: [Int32], record: Int) -> Example {
        Example(ids: ids, mask: [UInt8](repeating: 1, count: ids.count),
                documents: [DocumentInfo(length: ids.count, record: record, source: 0, line: record)])
    }

    let docA: [Int32] = [5, 9, 3, 7, 11, 13]
    let docB: [Int32] = [2, 8, 4, 6, 10, 1, 12, 30, 31]

    /// One row packing A and B (+ padding), and the same two documents as rows of their own.
    func batches() -> (packed: Batch, separate: Batch) {
        let a = document(docA, record: 0), b = document(docB, record: 1)
        let both = Example(ids: docA + docB, mask: a.mask + b.mask, documents: a.documents + b.documents)
        let T = docA.count + docB.count + 3
        return (Batch([both], length: T, padID: 0), Batch([a, b], length: T, padID: 0))
    }

    func makeModel(_ f: Flavour, method: String) throws -> CausalLMModel {
        let d = Decoder(config: config(f), seed: 21)
        var o = PEFTOptions()
        o.numVirtualTokens = 4
        o.loraDropout = 0   // dropout would draw different masks for the two layouts
        // "cache": the frozen trunk's features are cached and only the LM head trains.
        let module = method == "cache" ? nil : try PEFTMethods.make(method, options: o, decoder: d, tokenizer: nil, seed: 5)
        let m = CausalLMModel(decoder: d, peft: module, cacheFeatures: method == "cache")
        if method == "cache" { d.trainable = [d.config.tieWordEmbeddings ? (f == .gpt2 ? "transformer.wte.weight" : "model.embed_tokens.weight") : "lm_head.weight"] }
        m.allocateGradients(); m.zeroGradients()
        return m
    }

    func testPackedBatchTrainsLikeSeparateRows() throws {
        for f in [Flavour.gpt2, .llama] {
            for method in ["full", "lora", "adapter", "prompt", "prefix", "cache"] {
                let (packed, separate) = batches()
                XCTAssertEqual(packed.trainedTokens, separate.trainedTokens)
                let scale = 1 / Float(packed.trainedTokens)
                let p = try makeModel(f, method: method), s = try makeModel(f, method: method)
                let lp = p.loss(packed, gradientScale: scale, measureAccuracy: true); p.backward()
                let ls = s.loss(separate, gradientScale: scale, measureAccuracy: true); s.backward()
                let tag = "\(f) \(method)"
                XCTAssertEqual(lp.count, ls.count, tag)
                XCTAssertEqual(lp.nllSum, ls.nllSum, accuracy: 1e-4 * ls.nllSum, tag)
                XCTAssertEqual(lp.correct, ls.correct, tag)
                XCTAssertFalse(p.gradients.isEmpty, tag)
                for (name, g) in p.gradients {
                    let h = s.gradients[name]!.array
                    let worst = zip(g.array, h).map { abs($0 - $1) / (1e-6 + 1e-3 * max(1e-3, abs($1))) }.max() ?? 0
                    XCTAssertLessThanOrEqual(worst, 1, "\(tag) gradient \(name)")
                }
            }
        }
    }

    func testTooManyPositionsForVirtualTokensIsRefusedUpFront() throws {
        for method in ["prompt", "prefix"] {
            let m = try makeModel(.llama, method: method)   // 4 virtual tokens, 40 positions
            XCTAssertEqual(m.virtualTokens, 4)
            XCTAssertNoThrow(try m.checkPositions(seqLen: 36))
            XCTAssertThrowsError(try m.checkPositions(seqLen: 37)) { e in
                let text = "\(e)"
                for part in ["--seq-len 37", "4 virtual tokens", "41 positions", "only 40", "--seq-len 36 or less"] {
                    XCTAssert(text.contains(part), "\(method): '\(part)' missing from: \(text)")
                }
            }
        }
        XCTAssertThrowsError(try CausalLMModel.checkPositions(seqLen: 41, virtualTokens: 0, maxPositions: 40)) {
            XCTAssert("\($0)".contains("--seq-len 40 or less"), "\($0)")
        }
    }
}
