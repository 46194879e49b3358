import XCTest
import Foundation
import FinchKernels
import FinchModel

/// LoRA / DoRA: the projection delta and its gradients against a scalar Double reference (central finite
/// differences, DoRA's row norm held fixed as PEFT detaches it), on odd sizes and strided buffers; merging.
final class PEFTLoRATests: XCTestCase {
    struct Sizes { let rows, inF, outF, r: Int }

    func random(_ n: Int, _ rng: inout SeededRNG, scale: Float = 1) -> [Float] { (0..<n).map { _ in rng.weightNormal() * scale } }

    /// Σ G ⊙ delta(x) in Double, with DoRA's norm from (a0, b0) and the numerator from (a, b).
    func referenceLoss(_ s: Sizes, x: [Double], a: [Double], b: [Double], m: [Double]?, w: [Double], conv1D: Bool,
                       a0: [Double], b0: [Double], scale: Double, g: [Double]) -> Double {
        func wAt(_ o: Int, _ i: Int) -> Double { conv1D ? w[i * s.outF + o] : w[o * s.inF + i] }
        var total = 0.0
        var k = [Double](repeating: 1, count: s.outF)
        if let m = m {
            for o in 0..<s.outF {
                var sum = 0.0
                for i in 0..<s.inF {
                    var ba = 0.0
                    for q in 0..<s.r { ba += b0[o * s.r + q] * a0[q * s.inF + i] }
                    let v = wAt(o, i) + scale * ba
                    sum += v * v
                }
                k[o] = m[o] / sum.squareRoot()
            }
        }
        for row in 0..<s.rows {
            var u = [Double](repeating: 0, count: s.r)
            for q in 0..<s.r { for i in 0..<s.inF { u[q] += x[row * s.inF + i] * a[q * s.inF + i] } }
            for o in 0..<s.outF {
                var lora = 0.0
                for q in 0..<s.r { lora += u[q] * b[o * s.r + q] }
                var delta = scale * lora
                if m != nil {
                    var base = 0.0
                    for i in 0..<s.inF { base += x[row * s.inF + i] * wAt(o, i) }
                    delta = (k[o] - 1) * base + k[o] * scale * lora
                }
                total += g[row * s.outF + o] * delta
            }
        }
        return total
    }

