import Foundation
import FinchKernels

extension Decoder {
    /// Runs the trunk over a right- or left-padded batch and returns the final-norm hidden states
    /// [B, T, C] (a buffer owned by the decoder, valid until the next forward of the same shape).
    ///
    /// - Parameters:
    ///   - ids: B·T token ids, row-major.
    ///   - attentionMask: B·T values, 1 = real token, 0 = padding (never attended as a key); nil = all real.
    ///   - positionIds: B·T positions; nil = 0..<T on every row (HF's default; padding does not shift them),
    ///     shifted by the prefix length when `prefix` is set.
    ///   - prependEmbeddings: prompt tuning: [P, C] embeddings placed before the tokens of every row; the
    ///     sequence becomes P + T long (hidden states, logits and labels then cover P + T positions,
    ///     positions default to 0..<P+T, the mask gets P ones in front; `positionIds` must cover P + T).
    ///   - documentIds: B·T document ids of packed rows (the real tokens only, without virtual positions):
    ///     a token attends only to earlier tokens with the same id (plus prefix keys and virtual prompt
    ///     tokens, which every document sees). Give position ids that restart at each document too, so each
    ///     document gets exactly the outputs it would get alone. nil = one document per row.
    @discardableResult
    public func forwardHidden(ids: [Int], batch: Int, length: Int, attentionMask: [Int]? = nil,
                              positionIds: [Int]? = nil, prependEmbeddings: Tensor? = nil, documentIds: [Int]? = nil) -> Tensor {
        let P = prependEmbeddings?.shape[0] ?? 0
        if let e = prependEmbeddings {
            precondition(e.shape.count == 2 && e.shape[1] == config.hiddenSize, "Decoder: prompt embeddings \(e.shape), expected [P, \(config.hiddenSize)]")
        }
        let bf = trainingBuffers(batch: batch, length: P + length)
        var allIds = ids, mask = attentionMask
        if P > 0 {
            precondition(ids.count == batch * length, "Decoder: \(ids.count) ids for batch \(batch) × length \(length)")
            allIds = []; allIds.reserveCapacity(batch * (P + length))
            for b in 0..<batch { allIds += [Int](repeating: 0, count: P) + ids[(b * length)..<((b + 1) * length)] }
            if let m = attentionMask {
                mask = []
                for b in 0..<batch { mask! += [Int](repeating: 1, count: P) + m[(b * length)..<((b + 1) * length)] }
            }
        }
        load(bf, ids: allIds, attentionMask: mask, positionIds: positionIds, positionOffset: prefix?.length ?? 0)
        bf.promptLength = P
        promptEmbeddings = prependEmbeddings
        if P > 0 { for b in 0..<batch { for t in 0..<P { bf.ids[b * (P + length) + t] = -1 } } }
        bf.attentionDocuments = documentIds.map { attentionDocuments($0, batch: batch, length: length, virtual: P) }
        forwardDropout = activeDropout
        runTrunk(bf, cache: nil, dropout: forwardDropout)
        dlogitsReady = false
        trainedHead = nil
        return bf.hidden
    }

    /// Logits [B, T, V] of the last `forwardHidden` (every position, padded ones included).
    @discardableResult
    public func lmHead() -> Tensor {
        guard let bf = buffers else { preconditionFailure("Decoder.lmHead: call forwardHidden first") }
        let logits = bf.logitsBuffer()
        headForward(bf, rows: bf.rows, hidden: bf.hidden.ptr, logits: logits.ptr)
        return logits
    }

    /// `forwardHidden` followed by `lmHead`: logits [B, T, V].
    @discardableResult
    public func forward(ids: [Int], batch: Int, length: Int, attentionMask: [Int]? = nil,
                        positionIds: [Int]? = nil, documentIds: [Int]? = nil) -> Tensor {
        forwardHidden(ids: ids, batch: batch, length: length, attentionMask: attentionMask, positionIds: positionIds,
                      documentIds: documentIds)
        return lmHead()
    }

