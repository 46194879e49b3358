import Foundation

/// The arithmetic of TRL's `GRPOTrainer` (token-level importance sampling): group-relative advantages, the clipped
/// surrogate with asymmetric ε, the optional k3 KL to a reference, and the three ways of averaging the per-token loss.
/// Matched to TRL 1.16 by `GRPOVectorTests` (tools/vectors/grpo_vectors.py).
public enum GRPOMath {
    /// How the per-token losses become one number (TRL `loss_type`).
    public enum LossType: String, Codable, CaseIterable, Sendable {
        /// Each completion's mean over its tokens, then the mean over completions (sample-level).
        case grpo
        /// The sum over every completion token of the generation batch, divided by its token count (token-level; TRL's default).
        case dapo
        /// The sum divided by completions × the maximum completion length (Dr. GRPO: no length bias).
        case drGrpo = "dr_grpo"
    }

    /// How rewards are scaled after the group mean is subtracted (TRL `scale_rewards`).
    public enum RewardScaling: String, Codable, CaseIterable, Sendable {
        /// By the standard deviation of the completion's group (GRPO).
        case group
        /// By the standard deviation of the whole batch.
        case batch
        /// Not at all (Dr. GRPO).
        case none
    }

    /// Advantages of rewards laid out as consecutive groups of `groupSize` completions of one prompt:
    /// `(r − mean_group) / (std + 1e-4)` with the unbiased standard deviation (group or batch), or unscaled.
    /// `zeroStd` marks completions whose group (or batch) had equal rewards: they carry no signal.
    public static func advantages(rewards: [Double], groupSize G: Int, scaling: RewardScaling) -> (advantages: [Double], zeroStd: [Bool]) {
        precondition(G >= 1 && rewards.count % G == 0, "GRPOMath.advantages: \(rewards.count) rewards in groups of \(G)")
        func std(_ x: ArraySlice<Double>) -> Double {
            guard x.count > 1 else { return 0 }
            let m = x.reduce(0, +) / Double(x.count)
            return (x.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(x.count - 1)).squareRoot()
        }
        let batchStd = std(rewards[...])
        var adv: [Double] = [], zero: [Bool] = []
        for g in stride(from: 0, to: rewards.count, by: G) {
            let group = rewards[g..<(g + G)]
            let mean = group.reduce(0, +) / Double(G)
            let s = scaling == .batch ? batchStd : std(group)
            for r in group {
                adv.append(scaling == .none ? r - mean : (r - mean) / (s + 1e-4))
                zero.append(abs(s) <= 1e-8)   // torch.isclose(std, 0) with its default tolerances
            }
        }
        return (adv, zero)
    }

    public struct Settings: Codable, Equatable, Sendable {
        public var lossType = LossType.dapo
        /// Clip range below and above 1 (DAPO's asymmetric clipping: ε_high > ε_low lets rare tokens grow).
        public var epsilonLow = 0.2
        public var epsilonHigh = 0.2
        /// k3 KL coefficient (0 = no reference).
        public var beta = 0.0
        /// Dr. GRPO's denominator: the generation limit.
        public var maxCompletionLength = 256
        public init() {}
    }

    public struct Result {
        public var loss: Double
        /// d loss / d per-token log-prob, [B·T].
        public var gradient: [Float]
        /// Masked means over completion tokens: the k3 KL to the reference, and the share of tokens clipped below,
        /// above, and in either direction (TRL's clip_ratio/low_mean, high_mean, region_mean).
        public var meanKL: Double
        public var clipLow: Double, clipHigh: Double, clipRegion: Double
    }

    /// The loss of one minibatch [B, T] of completion tokens.
    /// - Parameters:
    ///   - logprobs, oldLogprobs: per-token log-probs under the policy being trained and the one that sampled.
    ///   - refLogprobs: the reference's (used when `beta` > 0).
    ///   - advantages: one per completion.
    ///   - mask: 1 on completion tokens.
    ///   - tokensInBatch: DAPO's normaliser, the completion tokens of the whole generation batch (default: this mask's).
    public static func loss(logprobs: [Float], oldLogprobs: [Float], refLogprobs: [Float]? = nil, advantages: [Double],
                            mask: [Float], batch B: Int, length T: Int, settings s: Settings, tokensInBatch: Double? = nil) -> Result {
        precondition(logprobs.count == B * T && oldLogprobs.count == B * T && mask.count == B * T && advantages.count == B,
                     "GRPOMath.loss: shapes disagree")
        precondition(s.beta == 0 || refLogprobs?.count == B * T, "GRPOMath.loss: beta > 0 needs the reference log-probs")
        let tokens = mask.reduce(0.0) { $0 + Double($1) }
        var weight = [Double](repeating: 0, count: B * T)   // d loss / d per_token_loss
        switch s.lossType {
        case .grpo:
            for b in 0..<B {
                let n = max(1, (0..<T).reduce(0.0) { $0 + Double(mask[b * T + $1]) })
                for t in 0..<T { weight[b * T + t] = Double(mask[b * T + t]) / (Double(B) * n) }
            }
        case .dapo:
            let n = max(1, tokensInBatch ?? tokens)
            for i in 0..<(B * T) { weight[i] = Double(mask[i]) / n }
        case .drGrpo:
            for i in 0..<(B * T) { weight[i] = Double(mask[i]) / Double(B * s.maxCompletionLength) }
        }
        var loss = 0.0, kl = 0.0, low = 0.0, high = 0.0, region = 0.0
        var grad = [Float](repeating: 0, count: B * T)
        for b in 0..<B {
            let a = advantages[b]
            for t in 0..<T {
                let i = b * T + t
                let lp = Double(logprobs[i])
                let ratio = exp(lp - Double(oldLogprobs[i]))
                let clipped = Swift.min(Swift.max(ratio, 1 - s.epsilonLow), 1 + s.epsilonHigh)
                let t1 = ratio * a, t2 = clipped * a
                var perToken = -Swift.min(t1, t2)
                var d = t1 <= t2 ? -a * ratio : 0   // the clipped branch has no gradient once clipped
                if s.beta != 0, let ref = refLogprobs {
                    let delta = Double(ref[i]) - lp
                    let k3 = exp(delta) - delta - 1
                    perToken += s.beta * k3
                    d += s.beta * (1 - exp(delta))
                    kl += k3 * Double(mask[i])
                }
                loss += perToken * weight[i]
                grad[i] = Float(d * weight[i])
                let m = Double(mask[i])
                let isLow = ratio < 1 - s.epsilonLow && a < 0, isHigh = ratio > 1 + s.epsilonHigh && a > 0
                low += isLow ? m : 0; high += isHigh ? m : 0; region += isLow || isHigh ? m : 0
            }
        }
        let n = max(1, tokens)
        return Result(loss: loss, gradient: grad, meanKL: kl / n, clipLow: low / n, clipHigh: high / n, clipRegion: region / n)
    }
}
