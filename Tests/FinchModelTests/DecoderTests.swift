import XCTest
import FinchKernels
import FinchModel

/// Decoder behaviour beyond the reference cases: errors, trainable sets, hooks, KV cache, sampling.
final class DecoderTests: XCTestCase {
    func tinyConfig(_ f: Flavour) -> DecoderConfig {
        DecoderConfig(flavour: f, vocabSize: 37, hiddenSize: 32, numLayers: 3, numHeads: 4,
                      numKVHeads: f == .llama ? 2 : 4, intermediateSize: 48, maxPositions: 40)
    }

    func batch() -> (ids: [Int], mask: [Int], labels: [Int]) {
        let ids = [5, 9, 3, 7, 11, 2, 8, 4, 6, 10, 1, 0]
        let mask = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0]
        let labels = [-100, 9, 3, 7, 11, 2, -100, 4, 6, 10, -100, -100]
        return (ids, mask, labels)
    }

    func testMissingAndMisshapenTensorsAreNamed() {
        let cfg = tinyConfig(.llama)
        var params = Decoder(config: cfg, seed: 1).parameters
        params["model.layers.1.mlp.up_proj.weight"] = Tensor(shape: [3, 3])
        XCTAssertThrowsError(try Decoder(config: cfg, parameters: params)) {
            XCTAssert("\($0)".contains("model.layers.1.mlp.up_proj.weight"), "\($0)")
        }
        params["model.layers.1.mlp.up_proj.weight"] = Tensor(shape: [cfg.intermediateSize, cfg.hiddenSize])
        params["model.norm.weight"] = nil
        XCTAssertThrowsError(try Decoder(config: cfg, parameters: params)) { XCTAssert("\($0)".contains("model.norm.weight")) }
    }

    /// Freezing everything below layer 2 gives the same gradients for the trainable part and none for the rest.
    func testTrainableSubsetMatchesFullBackward() {
        for f in [Flavour.gpt2, .llama] {
            let (ids, mask, labels) = batch()
            let full = Decoder(config: tinyConfig(f), seed: 3)
            full.forward(ids: ids, batch: 2, length: 6, attentionMask: mask)
            _ = full.causalLMLoss(labels: labels)
            full.backward()

            let part = Decoder(config: tinyConfig(f), seed: 3)
            part.trainable = Set(part.parameters.keys.filter { part.config.flavour == .gpt2 ? $0.hasPrefix("transformer.h.2.") : $0.hasPrefix("model.layers.2.") })
            part.forward(ids: ids, batch: 2, length: 6, attentionMask: mask)
            _ = part.causalLMLoss(labels: labels)
            part.backward()
            XCTAssertEqual(Set(part.gradients.keys), part.trainable)
            for (name, g) in part.gradients {
                XCTAssertEqual(g.array, full.gradients[name]!.array, "\(f) \(name)")
            }
        }
    }

    /// A zero LoRA-like adapter changes nothing; a non-zero one changes the logits and gets its x back.
    final class ScaleAdapter: LinearAdapter {
        var scale: Float
        var backwardCalls = 0
        init(_ s: Float) { scale = s }
        func forward(x: UnsafePointer<Float>, ldx: Int, y: UnsafeMutablePointer<Float>, ldy: Int, rows: Int) {
            for r in 0..<rows { y[r * ldy] += scale * x[r * ldx] }
        }
        func backward(x: UnsafePointer<Float>, ldx: Int, dy: UnsafePointer<Float>, ldy: Int,
                      dx: UnsafeMutablePointer<Float>?, lddx: Int, rows: Int) {
            backwardCalls += 1
            if let dx = dx { for r in 0..<rows { dx[r * lddx] += scale * dy[r * ldy] } }
        }
    }
    final class Hooks: DecoderHooks {
        let adapter: ScaleAdapter
        init(_ a: ScaleAdapter) { adapter = a }
        func linearAdapter(module: String) -> LinearAdapter? { module == "model.layers.1.self_attn.v_proj" ? adapter : nil }
        var lowestTrainableLayer: Int? { 1 }
    }

    func testLinearAdapterHookIsCalled() {
        let (ids, mask, labels) = batch()
        let d = Decoder(config: tinyConfig(.llama), seed: 4)
        let base = d.forward(ids: ids, batch: 2, length: 6, attentionMask: mask).array
        let adapter = ScaleAdapter(0)
        d.hooks = Hooks(adapter)
        XCTAssertEqual(d.forward(ids: ids, batch: 2, length: 6, attentionMask: mask).array, base)
        adapter.scale = 0.5
        XCTAssertNotEqual(d.forward(ids: ids, batch: 2, length: 6, attentionMask: mask).array, base)
        d.trainable = []
        _ = d.causalLMLoss(labels: labels)
        d.backward()
        XCTAssertEqual(adapter.backwardCalls, 1)
        XCTAssert(d.gradients.isEmpty)
    }

    /// Prefill + steps through the cache give the logits of a full forward.
    func testKVCacheMatchesFullForward() {
        for f in [Flavour.gpt2, .llama] {
            let d = Decoder(config: tinyConfig(f), seed: 5)
            let ids = [3, 14, 15, 9, 26, 5, 35]
            let full = d.forward(ids: ids, batch: 1, length: ids.count).array
            let cache = KVCache(config: d.config, maxLength: 10)
            var got = d.prefill(Array(ids[0..<4]), cache: cache, allPositions: true).array
            for t in 4..<ids.count { got += d.step([ids[t]], cache: cache).array }
            var worst: Float = 0
            for i in 0..<full.count { worst = max(worst, abs(full[i] - got[i])) }
            XCTAssertLessThan(worst, 1e-4, "\(f)")
        }
    }

    func testSamplingIsSeededAndRespectsTopK() {
        let logits: [Float] = [1, 3, 2, 0.5, 2.9]
        var a = Sampler(SamplingOptions(temperature: 1, topK: 2, seed: 7))
        var b = Sampler(SamplingOptions(temperature: 1, topK: 2, seed: 7))
        var seen = Set<Int>()
        for _ in 0..<200 {
            let x = logits.withUnsafeBufferPointer { a.next(logits: $0.baseAddress!, vocab: 5, history: []) }
            let y = logits.withUnsafeBufferPointer { b.next(logits: $0.baseAddress!, vocab: 5, history: []) }
            XCTAssertEqual(x, y); seen.insert(x)
        }
        XCTAssertEqual(seen, [1, 4])
        var g = Sampler(SamplingOptions(repetitionPenalty: 2))
        XCTAssertEqual(logits.withUnsafeBufferPointer { g.next(logits: $0.baseAddress!, vocab: 5, history: [1]) }, 4)
    }

    /// Prompt embeddings equal to token embeddings give that token sequence's logits, and their
    /// gradient equals those rows' share of the embedding gradient.
    func testPromptEmbeddingsActLikeTokens() {
        for f in [Flavour.gpt2, .llama] {
            let d = Decoder(config: tinyConfig(f), seed: 6)
            let C = d.config.hiddenSize, virt = [7, 21], ids = [4, 9, 30]
            let emb = Tensor(shape: [2, C])
            for (j, t) in virt.enumerated() { (emb.ptr + j * C).update(from: d.parameters[d.config.flavour == .gpt2 ? "transformer.wte.weight" : "model.embed_tokens.weight"]!.ptr + t * C, count: C) }
            d.forwardHidden(ids: ids, batch: 1, length: 3, prependEmbeddings: emb)
            let a = d.lmHead().array
            let b = d.forward(ids: virt + ids, batch: 1, length: 5).array
            XCTAssertEqual(a.count, b.count)
            for i in 0..<a.count { XCTAssertEqual(a[i], b[i], accuracy: 1e-5) }
            d.forwardHidden(ids: ids, batch: 1, length: 3, prependEmbeddings: emb)
            d.lmHead()
            _ = d.causalLMLoss(labels: [-100, 5, 6, 7, 8])
            d.backward()
            XCTAssertNotNil(d.promptEmbeddingGradient)
        }
    }

    /// Training forward with prefix keys/values equals KV-cache inference with the prefix loaded, and
    /// the prefix gradient matches a finite difference of the loss.
    func testPrefixKeyValues() {
        let d = Decoder(config: tinyConfig(.llama), seed: 8)
        var rng = SeededRNG(seed: 9)
        let P = 3, kv = d.config.kvDim, L = d.config.numLayers
        func table() -> [Tensor] { (0..<L).map { _ in let t = Tensor(shape: [P, kv]); for i in 0..<t.count { t[i] = rng.weightNormal() }; return t } }
        let prefix = PrefixKeyValues(keys: table(), values: table())
        d.prefix = prefix
        let ids = [3, 14, 15, 9], labels = [-100, 14, 15, 9]
        let logits = d.forward(ids: ids, batch: 1, length: 4).array
        let cache = KVCache(config: d.config, maxLength: 10)
        cache.loadPrefix(prefix)
        d.prefix = nil
        let cached = d.prefill(ids, cache: cache, allPositions: true).array
        for i in 0..<logits.count { XCTAssertEqual(logits[i], cached[i], accuracy: 1e-4) }
        d.prefix = prefix
        d.trainable = []
        d.forward(ids: ids, batch: 1, length: 4)
        _ = d.causalLMLoss(labels: labels)
        d.backward()
        let analytic = prefix.valueGradients[1][5]
        func loss() -> Double { d.forward(ids: ids, batch: 1, length: 4); return Double(d.causalLMLoss(labels: labels).loss) }
        let old = prefix.values[1][5]
        prefix.values[1][5] = old + 1e-2; let up = loss()
        prefix.values[1][5] = old - 1e-2; let down = loss()
        prefix.values[1][5] = old
        XCTAssertEqual(Double(analytic), (up - down) / 2e-2, accuracy: 1e-3 + 1e-2 * abs(Double(analytic)))
    }

    /// The head-on-trained-positions loss gives the dense loss, token NLL and gradients.
    func testTrainedTokenLossMatchesDense() {
        for f in [Flavour.gpt2, .llama] {
            let (ids, mask, labels) = batch()
            let dense = Decoder(config: tinyConfig(f), seed: 11), sparse = Decoder(config: tinyConfig(f), seed: 11)
            dense.forward(ids: ids, batch: 2, length: 6, attentionMask: mask)
            let a = dense.causalLMLoss(labels: labels)
            dense.backward()
            sparse.forwardHidden(ids: ids, batch: 2, length: 6, attentionMask: mask)
            let b = sparse.trainedTokenLoss(labels: labels)
            sparse.backward()
            XCTAssertEqual(a.loss, b.loss, accuracy: 1e-6)
            XCTAssertEqual(a.count, b.count)
            for i in 0..<a.tokenNLL.count { XCTAssertEqual(a.tokenNLL[i], b.tokenNLL[i], accuracy: 1e-5) }
            for (name, g) in dense.gradients {
                let h = sparse.gradients[name]!
                for i in 0..<g.count { XCTAssertEqual(g[i], h[i], accuracy: 1e-6 + 1e-4 * abs(g[i]), "\(f) \(name)") }
            }
        }
    }

    /// Chunked over many rows (a chunk far smaller than the trained rows), with a trainable head and a
    /// LoRA on lm_head: the same loss and gradients as the dense path; without gradients it only measures
    /// (nothing accumulated) and counts the argmax hits.
    func testTrainedTokenLossInChunksMatchesDense() throws {
        let cfg = DecoderConfig(flavour: .llama, vocabSize: 50_000, hiddenSize: 16, numLayers: 1, numHeads: 2,
                                numKVHeads: 1, intermediateSize: 24, maxPositions: 256)
        var rng = SeededRNG(seed: 5)
        let B = 2, T = 200
        XCTAssertLessThan(Decoder.headChunkRows(vocab: cfg.vocabSize), B * T / 2)   // at least two chunks
        let ids = (0..<(B * T)).map { _ in Int(rng.next() % UInt64(cfg.vocabSize)) }
        let labels = ids.enumerated().map { $0.offset % 7 == 3 ? -100 : $0.element }
        let dense = Decoder(config: cfg, seed: 3), chunked = Decoder(config: cfg, seed: 3)
        dense.forwardHidden(ids: ids, batch: B, length: T)
        let logits = dense.lmHead()
        let a = dense.causalLMLoss(labels: labels)
        dense.backward()
        chunked.forwardHidden(ids: ids, batch: B, length: T)
        let measured = chunked.trainedTokenLoss(labels: labels, computeGradients: false)
        XCTAssertTrue(chunked.gradients.values.allSatisfy { g in (0..<g.count).allSatisfy { g[$0] == 0 } })
        var hits = 0
        for b in 0..<B { for t in 0..<(T - 1) where labels[b * T + t + 1] != -100 {
            let row = logits.ptr + (b * T + t) * cfg.vocabSize
            var best = 0
            for v in 1..<cfg.vocabSize where row[v] > row[best] { best = v }
            if best == labels[b * T + t + 1] { hits += 1 }
        } }
        XCTAssertEqual(measured.correct, hits)
        let b = chunked.trainedTokenLoss(labels: labels)
        chunked.backward()
        XCTAssertEqual(measured.loss, b.loss)
        XCTAssertEqual(a.loss, b.loss, accuracy: 1e-5 * abs(a.loss))
        XCTAssertEqual(a.count, b.count)
        for (name, g) in dense.gradients {
            let h = try XCTUnwrap(chunked.gradients[name])
            var worst: Float = 0, scale: Float = 1e-9
            for i in 0..<g.count { worst = max(worst, abs(g[i] - h[i])); scale = max(scale, abs(g[i])) }
            XCTAssertLessThan(worst, 1e-4 * scale, name)
        }
    }
}
