import Foundation
import FinchKernels
import FinchModel

/// Batched decoding for evaluation (the same scheme as `finch generate`'s batched replies): prompts are
/// left-padded to one length with padding masked out of attention and positions counting real tokens only,
/// prefilled together, then decoded one step for the whole batch. Greedy by default; with `sampling`, row i
/// draws from its own generator seeded by `seeds[i]`, so a row's output never depends on its batch-mates.
public enum GreedyGeneration {
    /// New token ids per prompt (stop token excluded). Stops a row at any of `stopIDs` or, when `stopAtNewline`,
    /// once its decoded text contains a newline (plain few-shot prompting).
    public static func run(_ decoder: Decoder, prompts: [[Int]], maxNewTokens: Int, stopIDs: Set<Int>,
                           batch: Int = 8, stopWhen: (([Int]) -> Bool)? = nil,
                           sampling: SamplingOptions? = nil, seeds: [UInt64]? = nil) -> [[Int]] {
        precondition(seeds == nil || seeds!.count == prompts.count, "GreedyGeneration.run: one seed per prompt")
        var out: [[Int]] = []
        let limit = decoder.config.maxPositions
        for start in stride(from: 0, to: prompts.count, by: max(1, batch)) {
            // Keep the most recent context when a prompt is too long to leave room for the reply.
            let chunk = prompts[start..<min(prompts.count, start + max(1, batch))].map { p -> [Int] in
                let room = max(1, limit - maxNewTokens)
                return p.count > room ? Array(p.suffix(room)) : p
            }
            let samplers = sampling.map { o in (start..<(start + chunk.count)).map { i -> Sampler in
                var r = o
                r.seed = seeds?[i] ?? (o.seed &+ UInt64(i) &* 0x9E37_79B9_7F4A_7C15)
                return Sampler(r)
            } }
            out += generateBatch(decoder, prompts: chunk, maxNewTokens: min(maxNewTokens, limit - 1), stopIDs: stopIDs, stopWhen: stopWhen,
                                 samplers: samplers)
        }
        return out
    }

    static func generateBatch(_ decoder: Decoder, prompts: [[Int]], maxNewTokens: Int, stopIDs: Set<Int>,
                              stopWhen: (([Int]) -> Bool)?, samplers: [Sampler]? = nil) -> [[Int]] {
        var samplers = samplers
        let B = prompts.count, T = prompts.map(\.count).max() ?? 1, V = decoder.config.vocabSize
        let steps = max(0, min(maxNewTokens, decoder.config.maxPositions - T))
        guard steps > 0 else { return Array(repeating: [], count: B) }
        let cache = KVCache(config: decoder.config, batch: B, maxLength: T + steps)
        var ids: [Int] = [], mask: [Int] = [], positions: [Int] = []
        for p in prompts {
            let pad = T - p.count
            ids += Array(repeating: 0, count: pad) + p
            mask += Array(repeating: 0, count: pad) + Array(repeating: 1, count: p.count)
            positions += Array(repeating: 0, count: pad) + Array(0..<p.count)
        }
        var logits = decoder.prefill(ids, cache: cache, attentionMask: mask, positionIds: positions)
        var generated = Array(repeating: [Int](), count: B)
        var done = Array(repeating: false, count: B)
        for step in 0..<steps {
            var next = Array(repeating: 0, count: B)
            for b in 0..<B where !done[b] {
                let token = samplers == nil ? argmax(logits.ptr + b * V, V)
                    : samplers![b].next(logits: logits.ptr + b * V, vocab: V, history: prompts[b] + generated[b])
                next[b] = token
                if stopIDs.contains(token) { done[b] = true; continue }
                generated[b].append(token)
                if let stopWhen, stopWhen(generated[b]) { done[b] = true }
            }
            if done.allSatisfy({ $0 }) || step == steps - 1 { break }
            // Finished rows keep feeding a dummy token; their logits are ignored.
            logits = decoder.prefill(next, cache: cache, positionIds: (0..<B).map { prompts[$0].count + step })
        }
        return generated
    }

    static func argmax(_ p: UnsafePointer<Float>, _ n: Int) -> Int {
        var best = 0
        var value = p[0]
        for i in 1..<n where p[i] > value { value = p[i]; best = i }
        return best
    }
}

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
