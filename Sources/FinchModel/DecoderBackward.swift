import Foundation
import FinchKernels

/// The result of `Decoder.causalLMLoss`.
public struct CausalLMLoss {
    /// Mean NLL over every trained (non-ignored, shifted) label of the batch.
    public let loss: Float
    /// [B, T-1] per-token NLL of the shifted labels, 0 where ignored.
    public let tokenNLL: [Float]
    /// Number of trained labels.
    public let count: Int
    /// How many trained labels are the logits' argmax (first maximum); measured by `trainedTokenLoss`
    /// when it computes no gradients (evaluation), else nil.
    public var correct: Int? = nil
}

extension Decoder {
    /// Hugging Face `ForCausalLMLoss` on the logits of the last `lmHead()`: the logit at t predicts
    /// `labels[t+1]`, labels equal to -100 are ignored, one mean over the whole batch. Also computes
    /// dloss/dlogits (scaled by 1/count, or by `gradientScale` when given, e.g. 1/total tokens of
    /// several micro-batches) for the next `backward()`.
    public func causalLMLoss(labels: [Int], gradientScale: Float? = nil) -> CausalLMLoss {
        guard let bf = buffers, let logits = bf.logits else { preconditionFailure("Decoder.causalLMLoss: call forward/lmHead first") }
        let B = bf.batch, T = bf.length, N = bf.rows, V = config.vocabSize
        precondition(labels.count == N, "Decoder.causalLMLoss: \(labels.count) labels for \(B) × \(T) tokens")
        let targets = UnsafeMutablePointer<Int32>.allocate(capacity: N)
        defer { targets.deallocate() }
        var count = 0
        for b in 0..<B {
            for t in 0..<T {
                let label = t + 1 < T ? labels[b * T + t + 1] : -100
                targets[b * T + t] = Int32(label)
                if label != -100 { count += 1 }
            }
        }
        let nll = Tensor(shape: [N])
        let dlogits = dlogitsBuffer(bf)
        let scale = gradientScale ?? (count > 0 ? 1 / Float(count) : 0)
        CrossEntropy.forwardBackward(logits: logits.ptr, targets: targets, rows: N, vocab: V, nll: nll.ptr,
                                     dlogits: dlogits.ptr, scale: scale)
        var sum = 0.0
        var tokenNLL = [Float](repeating: 0, count: B * max(T - 1, 0))
        for b in 0..<B {
            for t in 0..<(T - 1) {
                tokenNLL[b * (T - 1) + t] = nll[b * T + t]
                sum += Double(nll[b * T + t])
            }
        }
        dlogitsReady = true
        trainedHead = nil
        return CausalLMLoss(loss: count > 0 ? Float(sum / Double(count)) : 0, tokenNLL: tokenNLL, count: count)
    }

    func dlogitsBuffer(_ bf: DecoderBuffers) -> Tensor {
        if let d = dlogitsStore, d.count == bf.rows * config.vocabSize { return d }
        dlogitsStore = nil
        let d = Tensor(shape: [bf.rows, config.vocabSize])
        dlogitsStore = d
        return d
    }

