import Foundation

/// Softmax + cross-entropy over rows of logits, with an ignore index (HF's -100).
public enum CrossEntropy {
    public static let ignoreIndex: Int32 = -100

    /// For each row r: `nll[r] = logsumexp(logits[r]) − logits[r, target[r]]` (0 when ignored).
    /// When `dlogits` is given (it may alias `logits`), writes `(softmax − onehot)·scale` for trained
    /// rows and 0 for ignored rows; `scale` is usually 1/numTrainedTokens.
    public static func forwardBackward(logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>,
                                       rows: Int, vocab: Int, nll: UnsafeMutablePointer<Float>,
                                       dlogits: UnsafeMutablePointer<Float>?, scale: Float,
                                       ignoreIndex: Int32 = CrossEntropy.ignoreIndex) {
        ThreadPool.shared.parallelFor(rows) { _, range in
            for r in range {
                let x = logits + r * vocab
                let t = targets[r]
                if t == ignoreIndex {
                    nll[r] = 0
                    dlogits?.advanced(by: r * vocab).update(repeating: 0, count: vocab)
                    continue
                }
                precondition(t >= 0 && Int(t) < vocab, "cross-entropy: target \(t) outside 0..<\(vocab)")
                let mx = VectorMath.max(x, vocab)
                let xt = x[Int(t)]   // read before dlogits (which may alias x) is written
                let mv = F16(repeating: mx)
                // One exp pass: exp(x − max) goes straight into dlogits when it is wanted.
                let d = dlogits?.advanced(by: r * vocab)
                var acc = F16()
                var i = 0
                if let d = d {
                    while i + 16 <= vocab { let e = exp16(load16(x + i) - mv); store16(e, d + i); acc += e; i += 16 }
                } else {
                    while i + 16 <= vocab { acc += exp16(load16(x + i) - mv); i += 16 }
                }
                var sum = acc.sum()
                while i < vocab { let e = expf(x[i] - mx); d?[i] = e; sum += e; i += 1 }
                nll[r] = mx + logf(sum) - xt
                guard let d = d else { continue }
                VectorMath.scale(d, scale / sum, vocab)
                d[Int(t)] -= scale
            }
        }
    }
}
