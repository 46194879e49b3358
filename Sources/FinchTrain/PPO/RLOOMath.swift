import Foundation

/// Which advantage estimate `finch ppo` optimises.
/// - gae: TRL's PPO trainer — per-token KL-penalised rewards, a value head on the policy trunk, GAE, whitened
///   advantages, clipped policy and value losses (`PPOMath`).
/// - rloo: TRL's RLOO trainer — no critic: each reply's KL-penalised reward minus the mean of the other replies to
///   the same prompt is the advantage of every one of its tokens, under a clipped sequence-level ratio (`RLOOMath`).
///   Without a value head nothing but the policy gradient moves the policy, and the baseline is exact rather than
///   learned — the better fit when rewards are sparse 0/1 checks and most replies of a small policy score alike.
public enum AdvantageEstimator: String, Codable, CaseIterable, Sendable { case gae, rloo }

/// The arithmetic of TRL's RLOO trainer (`rloo_trainer.py`, the sequence-level KL form), with one difference of
/// layout: the `k` replies to one prompt are consecutive rows here (TRL stacks them `k` batches apart).
///
/// 1. `processRollout` — INVALID_LOGPROB on padded positions, KL per token (k1 or k3), its row sum
///    `non_score_reward = −klCoef · Σ_t kl`, `rlhf_reward = score + non_score_reward`, the leave-one-out advantage
///    `rlhf_reward − mean(rlhf_reward of the other k − 1 replies)`, optionally whitened over the batch.
/// 2. `minibatchLoss` — `ratio = exp(Σ_t new − Σ_t old)` per reply, loss `mean_b max(−A·ratio, −A·clip(ratio))`.
public enum RLOOMath {
    public struct Rollout {
        public var size: Int
        public var length: Int
        /// Rollout log-probs `[B·R]`, INVALID_LOGPROB on `paddingMask` positions.
        public var logprobs: [Float]
        public var refLogprobs: [Float]
        public var paddingMask: [Bool]
        public var sequenceLengths: [Int]
        /// Per-token KL with the configured estimator (0 on pads).
        public var kl: [Float]
        /// Per reply: `−klCoef · Σ_t kl`.
        public var nonScoreReward: [Float]
        /// Per reply: score + nonScoreReward.
        public var rlhfReward: [Float]
        /// Per reply: the leave-one-out advantage (whitened if asked).
        public var advantages: [Float]
        public var scores: [Float]

        private func mean(_ x: [Float]) -> Double { x.reduce(0.0) { $0 + Double($1) } / Double(max(1, x.count)) }
        /// `mean_b Σ_t kl`.
        public var meanKL: Double {
            var s = 0.0
            for b in 0..<size {
                var r: Float = 0
                for t in 0..<length { r += kl[b * length + t] }
                s += Double(r)
            }
            return s / Double(max(1, size))
        }
        /// `mean_b Σ_t −logprob` over real tokens.
        public var meanEntropy: Double {
            var s = 0.0
            for i in 0..<(size * length) where !paddingMask[i] { s -= Double(logprobs[i]) }
            return s / Double(max(1, size))
        }
        public var meanNonScoreReward: Double { mean(nonScoreReward) }
        public var meanScore: Double { mean(scores) }
        public var meanRLHFReward: Double { mean(rlhfReward) }
        public var meanResponseLength: Double {
            Double(sequenceLengths.reduce(0) { $0 + $1 + 1 }) / Double(max(1, sequenceLengths.count))
        }

        /// The rows' rollout log-probs, padding masks and advantages, in the given order.
        public func rows(_ indices: [Int]) -> (logprobs: [Float], paddingMask: [Bool], advantages: [Float]) {
            var lp: [Float] = [], pm: [Bool] = []
            for b in indices {
                lp.append(contentsOf: logprobs[(b * length)..<((b + 1) * length)])
                pm.append(contentsOf: paddingMask[(b * length)..<((b + 1) * length)])
            }
            return (lp, pm, indices.map { advantages[$0] })
        }
    }

