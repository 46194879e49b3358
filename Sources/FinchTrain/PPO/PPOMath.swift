import Foundation

/// The arithmetic of TRL's PPO trainer (trl 1.12 `experimental/ppo/ppo_trainer.py`), transcribed
/// exactly so that `ppo-math` conformance holds. Arrays are row-major `[batch, responseLength]` Float.
///
/// One PPO iteration, as TRL does it:
/// 1. `processRollout` — padding masks from the response ids, INVALID_LOGPROB on pads, per-token KL
///    penalty, score placement, GAE, whitened advantages, returns (`PPOMath.Rollout`).
/// 2. for each PPO epoch and minibatch (`Rollout.batch.rows(_:)`): run the policy and value model, then
///    `minibatchLoss` gives the clipped losses, statistics and the gradient w.r.t. the new log-probs and
///    value predictions, which seed the model's backward.
public enum PPOMath {
    /// The log-prob TRL writes on padded positions (so that `logprob − ref_logprob = 0` there).
    public static let invalidLogprob: Float = 1.0

    /// Per-token KL estimator (TRL `kl_estimator`): k1 = `logp − ref_logp`; k3 = `(e^r − 1) − r` with
    /// `r = ref_logp − logp` (unbiased, always ≥ 0).
    public enum KLEstimator: String, Codable, CaseIterable, Sendable { case k1, k3 }

    /// The PPO hyper-parameters that enter this arithmetic (TRL's `PPOConfig` names in brackets).
    public struct Hyperparameters: Codable, Equatable, Sendable {
        /// KL penalty coefficient [kl_coef]; with an adaptive controller pass its current value.
        public var klCoef: Double = 0.05
        /// Discount [gamma].
        public var gamma: Double = 1.0
        /// GAE λ [lam].
        public var lam: Double = 0.95
        /// Policy ratio clip range [cliprange].
        public var cliprange: Double = 0.2
        /// Value clip range around the rollout values [cliprange_value].
        public var cliprangeValue: Double = 0.2
        /// Value-loss coefficient [vf_coef].
        public var vfCoef: Double = 0.1
        /// [kl_estimator]
        public var klEstimator: KLEstimator = .k1
        /// Whiten the KL-penalised rewards before GAE [whiten_rewards].
        public var whitenRewards: Bool = false

        public init(klCoef: Double = 0.05, gamma: Double = 1.0, lam: Double = 0.95, cliprange: Double = 0.2,
                    cliprangeValue: Double = 0.2, vfCoef: Double = 0.1, klEstimator: KLEstimator = .k1,
                    whitenRewards: Bool = false) {
            self.klCoef = klCoef; self.gamma = gamma; self.lam = lam; self.cliprange = cliprange
            self.cliprangeValue = cliprangeValue; self.vfCoef = vfCoef; self.klEstimator = klEstimator
            self.whitenRewards = whitenRewards
        }
    }

    // MARK: - Response post-processing

    /// For each of `rows` rows of `cols` flags, the index of the first `true`, or `cols` when none
    /// (TRL `first_true_indices`).
    public static func firstTrueIndices(_ flags: [Bool], rows: Int, cols: Int) -> [Int] {
        precondition(flags.count == rows * cols, "firstTrueIndices: \(flags.count) flags for \(rows)×\(cols)")
        return (0..<rows).map { b in
            (0..<cols).first { flags[b * cols + $0] } ?? cols
        }
    }

    /// Replaces every token after the first `stopTokenID` of each row with `padTokenID`
    /// (TRL `truncate_response`; the stop token itself is kept).
    public static func truncateResponses(_ responses: [[Int]], stopTokenID: Int, padTokenID: Int) -> [[Int]] {
        responses.map { row in
            guard let stop = row.firstIndex(of: stopTokenID) else { return row }
            return row.enumerated().map { $0.offset > stop ? padTokenID : $0.element }
        }
    }

    /// Subtracts `penalty` from the score of every response that contains no `eosTokenID`
    /// (TRL `missing_eos_penalty`).
    public static func applyMissingEOSPenalty(scores: inout [Float], responses: [[Int]], eosTokenID: Int, penalty: Double) {
        precondition(scores.count == responses.count, "applyMissingEOSPenalty: \(scores.count) scores for \(responses.count) responses")
        for b in responses.indices where !responses[b].contains(eosTokenID) {
            scores[b] = Float(Double(scores[b]) - penalty)
        }
    }