    /// The saved activation `name` of the last forward, for debugging and conformance:
    /// `embeddings`, `layer.<i>.output`, `final_norm` (each [B, T, C]).
    public func activation(_ name: String) -> Tensor? {
        guard let bf = buffers else { return nil }
        if name == "embeddings" { return bf.residual[0] }
        if name == "final_norm" { return bf.hidden }
        if name.hasPrefix("layer."), name.hasSuffix(".output"),
           let l = Int(name.dropFirst(6).dropLast(7)), l >= 0, l < config.numLayers { return bf.residual[l + 1] }
        return nil
    }

    // MARK: internals

    /// The attention kernel's per-key document ids [B, keys] from the caller's [B, T]: `virtual` prompt
    /// positions and the prefix keys (when a prefix is set) go in front of every row as `everyDocument`.
    func attentionDocuments(_ docs: [Int], batch: Int, length: Int, virtual: Int) -> [Int32] {
        precondition(docs.count == batch * length, "Decoder: \(docs.count) document ids for batch \(batch) × length \(length)")
        let front = virtual + (prefix?.length ?? 0)
        var out: [Int32] = []
        out.reserveCapacity(batch * (front + length))
        for b in 0..<batch {
            out += [Int32](repeating: Attention.everyDocument, count: front)
            for t in 0..<length {
                let d = docs[b * length + t]
                precondition(d > Int(Int32.min) && d <= Int(Int32.max), "Decoder: document id \(d) at index \(b * length + t) out of range")
                out.append(Int32(d))
            }
        }
        return out
    }

    /// Runs `body` with the kernel view of the last forward's document ids (nil when not packed).
    func withAttentionDocuments<R>(_ bf: DecoderBuffers, _ body: (DocumentIDs?) -> R) -> R {
        guard let docs = bf.attentionDocuments else { return body(nil) }
        return docs.withUnsafeBufferPointer { body(DocumentIDs($0.baseAddress!)) }
    }

    func trainingBuffers(batch: Int, length: Int) -> DecoderBuffers {
        let keep = keepsSubLayerOutputs && !recomputeActivations
        if let b = buffers, b.batch == batch, b.length == length, b.keepSubLayerOutputs == keep,
           b.checkpointing == recomputeActivations { return b }
        buffers = nil   // free the old shape first
        let b = DecoderBuffers(config: config, batch: batch, length: length, keepSubLayerOutputs: keep,
                               checkpointing: recomputeActivations)
        buffers = b
        return b
    }

    func load(_ bf: DecoderBuffers, ids: [Int], attentionMask: [Int]?, positionIds: [Int]?, positionOffset: Int = 0) {
        let N = bf.rows
        precondition(ids.count == N, "Decoder: \(ids.count) ids for batch \(bf.batch) × length \(bf.length)")
        for n in 0..<N {
            precondition(ids[n] >= 0 && ids[n] < config.vocabSize, "Decoder: token id \(ids[n]) at index \(n) outside 0..<\(config.vocabSize)")
            bf.ids[n] = Int32(ids[n])
        }
        if let p = positionIds {
            precondition(p.count == N, "Decoder: \(p.count) position ids for \(N) tokens")
            for n in 0..<N { bf.positions[n] = Int32(p[n]) }
        } else {
            for n in 0..<N { bf.positions[n] = Int32(positionOffset + n % bf.length) }
        }
        for n in 0..<N {
            let pos = Int(bf.positions[n])
            precondition(pos >= 0 && pos < config.maxPositions, "Decoder: position \(pos) outside 0..<\(config.maxPositions)")
        }
        bf.hasPadding = false
        if let m = attentionMask {
            precondition(m.count == N, "Decoder: attention mask has \(m.count) values for \(N) tokens")
            for n in 0..<N { bf.keyMask[n] = m[n] != 0 ? 1 : 0; if m[n] == 0 { bf.hasPadding = true } }
        } else {
            bf.keyMask.buffer.update(repeating: 1)
        }
    }

