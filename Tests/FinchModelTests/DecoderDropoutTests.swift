import XCTest
import FinchKernels
import FinchModel

/// Training-only inverted dropout on the attention / MLP sub-layer outputs.
final class DecoderDropoutTests: XCTestCase {
    func tinyConfig(_ f: Flavour) -> DecoderConfig {
        DecoderConfig(flavour: f, vocabSize: 37, hiddenSize: 32, numLayers: 2, numHeads: 4,
                      numKVHeads: f == .llama ? 2 : 4, intermediateSize: 48, maxPositions: 40)
    }

    let ids = [5, 9, 3, 7, 11, 2, 8, 4, 6, 10, 1, 0]
    let mask = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0]
    let labels = [-100, 9, 3, 7, 11, 2, -100, 4, 6, 10, -100, -100]

    /// Loss (and optionally the backward) of one training micro-batch.
    @discardableResult
    func loss(_ d: Decoder, backward: Bool = false) -> Float {
        d.forward(ids: ids, batch: 2, length: 6, attentionMask: mask)
        let l = d.causalLMLoss(labels: labels).loss
        if backward { d.zeroGradients(); d.backward() }
        return l
    }

    func testZeroProbabilityIsBitIdentical() {
        for f in [Flavour.gpt2, .llama] {
            let plain = Decoder(config: tinyConfig(f), seed: 7)
            let lossA = loss(plain, backward: true)
            let dropped = Decoder(config: tinyConfig(f), seed: 7)
            dropped.training = true
            dropped.dropout = 0
            dropped.dropoutSeed = 99
            dropped.dropoutStep = 5
            let lossB = loss(dropped, backward: true)
            XCTAssertEqual(lossA.bitPattern, lossB.bitPattern, "\(f)")
            for (name, g) in plain.gradients { XCTAssertEqual(g.array, dropped.gradients[name]!.array, "\(f) \(name)") }
        }
    }

    func testMasksAreReproducibleAndDependOnCounterLayerSite() {
        let d = Decoder(config: tinyConfig(.gpt2), seed: 1)
        XCTAssertEqual(d.dropoutMask(layer: 0, site: .attention, count: 10), [Float](repeating: 1, count: 10))  // not training
        d.training = true; d.dropout = 0.25; d.dropoutSeed = 3; d.dropoutStep = 11
        let n = 20_000
        let m = d.dropoutMask(layer: 1, site: .mlp, count: n)
        XCTAssertEqual(m, d.dropoutMask(layer: 1, site: .mlp, count: n))
        XCTAssert(m.allSatisfy { $0 == 0 || $0 == 1 / Float(0.75) })
        let dropped = Double(m.filter { $0 == 0 }.count) / Double(n)
        XCTAssertEqual(dropped, 0.25, accuracy: 0.02)
        XCTAssertNotEqual(m, d.dropoutMask(layer: 1, site: .attention, count: n))
        XCTAssertNotEqual(m, d.dropoutMask(layer: 0, site: .mlp, count: n))
        d.dropoutStep = 12
        XCTAssertNotEqual(m, d.dropoutMask(layer: 1, site: .mlp, count: n))
        d.dropoutStep = 11
        XCTAssertEqual(m, d.dropoutMask(layer: 1, site: .mlp, count: n))

        // The same counter gives the same training loss; another counter a different one.
        let a = loss(d), b = loss(d)
        XCTAssertEqual(a.bitPattern, b.bitPattern)
        d.dropoutStep = 12
        XCTAssertNotEqual(a, loss(d))
    }

    /// Evaluation (training off), KV-cached decoding and generation never drop, even with p > 0.
    func testEvalAndGenerationUnaffected() {
        for f in [Flavour.gpt2, .llama] {
            let plain = Decoder(config: tinyConfig(f), seed: 5)
            let logits = plain.forward(ids: ids, batch: 2, length: 6, attentionMask: mask).array
            let gen = plain.generate(prompt: [3, 4, 5], options: GenerationOptions(maxNewTokens: 6)).tokens

            let d = Decoder(config: tinyConfig(f), seed: 5)
            d.dropout = 0.5; d.dropoutSeed = 2
            XCTAssertEqual(d.forward(ids: ids, batch: 2, length: 6, attentionMask: mask).array, logits, "\(f) eval")
            d.training = true
            XCTAssertNotEqual(d.forward(ids: ids, batch: 2, length: 6, attentionMask: mask).array, logits, "\(f) train drops")
            XCTAssertEqual(d.generate(prompt: [3, 4, 5], options: GenerationOptions(maxNewTokens: 6)).tokens, gen, "\(f) generate")
            d.training = false
            XCTAssertEqual(d.forward(ids: ids, batch: 2, length: 6, attentionMask: mask).array, logits, "\(f) eval after train")
        }
    }

    /// The backward's gradient equals a central finite difference of the same fixed-mask loss.
    func testGradientMatchesFiniteDifference() {
        for f in [Flavour.gpt2, .llama] {
            let d = Decoder(config: tinyConfig(f), seed: 11)
            d.training = true; d.dropout = 0.3; d.dropoutSeed = 4; d.dropoutStep = 9
            loss(d, backward: true)
            let plain = Decoder(config: tinyConfig(f), seed: 11)
            loss(plain, backward: true)
            var checked = 0
            for name in d.gradients.keys.sorted() where name.contains(".0.") || name.contains(".1.") {
                let g = d.gradients[name]!.array
                XCTAssertNotEqual(g, plain.gradients[name]!.array, "\(f) \(name): dropout changes the gradient")
                // The element with the largest gradient, where float32 differences are most reliable.
                let i = g.indices.max { abs(g[$0]) < abs(g[$1]) }!
                guard abs(g[i]) > 1e-3 else { continue }
                let p = d.parameters[name]!, old = p.ptr[i], eps: Float = 1e-2
                p.ptr[i] = old + eps; let up = Double(loss(d))
                p.ptr[i] = old - eps; let down = Double(loss(d))
                p.ptr[i] = old
                let fd = (up - down) / Double(2 * eps)
                XCTAssertEqual(fd, Double(g[i]), accuracy: 2e-3 + 0.03 * abs(fd), "\(f) \(name)[\(i)]")
                checked += 1
            }
            XCTAssertGreaterThan(checked, 6, "\(f)")
        }
    }
}
