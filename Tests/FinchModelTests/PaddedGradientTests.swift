import XCTest
import FinchKernels
import FinchModel

/// A reward-style loss (a linear score of the last real token of right-padded rows) differentiated through the
/// trunk: analytic gradients of a few weights against central differences, Llama (GQA) and GPT-2.
final class PaddedGradientTests: XCTestCase {
    func testRightPaddedTrunkGradientsMatchFiniteDifferences() throws {
        for (flavour, T) in [(Flavour.llama, 48), (.gpt2, 48), (.llama, 100)] {
            let cfg = DecoderConfig(flavour: flavour, vocabSize: 29, hiddenSize: 32, numLayers: 2, numHeads: 4,
                                    numKVHeads: flavour == .llama ? 2 : nil, intermediateSize: 48, maxPositions: 128)
            let d = Decoder(config: cfg, seed: 5)
            var rng = SeededRNG(seed: 2)
            let B = 16
            let lengths = (0..<B).map { _ in 5 + Int(rng.next() % UInt64(T - 5)) }
            var ids: [Int] = [], mask: [Int] = []
            for b in 0..<B { for t in 0..<T { ids.append(t < lengths[b] ? Int(rng.next() % 29) : 0); mask.append(t < lengths[b] ? 1 : 0) } }
            let w = (0..<32).map { _ in Float(rng.next() % 200) / 100 - 1 }
            func loss() -> Double {
                let h = d.forwardHidden(ids: ids, batch: B, length: T, attentionMask: mask)
                var s = 0.0
                for b in 0..<B { for c in 0..<32 { s += Double(h[(b * T + lengths[b] - 1) * 32 + c] * w[c]) } }
                return s
            }
            _ = loss()
            let dh = Tensor(shape: [B, T, 32])
            for b in 0..<B { for c in 0..<32 { dh[(b * T + lengths[b] - 1) * 32 + c] = w[c] } }
            d.zeroGradients()
            d.backwardHidden(dh)
            let names = flavour == .llama ? ["model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.k_proj.weight",
                                             "model.layers.1.self_attn.v_proj.weight", "model.layers.0.mlp.up_proj.weight"]
                                          : ["transformer.h.0.attn.c_attn.weight", "transformer.h.1.attn.c_attn.weight"]
            for name in names {
                let p = d.parameters[name]!, g = d.gradients[name]!
                for i in stride(from: 3, to: p.count, by: p.count / 7) {
                    let old = p[i]
                    p[i] = old + 1e-2; let up = loss()
                    p[i] = old - 1e-2; let down = loss()
                    p[i] = old
                    let numeric = (up - down) / 2e-2
                    XCTAssertEqual(Double(g[i]), numeric, accuracy: 2e-3 + 2e-2 * abs(numeric), "\(flavour) \(name)[\(i)]")
                }
            }
        }
    }
}