    /// Backward from the loss of the last `causalLMLoss` through the LM head and the trunk;
    /// accumulates into `gradients` (trainable parameters only).
    public func backward() {
        guard let bf = buffers, dlogitsReady else {
            preconditionFailure("Decoder.backward: call causalLMLoss or trainedTokenLoss after the forward first")
        }
        if let head = trainedHead {
            head.scatter(into: bf.dHidden, width: config.hiddenSize)
            backwardHidden(bf.dHidden.ptr)
            return
        }
        guard let dlogits = dlogitsStore else { preconditionFailure("Decoder.backward: no dlogits") }
        let N = bf.rows, C = config.hiddenSize, V = config.vocabSize
        let head = config.headWeightName
        if let gW = grad(head) {   // dW[V, C] += dlogitsᵀ · hidden
            Gemm.gemm(precision: precision, transA: true, transB: false, m: V, n: C, k: N, a: dlogits.ptr, lda: V,
                       b: bf.hidden.ptr, ldb: C, beta: 1, c: gW, ldc: C)
        }
        let dHidden = bf.dHidden
        Gemm.gemm(precision: precision, transA: false, transB: false, m: N, n: C, k: V, a: dlogits.ptr, lda: V,
                   b: w(head), ldb: C, beta: 0, c: dHidden.ptr, ldc: C)
        if let lora = hooks?.linearAdapter(module: "lm_head") {
            lora.backward(x: bf.hidden.ptr, ldx: C, dy: dlogits.ptr, ldy: V, dx: dHidden.ptr, lddx: C, rows: N)
        }
        backwardHidden(dHidden.ptr)
    }

    /// Backward of the trunk from dL/d(final-norm hidden states) [B, T, C] of the last `forwardHidden`.
    public func backwardHidden(_ dHidden: Tensor) { backwardHidden(dHidden.ptr) }

    /// Backward of the trunk from a raw [B·T, C] gradient buffer.
    public func backwardHidden(_ dHidden: UnsafePointer<Float>) {
        guard let bf = buffers else { preconditionFailure("Decoder.backwardHidden: call forwardHidden first") }
        let N = bf.rows, L = config.numLayers
        let (lowest, needEmbedding) = backwardReach()
        let dRes = bf.dResidual
        dRes.zero()
        let needBelow = needEmbedding || lowest < L
        normBackward(config.finalNorm, dy: dHidden, x: bf.residual[L].ptr, mean: bf.meanF.ptr, rstd: bf.rstdF.ptr,
                     dx: needBelow ? dRes.ptr : nil, rows: N)
        guard needBelow else { return }
        for l in stride(from: L - 1, through: lowest, by: -1) {
            // Gradient checkpointing: refill the shared activations of layer l from its kept input (the same
            // values: dropout masks are functions of (seed, step, layer, site), and the hooks recompute theirs).
            if bf.checkpointing { layerForward(l, bf, cache: nil, dropout: forwardDropout) }
            layerBackward(l, bf, needInputGrad: needEmbedding || l > lowest)
            afterLayerBackward?(l)
        }
        if needEmbedding { embeddingBackward(bf) }
    }

    /// The lowest layer whose parameters (or hooks) need gradients, and whether the embeddings do.
    func backwardReach() -> (lowest: Int, embedding: Bool) {
        var lowest = config.numLayers
        var embedding = trainable.contains(config.embeddingName)
        if let p = config.positionEmbeddingName, trainable.contains(p) { embedding = true }
        for name in trainable { if let l = config.layerIndex(of: name) { lowest = min(lowest, l) } }
        if let h = hooks?.lowestTrainableLayer { lowest = min(lowest, h) }
        if prefix != nil { lowest = 0 }
        if buffers?.promptLength ?? 0 > 0 { embedding = true }
        if embedding { lowest = 0 }   // an embedding gradient needs the backward through every layer
        return (lowest, embedding)
    }

