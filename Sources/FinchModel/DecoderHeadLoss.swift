import FinchKernels

// The LM head and its cross-entropy over the trained positions only, a chunk of rows at a time.
//
// Why: `lmHead()` + `causalLMLoss` hold [B·T, V] logits and as many dlogits, 805 MB for 2 × 1024 tokens of a
// 49k vocabulary (and 4.3 GB for Gemma's 262k). Instruction tuning trains only the response tokens, so most of
// those rows are thrown away. Here the head runs on `chunkRows` trained rows at a time: logits → softmax
// cross-entropy (in place, giving dlogits) → the gradient w.r.t. those hidden rows and, when the head itself
// learns, its weight (or LoRA) gradient; then the chunk buffer is reused. Nothing of size rows × vocab outlives
// a chunk. The backward only scatters the kept [R, C] hidden-state gradient and runs the trunk.

/// What `trainedTokenLoss` keeps for `backward()`: the trained positions and dL/d(hidden) at each of them.
struct TrainedHeadGradient {
    let rows: [Int]
    let dHidden: Tensor   // [R, C]

    /// dHidden rows to their positions of the [N, C] trunk gradient; zeros elsewhere.
    func scatter(into full: Tensor, width C: Int) {
        full.zero()
        for (i, r) in rows.enumerated() { (full.ptr + r * C).update(from: dHidden.ptr + i * C, count: C) }
    }
}

extension Decoder {
    /// Rows of logits per chunk: about 8 M floats (32 MB), between 16 and 512 rows.
    public static func headChunkRows(vocab: Int) -> Int { max(16, min(512, (8 << 20) / max(vocab, 1))) }

    /// The same loss as `causalLMLoss`, after `forwardHidden` and without `lmHead()`: the LM head runs only on
    /// positions whose shifted label is trained, in chunks (see the top of this file).
    ///
    /// With `computeGradients` (the default) it also prepares `backward()`: the per-token gradient is scaled by
    /// `gradientScale` (default 1/trained tokens), and when the head has trainable parameters (the weight, or a
    /// LoRA on `lm_head`) their gradients are accumulated here, chunk by chunk, so call `backward()` next.
    /// Without it (evaluation) only the loss is computed and nothing is accumulated.
    public func trainedTokenLoss(labels: [Int], gradientScale: Float? = nil, computeGradients: Bool = true) -> CausalLMLoss {
        guard let bf = buffers else { preconditionFailure("Decoder.trainedTokenLoss: call forwardHidden first") }
        let B = bf.batch, T = bf.length, N = bf.rows, C = config.hiddenSize, V = config.vocabSize
        precondition(labels.count == N, "Decoder.trainedTokenLoss: \(labels.count) labels for \(B) × \(T) tokens")
        var rows: [Int] = [], targets: [Int32] = []
        for b in 0..<B {
            for t in 0..<(T - 1) where labels[b * T + t + 1] != -100 {
                rows.append(b * T + t); targets.append(Int32(labels[b * T + t + 1]))
            }
        }
        let R = rows.count
        var correct = 0
        let nll = Tensor(shape: [max(R, 1)])
        let dHidden = Tensor(shape: [computeGradients ? max(R, 1) : 1, C])
        if R > 0 {
            let head = config.headWeightName
            let scale = gradientScale ?? 1 / Float(R)
            let chunk = min(R, Self.headChunkRows(vocab: V))
            let hidden = Tensor(shape: [chunk, C]), logits = Tensor(shape: [chunk, V])
            let gW = computeGradients ? grad(head) : nil
            let lora = hooks?.linearAdapter(module: "lm_head")
            var start = 0
            while start < R {
                let n = min(chunk, R - start)
                for i in 0..<n { (hidden.ptr + i * C).update(from: bf.hidden.ptr + rows[start + i] * C, count: C) }
                headForward(bf, rows: n, hidden: hidden.ptr, logits: logits.ptr)
                if !computeGradients {
                    for i in 0..<n where Self.argmax(logits.ptr + i * V, V) == Int(targets[start + i]) { correct += 1 }
                }
                targets.withUnsafeBufferPointer {
                    CrossEntropy.forwardBackward(logits: logits.ptr, targets: $0.baseAddress! + start, rows: n, vocab: V,
                                                 nll: nll.ptr + start, dlogits: computeGradients ? logits.ptr : nil,
                                                 scale: scale)
                }
                if computeGradients {
                    let dh = dHidden.ptr + start * C
                    if let gW = gW {   // dW[V, C] += dlogitsᵀ · hidden
                        Gemm.gemm(precision: precision, transA: true, transB: false, m: V, n: C, k: n, a: logits.ptr, lda: V,
                                   b: hidden.ptr, ldb: C, beta: 1, c: gW, ldc: C)
                    }
                    Gemm.gemm(precision: precision, transA: false, transB: false, m: n, n: C, k: V, a: logits.ptr, lda: V,
                               b: w(head), ldb: C, beta: 0, c: dh, ldc: C)
                    lora?.backward(x: hidden.ptr, ldx: C, dy: logits.ptr, ldy: V, dx: dh, lddx: C, rows: n)
                }
                start += n
            }
        }
        var sum = 0.0
        var tokenNLL = [Float](repeating: 0, count: B * max(T - 1, 0))
        for (i, r) in rows.enumerated() {
            tokenNLL[(r / T) * (T - 1) + r % T] = nll[i]
            sum += Double(nll[i])
        }
        trainedHead = computeGradients ? TrainedHeadGradient(rows: rows, dHidden: dHidden) : nil
        dlogitsReady = computeGradients
        return CausalLMLoss(loss: R > 0 ? Float(sum / Double(R)) : 0, tokenNLL: tokenNLL, count: R,
                            correct: computeGradients ? nil : correct)
    }

    /// Index of the first maximum of `row[0..<n]`.
    static func argmax(_ row: UnsafePointer<Float>, _ n: Int) -> Int {
        var best = 0, bestValue = row[0]
        for v in 1..<n where row[v] > bestValue { bestValue = row[v]; best = v }
        return best
    }
}