    /// - Parameters:
    ///   - responses: generated ids `[B][R]`, right-padded with `padTokenID`; groups of `groupSize` consecutive
    ///     rows answer the same prompt.
    ///   - logprobs, refLogprobs: `[B·R]` under the rollout policy and the reference.
    ///   - scores: `[B]` (after any missing-EOS penalty).
    public static func processRollout(responses: [[Int]], padTokenID: Int, logprobs: [Float], refLogprobs: [Float],
                                      scores: [Float], groupSize k: Int, klCoef: Double,
                                      klEstimator: PPOMath.KLEstimator = .k1, normalizeAdvantage: Bool = false) -> Rollout {
        let bsz = responses.count
        let len = responses.first?.count ?? 0
        let n = bsz * len
        precondition(k >= 2 && bsz % k == 0, "RLOOMath.processRollout: \(bsz) replies in groups of \(k)")
        precondition(responses.allSatisfy { $0.count == len }, "RLOOMath.processRollout: responses must all have length \(len)")
        precondition(logprobs.count == n && refLogprobs.count == n && scores.count == bsz,
                     "RLOOMath.processRollout: logprobs/refLogprobs must be [\(bsz)×\(len)] and scores [\(bsz)]")
        let seq = PPOMath.sequenceLengths(responses: responses, padTokenID: padTokenID)
        let pm = PPOMath.paddingMasks(sequenceLengths: seq, responseLength: len).mask
        var lp = logprobs, ref = refLogprobs
        for i in 0..<n where pm[i] { lp[i] = PPOMath.invalidLogprob; ref[i] = PPOMath.invalidLogprob }
        var kl = [Float](repeating: 0, count: n)
        for i in 0..<n {
            let logr = ref[i] - lp[i]
            kl[i] = klEstimator == .k1 ? -logr : (exp(logr) - 1) - logr
        }
        let coef = Float(klCoef)
        var nsr = [Float](repeating: 0, count: bsz), rlhf = nsr
        for b in 0..<bsz {
            var s: Float = 0
            for t in 0..<len { s += -coef * kl[b * len + t] }   // (−coef · kl).sum(1), as TRL orders it
            nsr[b] = s
            rlhf[b] = scores[b] + s
        }
        var adv = rlhf
        for g in stride(from: 0, to: bsz, by: k) {
            let sum = rlhf[g..<(g + k)].reduce(0, +)
            for i in g..<(g + k) { adv[i] = rlhf[i] - (sum - rlhf[i]) / Float(k - 1) }
        }
        if normalizeAdvantage, bsz > 1 {
            let m = adv.reduce(0, +) / Float(bsz)
            let sd = (adv.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Float(bsz - 1)).squareRoot()   // torch.std: unbiased
            adv = adv.map { ($0 - m) / (sd + 1e-8) }
        }
        return Rollout(size: bsz, length: len, logprobs: lp, refLogprobs: ref, paddingMask: pm, sequenceLengths: seq,
                       kl: kl, nonScoreReward: nsr, rlhfReward: rlhf, advantages: adv, scores: scores)
    }

    public struct MinibatchLoss {
        /// Per reply: `exp(Σ_t new − Σ_t old)`.
        public var ratio: [Float]
        public var pgLoss: Double
        /// Fraction of replies whose clipped branch is the larger.
        public var pgClipfrac: Double
        /// `0.5 · mean_b (Σ_t new − Σ_t old)²`.
        public var approxKL: Double
        /// d loss / d newLogprobs `[b·R]`; 0 on padded positions.
        public var gradNewLogprobs: [Float]
    }

    /// The RLOO minibatch loss with torch's autograd semantics for max/clamp (as `PPOMath.minibatchLoss`).
    /// - Parameters:
    ///   - oldLogprobs, paddingMask: `[b·R]` from `Rollout.rows`; `advantages`: `[b]`.
    ///   - newLogprobs: `[b·R]` log-probs of the response tokens under the policy being optimised.
    public static func minibatchLoss(oldLogprobs: [Float], paddingMask: [Bool], advantages: [Float],
                                     newLogprobs: [Float], cliprange: Double) -> MinibatchLoss {
        let b = advantages.count
        let len = b > 0 ? oldLogprobs.count / b : 0
        precondition(oldLogprobs.count == b * len && newLogprobs.count == b * len && paddingMask.count == b * len,
                     "RLOOMath.minibatchLoss: log-probs and masks must be [\(b)×\(len)]")
        let cr = Float(cliprange)
        var ratio = [Float](repeating: 0, count: b)
        var grad = [Float](repeating: 0, count: b * len)
        var pgSum = 0.0, clipped = 0, klSum = 0.0
        for r in 0..<b {
            var sNew: Float = 0, sOld: Float = 0
            for t in 0..<len {
                let i = r * len + t
                sNew += paddingMask[i] ? PPOMath.invalidLogprob : newLogprobs[i]
                sOld += oldLogprobs[i]
            }
            let diff = sNew - sOld
            let q = exp(diff)
            ratio[r] = q
            let a = advantages[r]
            let qc = Swift.min(Swift.max(q, 1 - cr), 1 + cr)
            let pg1 = -a * q, pg2 = -a * qc
            let d1 = -a * q                                              // d pg1 / d diff
            let d2: Float = (q >= 1 - cr && q <= 1 + cr) ? -a * q : 0     // d pg2 / d diff
            let d = pg1 > pg2 ? d1 : (pg2 > pg1 ? d2 : 0.5 * (d1 + d2))
            pgSum += Double(Swift.max(pg1, pg2))
            if pg2 > pg1 { clipped += 1 }
            klSum += 0.5 * Double(diff) * Double(diff)
            let g = d / Float(b)
            for t in 0..<len where !paddingMask[r * len + t] { grad[r * len + t] = g }
        }
        let n = Double(max(1, b))
        return MinibatchLoss(ratio: ratio, pgLoss: pgSum / n, pgClipfrac: Double(clipped) / n, approxKL: klSum / n,
                             gradNewLogprobs: grad)
    }
}