    func layerBackward(_ l: Int, _ bf: DecoderBuffers, needInputGrad: Bool) {
        let cfg = config, N = bf.rows, C = cfg.hiddenSize, T = bf.length, B = bf.batch
        let F = cfg.intermediateSize, FW = cfg.mlpInWidth, W = cfg.qkvWidth
        let lay = cfg.blockLayout(l)
        let dRes = bf.dResidual.ptr

        // MLP sub-layer: residual[l+1] = mid + mlpOut(adapter).
        var dMlpOut = subLayerGradient(dRes, input: lay.postMLPNorm == nil ? bf.mlpOut[l].ptr : bf.mlpPost[l].ptr,
                                       adapter: hooks?.residualAdapter(layer: l, site: .mlp), bf)
        if let d = forwardDropout { dMlpOut = dropoutGradient(d, layer: l, site: .mlp, dDropped: dMlpOut, bf) }
        if let post = lay.postMLPNorm { dMlpOut = postNormBackward(post, dy: dMlpOut, x: bf.mlpOut[l].ptr, rstd: bf.rstd4[l].ptr, bf) }
        mlpActivation(l, bf)   // recomputed into the shared buffer (DecoderBuffers)
        linearBackward(lay.mlpOut, x: bf.act[l].ptr, ldx: F, dy: dMlpOut, ldy: C, dx: bf.dAct.ptr, lddx: F, accumulate: false, rows: N)
        if cfg.flavour == .gpt2 {
            GELU.backward(dy: bf.dAct.ptr, x: bf.mlpIn[l].ptr, dx: bf.dMlpIn.ptr, count: N * F)
        } else if cfg.gemmaStyle {
            GELU.gegluBackward(dOut: bf.dAct.ptr, gateUp: bf.mlpIn[l].ptr, dGateUp: bf.dMlpIn.ptr, rows: N, width: F)
        } else {
            SiLU.swigluBackward(dOut: bf.dAct.ptr, gateUp: bf.mlpIn[l].ptr, dGateUp: bf.dMlpIn.ptr, rows: N, width: F)
        }
        normForward(lay.norm2, x: bf.mid[l].ptr, y: bf.norm2[l].ptr, mean: bf.mean2[l].ptr, rstd: bf.rstd2[l].ptr, rows: N)
        for (i, s) in lay.mlpIn.enumerated() {
            linearBackward(s, x: bf.norm2[l].ptr, ldx: C, dy: bf.dMlpIn.ptr, ldy: FW, dx: bf.dNorm.ptr, lddx: C, accumulate: i > 0, rows: N)
        }
        normBackward(lay.norm2, dy: bf.dNorm.ptr, x: bf.mid[l].ptr, mean: bf.mean2[l].ptr, rstd: bf.rstd2[l].ptr, dx: dRes, rows: N)

        // Attention sub-layer: mid = residual[l] + attnOut(adapter).
        var dAttnOut = subLayerGradient(dRes, input: lay.postAttentionNorm == nil ? bf.attnOut[l].ptr : bf.attnPost[l].ptr,
                                        adapter: hooks?.residualAdapter(layer: l, site: .attention), bf)
        if let d = forwardDropout { dAttnOut = dropoutGradient(d, layer: l, site: .attention, dDropped: dAttnOut, bf) }
        if let post = lay.postAttentionNorm {
            dAttnOut = postNormBackward(post, dy: dAttnOut, x: bf.attnOut[l].ptr, rstd: bf.rstd3[l].ptr, bf)
        }
        linearBackward(lay.out, x: bf.attn[l].ptr, ldx: cfg.qDim, dy: dAttnOut, ldy: C, dx: bf.dAttn.ptr, lddx: cfg.qDim, accumulate: false, rows: N)
        let qkv = bf.qkv[l].ptr, dqkv = bf.dQKV.ptr
        func rows(_ p: UnsafeMutablePointer<Float>, _ ld: Int) -> StridedRows { StridedRows(p, rowStride: ld, batchStride: T * ld) }
        if let prefix = prefix {
            prefixAttentionBackward(l, bf, prefix)
        } else {
            let shape = AttentionShape(batch: B, queries: T, keys: T, heads: cfg.numHeads, kvHeads: cfg.numKVHeads, headDim: cfg.headDim,
                                       window: cfg.attentionWindow(l), scale: cfg.attentionScale)
            withAttentionDocuments(bf) { docs in
                Attention.backward(shape, q: rows(qkv, W), k: rows(qkv + cfg.qDim, W), v: rows(qkv + cfg.qDim + cfg.kvDim, W),
                                   out: rows(bf.attn[l].ptr, cfg.qDim), dOut: rows(bf.dAttn.ptr, cfg.qDim),
                                   keyMask: bf.hasPadding ? bf.keyMask.ptr : nil, documents: docs, lse: bf.lse[l].ptr,
                                   dq: rows(dqkv, W), dk: rows(dqkv + cfg.qDim, W), dv: rows(dqkv + cfg.qDim + cfg.kvDim, W))
            }
        }
        if let rope = ropeTable(l) {
            rope.apply(dqkv, ld: W, rows: N, heads: cfg.numHeads, positions: bf.positions, inverse: true)
            rope.apply(dqkv + cfg.qDim, ld: W, rows: N, heads: cfg.numKVHeads, positions: bf.positions, inverse: true)
        }
        if let qn = lay.qNorm, let kn = lay.kNorm {   // Qwen3 / Gemma 3: back through the per-head q/k norms, in place
            let QK = cfg.qDim + cfg.kvDim, raw = bf.qkRaw[l].ptr, rstd = bf.qkRstd[l].ptr
            withNormWeight(qn) {
                RMSNorm.backwardHeads(dy: dqkv, ldy: W, x: raw, ldx: QK, weight: $0, rstd: rstd, dx: dqkv, lddx: W,
                                      dweight: grad(qn + ".weight"), rows: N, heads: cfg.numHeads, dim: cfg.headDim)
            }
            withNormWeight(kn) {
                RMSNorm.backwardHeads(dy: dqkv + cfg.qDim, ldy: W, x: raw + cfg.qDim, ldx: QK, weight: $0, rstd: rstd + N * cfg.numHeads,
                                      dx: dqkv + cfg.qDim, lddx: W, dweight: grad(kn + ".weight"), rows: N,
                                      heads: cfg.numKVHeads, dim: cfg.headDim)
            }
        }
        // The norm's input gradient is needed below this layer, its output gradient also for its own weights.
        let needNormGrad = needInputGrad || trainable.contains(lay.norm1 + ".weight") || trainable.contains(lay.norm1 + ".bias")
        normForward(lay.norm1, x: bf.residual[l].ptr, y: bf.norm1[l].ptr, mean: bf.mean1[l].ptr, rstd: bf.rstd1[l].ptr, rows: N)
        for (i, s) in lay.qkv.enumerated() {
            linearBackward(s, x: bf.norm1[l].ptr, ldx: C, dy: dqkv, ldy: W, dx: needNormGrad ? bf.dNorm.ptr : nil,
                           lddx: C, accumulate: i > 0, rows: N)
        }
        if needNormGrad {
            normBackward(lay.norm1, dy: bf.dNorm.ptr, x: bf.residual[l].ptr, mean: bf.mean1[l].ptr, rstd: bf.rstd1[l].ptr,
                         dx: needInputGrad ? dRes : nil, rows: N)
        }
    }

