import Foundation
import FinchData

/// Proposes the next trial's values: uniformly at random (`random`), or by the tree-structured Parzen estimator
/// (`tpe`, Bergstra et al. 2011, as Optuna and hyperopt do it). TPE splits the finished trials at the γ-quantile of
/// the metric into good and bad, models each parameter's good values l(x) and bad values g(x) with Parzen windows
/// (a Gaussian per observation in search space, plus the prior), draws candidates from l and keeps the one with
/// the largest l(x)/g(x). Parameters are modelled independently. Trials stopped early count as bad.
public struct TPESampler {
    public enum Method: String, Codable, Sendable { case random, tpe }

    public var method: Method
    /// Trials drawn at random before TPE takes over.
    public var startupTrials = 5
    /// Share of finished trials that count as good.
    public var gamma = 0.25
    /// Candidates drawn from l(x) per parameter.
    public var candidates = 24

    public init(method: Method) { self.method = method }

    /// One observation: the values a trial had and its score, lower is better (nil = stopped early or failed).
    public struct Observation {
        public var values: [String: RecipeValue]
        public var score: Double?
        public init(values: [String: RecipeValue], score: Double?) { self.values = values; self.score = score }
    }

    /// The values of trial `index`, drawn from a generator seeded by the sweep seed and the index (so a resumed
    /// sweep proposes what the uninterrupted one would have, given the same history).
    public func propose(_ space: SearchSpace, history: [Observation], seed: UInt64, index: Int) -> [String: RecipeValue] {
        var rng = SplitMix64(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(index) &* 0xD1B5_4A32_D192_ED03 &+ 1)
        let scored = history.filter { $0.score != nil }
        let useTPE = method == .tpe && scored.count >= startupTrials
        var out: [String: RecipeValue] = [:]
        // Good: the best ⌈γ·n⌉ scored trials; bad: the other scored ones and the stopped ones.
        let ranked = scored.sorted { $0.score! < $1.score! }
        let nGood = max(1, Int((gamma * Double(ranked.count)).rounded(.up)))
        let good = Array(ranked.prefix(nGood)), bad = Array(ranked.dropFirst(nGood)) + history.filter { $0.score == nil }
        for p in space.parameters {
            guard useTPE else { out[p.key] = Self.random(p.distribution, &rng); continue }
            let l = good.compactMap { $0.values[p.key].flatMap(p.distribution.coordinate) }
            let g = bad.compactMap { $0.values[p.key].flatMap(p.distribution.coordinate) }
            out[p.key] = bestCandidate(p.distribution, good: l, bad: g, &rng)
        }
        return out
    }

    static func random(_ d: SearchSpace.Distribution, _ rng: inout SplitMix64) -> RecipeValue {
        if case .choice(let c) = d { return c[Int(rng.next() % UInt64(c.count))] }
        let (lo, hi) = d.range!
        return d.value(at: lo + (hi - lo) * uniform(&rng))
    }

    static func uniform(_ rng: inout SplitMix64) -> Double { Double(rng.next() >> 11) / Double(1 << 53) }

    static func normal(_ rng: inout SplitMix64) -> Double {
        let u1 = max(uniform(&rng), 1e-300), u2 = uniform(&rng)
        return (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
    }

    func bestCandidate(_ d: SearchSpace.Distribution, good: [Double], bad: [Double], _ rng: inout SplitMix64) -> RecipeValue {
        if case .choice(let c) = d {
            // Categorical Parzen estimator: counts plus one pseudo-count per category (the prior).
            func p(_ obs: [Double]) -> [Double] {
                var w = [Double](repeating: 1, count: c.count)
                for o in obs { w[Int(o)] += 1 }
                let s = w.reduce(0, +)
                return w.map { $0 / s }
            }
            let (l, g) = (p(good), p(bad))
            var best = 0, bestScore = -Double.infinity
            for _ in 0..<candidates {
                // Draw from l by inverse CDF.
                var u = Self.uniform(&rng), k = 0
                while k < c.count - 1 && u >= l[k] { u -= l[k]; k += 1 }
                let score = log(l[k]) - log(g[k])
                if score > bestScore { bestScore = score; best = k }
            }
            return c[best]
        }
        let (lo, hi) = d.range!
        let lm = Parzen(lo: lo, hi: hi, points: good), gm = Parzen(lo: lo, hi: hi, points: bad)
        var best = lo, bestScore = -Double.infinity
        for _ in 0..<candidates {
            let x = lm.sample(&rng)
            let score = lm.logDensity(x) - gm.logDensity(x)
            if score > bestScore { bestScore = score; best = x }
        }
        return d.value(at: best)
    }

    /// A Parzen window estimator on [lo, hi]: a uniform prior component and a Gaussian per point, all weighted
    /// equally, each Gaussian as wide as the gap to its neighbours (hyperopt's rule), at least (hi − lo)/(1 + n)
    /// and at most hi − lo.
    struct Parzen {
        let lo, hi: Double
        let mus: [Double], sigmas: [Double]

        init(lo: Double, hi: Double, points: [Double]) {
            self.lo = lo; self.hi = hi
            let sorted = points.map { min(max($0, lo), hi) }.sorted()
            mus = sorted
            let width = hi - lo, floor = width / Double(1 + sorted.count)
            sigmas = sorted.indices.map { i in
                let left = i > 0 ? sorted[i] - sorted[i - 1] : sorted[i] - lo
                let right = i + 1 < sorted.count ? sorted[i + 1] - sorted[i] : hi - sorted[i]
                return min(max(max(left, right), floor), width)
            }
        }

        func sample(_ rng: inout SplitMix64) -> Double {
            let k = Int(rng.next() % UInt64(mus.count + 1))
            if k == mus.count { return lo + (hi - lo) * TPESampler.uniform(&rng) }   // the prior
            for _ in 0..<16 {
                let x = mus[k] + sigmas[k] * TPESampler.normal(&rng)
                if x >= lo && x <= hi { return x }
            }
            return min(max(mus[k], lo), hi)
        }

        /// log of the mixture density (Gaussians truncated to the range are not renormalised: the ratio l/g is what
        /// counts, and both sides use the same kernels).
        func logDensity(_ x: Double) -> Double {
            let n = Double(mus.count + 1)
            var p = 1 / (hi - lo) / n
            for (m, s) in zip(mus, sigmas) {
                let z = (x - m) / s
                p += exp(-0.5 * z * z) / (s * (2 * .pi).squareRoot()) / n
            }
            return log(max(p, 1e-300))
        }
    }
}