    /// Embeddings, every layer, final norm. With a cache, new keys/values are appended to it and
    /// attention runs over the cached positions too.
    /// `dropout`: the training dropout of this forward (nil = none).
    func runTrunk(_ bf: DecoderBuffers, cache: KVCache?, dropout: DropoutStream? = nil) {
        let N = bf.rows, C = config.hiddenSize
        let x0 = bf.residual[0].ptr
        let wte = w(config.embeddingName)
        let wpe = config.positionEmbeddingName.map { w($0) }
        let embScale = config.embeddingScale
        for n in 0..<N {
            let dst = x0 + n * C
            if bf.ids[n] >= 0 {
                dst.update(from: wte + Int(bf.ids[n]) * C, count: C)
                if let sc = embScale { for c in 0..<C { dst[c] *= sc } }
            } else {   // a virtual prompt-tuning position
                dst.update(from: promptEmbeddings!.ptr + (n % bf.length) * C, count: C)
            }
            if let wpe = wpe { VectorMath.add(wpe + Int(bf.positions[n]) * C, into: dst, C) }
        }
        for l in 0..<config.numLayers { layerForward(l, bf, cache: cache, dropout: dropout) }
        normForward(config.finalNorm, x: bf.residual[config.numLayers].ptr, y: bf.hidden.ptr,
                    mean: bf.meanF.ptr, rstd: bf.rstdF.ptr, rows: N)
        if let cache = cache { cache.length += bf.length }
    }

    /// Whether a backward reads the attention / MLP outputs (Gemma's post-norms, residual adapters' inputs).
    var keepsSubLayerOutputs: Bool {
        config.gemmaStyle || (0..<config.numLayers).contains { l in
            hooks?.residualAdapter(layer: l, site: .attention) != nil || hooks?.residualAdapter(layer: l, site: .mlp) != nil
        }
    }

    /// The MLP activation of layer l from its kept input: act = gelu(x), gelu_tanh(gate)·up or silu(gate)·up.
    func mlpActivation(_ l: Int, _ bf: DecoderBuffers) {
        let N = bf.rows, F = config.intermediateSize
        if config.flavour == .gpt2 {
            GELU.forward(x: bf.mlpIn[l].ptr, y: bf.act[l].ptr, count: N * F)
        } else if config.gemmaStyle {
            GELU.gegluForward(gateUp: bf.mlpIn[l].ptr, out: bf.act[l].ptr, rows: N, width: F)
        } else {
            SiLU.swigluForward(gateUp: bf.mlpIn[l].ptr, out: bf.act[l].ptr, rows: N, width: F)
        }
    }