    /// Attention backward over [prefix | real] keys: real-key gradients go to the fused dQKV buffer,
    /// prefix-key gradients (summed over the batch) to `prefix.keyGradients/valueGradients`.
    private func prefixAttentionBackward(_ l: Int, _ bf: DecoderBuffers, _ prefix: PrefixKeyValues) {
        let cfg = config, T = bf.length, B = bf.batch, W = cfg.qkvWidth, P = prefix.length, kv = cfg.kvDim
        let dK = bf.dPrefixedKeys!.ptr, dV = bf.dPrefixedValues!.ptr
        let shape = AttentionShape(batch: B, queries: T, keys: P + T, heads: cfg.numHeads, kvHeads: cfg.numKVHeads,
                                   headDim: cfg.headDim, queryOffset: P, window: cfg.attentionWindow(l), scale: cfg.attentionScale)
        func rows(_ p: UnsafeMutablePointer<Float>, _ ld: Int, _ len: Int) -> StridedRows { StridedRows(p, rowStride: ld, batchStride: len * ld) }
        withAttentionDocuments(bf) { docs in
            Attention.backward(shape, q: rows(bf.qkv[l].ptr, W, T), k: rows(bf.prefixedKeys[l].ptr, kv, P + T),
                               v: rows(bf.prefixedValues[l].ptr, kv, P + T),
                               out: rows(bf.attn[l].ptr, cfg.qDim, T), dOut: rows(bf.dAttn.ptr, cfg.qDim, T),
                               keyMask: bf.prefixedMask!.ptr, documents: docs, lse: bf.lse[l].ptr,
                               dq: rows(bf.dQKV.ptr, W, T), dk: rows(dK, kv, P + T), dv: rows(dV, kv, P + T))
        }
        let dqkv = bf.dQKV.ptr
        for b in 0..<B {
            VectorMath.add(dK + b * (P + T) * kv, into: prefix.keyGradients[l].ptr, P * kv)
            VectorMath.add(dV + b * (P + T) * kv, into: prefix.valueGradients[l].ptr, P * kv)
            for t in 0..<T {
                let dst = dqkv + (b * T + t) * W
                (dst + cfg.qDim).update(from: dK + (b * (P + T) + P + t) * kv, count: kv)
                (dst + cfg.qDim + kv).update(from: dV + (b * (P + T) + P + t) * kv, count: kv)
            }
        }
    }