    /// Index of the last real token of each response: `first_true_indices(responses == pad) − 1`
    /// (`R − 1` when the row has no pad; `−1` for a response that starts with a pad).
    public static func sequenceLengths(responses: [[Int]], padTokenID: Int) -> [Int] {
        responses.map { row in (row.firstIndex(of: padTokenID) ?? row.count) - 1 }
    }

    /// `padding_mask[b,t] = t > seqLen[b]` and `padding_mask_p1[b,t] = t > seqLen[b] + 1`, row-major.
    public static func paddingMasks(sequenceLengths: [Int], responseLength: Int) -> (mask: [Bool], maskP1: [Bool]) {
        var m: [Bool] = [], p1: [Bool] = []
        m.reserveCapacity(sequenceLengths.count * responseLength)
        p1.reserveCapacity(sequenceLengths.count * responseLength)
        for s in sequenceLengths {
            for t in 0..<responseLength { m.append(t > s); p1.append(t > s + 1) }
        }
        return (m, p1)
    }

    // MARK: - Masked statistics (TRL masked_mean / masked_var / masked_whiten)

    /// `sum(x · m) / sum(m)` over the whole batch, with `include[i]` as m.
    public static func maskedMean(_ x: [Float], _ include: [Bool]) -> Double {
        precondition(x.count == include.count, "maskedMean: \(x.count) values, \(include.count) mask entries")
        var s = 0.0, n = 0
        for i in x.indices where include[i] { s += Double(x[i]); n += 1 }
        return s / Double(n)
    }

    /// Masked variance around the masked mean; unbiased (× n/(n−1)) by default, as TRL.
    /// With a single included element the unbiased variance is undefined; 0 is returned instead of NaN.
    public static func maskedVar(_ x: [Float], _ include: [Bool], unbiased: Bool = true) -> Double {
        let mean = maskedMean(x, include)
        var s = 0.0, n = 0
        for i in x.indices where include[i] {
            let c = Double(x[i]) - mean
            s += c * c; n += 1
        }
        var v = s / Double(n)
        if unbiased {
            guard n > 1 else { return 0 }
            v *= Double(n) / Double(n - 1)
        }
        return v
    }

    /// `(x − mean) · rsqrt(var + 1e-8)` with mean and unbiased var over `include`; with
    /// `shiftMean == false` the mean is added back (TRL `masked_whiten`). Every element is transformed.
    public static func maskedWhiten(_ x: [Float], _ include: [Bool], shiftMean: Bool = true) -> [Float] {
        let mean = maskedMean(x, include)
        let variance = maskedVar(x, include)
        let scale = 1 / (variance + 1e-8).squareRoot()
        return x.map { v in
            var w = (Double(v) - mean) * scale
            if !shiftMean { w += mean }
            return Float(w)
        }
    }

    /// Generalised advantage estimation over every position (TRL: masking enters only through the
    /// already-masked rewards and values): backwards over t, `δ = r_t + γ·V_{t+1} − V_t` (V_R = 0),
    /// `A_t = δ + γλ·A_{t+1}`.
    public static func gae(rewards: [Float], values: [Float], batch: Int, length: Int,
                           gamma: Double, lam: Double) -> [Float] {
        precondition(rewards.count == batch * length && values.count == batch * length, "gae: arrays must be [\(batch), \(length)]")
        var adv = [Float](repeating: 0, count: batch * length)
        let g = Float(gamma), gl = Float(gamma * lam)
        for b in 0..<batch {
            var last: Float = 0
            for t in stride(from: length - 1, through: 0, by: -1) {
                let i = b * length + t
                let next: Float = t < length - 1 ? values[i + 1] : 0
                let delta = rewards[i] + g * next - values[i]
                last = delta + gl * last
                adv[i] = last
            }
        }
        return adv
    }

    // MARK: - Rollout post-processing

    /// The per-sample tensors PPO epochs train on; `rows(_:)` cuts minibatches out of it.
    public struct Batch {
        public var size: Int
        public var length: Int
        /// Rollout log-probs with INVALID_LOGPROB on `paddingMask` positions.
        public var logprobs: [Float]
        /// Rollout values, 0 on `paddingMaskP1` positions.
        public var values: [Float]
        /// Whitened advantages, 0 on `paddingMask` positions.
        public var advantages: [Float]
        /// Un-whitened advantages + values.
        public var returns: [Float]
        public var paddingMask: [Bool]
        public var paddingMaskP1: [Bool]

