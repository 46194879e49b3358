import Foundation

/// Kahneman–Tversky Optimisation loss on unpaired examples (TRL `KTOTrainer`, `loss_type="kto"`), and its
/// APO-zero variant (`apo_zero_unpaired`).
///
/// Each example is one completion with a thumbs-up (desirable) or thumbs-down (undesirable) label. With
/// `ρ = π − ref` (summed completion log-probs under the policy and the frozen reference) and the batch's reference
/// point `z = max(0, mean(π_KL − ref_KL))` — the KL estimate from mismatched prompt/completion pairs, a constant
/// (no gradient flows through it):
/// - desirable: `λ_D · (1 − σ(β(ρ − z)))`; undesirable: `λ_U · (1 − σ(β(z − ρ)))`
/// - `apo_zero_unpaired`: desirable `λ_D · (1 − σ(βρ))`, undesirable `λ_U · σ(βρ)` (no reference point)
///
/// `loss` is the mean over the batch; gradients are of that mean w.r.t. the policy log-probs. Arithmetic in Double.
public enum KTOLoss {
    public enum Variant: String, Codable, CaseIterable, Sendable {
        case kto
        case apoZeroUnpaired = "apo_zero_unpaired"
        /// Whether the loss needs the KL reference point (the mismatched pairs' forward passes).
        public var usesReferencePoint: Bool { self == .kto }
    }

    public struct Result {
        public var losses: [Float]
        public var loss: Double
        /// The reference point z (0 for `apo_zero_unpaired`).
        public var kl: Double
        /// β·ρ per example.
        public var rewards: [Float]
        /// d loss / d policy log-prob, per example.
        public var gradPolicy: [Float]
        /// Mean reward of the desirable and of the undesirable examples (nil when the batch has none).
        public var desirableRewardMean: Double?
        public var undesirableRewardMean: Double?
    }

    /// - Parameters:
    ///   - klPolicy, klReference: summed completion log-probs of the mismatched pairs (ignored by `apo_zero_unpaired`).
    public static func compute(policy: [Float], reference: [Float], desirable: [Bool], klPolicy: [Float], klReference: [Float],
                               beta: Double, desirableWeight: Double = 1, undesirableWeight: Double = 1,
                               variant: Variant = .kto) -> Result {
        let n = policy.count
        precondition(n > 0 && reference.count == n && desirable.count == n, "KTOLoss: arrays must have the same non-zero length")
        precondition(!variant.usesReferencePoint || (klPolicy.count == klReference.count && !klPolicy.isEmpty),
                     "KTOLoss: the KL reference point needs the mismatched pairs' log-probs")
        var kl = 0.0
        if variant.usesReferencePoint {
            for (p, r) in zip(klPolicy, klReference) { kl += Double(p) - Double(r) }
            kl = Swift.max(0, kl / Double(klPolicy.count))
        }
        var r = Result(losses: [], loss: 0, kl: kl, rewards: [], gradPolicy: [])
        var total = 0.0, up = (0.0, 0), down = (0.0, 0)
        for i in 0..<n {
            let rho = Double(policy[i]) - Double(reference[i])
            let loss: Double, d: Double
            switch (variant, desirable[i]) {
            case (.kto, true):
                let s = LogSigmoid.sigmoid(beta * (rho - kl))
                loss = desirableWeight * (1 - s); d = -desirableWeight * beta * s * (1 - s)
            case (.kto, false):
                let s = LogSigmoid.sigmoid(beta * (kl - rho))
                loss = undesirableWeight * (1 - s); d = undesirableWeight * beta * s * (1 - s)
            case (.apoZeroUnpaired, true):
                let s = LogSigmoid.sigmoid(beta * rho)
                loss = desirableWeight * (1 - s); d = -desirableWeight * beta * s * (1 - s)
            case (.apoZeroUnpaired, false):
                let s = LogSigmoid.sigmoid(beta * rho)
                loss = undesirableWeight * s; d = undesirableWeight * beta * s * (1 - s)
            }
            total += loss
            r.losses.append(Float(loss))
            r.rewards.append(Float(beta * rho))
            r.gradPolicy.append(Float(d / Double(n)))
            if desirable[i] { up.0 += beta * rho; up.1 += 1 } else { down.0 += beta * rho; down.1 += 1 }
        }
        r.loss = total / Double(n)
        r.desirableRewardMean = up.1 > 0 ? up.0 / Double(up.1) : nil
        r.undesirableRewardMean = down.1 > 0 ? down.0 / Double(down.1) : nil
        return r
    }
}