    /// Gemma's post-attention / post-MLP norm: the gradient w.r.t. the norm's input (in `dPreNorm`) from `dy`
    /// w.r.t. its output; accumulates the norm weight's gradient.
    private func postNormBackward(_ module: String, dy: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>,
                                  rstd: UnsafePointer<Float>, _ bf: DecoderBuffers) -> UnsafeMutablePointer<Float> {
        let out = bf.dPreNorm
        out.zero()
        normBackward(module, dy: dy, x: x, mean: rstd, rstd: rstd, dx: out.ptr, rows: bf.rows)
        return out.ptr
    }

    /// The gradient w.r.t. a sub-layer's output given dL/d(residual sum): itself, or through the adapter.
    private func subLayerGradient(_ dRes: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                                  adapter: ResidualAdapter?, _ bf: DecoderBuffers) -> UnsafeMutablePointer<Float> {
        guard let a = adapter else { return dRes }
        let n = bf.rows * config.hiddenSize
        bf.dSub.ptr.update(from: dRes, count: n)
        a.backward(input: input, dOutput: dRes, dInput: bf.dSub.ptr, rows: bf.rows, dim: config.hiddenSize)
        return bf.dSub.ptr
    }

    func embeddingBackward(_ bf: DecoderBuffers) {
        let C = config.hiddenSize, dRes = bf.dResidual.ptr
        if let g = grad(config.embeddingName) {
            if let sc = config.embeddingScale {   // Gemma: x = embedding · √hidden
                for n in 0..<bf.rows where bf.ids[n] >= 0 {
                    let src = dRes + n * C, dst = g + Int(bf.ids[n]) * C
                    for c in 0..<C { dst[c] += src[c] * sc }
                }
            } else {
                for n in 0..<bf.rows where bf.ids[n] >= 0 { VectorMath.add(dRes + n * C, into: g + Int(bf.ids[n]) * C, C) }
            }
        }
        if bf.promptLength > 0, let prompt = promptEmbeddings {
            if promptEmbeddingGradient?.shape != prompt.shape { promptEmbeddingGradient = Tensor(shape: prompt.shape) }
            let g = promptEmbeddingGradient!.ptr
            for n in 0..<bf.rows where bf.ids[n] < 0 { VectorMath.add(dRes + n * C, into: g + (n % bf.length) * C, C) }
        }
        if let p = config.positionEmbeddingName, let g = grad(p) {
            for n in 0..<bf.rows { VectorMath.add(dRes + n * C, into: g + Int(bf.positions[n]) * C, C) }
        }
    }
}
