import Foundation
import FinchKernels
import FinchModel

/// Log-probability scoring of token sequences, one row at a time (only one row's logits are ever held).
public enum SequenceScoring {
    /// Log-softmax of the logits row `v` into `out` (natural log).
    static func logSoftmax(_ row: UnsafePointer<Float>, _ V: Int, into out: inout [Double]) {
        var m = -Double.infinity
        for i in 0..<V { m = max(m, Double(row[i])) }
        var s = 0.0
        for i in 0..<V { s += exp(Double(row[i]) - m) }
        let lse = m + log(s)
        for i in 0..<V { out[i] = Double(row[i]) - lse }
    }

    /// A sequence longer than the context keeps its end (the scored response) and drops the start of the prompt.
    static func fit(_ ids: [Int], from start: Int, limit: Int) -> ([Int], Int) {
        guard ids.count > limit else { return (ids, start) }
        let drop = ids.count - limit
        return (Array(ids.suffix(limit)), max(1, start - drop))
    }

    /// Logits of every position of one sequence [T, V] (fresh batch-1 cache).
    static func logits(_ decoder: Decoder, _ ids: [Int]) -> Tensor {
        let cache = KVCache(config: decoder.config, batch: 1, maxLength: ids.count)
        return decoder.prefill(ids, cache: cache, allPositions: true)
    }

    /// Summed negative log-likelihood of `ids[from...]` given the tokens before them, and the count scored.
    public static func nll(_ decoder: Decoder, ids: [Int], from start: Int) -> (sum: Double, count: Int) {
        let (ids, start) = fit(ids, from: start, limit: decoder.config.maxPositions)
        guard start >= 1, start < ids.count else { return (0, 0) }
        let V = decoder.config.vocabSize
        let l = logits(decoder, ids)
        var lp = [Double](repeating: 0, count: V), sum = 0.0
        for t in start..<ids.count {
            logSoftmax(l.ptr + (t - 1) * V, V, into: &lp)
            sum -= lp[ids[t]]
        }
        return (sum, ids.count - start)
    }

    /// Summed KL(policy ‖ reference) over the next-token distributions at positions predicting `ids[from...]`,
    /// and the count of positions (both models must share the tokenizer).
    public static func kl(policy: Decoder, reference: Decoder, ids: [Int], from start: Int) -> (sum: Double, count: Int) {
        let (ids, start) = fit(ids, from: start, limit: min(policy.config.maxPositions, reference.config.maxPositions))
        guard start >= 1, start < ids.count else { return (0, 0) }
        let V = policy.config.vocabSize
        precondition(reference.config.vocabSize == V, "KL: the reference model has another vocabulary (\(reference.config.vocabSize) ≠ \(V))")
        let lp = logits(policy, ids), lq = logits(reference, ids)
        var p = [Double](repeating: 0, count: V), q = p, sum = 0.0
        for t in start..<ids.count {
            logSoftmax(lp.ptr + (t - 1) * V, V, into: &p)
            logSoftmax(lq.ptr + (t - 1) * V, V, into: &q)
            var k = 0.0
            for i in 0..<V { k += exp(p[i]) * (p[i] - q[i]) }
            sum += k
        }
        return (sum, ids.count - start)
    }
}