        /// The sub-batch made of the given rows, in that order.
        public func rows(_ indices: [Int]) -> Batch {
            func pick<T>(_ a: [T]) -> [T] {
                var out: [T] = []
                out.reserveCapacity(indices.count * length)
                for b in indices { out.append(contentsOf: a[(b * length)..<((b + 1) * length)]) }
                return out
            }
            return Batch(size: indices.count, length: length, logprobs: pick(logprobs), values: pick(values),
                         advantages: pick(advantages), returns: pick(returns),
                         paddingMask: pick(paddingMask), paddingMaskP1: pick(paddingMaskP1))
        }
    }

    /// Everything TRL computes between sampling and the PPO epochs.
    public struct Rollout {
        public var batch: Batch
        /// Index of the last real token per response.
        public var sequenceLengths: [Int]
        /// Reference log-probs with INVALID_LOGPROB on pads.
        public var refLogprobs: [Float]
        /// Per-token KL with the configured estimator (0 on pads).
        public var kl: [Float]
        /// The k3 estimate on the same masked log-probs (for monitoring, whatever the estimator).
        public var klK3: [Float]
        /// −klCoef · kl.
        public var nonScoreReward: [Float]
        /// nonScoreReward plus each score at its TRL position (whitened if `whitenRewards`).
        public var rewards: [Float]
        /// GAE advantages before whitening.
        public var advantagesRaw: [Float]
        /// The scores as used (after any missing-EOS penalty the caller applied).
        public var scores: [Float]

        /// `mean_b Σ_t kl` (TRL `objective/kl`).
        public var meanKL: Double { rowSumMean(kl) }
        /// `mean_b Σ_t −logprob` over real tokens (TRL `objective/entropy`).
        public var meanEntropy: Double {
            rowSumMean(zip(batch.logprobs, batch.paddingMask).map { $1 ? 0 : -$0 })
        }
        /// `mean_b Σ_t nonScoreReward` (TRL `objective/non_score_reward`).
        public var meanNonScoreReward: Double { rowSumMean(nonScoreReward) }
        /// Mean score (TRL `objective/scores`).
        public var meanScore: Double { scores.reduce(0.0) { $0 + Double($1) } / Double(max(1, scores.count)) }
        /// meanNonScoreReward + meanScore (TRL `objective/rlhf_reward`).
        public var rlhfReward: Double { meanNonScoreReward + meanScore }
        /// Mean number of real tokens per response.
        public var meanResponseLength: Double {
            Double(sequenceLengths.reduce(0) { $0 + $1 + 1 }) / Double(max(1, sequenceLengths.count))
        }

        private func rowSumMean(_ x: [Float]) -> Double {
            let l = batch.length
            var total = 0.0
            for b in 0..<batch.size {
                var s: Float = 0   // float32 row sum, as torch's sum(1)
                for t in 0..<l { s += x[b * l + t] }
                total += Double(s)
            }
            return total / Double(max(1, batch.size))
        }
    }

