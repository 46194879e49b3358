import Foundation

/// How the next token is chosen from logits. `temperature == 0` is greedy (argmax).
/// Processing order follows Hugging Face: repetition penalty, temperature, top-k, top-p, min-p.
public struct SamplingOptions: Equatable, Sendable {
    /// 0 = greedy.
    public var temperature: Float = 0
    /// Keep the k most likely tokens (0 = off).
    public var topK: Int = 0
    /// Keep the smallest set of most likely tokens whose probability reaches p (1 = off).
    public var topP: Float = 1
    /// Drop tokens less likely than minP × the most likely one (0 = off).
    public var minP: Float = 0
    /// HF repetition penalty over every token seen so far (1 = off): logit/p if > 0, else logit·p.
    public var repetitionPenalty: Float = 1
    public var seed: UInt64 = 0

    public init(temperature: Float = 0, topK: Int = 0, topP: Float = 1, minP: Float = 0,
                repetitionPenalty: Float = 1, seed: UInt64 = 0) {
        self.temperature = temperature; self.topK = topK; self.topP = topP; self.minP = minP
        self.repetitionPenalty = repetitionPenalty; self.seed = seed
    }
}

/// Picks tokens from logits under `SamplingOptions`, with its own deterministic RNG.
public struct Sampler {
    public let options: SamplingOptions
    var rng: SeededRNG

    public init(_ options: SamplingOptions) {
        self.options = options
        rng = SeededRNG(seed: options.seed)
    }

    /// The next token for `logits` (length V) given every token seen so far (for the penalty).
    public mutating func next(logits: UnsafePointer<Float>, vocab V: Int, history: [Int]) -> Int {
        var z = Array(UnsafeBufferPointer(start: logits, count: V))
        if options.repetitionPenalty != 1 {
            let p = options.repetitionPenalty
            for t in Set(history) where t >= 0 && t < V { z[t] = z[t] > 0 ? z[t] / p : z[t] * p }
        }
        var best = 0
        for i in 1..<V where z[i] > z[best] { best = i }
        if options.temperature <= 0 { return best }
        let inv = 1 / options.temperature
        let top = z[best] * inv
        // Tokens more than 40 nats below the best have probability < 1e-17: never candidates.
        var cand = Sampler.byLikelihood((0..<V).filter { z[$0] * inv >= top - 40 }, z)
        if options.topK > 0 && cand.count > options.topK { cand.removeLast(cand.count - options.topK) }
        var probs = cand.map { Double(expf(z[$0] * inv - top)) }
        var total = probs.reduce(0, +)
        if options.topP < 1 {
            var acc = 0.0, keep = cand.count
            for (i, p) in probs.enumerated() { acc += p / total; if acc >= Double(options.topP) { keep = i + 1; break } }
            cand.removeLast(cand.count - keep); probs.removeLast(probs.count - keep)
        }
        if options.minP > 0 {
            let limit = Double(options.minP) * probs[0]
            let keep = max(1, probs.firstIndex { $0 < limit } ?? probs.count)
            cand.removeLast(cand.count - keep); probs.removeLast(probs.count - keep)
        }
        total = probs.reduce(0, +)
        var u = rng.uniformDouble() * total
        for (i, p) in probs.enumerated() { u -= p; if u < 0 { return cand[i] } }
        return cand[cand.count - 1]
    }

    /// `ids` (ascending) ordered by `z` descending, ties by id: a stable radix sort of the logits' bits mapped to
    /// order-preserving integers — the order a comparator on the logits gives, several times faster.
    static func byLikelihood(_ ids: [Int], _ z: [Float]) -> [Int] {
        // Descending logits = ascending complements of their order-preserving bits; -0 ranks with +0.
        var keys = ids.map { i -> UInt32 in
            let bits = (z[i] == 0 ? 0 : z[i]).bitPattern
            return ~(bits & 0x8000_0000 != 0 ? ~bits : bits | 0x8000_0000)
        }
        var ids = ids, keys2 = keys, ids2 = ids
        var count = [Int](repeating: 0, count: 2049)
        for shift: UInt32 in [0, 11, 22] {   // three stable passes of 11 bits, lowest first
            for b in count.indices { count[b] = 0 }
            for k in keys { count[Int((k >> shift) & 0x7FF) + 1] += 1 }
            for b in 1..<count.count { count[b] += count[b - 1] }
            for j in keys.indices {
                let b = Int((keys[j] >> shift) & 0x7FF)
                keys2[count[b]] = keys[j]; ids2[count[b]] = ids[j]; count[b] += 1
            }
            swap(&keys, &keys2); swap(&ids, &ids2)
        }
        return ids
    }
}
