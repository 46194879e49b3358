import Foundation
import XCTest
import FinchKernels
import FinchModel

/// A frozen base held as quantised blocks computes what the fp32 decoder computes on the dequantised weights:
/// logits, LoRA gradients and KV-cached decoding; a real GGUF read with its blocks kept gives the logits of the
/// same file read as fp32 (the Q/K row permutation undone on blocks).
final class QuantizedBaseTests: XCTestCase {
    /// Hidden 256 and MLP 512 hold K-format super-blocks; hidden 96 makes K formats fall back.
    func config(hidden: Int, mlp: Int) -> DecoderConfig {
        DecoderConfig(flavour: .llama, vocabSize: 61, hiddenSize: hidden, numLayers: 2, numHeads: 4, numKVHeads: 2,
                      intermediateSize: mlp, maxPositions: 64)
    }

    /// Largest |a − b| over the largest |a|.
    func relativeError(_ a: [Float], _ b: [Float]) -> Float {
        var worst: Float = 0, scale: Float = 1e-12
        for i in 0..<a.count { worst = max(worst, abs(a[i] - b[i])); scale = max(scale, abs(a[i])) }
        return worst / scale
    }

    func testQuantisedBaseMatchesDequantisedFP32() throws {
        var rng = SeededRNG(seed: 7)
        let B = 2, T = 13
        for (hidden, mlp) in [(256, 512), (96, 160)] {
            let cfg = config(hidden: hidden, mlp: mlp)
            let ids = (0..<(B * T)).map { _ in Int(rng.next() % UInt64(cfg.vocabSize)) }
            for format in Decoder.baseQuantFormats {
                let q = Decoder(config: cfg, seed: 3)
                let lora = try LoRAModule(config: LoRAAdapterConfig(r: 4, loraAlpha: 8, loraDropout: 0, targetModules: ["all-linear"]),
                                          decoder: q, seed: 1)
                lora.attach(to: q)
                let converted = try q.quantizeFrozenBase(format)
                XCTAssertEqual(converted, 2 * 7)
                XCTAssertTrue(q.config.projectionWeightNames.allSatisfy { q.parameters[$0] == nil && q.quantized[$0] != nil })
                if hidden % 256 != 0, format == .q4_K {   // rows of 96 cannot hold super-blocks: llama.cpp-style fallback
                    XCTAssertEqual(q.quantized["model.layers.0.self_attn.q_proj.weight"]?.format, .q5_0)
                }
                // The same weights in fp32, and the same adapter.
                let f = try Decoder(config: cfg, parameters: q.fullPrecisionParameters())
                let fl = try LoRAModule(config: lora.config, weights: lora.weights, decoder: f)
                fl.attach(to: f)
                for (name, t) in lora.parameters {   // B starts at zero: give it values so the adapter matters
                    for i in 0..<t.count { t[i] = Float(i % 7) * 0.01 - 0.03 }
                    fl.parameters[name]!.ptr.update(from: t.ptr, count: t.count)
                }
                for (d, m) in [(q, lora), (f, fl)] {
                    _ = m.forwardHidden(d, ids: ids, batch: B, length: T, attentionMask: nil, positionIds: nil)
                }
                let lq = q.lmHead().array, lf = f.lmHead().array
                XCTAssertLessThan(relativeError(lf, lq), 2e-5, "\(format) h\(hidden) logits")
                _ = lora.causalLMLoss(q, labels: ids, gradientScale: nil)
                lora.backward(q)
                _ = fl.causalLMLoss(f, labels: ids, gradientScale: nil)
                fl.backward(f)
                for (name, g) in fl.gradients {
                    XCTAssertLessThan(relativeError(g.array, lora.gradients[name]!.array), 1e-4, "\(format) h\(hidden) \(name)")
                }
                // KV-cached decoding (the small-m fused path) gives the full forward's last logits: to fp32 rounding,
                // or, where the CPU runs the int8-activation kernels (x rounded to 8 bits per 32-element block, as
                // llama.cpp does; q4_1 keeps the fp32 kernel), within 2e-2 of the logits' scale.
                let cache = KVCache(config: cfg, batch: 1, maxLength: T + 1)
                let prompt = Array(ids[0..<T])
                _ = q.prefill(Array(prompt.dropLast()), cache: cache)
                let stepped = q.step([prompt.last!], cache: cache)
                let V = cfg.vocabSize, last = Array(lf[((T - 1) * V)..<(T * V)])
                let int8 = QuantGemvInt8.available && q.quantized.values.contains { QuantGemvInt8.supports($0.format) }
                XCTAssertLessThan(relativeError(last, stepped.array), int8 ? 2e-2 : 1e-4, "\(format) h\(hidden) step")
            }
        }
    }