    /// TRL's rollout post-processing ("compute rewards" and "compute advantages and returns").
    /// - Parameters:
    ///   - responses: generated ids `[B][R]` after any stop-token truncation, right-padded with `padTokenID`.
    ///   - logprobs, refLogprobs, values: `[B·R]` from the rollout policy, reference and value model.
    ///   - scores: `[B]` reward per response (apply `applyMissingEOSPenalty` before, if used).
    public static func processRollout(responses: [[Int]], padTokenID: Int, logprobs: [Float], refLogprobs: [Float],
                                      values: [Float], scores: [Float], hyper: Hyperparameters) -> Rollout {
        let bsz = responses.count
        let len = responses.first?.count ?? 0
        let n = bsz * len
        precondition(responses.allSatisfy { $0.count == len }, "processRollout: responses must all have length \(len)")
        precondition(logprobs.count == n && refLogprobs.count == n && values.count == n,
                     "processRollout: logprobs/refLogprobs/values must be [\(bsz)×\(len)] (got \(logprobs.count), \(refLogprobs.count), \(values.count))")
        precondition(scores.count == bsz, "processRollout: \(scores.count) scores for \(bsz) responses")

        let seq = sequenceLengths(responses: responses, padTokenID: padTokenID)
        let (pm, pm1) = paddingMasks(sequenceLengths: seq, responseLength: len)
        var lp = logprobs, ref = refLogprobs, v = values
        for i in 0..<n {
            if pm[i] { lp[i] = invalidLogprob; ref[i] = invalidLogprob }
            if pm1[i] { v[i] = 0 }
        }
        var kl = [Float](repeating: 0, count: n), k3 = kl, nsr = kl
        let coef = Float(hyper.klCoef)
        for i in 0..<n {
            let logr = ref[i] - lp[i]
            let k1 = -logr
            let k3v = (exp(logr) - 1) - logr
            k3[i] = k3v
            kl[i] = hyper.klEstimator == .k1 ? k1 : k3v
            nsr[i] = -coef * kl[i]
        }
        var rewards = nsr
        for b in 0..<bsz {
            let p1 = seq[b] + 1
            let end = p1 < len ? p1 : seq[b]
            if end >= 0 { rewards[b * len + end] += scores[b] }
        }
        if hyper.whitenRewards {
            rewards = maskedWhiten(rewards, pm1.map { !$0 }, shiftMean: false)
            for i in 0..<n where pm1[i] { rewards[i] = 0 }
        }
        let advRaw = gae(rewards: rewards, values: v, batch: bsz, length: len, gamma: hyper.gamma, lam: hyper.lam)
        var returns = advRaw
        for i in 0..<n { returns[i] = advRaw[i] + v[i] }
        var adv = maskedWhiten(advRaw, pm.map { !$0 })
        for i in 0..<n where pm[i] { adv[i] = 0 }

        let batch = Batch(size: bsz, length: len, logprobs: lp, values: v, advantages: adv, returns: returns,
                          paddingMask: pm, paddingMaskP1: pm1)
        return Rollout(batch: batch, sequenceLengths: seq, refLogprobs: ref, kl: kl, klK3: k3, nonScoreReward: nsr,
                       rewards: rewards, advantagesRaw: advRaw, scores: scores)
    }

    // MARK: - Minibatch loss

    /// The clipped PPO losses of one minibatch, their statistics and gradients.
    public struct MinibatchLoss {
        public var newLogprobsMasked: [Float]
        public var vpredMasked: [Float]
        public var vpredClipped: [Float]
        public var vfLosses1: [Float]
        public var vfLosses2: [Float]
        public var ratio: [Float]
        public var pgLosses: [Float]
        public var pgLosses2: [Float]
        public var pgLoss: Double
        public var vfLoss: Double
        /// pgLoss + vfCoef · vfLoss.
        public var loss: Double
        public var pgClipfrac: Double
        public var vfClipfrac: Double
        /// 0.5 · mean((new − old logprob)²) over all positions.
        public var approxKL: Double
        /// mean(ratio) over all positions.
        public var ratioMean: Double
        /// d loss / d newLogprobs (the input, before masking); 0 on padded positions.
        public var gradNewLogprobs: [Float]
        /// d loss / d vpred (the input, before masking); 0 on `paddingMaskP1` positions.
        public var gradVpred: [Float]
    }

