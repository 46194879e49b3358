import XCTest
import Foundation
import FinchKernels
import FinchModel

/// Bottleneck adapters, prefix/prompt tuning (gradients, cache priming for generation) and adapter folders.
final class PEFTMethodsTests: XCTestCase {
    func random(_ n: Int, _ rng: inout SeededRNG, scale: Float = 1) -> [Float] { (0..<n).map { _ in rng.weightNormal() * scale } }

    func temporaryFolder() -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("finch-peft-\(UUID().uuidString)")
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    // MARK: bottleneck adapter

    /// Σ G ⊙ up(f(down(x))) in Double.
    func adapterLoss(_ x: [Double], _ d: [Double], _ bd: [Double], _ u: [Double], _ bu: [Double], rows: Int, dim: Int, size: Int,
                     act: AdapterActivation, g: [Double]) -> Double {
        var total = 0.0
        for r in 0..<rows {
            var h = [Double](repeating: 0, count: size)
            for k in 0..<size {
                var v = bd[k]
                for j in 0..<dim { v += x[r * dim + j] * d[k * dim + j] }
                h[k] = act == .relu ? max(v, 0) : 0.5 * v * (1 + tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)))
            }
            for o in 0..<dim {
                var v = bu[o]
                for k in 0..<size { v += h[k] * u[o * size + k] }
                total += g[r * dim + o] * v
            }
        }
        return total
    }

    func testBottleneckAdapterMatchesFiniteDifferences() {
        for (rows, dim, size, act) in [(1, 1, 1, AdapterActivation.gelu), (7, 33, 5, .relu), (6, 13, 9, .gelu)] {
            var rng = SeededRNG(seed: UInt64(rows * 100 + dim))
            let a = BottleneckAdapter(dim: dim, size: size, activation: act, upStd: 0.3, rng: &rng)
            for i in 0..<a.downBias.count { a.downBias[i] = rng.weightNormal() * 0.1 }
            for i in 0..<a.upBias.count { a.upBias[i] = rng.weightNormal() * 0.1 }
            let x = random(rows * dim, &rng), g = random(rows * dim, &rng)
            var out = x, dIn = g
            x.withUnsafeBufferPointer { xp in out.withUnsafeMutableBufferPointer { a.forward(input: xp.baseAddress!, output: $0.baseAddress!, rows: rows, dim: dim) } }
            x.withUnsafeBufferPointer { xp in g.withUnsafeBufferPointer { gp in dIn.withUnsafeMutableBufferPointer {
                a.backward(input: xp.baseAddress!, dOutput: gp.baseAddress!, dInput: $0.baseAddress!, rows: rows, dim: dim)
            } } }
            let xd = x.map(Double.init), gd = g.map(Double.init)
            var ps = [a.downWeight, a.downBias, a.upWeight, a.upBias].map { $0.array.map(Double.init) }
            func L(_ x: [Double]) -> Double { adapterLoss(x, ps[0], ps[1], ps[2], ps[3], rows: rows, dim: dim, size: size, act: act, g: gd) }
            var fwd = 0.0
            for i in 0..<out.count { fwd += gd[i] * Double(out[i] - x[i]) }
            XCTAssertEqual(fwd, L(xd), accuracy: 1e-3 * max(1, abs(fwd)))
            let eps = 1e-4
            let grads = [a.gradDownWeight, a.gradDownBias, a.gradUpWeight, a.gradUpBias]
            for p in 0..<4 {
                for i in 0..<ps[p].count {
                    let v = ps[p][i]
                    ps[p][i] = v + eps; let up = L(xd)
                    ps[p][i] = v - eps; let down = L(xd)
                    ps[p][i] = v
                    let want = (up - down) / (2 * eps)
                    XCTAssertEqual(Double(grads[p][i]), want, accuracy: 2e-3 * max(1, abs(want)), "param \(p)[\(i)] \(act)")
                }
            }
            for i in 0..<xd.count {
                var v = xd; v[i] += eps; let up = L(v); v[i] -= 2 * eps; let down = L(v)
                XCTAssertEqual(Double(dIn[i] - g[i]), (up - down) / (2 * eps), accuracy: 2e-3 * max(1, abs(up - down) / (2 * eps)), "dx[\(i)]")
            }
        }
    }

    func testAdapterModuleTrainsOnlyAdaptersAndRoundTrips() throws {
        let config = PEFTLoRATests.tinyConfig(.llama)
        let decoder = Decoder(config: config, seed: 1)
        let module = try AdapterModule(options: .houlsby(size: 5, activation: .gelu), config: config, seed: 3)
        module.attach(to: decoder)
        XCTAssertEqual(module.parameters.count, config.numLayers * 2 * 4)
        let ids = (0..<12).map { ($0 * 3 + 2) % config.vocabSize }
        _ = module.forwardHidden(decoder, ids: ids, batch: 2, length: 6, attentionMask: nil, positionIds: nil)
        let loss = module.causalLMLoss(decoder, labels: ids, gradientScale: nil)
        module.backward(decoder)
        XCTAssertTrue(loss.loss.isFinite)
        XCTAssertTrue(decoder.gradients.isEmpty, "base frozen")
        let gDown = module.gradients.filter { $0.key.contains("layers.0.attn_adapter.down_proj.weight") }.first!.value
        XCTAssertGreaterThan(gDown.array.map(abs).max()!, 0, "lowest adapter gets a gradient")
        let logits = decoder.lmHead().array
        let folder = temporaryFolder()
        try module.save(to: folder, baseModel: "tiny")
        let json = try String(contentsOf: folder.appendingPathComponent("adapter_config.json"), encoding: .utf8)
        XCTAssertTrue(json.contains("\"ADAPTER\"") && json.contains("Finch-specific"))
        let back = try PEFTLoader.load(folder: folder, decoder: decoder)
        XCTAssertTrue(back is AdapterModule)
        back.attach(to: decoder)
        _ = back.forwardHidden(decoder, ids: ids, batch: 2, length: 6, attentionMask: nil, positionIds: nil)
        XCTAssertEqual(decoder.lmHead().array, logits)
    }

    // MARK: folders

    func testLoRAFolderRoundTrip() throws {
        for flavour in [Flavour.gpt2, .llama] {
            let config = PEFTLoRATests.tinyConfig(flavour)
            let decoder = Decoder(config: config, seed: 2)
            let lora = try LoRAModule(config: LoRAAdapterConfig(r: 3, loraAlpha: 6, loraDropout: 0.1, targetModules: ["all-linear"],
                                                                useRslora: true, useDora: flavour == .llama), decoder: decoder, seed: 5)
            PEFTLoRATests.perturb(lora, seed: 1)
            let folder = temporaryFolder()
            try lora.save(to: folder, baseModel: "base")
            let back = try LoRAModule(folder: folder, decoder: decoder)
            XCTAssertEqual(back.config.fanInFanOut, flavour == .gpt2)
            XCTAssertEqual(back.config.useRslora, true)
            XCTAssertEqual(Set(back.parameters.keys), Set(lora.parameters.keys))
            for (k, t) in lora.parameters { XCTAssertEqual(back.parameters[k]!.array, t.array, k) }
            for (k, m) in lora.modules { XCTAssertEqual(back.modules[k]!.scale, m.scale, accuracy: 1e-6) }
            XCTAssertEqual(lora.modules.values.first!.scale, 6 / Float(3).squareRoot(), accuracy: 1e-5, "rsLoRA α/√r")
            XCTAssertTrue(lora.parameters.keys.allSatisfy { $0.hasPrefix("base_model.model.") })
            XCTAssertFalse(lora.modules.keys.contains { $0.contains("lm_head") || $0.contains("wte") })
        }
    }

    // MARK: prefix / prompt tuning

    func testPrefixProjectionMatchesFiniteDifferences() {
        var rng = SeededRNG(seed: 8)
        let p = PrefixProjection(virtualTokens: 3, tokenDim: 5, hidden: 7, out: 11, rng: &rng)
        let g = Tensor(shape: [3, 11], values: random(33, &rng))
        func L() -> Double {
            let t = Tensor(shape: [3, 11]); p.forward(into: t)
            return (0..<t.count).reduce(0.0) { $0 + Double(t[$1] * g[$1]) }
        }
        _ = L()
        p.backward(dOut: g)
        for (name, t) in p.parameters {
            for i in 0..<t.count {
                let v = t[i], eps: Float = 1e-2
                t[i] = v + eps; let up = L(); t[i] = v - eps; let down = L(); t[i] = v
                let want = (up - down) / Double(2 * eps)
                XCTAssertEqual(Double(p.gradients[name]![i]), want, accuracy: 1e-3 + 1e-2 * abs(want), "\(name)[\(i)]")
            }
        }
    }

    /// Logits of the last real position via the training path and via a primed KV cache (generation).
    func checkPrimedGeneration(_ module: PEFTModule, _ decoder: Decoder, _ what: String) {
        module.attach(to: decoder)
        let ids = [3, 9, 4, 17, 1]
        _ = module.forwardHidden(decoder, ids: ids, batch: 1, length: ids.count, attentionMask: nil, positionIds: nil)
        _ = module.causalLMLoss(decoder, labels: ids, gradientScale: nil)
        let train = module.logits(decoder)
        let V = decoder.config.vocabSize
        XCTAssertEqual(train.shape, [1, ids.count, V], what)
        let cache = KVCache(config: decoder.config, batch: 1, maxLength: 32)
        module.primeCache(decoder, cache: cache)
        let step = decoder.prefill(ids, cache: cache)
        var maxDiff: Float = 0
        for v in 0..<V { maxDiff = max(maxDiff, abs(step[v] - train[(ids.count - 1) * V + v])) }
        XCTAssertLessThan(maxDiff, 1e-4, "\(what): cached generation logits differ by \(maxDiff)")
    }

    func testPromptTuningGenerationAndRoundTrip() throws {
        for flavour in [Flavour.gpt2, .llama] {
            let decoder = Decoder(config: PEFTLoRATests.tinyConfig(flavour), seed: 6)
            let prompt = try PromptTuningModule(virtualTokens: 7, decoder: decoder, initTokenIds: [5, 6, 8], initText: "hi")
            XCTAssertEqual(prompt.embeddings.shape, [7, 24])
            XCTAssertEqual(Array(prompt.embeddings.array[(3 * 24)..<(4 * 24)]),
                           Array(decoder.parameters[flavour == .gpt2 ? "transformer.wte.weight" : "model.embed_tokens.weight"]!.array[(5 * 24)..<(6 * 24)]), "text init repeats")
            checkPrimedGeneration(prompt, decoder, "prompt \(flavour)")
            let folder = temporaryFolder()
            try prompt.save(to: folder, baseModel: "b")
            let back = try PEFTLoader.load(folder: folder, decoder: decoder) as! PromptTuningModule
            XCTAssertEqual(back.embeddings.array, prompt.embeddings.array)
            XCTAssertEqual(back.config.promptTuningInit, "TEXT")
        }
    }

    func testPrefixTuningGenerationAndRoundTrip() throws {
        for (flavour, projection) in [(Flavour.llama, false), (.gpt2, true), (.llama, true)] {
            let decoder = Decoder(config: PEFTLoRATests.tinyConfig(flavour), seed: 7)
            let prefix = PrefixTuningModule(virtualTokens: 4, decoder: decoder, prefixProjection: projection, encoderHiddenSize: 9, seed: 2)
            XCTAssertEqual(Set(prefix.parameters.keys).count, projection ? 5 : 1)
            checkPrimedGeneration(prefix, decoder, "prefix \(flavour) projection \(projection)")
            // A gradient reaches every trainable tensor.
            prefix.zeroGradients()
            prefix.backward(decoder)
            for (k, g) in prefix.gradients { XCTAssertGreaterThan(g.array.map(abs).max()!, 0, k) }
            let folder = temporaryFolder()
            try prefix.save(to: folder, baseModel: "b")
            let back = try PEFTLoader.load(folder: folder, decoder: decoder) as! PrefixTuningModule
            XCTAssertEqual(back.table.array, prefix.table.array)
        }
    }
}