    /// bf16 products on a quantised base: the dequantised tiles go through the bf16 GEMM, as fp32 weights do.
    func testQuantisedBaseInBF16MatchesDequantisedBF16() throws {
        let cfg = config(hidden: 256, mlp: 512)
        var rng = SeededRNG(seed: 8)
        let ids = (0..<(2 * 40)).map { _ in Int(rng.next() % UInt64(cfg.vocabSize)) }
        let q = Decoder(config: cfg, seed: 3)
        q.trainable = []
        try q.quantizeFrozenBase(.q4_K)
        let f = try Decoder(config: cfg, parameters: q.fullPrecisionParameters())
        var logits: [[Float]] = []
        for d in [q, f] {
            d.precision = .bf16
            d.forwardHidden(ids: ids, batch: 2, length: 40)
            logits.append(d.lmHead().array)
        }
        XCTAssertLessThan(relativeError(logits[1], logits[0]), 1e-4)
    }

    /// Logits of a decoder whose every weight went through `round` (as a file holds them) and of its copy after
    /// `hold` (which must convert all 2 · 7 projections): a 9-row prefill (≤ 16 rows: the one-row kernels), one
    /// step, and a 21-row prefill (the prompt path). Also checks that GPT-2 is refused.
    func heldBaseLogits(seed: UInt64, round: (Tensor) -> Void,
                        hold: (Decoder) throws -> Int) throws -> (held: Decoder, short: [[Float]], stepped: [[Float]], long: [[Float]]) {
        let cfg = config(hidden: 96, mlp: 160)
        var rng = SeededRNG(seed: seed)
        let T = 21
        let ids = (0..<T).map { _ in Int(rng.next() % UInt64(cfg.vocabSize)) }
        let f = Decoder(config: cfg, seed: seed + 1)
        for t in f.parameters.values { round(t) }
        let h = try Decoder(config: cfg, parameters: f.fullPrecisionParameters().mapValues { $0.copy() })
        h.trainable = []; f.trainable = []
        XCTAssertEqual(try hold(h), 2 * 7)
        XCTAssertNotNil(h.inferenceHead)
        XCTAssertLessThan(h.weightBytes, f.weightBytes)
        var short: [[Float]] = [], stepped: [[Float]] = [], long: [[Float]] = []
        for d in [f, h] {
            let cache = KVCache(config: cfg, batch: 1, maxLength: T + 1)
            short.append(d.prefill(Array(ids[0..<9]), cache: cache).array)
            stepped.append(d.step([ids[9]], cache: cache).array)
            cache.reset()
            long.append(d.prefill(ids, cache: cache).array)
        }
        let gpt2 = Decoder(config: DecoderConfig(flavour: .gpt2, vocabSize: 40, hiddenSize: 32, numLayers: 1, numHeads: 2), seed: 1)
        gpt2.trainable = []
        XCTAssertThrowsError(try hold(gpt2)) { XCTAssertTrue("\($0)".contains("GPT-2")) }
        return (h, short, stepped, long)
    }

    /// A base held as bf16 for inference (as a bf16 GGUF file's): decoding equals the fp32 decoder on the same
    /// bf16-rounded weights (fp32 arithmetic for one row), and prompt processing stays within bf16's rounding of x.
    func testBF16HeldBaseDecodesAsFP32OnTheSameWeights() throws {
        let r = try heldBaseLogits(seed: 12, round: { t in
            let b = BF16Matrix(rows: 1, cols: t.count, from: t.ptr)
            withExtendedLifetime(b) { b.expand(rows: 0..<1, into: t.ptr) }
        }, hold: { try $0.holdFrozenBaseBF16() })
        XCTAssertTrue(r.held.config.projectionWeightNames.allSatisfy { r.held.parameters[$0] == nil && r.held.bf16Weights[$0] != nil })
        XCTAssertLessThan(relativeError(r.short[0], r.short[1]), 1e-4, "prefill of 9 rows: fp32 arithmetic on the same weights")
        XCTAssertLessThan(relativeError(r.stepped[0], r.stepped[1]), 1e-4, "step: fp32 arithmetic on the same weights")
        XCTAssertLessThan(relativeError(r.long[0], r.long[1]), 2e-2, "prefill of 21 rows: x rounded to bf16")
    }