    func layerForward(_ l: Int, _ bf: DecoderBuffers, cache: KVCache?, dropout: DropoutStream? = nil) {
        let cfg = config, N = bf.rows, C = cfg.hiddenSize, T = bf.length, B = bf.batch
        let lay = cfg.blockLayout(l)
        let x = bf.residual[l].ptr
        normForward(lay.norm1, x: x, y: bf.norm1[l].ptr, mean: bf.mean1[l].ptr, rstd: bf.rstd1[l].ptr, rows: N)
        let qkv = bf.qkv[l].ptr, W = cfg.qkvWidth
        linearForward(lay.qkv, x: bf.norm1[l].ptr, ldx: C, y: qkv, ldy: W, rows: N)
        if let qn = lay.qNorm, let kn = lay.kNorm { qkNormForward(l, bf, qNorm: qn, kNorm: kn) }
        if let rope = ropeTable(l) {
            rope.apply(qkv, ld: W, rows: N, heads: cfg.numHeads, positions: bf.positions)
            rope.apply(qkv + cfg.qDim, ld: W, rows: N, heads: cfg.numKVHeads, positions: bf.positions)
        }
        let q = StridedRows(qkv, rowStride: W, batchStride: T * W)
        let out = StridedRows(bf.attn[l].ptr, rowStride: cfg.qDim, batchStride: T * cfg.qDim)
        if let cache = cache {
            let past = cache.length, M = cache.maxLength, kv = cfg.kvDim
            precondition(past + T <= M, "KVCache full: \(past) + \(T) > \(M) positions")
            let K = cache.keys[l].ptr, V = cache.values[l].ptr
            for b in 0..<B {
                for t in 0..<T {
                    let src = qkv + (b * T + t) * W
                    (K + (b * M + past + t) * kv).update(from: src + cfg.qDim, count: kv)
                    (V + (b * M + past + t) * kv).update(from: src + cfg.qDim + kv, count: kv)
                    if l == 0 { cache.keyMask[b * M + past + t] = bf.keyMask[b * T + t] }
                }
            }
            let shape = AttentionShape(batch: B, queries: T, keys: past + T, heads: cfg.numHeads,
                                       kvHeads: cfg.numKVHeads, headDim: cfg.headDim, queryOffset: past,
                                       window: cfg.attentionWindow(l), scale: cfg.attentionScale)
            Attention.forward(shape, q: q, k: StridedRows(K, rowStride: kv, batchStride: M * kv),
                              v: StridedRows(V, rowStride: kv, batchStride: M * kv),
                              keyMask: cache.keyMask.ptr, maskStride: M, out: out, lse: bf.lse[l].ptr)
        } else if let prefix = prefix {
            let P = prefix.length, kv = cfg.kvDim
            precondition(prefix.keys.count == cfg.numLayers, "Decoder.prefix: \(prefix.keys.count) layers, model has \(cfg.numLayers)")
            bf.ensurePrefix(P)
            let K = bf.prefixedKeys[l].ptr, V = bf.prefixedValues[l].ptr, mask = bf.prefixedMask!.ptr
            for b in 0..<B {
                (K + b * (P + T) * kv).update(from: prefix.keys[l].ptr, count: P * kv)
                (V + b * (P + T) * kv).update(from: prefix.values[l].ptr, count: P * kv)
                (mask + b * (P + T)).update(repeating: 1, count: P)
                (mask + b * (P + T) + P).update(from: bf.keyMask.ptr + b * T, count: T)
                for t in 0..<T {
                    let src = qkv + (b * T + t) * W
                    (K + (b * (P + T) + P + t) * kv).update(from: src + cfg.qDim, count: kv)
                    (V + (b * (P + T) + P + t) * kv).update(from: src + cfg.qDim + kv, count: kv)
                }
            }
            let shape = AttentionShape(batch: B, queries: T, keys: P + T, heads: cfg.numHeads,
                                       kvHeads: cfg.numKVHeads, headDim: cfg.headDim, queryOffset: P,
                                       window: cfg.attentionWindow(l), scale: cfg.attentionScale)
            withAttentionDocuments(bf) { docs in
                Attention.forward(shape, q: q, k: StridedRows(K, rowStride: kv, batchStride: (P + T) * kv),
                                  v: StridedRows(V, rowStride: kv, batchStride: (P + T) * kv),
                                  keyMask: mask, documents: docs, out: out, lse: bf.lse[l].ptr)
            }
        } else {
            let shape = AttentionShape(batch: B, queries: T, keys: T, heads: cfg.numHeads,
                                       kvHeads: cfg.numKVHeads, headDim: cfg.headDim,
                                       window: cfg.attentionWindow(l), scale: cfg.attentionScale)
            withAttentionDocuments(bf) { docs in
                Attention.forward(shape, q: q, k: StridedRows(qkv + cfg.qDim, rowStride: W, batchStride: T * W),
                                  v: StridedRows(qkv + cfg.qDim + cfg.kvDim, rowStride: W, batchStride: T * W),
                                  keyMask: bf.hasPadding ? bf.keyMask.ptr : nil, documents: docs, out: out, lse: bf.lse[l].ptr)
            }
        }
        linearForward(lay.out, x: bf.attn[l].ptr, ldx: cfg.qDim, y: bf.attnOut[l].ptr, ldy: C, rows: N)
        var attnSub = bf.attnOut[l].ptr
        if let post = lay.postAttentionNorm {   // Gemma: norm the attention output before the residual add
            normForward(post, x: attnSub, y: bf.attnPost[l].ptr, mean: bf.rstd3[l].ptr, rstd: bf.rstd3[l].ptr, rows: N)
            attnSub = bf.attnPost[l].ptr
        }
        dropout?.apply(layer: l, site: .attention, to: attnSub, count: N * C)
        addResidual(x, sub: attnSub, into: bf.mid[l].ptr, adapter: hooks?.residualAdapter(layer: l, site: .attention), bf)

        let mid = bf.mid[l].ptr
        normForward(lay.norm2, x: mid, y: bf.norm2[l].ptr, mean: bf.mean2[l].ptr, rstd: bf.rstd2[l].ptr, rows: N)
        let F = cfg.intermediateSize, FW = cfg.mlpInWidth
        linearForward(lay.mlpIn, x: bf.norm2[l].ptr, ldx: C, y: bf.mlpIn[l].ptr, ldy: FW, rows: N)
        mlpActivation(l, bf)
        linearForward(lay.mlpOut, x: bf.act[l].ptr, ldx: F, y: bf.mlpOut[l].ptr, ldy: C, rows: N)
        var mlpSub = bf.mlpOut[l].ptr
        if let post = lay.postMLPNorm {
            normForward(post, x: mlpSub, y: bf.mlpPost[l].ptr, mean: bf.rstd4[l].ptr, rstd: bf.rstd4[l].ptr, rows: N)
            mlpSub = bf.mlpPost[l].ptr
        }
        dropout?.apply(layer: l, site: .mlp, to: mlpSub, count: N * C)
        addResidual(mid, sub: mlpSub, into: bf.residual[l + 1].ptr, adapter: hooks?.residualAdapter(layer: l, site: .mlp), bf)
    }