    /// The minibatch loss of TRL's PPO epoch loop, with torch's autograd semantics for max/clamp
    /// (max: the larger branch gets the gradient, exact ties split it evenly; clamp: derivative 1
    /// inside its closed bounds, 0 outside).
    /// - Parameters:
    ///   - newLogprobs: `[b·R]` log-probs of the response tokens under the policy being optimised.
    ///   - vpred: `[b·R]` value predictions of the model being optimised.
    public static func minibatchLoss(batch mb: Batch, newLogprobs: [Float], vpred: [Float],
                                     hyper: Hyperparameters) -> MinibatchLoss {
        let n = mb.size * mb.length
        precondition(newLogprobs.count == n && vpred.count == n,
                     "minibatchLoss: newLogprobs/vpred must be [\(mb.size)×\(mb.length)] (got \(newLogprobs.count), \(vpred.count))")
        let cr = Float(hyper.cliprange), crv = Float(hyper.cliprangeValue)
        var newLP = newLogprobs, vp = vpred
        for i in 0..<n {
            if mb.paddingMask[i] { newLP[i] = invalidLogprob }
            if mb.paddingMaskP1[i] { vp[i] = 0 }
        }
        var vpc = [Float](repeating: 0, count: n), vf1 = vpc, vf2 = vpc
        var ratio = vpc, pg1 = vpc, pg2 = vpc
        var dVF = vpc, dPG = vpc   // d max(...) / d input, per element
        var vfSum = 0.0, vfN = 0, vfClipped = 0
        var pgSum = 0.0, pgN = 0, pgClipped = 0
        var klSum = 0.0, ratioSum = 0.0
        for i in 0..<n {
            // Value loss.
            let lo = mb.values[i] - crv, hi = mb.values[i] + crv
            let clipped = Swift.min(Swift.max(vp[i], lo), hi)
            vpc[i] = clipped
            let e1 = vp[i] - mb.returns[i], e2 = clipped - mb.returns[i]
            vf1[i] = e1 * e1
            vf2[i] = e2 * e2
            let d1 = 2 * e1
            let d2: Float = (vp[i] >= lo && vp[i] <= hi) ? 2 * e2 : 0
            dVF[i] = vf1[i] > vf2[i] ? d1 : (vf2[i] > vf1[i] ? d2 : 0.5 * (d1 + d2))
            if !mb.paddingMaskP1[i] {
                vfSum += Double(Swift.max(vf1[i], vf2[i])); vfN += 1
                if vf2[i] > vf1[i] { vfClipped += 1 }
            }
            // Policy loss.
            let diff = newLP[i] - mb.logprobs[i]
            let r = exp(diff)
            ratio[i] = r
            let a = mb.advantages[i]
            let rc = Swift.min(Swift.max(r, 1 - cr), 1 + cr)
            pg1[i] = -a * r
            pg2[i] = -a * rc
            let p1 = -a * r                                            // d pg1 / d diff
            let p2: Float = (r >= 1 - cr && r <= 1 + cr) ? -a * r : 0   // d pg2 / d diff
            dPG[i] = pg1[i] > pg2[i] ? p1 : (pg2[i] > pg1[i] ? p2 : 0.5 * (p1 + p2))
            if !mb.paddingMask[i] {
                pgSum += Double(Swift.max(pg1[i], pg2[i])); pgN += 1
                if pg2[i] > pg1[i] { pgClipped += 1 }
            }
            klSum += 0.5 * Double(diff) * Double(diff)
            ratioSum += Double(r)
        }
        let pgLoss = pgSum / Double(pgN)
        let vfLoss = 0.5 * vfSum / Double(vfN)
        var gLP = [Float](repeating: 0, count: n), gV = gLP
        let pgScale = Float(1 / Double(pgN)), vfScale = Float(hyper.vfCoef * 0.5 / Double(vfN))
        for i in 0..<n {
            if !mb.paddingMask[i] { gLP[i] = dPG[i] * pgScale }
            if !mb.paddingMaskP1[i] { gV[i] = dVF[i] * vfScale }
        }
        return MinibatchLoss(newLogprobsMasked: newLP, vpredMasked: vp, vpredClipped: vpc, vfLosses1: vf1, vfLosses2: vf2,
                             ratio: ratio, pgLosses: pg1, pgLosses2: pg2, pgLoss: pgLoss, vfLoss: vfLoss,
                             loss: pgLoss + hyper.vfCoef * vfLoss,
                             pgClipfrac: Double(pgClipped) / Double(pgN), vfClipfrac: Double(vfClipped) / Double(vfN),
                             approxKL: klSum / Double(n), ratioMean: ratioSum / Double(n),
                             gradNewLogprobs: gLP, gradVpred: gV)
    }

    /// Entropy of the softmax of one row of logits: `logsumexp(z) − Σ softmax(z)·z` (TRL's per-token
    /// entropy statistic during PPO epochs).
    public static func entropy(logits: UnsafePointer<Float>, count: Int) -> Float {
        var m = -Float.infinity
        for j in 0..<count { m = Swift.max(m, logits[j]) }
        var s = 0.0, sz = 0.0
        for j in 0..<count {
            let e = Double(exp(logits[j] - m))
            s += e
            sz += e * Double(logits[j])
        }
        return Float(Double(m) + log(s) - sz / s)
    }
}