    func checkLinear(_ s: Sizes, dora: Bool, conv1D: Bool) {
        var rng = SeededRNG(seed: UInt64(s.rows * 1000 + s.inF * 10 + s.r + (dora ? 7 : 0) + (conv1D ? 3 : 0)))
        let scale: Float = 1.7
        let ldx = s.inF + 3, ldy = s.outF + 2, lddx = s.inF + 5
        let a = Tensor(shape: [s.r, s.inF], values: random(s.r * s.inF, &rng, scale: 0.3))
        let b = Tensor(shape: [s.outF, s.r], values: random(s.outF * s.r, &rng, scale: 0.3))
        let w = Tensor(shape: conv1D ? [s.inF, s.outF] : [s.outF, s.inF], values: random(s.inF * s.outF, &rng, scale: 0.2))
        let m = dora ? Tensor(shape: [s.outF], values: random(s.outF, &rng).map { 0.5 + abs($0) }) : nil
        let lora = LoRALinear(module: "test", a: a, b: b, scale: scale, magnitude: m, baseWeight: dora ? w : nil, conv1D: conv1D)
        let x = random(s.rows * ldx, &rng), y0 = random(s.rows * ldy, &rng), g = random(s.rows * ldy, &rng)
        var y = y0
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
            lora.forward(x: xp.baseAddress!, ldx: ldx, y: yp.baseAddress!, ldy: ldy, rows: s.rows)
        } }
        // Reference inputs without the row padding.
        let xd = (0..<s.rows).flatMap { r in (0..<s.inF).map { Double(x[r * ldx + $0]) } }
        let gd = (0..<s.rows).flatMap { r in (0..<s.outF).map { Double(g[r * ldy + $0]) } }
        let ad = a.array.map(Double.init), bd = b.array.map(Double.init), wd = w.array.map(Double.init)
        let md = m?.array.map(Double.init)
        // Forward: Σ g·(y - y0) equals the reference loss, and padding columns are untouched.
        var lossF = 0.0
        for r in 0..<s.rows {
            for o in 0..<ldy {
                let d = Double(y[r * ldy + o] - y0[r * ldy + o])
                if o >= s.outF { XCTAssertEqual(d, 0, "padding column written"); continue }
                lossF += Double(g[r * ldy + o]) * d
            }
        }
        func L(x: [Double] = xd, a: [Double] = ad, b: [Double] = bd, m: [Double]? = md) -> Double {
            referenceLoss(s, x: x, a: a, b: b, m: m, w: wd, conv1D: conv1D, a0: ad, b0: bd, scale: Double(scale), g: gd)
        }
        let lossRef = L()
        XCTAssertEqual(lossF, lossRef, accuracy: 1e-3 * max(1, abs(lossRef)), "forward \(s) dora \(dora)")
        // Backward.
        var dx = [Float](repeating: 0.25, count: s.rows * lddx)
        x.withUnsafeBufferPointer { xp in g.withUnsafeBufferPointer { gp in dx.withUnsafeMutableBufferPointer { dp in
            lora.backward(x: xp.baseAddress!, ldx: ldx, dy: gp.baseAddress!, ldy: ldy, dx: dp.baseAddress!, lddx: lddx, rows: s.rows)
        } } }
        let eps = 1e-3
        func fd(_ f: (Double) -> Double) -> Double { (f(eps) - f(-eps)) / (2 * eps) }
        func close(_ got: Float, _ want: Double, _ what: String) {
            XCTAssertEqual(Double(got), want, accuracy: 2e-3 * max(1, abs(want)), "\(what) \(s) dora \(dora) conv1D \(conv1D)")
        }
        for i in 0..<a.count { close(lora.gradA[i], fd { e in var v = ad; v[i] += e; return L(a: v) }, "dA[\(i)]") }
        for i in 0..<b.count { close(lora.gradB[i], fd { e in var v = bd; v[i] += e; return L(b: v) }, "dB[\(i)]") }
        if let md = md, let gm = lora.gradMagnitude {
            for i in 0..<md.count { close(gm[i], fd { e in var v = md; v[i] += e; return L(m: v) }, "dm[\(i)]") }
        }
        for r in 0..<s.rows {
            for j in 0..<lddx {
                let got = dx[r * lddx + j] - 0.25
                if j >= s.inF { XCTAssertEqual(got, 0, "dx padding written"); continue }
                close(got, fd { e in var v = xd; v[r * s.inF + j] += e; return L(x: v) }, "dx[\(r),\(j)]")
            }
        }
    }

    func testLoRALinearMatchesReference() {
        for s in [Sizes(rows: 1, inF: 1, outF: 1, r: 1), Sizes(rows: 7, inF: 33, outF: 13, r: 3), Sizes(rows: 5, inF: 17, outF: 40, r: 8)] {
            checkLinear(s, dora: false, conv1D: false)
            checkLinear(s, dora: false, conv1D: true)
        }
    }

    func testDoRALinearMatchesReference() {
        for s in [Sizes(rows: 1, inF: 3, outF: 2, r: 1), Sizes(rows: 7, inF: 33, outF: 13, r: 3)] {
            checkLinear(s, dora: true, conv1D: false)
            checkLinear(s, dora: true, conv1D: true)
        }
    }

    func testDropoutIsSeededAndOffInEval() {
        var rng = SeededRNG(seed: 5)
        let rows = 6, inF = 11, outF = 9, r = 2
        let a = Tensor(shape: [r, inF], values: random(r * inF, &rng)), b = Tensor(shape: [outF, r], values: random(outF * r, &rng))
        func run(_ training: Bool, seed: UInt64) -> [Float] {
            let l = LoRALinear(module: "t", a: a, b: b, scale: 2, dropout: 0.5)
            l.training = training; l.seed = seed
            let x = (0..<(rows * inF)).map { Float($0 % 7) - 3 }
            var y = [Float](repeating: 0, count: rows * outF)
            x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { l.forward(x: xp.baseAddress!, ldx: inF, y: $0.baseAddress!, ldy: outF, rows: rows) } }
            return y
        }
        XCTAssertEqual(run(true, seed: 1), run(true, seed: 1), "same seed, same mask")
        XCTAssertNotEqual(run(true, seed: 1), run(true, seed: 2))
        XCTAssertNotEqual(run(true, seed: 1), run(false, seed: 1))
        XCTAssertEqual(run(false, seed: 1), run(false, seed: 9), "no dropout in eval")
    }

    /// With A = B = I and s = 1 the delta is the dropped input x̃ = x ⊙ mask, which exposes the mask:
    /// the backward must use the same one (dA = dyᵀx̃, dB = dyᵀx̃, dx = dy ⊙ mask).
    func testDropoutBackwardUsesTheForwardMask() {
        let rows = 9, n = 6
        let eye = (0..<(n * n)).map { Float($0 % (n + 1) == 0 ? 1 : 0) }
        let l = LoRALinear(module: "t", a: Tensor(shape: [n, n], values: eye), b: Tensor(shape: [n, n], values: eye), scale: 1, dropout: 0.4)
        l.training = true; l.seed = 77
        var rng = SeededRNG(seed: 3)
        let x = (0..<(rows * n)).map { _ in 1 + abs(rng.weightNormal()) }, dy = random(rows * n, &rng)
        var y = [Float](repeating: 0, count: rows * n), dx = y
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { l.forward(x: xp.baseAddress!, ldx: n, y: $0.baseAddress!, ldy: n, rows: rows) } }
        let mask = (0..<y.count).map { y[$0] / x[$0] }
        XCTAssertTrue(mask.contains { $0 == 0 } && mask.contains { abs($0 - 1 / 0.6) < 1e-5 }, "mask has drops and kept 1/(1-p)")
        x.withUnsafeBufferPointer { xp in dy.withUnsafeBufferPointer { gp in dx.withUnsafeMutableBufferPointer {
            l.backward(x: xp.baseAddress!, ldx: n, dy: gp.baseAddress!, ldy: n, dx: $0.baseAddress!, lddx: n, rows: rows)
        } } }
        for i in 0..<dx.count { XCTAssertEqual(dx[i], dy[i] * mask[i], accuracy: 1e-5) }
        for o in 0..<n {
            for j in 0..<n {
                let want = (0..<rows).reduce(Float(0)) { $0 + dy[$1 * n + o] * y[$1 * n + j] }
                XCTAssertEqual(l.gradA[o * n + j], want, accuracy: 1e-4)
                XCTAssertEqual(l.gradB[o * n + j], want, accuracy: 1e-4)
            }
        }
    }

    // MARK: decoder level

    static func tinyConfig(_ f: Flavour) -> DecoderConfig {
        DecoderConfig(flavour: f, vocabSize: 37, hiddenSize: 24, numLayers: 2, numHeads: 4,
                      numKVHeads: f == .llama ? 2 : nil, intermediateSize: 40, maxPositions: 64)
    }

    /// Gives B (and DoRA's magnitude) non-zero values so the adapter changes the model.
    static func perturb(_ lora: LoRAModule, seed: UInt64) {
        var rng = SeededRNG(seed: seed)
        for (name, t) in lora.parameters.sorted(by: { $0.key < $1.key }) {
            for i in 0..<t.count { t[i] += rng.weightNormal() * (name.hasSuffix("magnitude_vector") ? 0.1 : 0.05) }
        }
    }

    func testMergedDecoderMatchesAdapter() throws {
        for (flavour, dora, targets) in [(Flavour.gpt2, false, ["c_attn", "c_fc"]), (.gpt2, true, ["all-linear"]),
                                         (.llama, false, ["all-linear"]), (.llama, true, ["q_proj", "down_proj"])] {
            let config = Self.tinyConfig(flavour)
            let decoder = Decoder(config: config, seed: 3)
            let base = decoder.parameters
            let lora = try LoRAModule(config: LoRAAdapterConfig(r: 4, loraAlpha: 8, targetModules: targets, useDora: dora),
                                      decoder: decoder, seed: 11)
            lora.attach(to: decoder)
            let ids = (0..<14).map { ($0 * 7 + 3) % config.vocabSize }
            let plain = decoder.forward(ids: ids, batch: 2, length: 7).array   // B = 0 (DoRA m = ‖W‖): same as base
            lora.enabled = false
            let off = decoder.forward(ids: ids, batch: 2, length: 7).array
            lora.enabled = true
            for i in 0..<plain.count { XCTAssertEqual(plain[i], off[i], accuracy: 1e-4, "fresh adapter must not change the model") }
            Self.perturb(lora, seed: 2)
            let adapted = decoder.forward(ids: ids, batch: 2, length: 7).array
            let merged = try Decoder(config: config, parameters: lora.mergedParameters(base, config: config))
            let folded = merged.forward(ids: ids, batch: 2, length: 7).array
            var maxDiff: Float = 0, moved: Float = 0
            for i in 0..<adapted.count { maxDiff = max(maxDiff, abs(adapted[i] - folded[i])); moved = max(moved, abs(adapted[i] - off[i])) }
            XCTAssertLessThan(maxDiff, 1e-4, "\(flavour) dora \(dora): merged logits differ by \(maxDiff)")
            XCTAssertGreaterThan(moved, 1e-3, "the perturbed adapter should change the logits")
        }
    }

    func testLoRAGradientsThroughDecoderMatchFiniteDifferences() throws {
        let config = Self.tinyConfig(.gpt2)
        let decoder = Decoder(config: config, seed: 4)
        let lora = try LoRAModule(config: LoRAAdapterConfig(r: 2, loraAlpha: 4, targetModules: ["c_attn", "mlp.c_proj"], useDora: true),
                                  decoder: decoder, seed: 1)
        lora.attach(to: decoder)
        Self.perturb(lora, seed: 9)
        let ids = (0..<10).map { ($0 * 5 + 1) % config.vocabSize }, labels = ids
        func loss() -> Float {
            _ = lora.forwardHidden(decoder, ids: ids, batch: 2, length: 5, attentionMask: nil, positionIds: nil)
            return lora.causalLMLoss(decoder, labels: labels, gradientScale: nil).loss
        }
        _ = loss()
        lora.zeroGradients()
        lora.backward(decoder)
        XCTAssertTrue(decoder.gradients.isEmpty)
        // Magnitude entries are outside the detached norm, so finite differences apply exactly.
        for (name, t) in lora.parameters.sorted(by: { $0.key < $1.key }) where name.hasSuffix("magnitude_vector") {
            for i in stride(from: 0, to: t.count, by: 9) {
                let v = t[i], eps: Float = 1e-2
                t[i] = v + eps; let up = loss()
                t[i] = v - eps; let down = loss()
                t[i] = v
                let want = (up - down) / (2 * eps), got = lora.gradients[name]![i]
                XCTAssertEqual(got, want, accuracy: 2e-3 + 0.05 * abs(want), "\(name)[\(i)]")
            }
        }
    }

    func testMergeFolderWritesAnHFModelWithTheAdaptedLogits() throws {
        let config = Self.tinyConfig(.llama)
        let decoder = Decoder(config: config, seed: 12)
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("finch-merge-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let baseURL = root.appendingPathComponent("base"), adapterURL = root.appendingPathComponent("adapter")
        let outURL = root.appendingPathComponent("merged")
        try HFModelFolder.save(config: config, parameters: decoder.parameters, to: baseURL)
        let template = Data(#"{"chat_template": "{{ messages }}"}"#.utf8)
        try template.write(to: baseURL.appendingPathComponent("chat_template.json"))
        let lora = try LoRAModule(config: LoRAAdapterConfig(r: 2, loraAlpha: 5, targetModules: ["q_proj", "up_proj"], useDora: true),
                                  decoder: decoder, seed: 3)
        Self.perturb(lora, seed: 4)
        try lora.save(to: adapterURL, baseModel: baseURL.path)
        let summary = try LoRAMerger.mergeFolder(model: baseURL, adapter: adapterURL, out: outURL)
        XCTAssertEqual(summary.method, "DoRA")
        XCTAssertEqual(summary.modules, 2 * config.numLayers)
        XCTAssertEqual(try Data(contentsOf: outURL.appendingPathComponent("chat_template.json")), template, "template file carried over")
        lora.attach(to: decoder)
        let ids = [1, 5, 9, 2, 30, 7]
        let adapted = decoder.forward(ids: ids, batch: 1, length: 6).array
        let (mc, mp) = try HFModelFolder.load(outURL)
        let folded = try Decoder(config: mc, parameters: mp).forward(ids: ids, batch: 1, length: 6).array
        for i in 0..<adapted.count { XCTAssertEqual(adapted[i], folded[i], accuracy: 1e-4) }
    }
}