    /// Qwen3 / Gemma 3: per-head RMSNorm of the q and k columns of the fused buffer (before RoPE); the
    /// pre-norm values are kept in `qkRaw` for the backward.
    func qkNormForward(_ l: Int, _ bf: DecoderBuffers, qNorm: String, kNorm: String) {
        let cfg = config, N = bf.rows, W = cfg.qkvWidth, QK = cfg.qDim + cfg.kvDim
        let qkv = bf.qkv[l].ptr, raw = bf.qkRaw[l].ptr, rstd = bf.qkRstd[l].ptr
        for n in 0..<N { (raw + n * QK).update(from: qkv + n * W, count: QK) }
        withNormWeight(qNorm) {
            RMSNorm.forwardHeads(x: raw, ldx: QK, weight: $0, y: qkv, ldy: W, rstd: rstd, rows: N,
                                 heads: cfg.numHeads, dim: cfg.headDim, eps: cfg.normEps)
        }
        withNormWeight(kNorm) {
            RMSNorm.forwardHeads(x: raw + cfg.qDim, ldx: QK, weight: $0, y: qkv + cfg.qDim, ldy: W, rstd: rstd + N * cfg.numHeads,
                                 rows: N, heads: cfg.numKVHeads, dim: cfg.headDim, eps: cfg.normEps)
        }
    }

    /// out = x + sub, or x + adapter(sub) when a residual adapter is attached.
    private func addResidual(_ x: UnsafePointer<Float>, sub: UnsafeMutablePointer<Float>, into out: UnsafeMutablePointer<Float>,
                             adapter: ResidualAdapter?, _ bf: DecoderBuffers) {
        let n = bf.rows * config.hiddenSize
        if let a = adapter {
            out.update(from: sub, count: n)
            a.forward(input: sub, output: out, rows: bf.rows, dim: config.hiddenSize)
            VectorMath.add(x, into: out, n)
        } else {
            VectorMath.add(x, sub, out: out, n)
        }
    }

    /// logits[rows, V] = hidden[rows, C] · Wᵀ (W = lm_head or the tied embedding, [V, C]).
    func headForward(_ bf: DecoderBuffers, rows: Int, hidden: UnsafePointer<Float>, logits: UnsafeMutablePointer<Float>) {
        let C = config.hiddenSize, V = config.vocabSize
        Gemm.gemm(precision: precision, transA: false, transB: true, m: rows, n: V, k: C, a: hidden, lda: C,
                   b: w(config.headWeightName), ldb: C, beta: 0, c: logits, ldc: V)
        if let lora = hooks?.linearAdapter(module: "lm_head") {
            lora.forward(x: hidden, ldx: C, y: logits, ldy: V, rows: rows)
        }
    }
}
