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
                let mv = F16(repeating: mx)
                var acc = F16()
                var i = 0
                while i + 16 <= vocab { acc += exp16(load16(x + i) - mv); i += 16 }
                var sum = acc.sum()
                while i < vocab { sum += expf(x[i] - mx); i += 1 }
                let lse = mx + logf(sum)
                nll[r] = lse - x[Int(t)]
                guard let d = dlogits?.advanced(by: r * vocab) else { continue }
                let lv = F16(repeating: lse), sv = F16(repeating: scale)
                i = 0
                while i + 16 <= vocab { store16(exp16(load16(x + i) - lv) * sv, d + i); i += 16 }
                while i < vocab { d[i] = expf(x[i] - lse) * scale; i += 1 }
                d[Int(t)] -= scale
            }
        }
    }
}