    /// A base held as IEEE half for inference (as an f16 GGUF file's): decoding and prompt processing both compute
    /// in fp32 on the same half-rounded weights, so every logit equals the fp32 decoder's up to summation order.
    func testF16HeldBaseDecodesAsFP32OnTheSameWeights() throws {
        let r = try heldBaseLogits(seed: 13, round: { t in
            let h = F16Matrix(rows: 1, cols: t.count, from: t.ptr)
            withExtendedLifetime(h) { h.expand(rows: 0..<1, into: t.ptr) }
        }, hold: { try $0.holdFrozenBaseF16() })
        XCTAssertTrue(r.held.config.projectionWeightNames.allSatisfy { r.held.parameters[$0] == nil && r.held.f16Weights[$0] != nil })
        XCTAssertTrue(r.held.bf16Weights.isEmpty)
        guard case .f16 = r.held.inferenceHead else { return XCTFail("the head is not held as f16") }
        XCTAssertLessThan(relativeError(r.short[0], r.short[1]), 1e-4, "prefill of 9 rows")
        XCTAssertLessThan(relativeError(r.stepped[0], r.stepped[1]), 1e-4, "step")
        XCTAssertLessThan(relativeError(r.long[0], r.long[1]), 1e-4, "prefill of 21 rows: widened tiles, fp32 GEMM")
    }

    func testQuantisedBaseRefusesTrainableWeightsAndGPT2() throws {
        let gpt2 = Decoder(config: DecoderConfig(flavour: .gpt2, vocabSize: 40, hiddenSize: 32, numLayers: 1, numHeads: 2), seed: 1)
        gpt2.trainable = []
        XCTAssertThrowsError(try gpt2.quantizeFrozenBase(.q8_0)) { XCTAssertTrue("\($0)".contains("GPT-2")) }
        let d = Decoder(config: config(hidden: 96, mlp: 160), seed: 1)
        XCTAssertEqual(try d.quantizeFrozenBase(.q8_0), 0, "every weight is trainable: nothing is quantised")
    }

    /// The real SmolLM2 GGUF (Q4_1) read twice: blocks kept (q/k rows unpermuted as blocks, the rest borrowed from
    /// the mapped file) and everything dequantised to fp32. Same logits.
    func testRealGGUFKeptAsBlocksGivesTheFP32Logits() throws {
        let assets = ProcessInfo.processInfo.environment["FINCH_TEST_ASSETS"].map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/finch/test-assets")
        let paths = assets.appendingPathComponent("real_models/paths.json")
        guard let data = try? Data(contentsOf: paths), let obj = try JSONSerialization.jsonObject(with: data) as? [String: String],
              let path = obj["smollm2"] else {
            return XCTFail("missing \(paths.path): run tools/test_assets.sh")
        }
        let url = URL(fileURLWithPath: path)
        let kept = try HFModelFolder.read(url, keepQuantized: true), full = try HFModelFolder.read(url)
        // Every projection, plus the head's blocks for decoding (the tied embedding, kept in its own type).
        XCTAssertEqual(kept.quantized.count, kept.config.projectionWeightNames.count + 1)
        XCTAssertNotNil(kept.quantized[Decoder.inferenceHeadKey])
        XCTAssertTrue(kept.config.projectionWeightNames.allSatisfy { kept.quantized[$0]?.format == .q4_1 })
        let ids = [1, 504, 3458, 281, 253, 2104, 30, 216, 1476, 28]
        var out: [[Float]] = []
        for f in [kept, full] {
            let d = try Decoder(config: f.config, parameters: f.parameters, quantized: f.quantized)
            d.forwardHidden(ids: ids, batch: 1, length: ids.count)
            out.append(d.lmHead().array)
        }
        XCTAssertLessThan(relativeError(out[1], out[0]), 1e-4)
    }
}
