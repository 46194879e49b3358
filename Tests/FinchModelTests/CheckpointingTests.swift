import XCTest
import FinchKernels
import FinchModel

/// Gradient checkpointing (`recomputeActivations`) gives the gradients of the kept-activation backward bit for bit:
/// GPT-2 with decoder dropout (masks re-derived), Llama with LoRA, Gemma 3 (post-norms) with bottleneck adapters,
/// and prefix tuning.
final class CheckpointingTests: XCTestCase {
    func gradients(_ cfg: DecoderConfig, checkpointing: Bool, method: String) throws -> [String: [Float]] {
        let d = Decoder(config: cfg, seed: 4)
        d.recomputeActivations = checkpointing
        var module: PEFTModule? = nil
        switch method {
        case "lora":
            module = try LoRAModule(config: LoRAAdapterConfig(r: 4, loraAlpha: 8, targetModules: ["all-linear"]), decoder: d, seed: 2)
        case "adapter":
            module = try AdapterModule(options: AdapterOptions(size: 8, afterAttention: true, afterMLP: true), config: cfg, seed: 2)
        case "prefix":
            module = PrefixTuningModule(virtualTokens: 3, decoder: d, prefixProjection: false, seed: 2)
        default:
            d.dropout = 0.2; d.dropoutSeed = 9; d.training = true
        }
        module?.attach(to: d)
        for (_, t) in module?.parameters ?? [:] { for i in 0..<t.count { t[i] += Float(i % 5) * 0.01 } }
        var rng = SeededRNG(seed: 1)
        let B = 2, T = 9
        let ids = (0..<(B * T)).map { _ in Int(rng.next() % UInt64(cfg.vocabSize)) }
        if let m = module {
            _ = m.forwardHidden(d, ids: ids, batch: B, length: T, attentionMask: nil, positionIds: nil)
            _ = m.causalLMLoss(d, labels: ids, gradientScale: nil)
            m.backward(d)
            return m.gradients.mapValues { $0.array }
        }
        d.forwardHidden(ids: ids, batch: B, length: T)
        _ = d.trainedTokenLoss(labels: ids)
        d.backward()
        return d.gradients.mapValues { $0.array }
    }

    func testCheckpointedGradientsAreIdentical() throws {
        let gpt2 = DecoderConfig(flavour: .gpt2, vocabSize: 41, hiddenSize: 32, numLayers: 3, numHeads: 4, maxPositions: 32)
        let llama = DecoderConfig(flavour: .llama, vocabSize: 41, hiddenSize: 32, numLayers: 3, numHeads: 4, numKVHeads: 2,
                                  intermediateSize: 48, maxPositions: 32)
        let gemma = DecoderConfig(flavour: .gemma3, vocabSize: 41, hiddenSize: 32, numLayers: 2, numHeads: 2, numKVHeads: 1,
                                  headDim: 16, intermediateSize: 48, maxPositions: 32, slidingWindow: 4,
                                  layerTypes: ["sliding_attention", "full_attention"], localRopeTheta: 10000, queryPreAttnScalar: 16)
        for (cfg, method) in [(gpt2, "full"), (llama, "lora"), (gemma, "adapter"), (llama, "prefix"), (llama, "full")] {
            let kept = try gradients(cfg, checkpointing: false, method: method)
            let recomputed = try gradients(cfg, checkpointing: true, method: method)
            XCTAssertFalse(kept.isEmpty)
            XCTAssertEqual(Set(kept.keys), Set(recomputed.keys))
            for (name, g) in kept { XCTAssertEqual(g, recomputed[name], "\(cfg.flavour) \(method) \(name)") }
        }
    }
}
