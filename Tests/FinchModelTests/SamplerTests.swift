import XCTest
import Foundation
import FinchModel

/// The sampler ranks candidates with a radix sort: its draws must be those of ranking with a comparator on the
/// logits (the sampler as it was written first), ties (equal logits, -0 and +0) by id.
final class SamplerTests: XCTestCase {
    /// The first sampler, verbatim but for the RNG passed in.
    func reference(_ o: SamplingOptions, _ rng: inout SeededRNG, _ logits: [Float], history: [Int]) -> Int {
        let V = logits.count
        var z = logits
        if o.repetitionPenalty != 1 {
            let p = o.repetitionPenalty
            for t in Set(history) where t >= 0 && t < V { z[t] = z[t] > 0 ? z[t] / p : z[t] * p }
        }
        var best = 0
        for i in 1..<V where z[i] > z[best] { best = i }
        if o.temperature <= 0 { return best }
        let inv = 1 / o.temperature
        let top = z[best] * inv
        var cand = (0..<V).filter { z[$0] * inv >= top - 40 }
        cand.sort { z[$0] > z[$1] || (z[$0] == z[$1] && $0 < $1) }
        if o.topK > 0 && cand.count > o.topK { cand.removeLast(cand.count - o.topK) }
        var probs = cand.map { Double(expf(z[$0] * inv - top)) }
        var total = probs.reduce(0, +)
        if o.topP < 1 {
            var acc = 0.0, keep = cand.count
            for (i, p) in probs.enumerated() { acc += p / total; if acc >= Double(o.topP) { keep = i + 1; break } }
            cand.removeLast(cand.count - keep); probs.removeLast(probs.count - keep)
        }
        if o.minP > 0 {
            let limit = Double(o.minP) * probs[0]
            let keep = max(1, probs.firstIndex { $0 < limit } ?? probs.count)
            cand.removeLast(cand.count - keep); probs.removeLast(probs.count - keep)
        }
        total = probs.reduce(0, +)
        var u = rng.uniformDouble() * total
        for (i, p) in probs.enumerated() { u -= p; if u < 0 { return cand[i] } }
        return cand[cand.count - 1]
    }

    func testDrawsEqualTheComparatorRanking() {
        var gen = SeededRNG(seed: 1)
        let options = [SamplingOptions(temperature: 1, seed: 5), SamplingOptions(temperature: 0.7, topK: 50, seed: 6),
                       SamplingOptions(temperature: 1.3, topP: 0.9, seed: 7), SamplingOptions(temperature: 1, minP: 0.05, seed: 8),
                       SamplingOptions(temperature: 2, repetitionPenalty: 1.3, seed: 9)]
        for o in options {
            var sampler = Sampler(o), rng = SeededRNG(seed: o.seed)
            for round in 0..<40 {
                let V = [5, 300, 5000][round % 3]
                // Coarse values, so that many logits tie; zeros of both signs; a wide range.
                var logits = (0..<V).map { _ in Float(Int(gen.weightNormal() * 6)) * 0.5 }
                for i in stride(from: 0, to: V, by: 7) { logits[i] = i % 2 == 0 ? 0 : -0.0 }
                let history = (0..<5).map { _ in Int(gen.next() % UInt64(V)) }
                let got = logits.withUnsafeBufferPointer { sampler.next(logits: $0.baseAddress!, vocab: V, history: history) }
                XCTAssertEqual(got, reference(o, &rng, logits, history: history), "\(o) round \(round)")
            }
        }
    }
}
